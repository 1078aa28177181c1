"""Safetensors weights: the header, read as the Rust reader reads it, without touching the data.

A safetensors file is an 8-byte little-endian header length, a JSON header, then the tensor bytes.
Only the header is read (a 4 GiB file is checked in milliseconds); tensor values are streamed, in
bounded memory, only when ``CheckOptions.deep`` asks for the NaN/Inf scan (numpy, imported only
then). Nothing is unpickled and torch is never imported: the dtype tables below are the ones
``safetensors`` 0.8 knows.

Codes::

    GAS401  error    not a safetensors file: too short, header length, JSON, metadata, shape
    GAS402  error    unknown dtype, or one torch cannot load (warning: complex cast to real)
    GAS403  error    data_offsets do not tile the data: size mismatch, gap, overlap, tail
    GAS404  error    a float tensor holds NaN or Inf (only with --deep; warning: numpy missing)
    GAS405  warning  the file holds no tensors
"""

from __future__ import annotations

import importlib.util
import json
import reprlib
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from gasbuild.check.config import (
    MAX_CONFIG_BYTES,
    declared_weights_file,
    parse_config,
)
from gasbuild.check.findings import CheckOptions, Finding, Submission
from gasbuild.errors import GasbuildError
from gasbuild.submission import CONFIG_FILE, canonical_dtype

# The Rust reader refuses headers over 100_000_000 bytes ("HeaderTooLarge"); so do we by default.
MAX_HEADER = 100_000_000
LENGTH_BYTES = 8
SCAN_CHUNK = 16 << 20  # bytes per read in the deep scan; a multiple of every item size
METADATA_KEY = "__metadata__"
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)
_USIZE_LIMIT = 2**64  # offsets, dims and element counts are usize in the Rust reader
# At most this many problems are listed, then "and N more" (a broken header can have a million).
MAX_REPORTED = 20

# Bits per element of every dtype the safetensors format defines (safetensors 0.8, 22 variants).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

# Dtypes ``safetensors.torch`` maps to no torch dtype: loading such a file raises a KeyError.
TORCH_UNLOADABLE: frozenset[str] = frozenset({"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0"})

# How to spot NaN/Inf in each float dtype from its raw bits: (little-endian view, mask, value);
# an element is not finite when ``bits & mask == value``. F4/F6 have no NaN or Inf at all.
_NONFINITE: dict[str, tuple[str, int, int]] = {
    "F16": ("<u2", 0x7C00, 0x7C00),
    "BF16": ("<u2", 0x7F80, 0x7F80),
    "F32": ("<u4", 0x7F800000, 0x7F800000),
    "C64": ("<u4", 0x7F800000, 0x7F800000),  # two F32 halves
    "F64": ("<u8", 0x7FF0000000000000, 0x7FF0000000000000),
    "F8_E5M2": ("<u1", 0x7C, 0x7C),
    "F8_E4M3": ("<u1", 0x7F, 0x7F),  # e4m3fn: no Inf, NaN is S.1111.111
    "F8_E4M3FNUZ": ("<u1", 0xFF, 0x80),  # "negative zero" is the only NaN
    "F8_E5M2FNUZ": ("<u1", 0xFF, 0x80),
    "F8_E8M0": ("<u1", 0xFF, 0xFF),
}


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 80, 80


def _short(value: object) -> str:
    """A bounded repr: names and values come from a header of up to 100 MB."""
    return _REPR.repr(value)


class WeightsFormatError(GasbuildError):
    """A safetensors file the reader would refuse; ``code`` is its GAS4xx code."""

    def __init__(self, message: str, *, code: str = "GAS401", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


@dataclass
class TensorInfo:
    """One header entry: ``begin``/``end`` are offsets into the data region (after the header)."""

    name: str
    dtype: str
    shape: list[int]
    begin: int
    end: int


@dataclass
class SafetensorsHeader:
    """A parsed header; ``data_size`` is the length of the data region the tensors must tile."""

    header_size: int
    tensors: list[TensorInfo]
    metadata: dict[str, str] | None
    data_size: int

    @property
    def data_start(self) -> int:
        return LENGTH_BYTES + self.header_size


# --------------------------------------------------------------------------- reading the header


def read_header_path(path: Path) -> SafetensorsHeader:
    """``read_header`` on a file on disk."""
    with path.open("rb") as f:
        return read_header(f, path.stat().st_size)


def read_header(f: BinaryIO, file_size: int, *, max_header: int = MAX_HEADER) -> SafetensorsHeader:
    """Read and check the header at the start of ``f``; never reads the tensor data.

    Raises ``WeightsFormatError`` for the first problem found; the others ride along in its
    ``more`` list, so a caller can report every broken entry in one pass.
    """
    header_size = _read_length(f, file_size, max_header)
    raw = _read_exact(f, header_size)
    if len(raw) != header_size:
        raise WeightsFormatError(
            f"the file ends inside the header ({len(raw)} of {header_size} bytes)"
        )
    entries, metadata = _decode_json(raw)
    data_size = file_size - LENGTH_BYTES - header_size
    tensors, problems = _parse_entries(entries)
    if not problems:  # with entries dropped, every gap would be noise
        problems = _tiling_problems(tensors, data_size)
    if problems:
        first, *rest = problems
        first.more = list(rest)
        raise first
    return SafetensorsHeader(header_size, tensors, metadata, data_size)


def _read_length(f: BinaryIO, file_size: int, max_header: int) -> int:
    head = _read_exact(f, LENGTH_BYTES)
    if file_size < LENGTH_BYTES or len(head) < LENGTH_BYTES:
        raise WeightsFormatError(
            f"{file_size} bytes is too short for a safetensors file (8-byte length, then JSON)"
        )
    header_size = int.from_bytes(head, "little")
    if header_size > max_header:
        raise WeightsFormatError(
            f"header length {header_size} is over the {max_header}-byte limit of the reader",
            hint="not a safetensors file? (a pickle .pt/.bin file starts differently)",
        )
    if header_size > file_size - LENGTH_BYTES:
        raise WeightsFormatError(
            f"header length {header_size} runs past the end of the {file_size}-byte file",
            hint="the file is truncated or not a safetensors file",
        )
    return header_size


def _read_exact(f: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, looping over short reads (zip members and pipes return less)."""
    parts: list[bytes] = []
    left = n
    while left > 0:
        part = f.read(min(left, SCAN_CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing duplicate keys (readers disagree on which one wins)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        dupes = [k for k, n in Counter(k for k, _ in pairs).items() if n > 1]
        raise ValueError(f"duplicate key(s) {', '.join(map(_short, dupes[:5]))}")
    return result


def _decode_json(raw: bytes) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The header as (tensor entries, metadata), decoded as strictly as serde_json would."""
    if not raw.startswith(b"{"):
        raise WeightsFormatError("the header does not start with '{' (the format requires it)")
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_object)
    except UnicodeDecodeError as exc:
        raise WeightsFormatError(f"the header is not UTF-8 (byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise WeightsFormatError(f"the header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WeightsFormatError("the header is not a JSON object")
    metadata = header.pop(METADATA_KEY, None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise WeightsFormatError(f"{METADATA_KEY} must map strings to strings")
    return header, metadata


def _is_uint(value: object) -> bool:
    """A JSON integer that fits the reader's usize (bools are not integers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _USIZE_LIMIT


def _parse_entries(entries: dict[str, Any]) -> tuple[list[TensorInfo], list[WeightsFormatError]]:
    tensors: list[TensorInfo] = []
    problems: list[WeightsFormatError] = []
    for name, entry in entries.items():
        tensor = _parse_entry(name, entry, problems)
        if tensor is not None:
            tensors.append(tensor)
    return tensors, problems


def _parse_entry(name: str, entry: object, problems: list[WeightsFormatError]) -> TensorInfo | None:
    if not isinstance(entry, dict):
        problems.append(WeightsFormatError(f"tensor {_short(name)}: entry is not a JSON object"))
        return None
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        problems.append(
            WeightsFormatError(
                f"tensor {_short(name)}: unknown dtype {_short(dtype)}",
                code="GAS402",
                hint=f"safetensors knows {', '.join(DTYPE_BITS)}",
            )
        )
        return None
    if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
        problems.append(
            WeightsFormatError(
                f"tensor {_short(name)}: shape {_short(shape)} is not a list of integers >= 0"
            )
        )
        return None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_uint, offsets))):
        problems.append(
            WeightsFormatError(
                f"tensor {_short(name)}: data_offsets {_short(offsets)} is not [begin, end]",
                code="GAS403",
            )
        )
        return None
    tensor = TensorInfo(name, dtype, shape, offsets[0], offsets[1])
    problem = _size_problem(tensor)
    if problem is not None:
        problems.append(WeightsFormatError(f"tensor {_short(name)}: {problem}", code="GAS403"))
        return None
    return tensor


def _numel(shape: list[int]) -> int | None:
    """The element count, or None past the reader's 64-bit limit (it refuses such shapes)."""
    count = 1
    for dim in shape:
        count *= dim
        if count >= _USIZE_LIMIT:
            return None
    return count


def _size_problem(t: TensorInfo) -> str | None:
    if t.end < t.begin:
        return f"data_offsets [{t.begin}, {t.end}] end before they begin"
    numel = _numel(t.shape)
    if numel is None:
        return f"shape {_short(t.shape)} has more elements than a 64-bit count holds"
    bits = numel * DTYPE_BITS[t.dtype]
    if bits % 8:
        return f"{numel} {t.dtype} elements do not fill whole bytes"
    if t.end - t.begin != bits // 8:
        return (
            f"data_offsets [{t.begin}, {t.end}] span {t.end - t.begin} bytes but shape"
            f" {_short(t.shape)} of {t.dtype} needs {bits // 8}"
        )
    return None


def _tiling_problems(tensors: list[TensorInfo], data_size: int) -> list[WeightsFormatError]:
    """Sorted by offset, the tensors must cover the data region exactly: no gap, no overlap."""
    problems: list[WeightsFormatError] = []
    position, previous = 0, "the start of the data"
    for t in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if t.begin > position:
            message = f"{t.begin - position} unused bytes between {previous} and {_short(t.name)}"
            problems.append(WeightsFormatError(f"gap: {message}", code="GAS403"))
        elif t.begin < position:
            message = (
                f"tensor {_short(t.name)} starts at {t.begin}, inside {previous} (ends {position})"
            )
            problems.append(WeightsFormatError(f"overlap: {message}", code="GAS403"))
        position, previous = max(position, t.end), _short(t.name)
    if position != data_size:
        where = "past the end of the file" if position > data_size else "short of the end"
        problems.append(
            WeightsFormatError(
                f"the tensors end at data offset {position}, {where} (the data region is"
                f" {data_size} bytes)",
                code="GAS403",
                hint="truncated download?" if position > data_size else "trailing bytes",
            )
        )
    return problems


# --------------------------------------------------------------------------- the deep scan


def scan_values(f: BinaryIO, header: SafetensorsHeader, chunk: int = SCAN_CHUNK) -> list[str]:
    """Names of float tensors holding NaN or Inf, streamed ``chunk`` bytes at a time.

    Reads from the data start (seeking there when ``f`` can, else ``f`` must sit right after
    the header, as ``read_header`` leaves it). The bits are tested directly, so BF16 and the
    float8 formats need no float conversion and no floating-point warnings are raised.
    """
    chunk = max(8, chunk - chunk % 8)  # every item size divides it, so no item is split
    if f.seekable():
        f.seek(header.data_start)
    bad: list[str] = []
    position = 0
    for tensor in sorted(header.tensors, key=lambda t: t.begin):
        _skip(f, tensor.begin - position)
        position = tensor.end
        rule = _NONFINITE.get(tensor.dtype)
        if rule is None:
            _skip(f, tensor.end - tensor.begin)
        elif _has_nonfinite(_chunks(f, tensor.end - tensor.begin, chunk), rule):
            bad.append(tensor.name)
    return bad


def _skip(f: BinaryIO, n: int) -> None:
    if n <= 0:
        return
    if f.seekable():
        f.seek(n, 1)
        return
    for _ in _chunks(f, n, SCAN_CHUNK):
        pass


def _chunks(f: BinaryIO, n: int, chunk: int) -> Iterator[bytes]:
    """Exactly ``n`` bytes in pieces of ``chunk``; a short file is a format error."""
    left = n
    while left > 0:
        data = _read_exact(f, min(chunk, left))
        if len(data) < min(chunk, left):
            raise WeightsFormatError("the file ends inside the tensor data", code="GAS403")
        left -= len(data)
        yield data


def _has_nonfinite(chunks: Iterator[bytes], rule: tuple[str, int, int]) -> bool:
    import numpy as np  # only the deep scan needs it (an optional dependency: gasbuild[torch])

    view, mask, value = rule
    found = False
    for data in chunks:  # consumed to the end even after a hit: the caller's position matters
        if not found:
            bits = np.frombuffer(data, dtype=view)
            found = bool(np.any((bits & np.asarray(mask, dtype=view)) == value))
    return found


# --------------------------------------------------------------------------- the validator


def check_weights(sub: Submission, opts: CheckOptions) -> list[Finding]:
    """GAS4xx findings for the weights file the config names (or ``model.safetensors``)."""
    config = _config(sub)
    name = declared_weights_file(config)
    if name not in sub.names():
        return []  # missing weights are the container's (GAS110) and the config's (GAS207)
    try:
        with sub.open(name) as f:
            header = read_header(f, sub.size(name))
            findings = _dtype_findings(name, header, config)
            if opts.deep:
                findings += _deep_findings(name, f, header)
    except WeightsFormatError as error:
        return _error_findings(name, error)
    except _READ_ERRORS as exc:  # unreadable, or a zip member whose CRC fails at its end
        return [Finding("GAS401", "error", f"cannot read the weights file: {exc}", file=name)]
    if not header.tensors:
        findings.append(
            Finding("GAS405", "warning", "the weights file holds no tensors", file=name)
        )
    return findings


def _config(sub: Submission) -> dict[Any, Any] | None:
    if CONFIG_FILE not in sub.names() or sub.size(CONFIG_FILE) > MAX_CONFIG_BYTES:
        return None
    config, _ = parse_config(sub.read(CONFIG_FILE))
    return config


def _error_findings(name: str, error: WeightsFormatError) -> list[Finding]:
    errors = [error, *(e for e in error.more if isinstance(e, WeightsFormatError))]
    findings = [
        Finding(e.code, "error", e.message, file=name, hint=e.hint) for e in errors[:MAX_REPORTED]
    ]
    if len(errors) > MAX_REPORTED:
        findings.append(
            Finding("GAS401", "error", f"and {len(errors) - MAX_REPORTED} more problems", file=name)
        )
    return findings


def _dtype_findings(
    name: str, header: SafetensorsHeader, config: dict[Any, Any] | None
) -> list[Finding]:
    """Dtypes the file may hold but torch cannot load, or that the loader's cast would damage."""
    findings: list[Finding] = []
    unloadable = sorted({t.dtype for t in header.tensors} & TORCH_UNLOADABLE)
    if unloadable:
        findings.append(
            Finding(
                "GAS402",
                "error",
                f"dtype(s) {', '.join(unloadable)} have no torch dtype in safetensors.torch",
                file=name,
                hint="load_file() fails with a KeyError; store these tensors as F16/BF16/F32",
            )
        )
    if any(t.dtype == "C64" for t in header.tensors):
        target = _cast_target(config)
        findings.append(
            Finding(
                "GAS402",
                "warning",
                f"complex (C64) tensors: the loader's .to({target}) keeps only the real part",
                file=name,
                hint="only if they become parameters or buffers of the model",
            )
        )
    return findings


def _cast_target(config: dict[Any, Any] | None) -> str:
    value = config.get("dtype") if config is not None else None
    return (canonical_dtype(value) if isinstance(value, str) else None) or "float32"


def _deep_findings(name: str, f: BinaryIO, header: SafetensorsHeader) -> list[Finding]:
    if importlib.util.find_spec("numpy") is None:
        message = "tensor values were not scanned for NaN/Inf: numpy is not installed"
        hint = "pip install 'gasbuild[torch]'"
        return [Finding("GAS404", "warning", message, file=name, hint=hint)]
    return _value_findings(name, scan_values(f, header))


def _value_findings(name: str, bad: list[str]) -> list[Finding]:
    findings = [
        Finding("GAS404", "error", f"tensor {_short(t)} holds NaN or Inf", file=name)
        for t in bad[:MAX_REPORTED]
    ]
    if len(bad) > MAX_REPORTED:
        findings.append(
            Finding(
                "GAS404",
                "error",
                f"and {len(bad) - MAX_REPORTED} more tensors hold NaN or Inf",
                file=name,
            )
        )
    return findings
