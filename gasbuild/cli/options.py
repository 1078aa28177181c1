"""Options shared by gasbuild's commands (kept apart so that command modules need not import
each other, nor the groups' module ``cli.app``; only ``build`` asks it, when it runs, for the
command line it records)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gasbuild.errors import UsageError
from gasbuild.resources import MANIFEST_NAME
from gasbuild.submission import MODALITIES, Modality

if TYPE_CHECKING:
    from gasbuild.manifest import Project


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    from gasbuild import ui

    if param.name == "quiet" and value:
        ui.set_verbosity(-1)
    elif param.name == "verbose" and value:
        ui.set_verbosity(int(value))


def verbosity_options(func: Any) -> Any:
    """``-v``/``-q`` after the command name too (``gasbuild build -q``), as before it."""
    func = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        help="Only errors and results (no warnings, no progress).",
    )(func)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_set_verbosity,
        help="More detail: build stages, full digests, causes of errors.",
    )(func)


def project_options(func: Any) -> Any:
    """``-C DIR`` and ``-f FILE``: which gas.toml a command works on (and ``-v``/``-q``)."""
    func = verbosity_options(func)
    func = click.option(
        "-f",
        "--file",
        "manifest_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Manifest to use (default: gas.toml in DIR).",
    )(func)
    return click.option(
        "-C",
        "--directory",
        type=click.Path(path_type=Path, file_okay=False),
        help="Run as if started in DIR.",
    )(func)


def checked_only(project: Any, value: str | None) -> frozenset[Modality] | None:
    """``--only image,audio``: known modalities that the manifest declares, or None for all."""
    if not value:
        return None
    chosen = {part.strip() for part in value.split(",") if part.strip()}
    unknown = sorted(chosen - set(MODALITIES))
    if unknown:
        raise UsageError(
            f"--only: unknown modality {', '.join(unknown)}",
            hint=f"choose from {', '.join(MODALITIES)}",
        )
    declared = {m for m, _ in project.manifest.declared()}
    missing = sorted(chosen - declared)
    if missing:
        raise UsageError(
            f"--only: {', '.join(missing)} is not declared in {project.path.name}",
            hint=f"declared: {', '.join(sorted(declared))}",
        )
    return frozenset(chosen)  # type: ignore[arg-type]


def maybe_project(directory: Path | None, manifest_file: Path | None) -> Project | None:
    """The gas.toml named by -f, or in -C DIR / here; None when there is none and none was
    named (commands such as ``templates`` and ``cache`` then use their defaults, without
    importing the manifest's pydantic models)."""
    base = directory or Path.cwd()
    if manifest_file is None and not (base / MANIFEST_NAME).is_file():
        return None
    from gasbuild import manifest

    return manifest.load(manifest.find_manifest(directory, manifest_file))


def smoke_limit_options(func: Any) -> Any:
    """``--smoke-memory MB`` and ``--smoke-timeout S`` (default: gas.toml's ``[build]``, else
    derived from the submission's size), for every command that runs the smoke test."""
    func = click.option(
        "--smoke-timeout",
        type=click.FloatRange(min=1, min_open=False),
        metavar="S",
        help="Seconds the smoke test may run (default: 300 + 120 per GiB of the submission).",
    )(func)
    return click.option(
        "--smoke-memory",
        type=click.IntRange(min=256),
        metavar="MB",
        help="The smoke test's memory limit (default: 8192 + 4 x the submission's MB).",
    )(func)
