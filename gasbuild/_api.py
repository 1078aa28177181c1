"""The public API's functions: thin, typed doors into the modules that do the work.

``gasbuild/__init__.py`` exposes these (lazily, so ``import gasbuild`` stays cheap). They take
plain arguments with the network's defaults and return the same result types the CLI prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gasbuild.cache import Cache
    from gasbuild.check.findings import Finding
    from gasbuild.manifest import Project
    from gasbuild.plan import BuildReport
    from gasbuild.submission import Format, Modality


def load_project(path: str | Path = ".") -> Project:
    """Load and validate a gas.toml (a file, or a directory holding one).

    Raises :class:`gasbuild.ManifestError` (with ``file:line:col``) when it is wrong.
    """
    from gasbuild import manifest

    target = Path(path)
    if target.is_dir():
        return manifest.load(manifest.find_manifest(target))
    return manifest.load(target)


def open_cache(project: Project, *, enabled: bool = True, offline: bool = False) -> Cache:
    """The cache a project's ``[cache]`` table describes (local dir, plus its remote)."""
    from gasbuild._cliopts import open_cache as _open

    return _open(project, enabled=enabled, offline=offline)


def build(
    project: Project,
    *,
    only: Iterable[Modality] | None = None,
    out_dir: str | Path | None = None,
    smoke: bool = True,
    deep: bool = False,
    locked: bool = False,
    offline: bool = False,
    cache: Cache | None = None,
) -> BuildReport:
    """Build the project's zips (all models, or ``only`` these modalities).

    Raises :class:`gasbuild.CheckFailed` when a submission has error findings (nothing is
    written for it), :class:`gasbuild.UserError` for bad input, and the other
    :class:`gasbuild.GasbuildError` subclasses as drawn in ``gasbuild.errors``.
    """
    from gasbuild import plan
    from gasbuild.stages.fetch import FetchOptions

    options = plan.BuildOptions(
        only=None if only is None else frozenset(only),
        out_dir=None if out_dir is None else Path(out_dir).absolute(),
        smoke=smoke,
        deep=deep,
        locked=locked,
        fetch=FetchOptions(offline=offline),
    )
    store = cache if cache is not None else open_cache(project, offline=offline)
    return plan.build(project, store, options)


def check_submission(
    path: str | Path,
    *,
    modality: Modality | None = None,
    format: Format | None = None,
    smoke: bool = True,
    deep: bool = False,
) -> list[Finding]:
    """Check a submission zip or an unpacked submission directory as strictly as the network.

    Returns the findings (``severity`` ``"error"`` or ``"warning"``); an empty list is a pass.
    The smoke test runs the model in gasbuild's sandbox, never in this process.
    """
    from gasbuild.check import CheckOptions
    from gasbuild.check.paths import check_submission as _check

    opts = CheckOptions(modality=modality, format=format, smoke=smoke, deep=deep)
    return _check(Path(path), opts)
