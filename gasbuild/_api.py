"""The public API's functions: thin, typed doors into the modules that do the work.

``gasbuild/__init__.py`` exposes these (lazily, so ``import gasbuild`` stays cheap). They take
plain arguments with the network's defaults and return the same result types the CLI prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gasbuild.cache import Cache
    from gasbuild.check.findings import CheckOptions, Finding
    from gasbuild.manifest import Project
    from gasbuild.plan import BuildReport
    from gasbuild.stages.fetch import ProgressFactory
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
    """The cache ``[cache]`` describes: local dir, plus the remote unless offline."""
    from gasbuild import ui
    from gasbuild.cache import Cache, RemoteCache, default_cache_dir

    settings = project.manifest.cache
    remote = None
    if settings.remote and not offline:
        try:
            remote = RemoteCache(settings.remote)
        except Exception as exc:  # a missing backend (s3fs...) must not stop a local build
            ui.print_warning(
                f"remote cache {settings.remote} unavailable ({exc}); using local only"
            )
    return Cache(
        default_cache_dir(settings.dir, project.root),
        enabled=enabled,
        remote=remote,
        remote_write=settings.remote_write,
        warn=ui.print_warning,
    )


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


def check_project(
    manifest_path: Path,
    opts: CheckOptions,
    *,
    step: Callable[[str], AbstractContextManager[None]] | None = None,
    progress: ProgressFactory | None = None,
) -> list[tuple[str, list[Finding]]]:
    """What a build of the gas.toml at ``manifest_path`` would find, per model (nothing is
    written but cache entries): ``gasbuild check gas.toml``. ``step`` and ``progress`` show
    the long steps on a terminal, as in ``build``."""
    from gasbuild import manifest, plan
    from gasbuild.errors import UsageError
    from gasbuild.stages.fetch import FetchOptions

    if opts.modality is not None or opts.format is not None:
        raise UsageError("--modality/--format apply to zips and directories, not to gas.toml")
    project = manifest.load(manifest_path)
    options = plan.BuildOptions(
        smoke=opts.smoke,
        deep=opts.deep,
        smoke_batch=opts.smoke_batch,
        smoke_memory_mb=opts.smoke_memory_mb,
        smoke_timeout=opts.smoke_timeout,
        write_lock=False,
        fetch=FetchOptions(progress=progress),
        step=step or plan.no_step,
    )
    return plan.check(project, open_cache(project), options)


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
