"""``gasbuild check``: route each path to the right checks (zip, directory or gas.toml)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gasbuild.check import (
    CheckOptions,
    DirectorySubmission,
    Finding,
    check_contents,
    check_zip_path,
    has_errors,
)
from gasbuild.errors import UsageError, display_path


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
            reports.append((origin, check_zip_path(path, opts, origin)))
    return reports


def _check_directory(path: Path, opts: CheckOptions) -> tuple[str, list[Finding]]:
    """An unpacked submission: the zip's layout rules on its entries, then the content checks
    (the smoke test only when nothing else is wrong, as for a zip)."""
    from dataclasses import replace

    from gasbuild.check.container import check_fileset

    origin = display_path(path)
    sub = DirectorySubmission(path, origin)
    findings = _directory_layout(path)
    findings += check_fileset(sub, opts)
    if has_errors(findings):
        opts = replace(opts, smoke=False)
    return origin, sorted(findings + check_contents(sub, opts), key=_order)


def _directory_layout(path: Path) -> list[Finding]:
    findings = []
    for entry in sorted(path.iterdir()):
        if entry.is_symlink():
            findings.append(
                Finding(
                    "GAS104",
                    "error",
                    f"{entry.name} is a symbolic link",
                    file=entry.name,
                    hint="a submission holds regular files only",
                )
            )
        elif entry.is_dir():
            findings.append(
                Finding(
                    "GAS102",
                    "error",
                    f"folder {entry.name}/ inside the submission",
                    file=entry.name,
                    hint="a submission holds files at its root only",
                )
            )
    return findings


def _order(f: Finding) -> tuple[str, int, int, str]:
    return (f.file or "", f.line or 0, f.col or 0, f.code)


def _check_manifest(
    path: Path, opts: CheckOptions, open_cache: Callable[..., Any]
) -> list[tuple[str, list[Finding]]]:
    from gasbuild import manifest, plan

    if opts.modality is not None or opts.format is not None:
        raise UsageError("--modality/--format apply to zips and directories, not to gas.toml")
    project = manifest.load(path)
    options = plan.BuildOptions(
        smoke=opts.smoke,
        deep=opts.deep,
        smoke_batch=opts.smoke_batch,
        smoke_memory_mb=opts.smoke_memory_mb,
        smoke_timeout=opts.smoke_timeout,
        write_lock=False,
    )
    reports = plan.check(project, open_cache(project), options)
    return [(origin, findings) for origin, findings in reports]


__all__ = ["check_paths"]
