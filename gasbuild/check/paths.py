"""``gasbuild check``: route each path to the right checks (zip, directory or gas.toml).

A directory holding a gas.toml is a project, never a submission (a submission holds no
gas.toml): its declared models are checked, as ``gasbuild build`` would. No path at all means
the project in the working directory.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from gasbuild.check import (
    CheckOptions,
    DirectorySubmission,
    Finding,
    check_contents,
    check_zip_path,
    has_errors,
)
from gasbuild.errors import UsageError, display_path

Reports = list[tuple[str, list[Finding]]]


def check_paths(
    paths: list[Path],
    opts: CheckOptions,
    *,
    check_manifest: Callable[[Path, CheckOptions], Reports],
    step: Callable[[str], AbstractContextManager[None]] = lambda name: nullcontext(),
) -> Reports:
    """Findings per submission, in the order the paths were given.

    A gas.toml (or a project directory) is checked through ``check_manifest``, which builds
    its models up to the zip: the checker itself knows nothing of manifests or builds.
    ``step`` names each zip or directory while it is checked (a spinner on a terminal: the
    smoke test of a large model takes minutes).
    """
    reports: list[tuple[str, list[Finding]]] = []
    if not paths:
        if not (Path.cwd() / "gas.toml").is_file():
            raise UsageError(
                "no gas.toml here, and no path given",
                hint="name zips or folders to check (gasbuild check dist/*.zip), or run it in a"
                " project (`gasbuild init` makes one)",
            )
        paths = [Path("gas.toml")]
    for path in paths:
        refused = _not_a_file_or_directory(path)
        if refused is not None:
            reports.append((display_path(path), [refused]))
            continue
        if path.is_dir() and (path / "gas.toml").is_file():
            path = path / "gas.toml"
        if path.suffix == ".toml":
            reports.extend(check_manifest(path, opts))
        elif path.is_dir():
            with step(f"checking {display_path(path)}"):
                reports.append(_check_directory(path, opts))
        else:
            origin = display_path(path)
            with step(f"checking {origin}"):
                reports.append((origin, one_root_cause(check_zip_path(path, opts, origin))))
    return reports


def check_submission(path: Path, opts: CheckOptions) -> list[Finding]:
    """The findings for one submission: a zip, or an unpacked directory."""
    if path.is_dir():
        return _check_directory(path, opts)[1]
    return check_zip_path(path, opts, display_path(path))


def _not_a_file_or_directory(path: Path) -> Finding | None:
    """A FIFO, device or socket is refused before anything opens it: opening a FIFO waits for
    a writer forever, and reading /dev/zero never ends."""
    from gasbuild.check.container import file_kind

    try:
        mode = path.stat().st_mode
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Finding("GAS101", "error", f"cannot read it ({why})")
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    hint = "give a submission zip, an unpacked submission directory or a gas.toml"
    return Finding("GAS101", "error", f"not a regular file ({file_kind(mode)})", hint=hint)


_QUOTED = re.compile(r"^'([^']+)'")


def one_root_cause(findings: list[Finding]) -> list[Finding]:
    """``zip -r folder``: every entry under one folder gives a GAS102 per entry and a GAS110
    per required file; say it once, with the fix."""
    nested = [
        (f, m.group(1)) for f in findings if f.code == "GAS102" and (m := _QUOTED.match(f.message))
    ]
    tops = {name.split("/", 1)[0] for _, name in nested}
    if len(tops) != 1 or len(nested) != sum(1 for f in findings if f.code == "GAS102"):
        return findings
    top = tops.pop()
    inside = {name.split("/")[-1] for _, name in nested if not name.endswith("/")}
    missing = [
        f for f in findings if f.code == "GAS110" and f.file in inside and "missing" in f.message
    ]
    if not missing:
        return findings
    dropped = {id(f) for f, _ in nested} | {id(f) for f in missing}
    once = Finding(
        "GAS102",
        "error",
        f"the files are inside a folder {top}/ (a zip made with `zip -r`); the network reads"
        " them at the root of the zip only",
        hint=f"zip the files, not the folder: zip -j {top}.zip {top}/*",
    )
    return [once, *(f for f in findings if id(f) not in dropped)]


def _check_directory(path: Path, opts: CheckOptions) -> tuple[str, list[Finding]]:
    """An unpacked submission: the zip's layout rules on its entries, then the content checks
    (the smoke test only when nothing else is wrong, as for a zip)."""
    from dataclasses import replace

    from gasbuild.check.container import check_fileset

    origin = display_path(path)
    sub = DirectorySubmission(path, origin)
    findings = _directory_layout(path)
    if any(f.code == "GAS101" for f in findings):  # something there cannot be read: stop here
        return origin, sorted(findings, key=_order)
    findings += check_fileset(sub, opts)
    if has_errors(findings):
        opts = replace(opts, smoke=False)
    return origin, sorted(findings + check_contents(sub, opts), key=_order)


def _directory_layout(path: Path) -> list[Finding]:
    """Links, folders and special files at the directory's root; files that cannot be read."""
    try:
        entries = sorted(path.iterdir())
    except OSError as exc:
        return [Finding("GAS101", "error", f"cannot list the directory ({exc.strerror or exc})")]
    findings = []
    for entry in entries:
        problem = _special(entry)
        if problem is not None:
            findings.append(problem)
        elif entry.is_symlink():
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


def _special(entry: Path) -> Finding | None:
    """A FIFO, device or socket (never opened), or a regular file that cannot be read."""
    from gasbuild.check.container import file_kind

    try:
        mode = entry.lstat().st_mode
    except OSError as exc:
        return Finding("GAS101", "error", f"cannot read {entry.name!r} ({exc.strerror})")
    if stat.S_ISREG(mode):
        if os.access(entry, os.R_OK):
            return None
        message = f"cannot read {entry.name!r} (permission denied)"
        return Finding("GAS101", "error", message, file=entry.name)
    if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
        return None
    return Finding(
        "GAS104",
        "error",
        f"{entry.name!r} is a special file ({file_kind(mode)})",
        file=entry.name,
        hint="a submission holds regular files only",
    )


def _order(f: Finding) -> tuple[str, int, int, str]:
    return (f.file or "", f.line or 0, f.col or 0, f.code)


__all__ = ["check_paths", "check_submission"]
