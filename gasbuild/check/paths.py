"""``gasbuild check``: route each path to the right checks (zip, directory or gas.toml)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gasbuild.check import (
    CheckOptions,
    DirectorySubmission,
    Finding,
    check_contents,
    check_zip_path,
    has_errors,
)
from gasbuild.errors import display_path

Reports = list[tuple[str, list[Finding]]]


def check_paths(
    paths: list[Path],
    opts: CheckOptions,
    *,
    check_manifest: Callable[[Path, CheckOptions], Reports],
) -> Reports:
    """Findings per submission, in the order the paths were given.

    A gas.toml (or a project directory) is checked through ``check_manifest``, which builds
    its models up to the zip: the checker itself knows nothing of manifests or builds.
    """
    reports: list[tuple[str, list[Finding]]] = []
    for path in paths:
        if path.is_dir() and (path / "gas.toml").is_file() and not (path / "model.py").exists():
            path = path / "gas.toml"
        if path.suffix == ".toml":
            reports.extend(check_manifest(path, opts))
        elif path.is_dir():
            reports.append(_check_directory(path, opts))
        else:
            origin = display_path(path)
            reports.append((origin, check_zip_path(path, opts, origin)))
    return reports


def check_submission(path: Path, opts: CheckOptions) -> list[Finding]:
    """The findings for one submission: a zip, or an unpacked directory."""
    if path.is_dir():
        return _check_directory(path, opts)[1]
    return check_zip_path(path, opts, display_path(path))


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


__all__ = ["check_paths", "check_submission"]
