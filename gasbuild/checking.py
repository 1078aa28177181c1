"""``gasbuild check``: route each path to the right checks (zip, directory or gas.toml)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gasbuild.errors import UsageError, display_path
from gasbuild.stages import validate
from gasbuild.stages.validate import CheckOptions, DirectorySubmission, Finding


def check_paths(
    paths: list[Path], opts: CheckOptions, *, open_cache: Callable[..., Any]
) -> list[tuple[str, list[Finding]]]:
    """Findings per submission, in the order the paths were given."""
    reports: list[tuple[str, list[Finding]]] = []
    for path in paths:
        if path.is_dir() and (path / "gas.toml").is_file() and not (path / "model.py").exists():
            path = path / "gas.toml"
        if path.suffix == ".toml":
            reports.extend(_check_manifest(path, opts, open_cache))
        elif path.is_dir():
            reports.append(_check_directory(path, opts))
        else:
            origin = display_path(path)
            reports.append((origin, validate.check_zip_path(path, opts, origin)))
    return reports


def _check_directory(path: Path, opts: CheckOptions) -> tuple[str, list[Finding]]:
    origin = display_path(path)
    sub = DirectorySubmission(path, origin)
    nested = [p.name for p in path.iterdir() if p.is_dir()]
    findings = [
        Finding(
            "GAS102",
            "error",
            f"folder {name}/ inside the submission",
            file=name,
            hint="a submission holds files at its root only",
        )
        for name in sorted(nested)
    ]
    return origin, findings + validate.check_contents(sub, opts)


def _check_manifest(
    path: Path, opts: CheckOptions, open_cache: Callable[..., Any]
) -> list[tuple[str, list[Finding]]]:
    from gasbuild import manifest, plan

    if opts.modality is not None or opts.format is not None:
        raise UsageError("--modality/--format apply to zips and directories, not to gas.toml")
    project = manifest.load(path)
    options = plan.BuildOptions(smoke=opts.smoke, deep=opts.deep, write_lock=False)
    reports = plan.check(project, open_cache(project), options)
    return [(origin, findings) for origin, findings in reports]


__all__ = ["check_paths"]
