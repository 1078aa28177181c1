"""Findings and the submission view every validator works on.

One interface for every check: a validator is a function ``(Submission, CheckOptions) ->
Iterable[Finding]``. A ``Submission`` hides whether the files sit in a zip, in a directory, or are
still staged in memory during a build, so the same rules run on all three.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from gasbuild.errors import printable
from gasbuild.submission import Format, Modality

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in a submission, with a stable code (GAS1xx zip ... GAS6xx smoke)."""

    code: str
    severity: Severity
    message: str
    file: str | None = None  # entry name inside the submission, e.g. "model.py"
    line: int | None = None
    col: int | None = None
    hint: str | None = None
    # The file the user edits to fix it, when that is not an entry of the submission named
    # (a build's entries are made from model.py, gas.toml and the weights: see
    # gasbuild.located); ``line``/``col`` are then in that file.
    source: str | None = None

    def format(self, origin: str) -> str:
        """``origin/file:line:col: CODE severity message (hint)`` — the grep-able one-liner
        (``source:line:col: ...`` when the finding has a source)."""
        if self.source is not None:
            where = self.source
        else:
            where = origin if self.file is None else f"{origin}/{self.file}"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        text = f"{where}: {self.code} {self.severity} {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return printable(text)  # names and messages may carry control characters from a zip

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "hint": self.hint,
            **({"source": self.source} if self.source is not None else {}),
        }


@dataclass(frozen=True)
class CheckOptions:
    """What a check run may do. ``modality``/``format`` are the expected ones when known."""

    modality: Modality | None = None
    format: Format | None = None
    deep: bool = False  # stream all tensor data to reject NaN/Inf
    smoke: bool = True  # load and run the model in a child process
    smoke_batch: int = 2
    # None: derived from the submission's size (check.smoke.smoke_limits).
    smoke_timeout: float | None = None
    smoke_memory_mb: int | None = None
    # Told which sandbox layers held (verbose output, --json); None: nobody asks.
    on_sandbox: Callable[[dict[str, str]], None] | None = field(default=None, compare=False)
    allow_dynamic_hw: bool = False  # ONNX: a dynamic input H/W is a warning, not an error


class Submission(Protocol):
    """Read-only view of a submission's root entries, wherever they live."""

    origin: str  # how to name the submission in messages (a path the user recognises)

    def names(self) -> list[str]: ...

    def size(self, name: str) -> int: ...

    def open(self, name: str) -> BinaryIO: ...

    def read(self, name: str) -> bytes: ...

    def local_path(self, name: str) -> Path | None:
        """A real file holding the entry, when there is one (lets the smoke test avoid a copy)."""
        ...


@dataclass
class DirectorySubmission:
    """An unpacked submission directory (only its root entries count)."""

    root: Path
    origin: str

    def names(self) -> list[str]:
        """Regular files at the root (folders and links are reported by the directory check)."""
        return sorted(p.name for p in self.root.iterdir() if p.is_file() and not p.is_symlink())

    def size(self, name: str) -> int:
        return (self.root / name).stat().st_size

    def open(self, name: str) -> BinaryIO:
        return (self.root / name).open("rb")

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def local_path(self, name: str) -> Path | None:
        return self.root / name


@dataclass
class StagedSubmission:
    """A submission being built: entry names mapped to bytes or to files on disk."""

    entries: Mapping[str, bytes | Path]
    origin: str

    def names(self) -> list[str]:
        return sorted(self.entries)

    def size(self, name: str) -> int:
        value = self.entries[name]
        return len(value) if isinstance(value, bytes) else value.stat().st_size

    def open(self, name: str) -> BinaryIO:
        value = self.entries[name]
        return io.BytesIO(value) if isinstance(value, bytes) else value.open("rb")

    def read(self, name: str) -> bytes:
        value = self.entries[name]
        return value if isinstance(value, bytes) else value.read_bytes()

    def local_path(self, name: str) -> Path | None:
        value = self.entries[name]
        return value if isinstance(value, Path) else None


@dataclass
class ZipSubmission:
    """A submission zip. Construct it only after the container checks passed."""

    zf: zipfile.ZipFile
    origin: str
    _infos: dict[str, zipfile.ZipInfo] = field(init=False)

    def __post_init__(self) -> None:
        self._infos = {info.filename: info for info in self.zf.infolist()}

    def names(self) -> list[str]:
        return sorted(self._infos)

    def size(self, name: str) -> int:
        return self._infos[name].file_size

    def open(self, name: str) -> BinaryIO:
        return self.zf.open(self._infos[name])  # type: ignore[return-value]

    def read(self, name: str) -> bytes:
        return self.zf.read(self._infos[name])

    def local_path(self, name: str) -> Path | None:
        return None


Validator = Callable[[Submission, CheckOptions], Iterable[Finding]]


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
