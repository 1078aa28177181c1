"""The zip container: is it a sound, honest zip holding exactly the files of its format?

Everything here reads the zip's structure, never its contents: the end record and the central
directory (through ``zipfile``, after a bounded pre-read of the end record of our own, so a
central directory of a million entries is refused before it is parsed), then every local header,
compared field by field with the central directory. Different unzip tools trust different
copies of a name or a size; a zip whose copies disagree, or whose entries overlap (the classic
zip bomb), is refused rather than guessed at. Sizes are judged from what the zip declares; nothing
is extracted to find out. Then every entry's data is streamed once (stored bytes as they are,
deflate through a bounded decompressor) and its CRC-32 and size compared with the directory's:
an unzip tool refuses a bad CRC, so gasbuild must too.

Codes::

    GAS101  error    not a zip, truncated, corrupt, multi-disk, or other data around the zip
    GAS102  error    a name that is not a plain file at the root (folder, '..', '/x', '\\', ':')
    GAS103  error    two entries with the same name (or names that differ only in case)
    GAS104  error    a symlink or other special file
    GAS105  error    an encrypted entry
    GAS106  error    a compression method other than stored or deflate
    GAS107  error    local header (or data descriptor, or a Unicode Path extra field) disagrees
                     with the central directory, entries overlap, or bytes belong to no entry
    GAS108  error    total size over the cap, or a compression ratio over 200:1 (a zip bomb)
    GAS109  error    an entry's data does not match its CRC-32 or its declared size
    GAS110  error    files missing or extra for the format (or > 64 entries: not even parsed)
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gasbuild.blobs import CHUNK, crc32
from gasbuild.check.config import (
    MAX_CONFIG_BYTES,
    WEIGHTS_SUFFIX,
    declared_weights_file,
    parse_config,
)
from gasbuild.check.findings import CheckOptions, Finding, Submission
from gasbuild.submission import (
    CONFIG_FILE,
    DEFAULT_WEIGHTS_FILE,
    MODEL_FILE,
    OPTIONAL_FILES,
    Format,
)

DEFAULT_MAX_TOTAL_SIZE = 16 * 2**30  # uncompressed bytes, all entries together
MAX_RATIO = 200  # uncompressed : compressed, judged only for entries over RATIO_MIN_SIZE
RATIO_MIN_SIZE = 1 << 20
# A submission holds at most four files; these bounds keep a hostile zip from costing memory.
MAX_ENTRIES = 64
MAX_CENTRAL_DIRECTORY = 1 << 20
ONNX_SUFFIX = ".onnx"

_EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory record
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")  # zip64 end of central directory record
_LOCATOR64 = struct.Struct("<4sIQI")  # zip64 end of central directory locator
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header
_EOCD_SIG, _EOCD64_SIG = b"PK\x05\x06", b"PK\x06\x06"
_LOCATOR64_SIG, _LOCAL_SIG = b"PK\x06\x07", b"PK\x03\x04"
_MAX_COMMENT = 0xFFFF
_SATURATED = 0xFFFFFFFF  # a 32-bit size or offset that lives in the zip64 extra field
_ZIP64_EXTRA = 0x0001
_UNICODE_PATH_EXTRA = 0x7075  # Info-ZIP: a UTF-8 name that unzip prefers to the header's
_DESCRIPTOR_SIG = b"PK\x07\x08"
_DOS_DIRECTORY = 0x10  # MS-DOS attribute bit in the low byte of external_attr
_FLAG_ENCRYPTED, _FLAG_DESCRIPTOR, _FLAG_PATCHED = 0x1, 0x8, 0x20
_FLAG_STRONG, _FLAG_UTF8 = 0x40, 0x800
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_METHOD_NAMES = {12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz", 98: "ppmd", 99: "AES"}
_UNSAFE = frozenset({"GAS101", "GAS105", "GAS106", "GAS107", "GAS108", "GAS109"})
_DRIVE = re.compile(r"^[A-Za-z]:")
# What zipfile raises on a malformed central directory (struct.error and friends included:
# it unpacks whatever the end record points at).
_ZIPFILE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    struct.error,
    NotImplementedError,
    IndexError,
    OverflowError,
)


@dataclass(frozen=True)
class _End:
    """What the end records say: where the central directory is, how big, how many entries."""

    cd_start: int  # where it really is
    cd_size: int
    count: int
    prefix: int  # bytes before the zip proper (a self-extractor or a polyglot)
    trailing: int  # bytes after the end record and its comment


def infer_format(names: Iterable[str]) -> Format:
    """ONNX when any entry is a ``.onnx`` file, else safetensors (the current format)."""
    return "onnx" if any(n.lower().endswith(ONNX_SUFFIX) for n in names) else "safetensors"


def check_zip(
    path: Path, opts: CheckOptions, *, max_total_size: int = DEFAULT_MAX_TOTAL_SIZE
) -> tuple[list[Finding], zipfile.ZipFile | None]:
    """Container findings, and the open zip when it is safe to read on (caller closes it).

    The zip is None when reading it could mislead or hurt: it is not a zip, its headers lie,
    entries are encrypted or use another compression, or it is a bomb. Layout problems (names,
    duplicates, links, the file set) are reported but still return the zip.
    """
    findings, zf, bounds = _open(path)
    if zf is None:
        return findings, None
    try:
        structure, data = _structure_findings(path, zf, bounds, max_total_size)
        findings += structure
        if not _unsafe(findings):
            findings += _crc_findings(path, data)
        findings += _fileset_findings(zf, opts, safe=not _unsafe(findings))
    except BaseException:
        zf.close()
        raise
    if _unsafe(findings):
        zf.close()
        return findings, None
    return findings, zf


def _unsafe(findings: list[Finding]) -> bool:
    return any(f.code in _UNSAFE and f.severity == "error" for f in findings)


def _error(code: str, message: str, file: str | None = None, hint: str | None = None) -> Finding:
    return Finding(code, "error", message, file=file, hint=hint)


# --------------------------------------------------------------------------- opening


def _open(path: Path) -> tuple[list[Finding], zipfile.ZipFile | None, tuple[int, int]]:
    """Pre-check the end records ourselves, then let zipfile parse the central directory.

    Returns the findings so far, the zip (None if it cannot be parsed or is too large to try),
    and where the entries' data may lie: after any prefixed data, before the central directory.
    """
    try:
        with _open_regular(path) as f:
            end = _read_end(f, os.fstat(f.fileno()).st_size)
    except _NotRegular as exc:
        return [_error("GAS101", str(exc), hint="a submission is a regular zip file")], None, (0, 0)
    except OSError as exc:
        return [_error("GAS101", f"cannot read the file: {exc.strerror or exc}")], None, (0, 0)
    if isinstance(end, str):
        return [_error("GAS101", end)], None, (0, 0)
    findings = _end_findings(end)
    bounds = (max(end.prefix, 0), end.cd_start)
    if end.count > MAX_ENTRIES or end.cd_size > MAX_CENTRAL_DIRECTORY:
        message = f"{end.count} entries ({end.cd_size}-byte central directory)"
        findings.append(_error("GAS110", message, hint="a submission holds at most four files"))
        return findings, None, bounds
    try:
        zf = zipfile.ZipFile(path)
    except _ZIPFILE_ERRORS as exc:
        return [*findings, _error("GAS101", f"not a readable zip: {exc}")], None, bounds
    if len(zf.infolist()) != end.count:
        message = f"the end record counts {end.count} entries, the directory holds"
        findings.append(_error("GAS107", f"{message} {len(zf.infolist())}"))
    return findings, zf, bounds


class _NotRegular(OSError):
    """The path is a FIFO, a device, a socket or a directory: never read it as a zip."""


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file.

    Opened non-blocking, then judged by ``fstat`` of what was opened (not of the name, which
    could be swapped in between): opening a FIFO for reading would otherwise wait forever
    for a writer, and reading a device such as /dev/zero would never end.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegular(f"not a regular file ({file_kind(mode)})")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words, from its ``st_mode``."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    )
    return next((name for test, name in kinds if test(mode)), f"mode {mode:o}")


def _read_end(f: BinaryIO, size: int) -> _End | str:
    """Find and decode the end record(s) as zipfile does; a string says why it is no zip."""
    if size < _EOCD.size:
        return f"{size} bytes is too short to be a zip"
    tail_start = max(0, size - _EOCD.size - _MAX_COMMENT)
    f.seek(tail_start)
    tail = f.read(size - tail_start)
    pos = tail.rfind(_EOCD_SIG, 0, len(tail) - _EOCD.size + len(_EOCD_SIG))
    if pos < 0:
        return "not a zip file (no end of central directory record)"
    _, disk, cd_disk, disk_count, count, cd_size, cd_offset, comment = _EOCD.unpack_from(tail, pos)
    if disk or cd_disk or disk_count != count:
        return "a multi-disk (split) zip; a submission is one file"
    eocd = tail_start + pos
    trailing = size - (eocd + _EOCD.size + comment)
    cd_end = eocd
    zip64 = _read_end64(f, eocd)
    if isinstance(zip64, str):
        return zip64
    if zip64 is not None:
        if not _end_fields_agree((count, cd_size, cd_offset), zip64[1:]):
            return "the zip64 end record and the end record disagree on the central directory"
        cd_end, count, cd_size, cd_offset = zip64
    cd_start = cd_end - cd_size
    if cd_start < 0:
        return f"the central directory ({cd_size} bytes) is larger than the file: truncated?"
    if tail.find(_EOCD_SIG, max(0, cd_start - tail_start)) != pos:
        return "several end of central directory records: tools disagree on which is real"
    return _End(cd_start, cd_size, count, cd_start - cd_offset, trailing)


def _end_fields_agree(fields32: tuple[int, int, int], fields64: tuple[int, int, int]) -> bool:
    """A 32-bit end record field is either saturated (see the zip64 record) or the same."""
    saturated = (0xFFFF, _SATURATED, _SATURATED)
    return all(
        old in (full, new) for old, new, full in zip(fields32, fields64, saturated, strict=True)
    )


def _read_end64(f: BinaryIO, eocd: int) -> tuple[int, int, int, int] | str | None:
    """(start of the zip64 end record, count, cd size, cd offset), when there is one."""
    record = eocd - _LOCATOR64.size - _EOCD64.size
    if record < 0:
        return None
    f.seek(record)
    raw = f.read(_EOCD64.size + _LOCATOR64.size)
    if len(raw) < _EOCD64.size + _LOCATOR64.size:
        return None
    locator = _LOCATOR64.unpack_from(raw, _EOCD64.size)
    if locator[0] != _LOCATOR64_SIG:
        return None
    sig, _, _, _, disk, cd_disk, disk_count, count, cd_size, cd_offset = _EOCD64.unpack_from(raw)
    if sig != _EOCD64_SIG:
        return "a zip64 locator without its zip64 end record: corrupt"
    if disk or cd_disk or locator[3] > 1 or disk_count != count:
        return "a multi-disk (split) zip; a submission is one file"
    return record, count, cd_size, cd_offset


def _end_findings(end: _End) -> list[Finding]:
    findings: list[Finding] = []
    if end.prefix > 0:
        findings.append(
            _error(
                "GAS101",
                f"{end.prefix} bytes of other data before the zip",
                hint="a self-extracting or polyglot file; zip the files themselves",
            )
        )
    elif end.prefix < 0:
        findings.append(_error("GAS107", "the end record puts the central directory elsewhere"))
    if end.trailing > 0:
        findings.append(_error("GAS101", f"{end.trailing} bytes of other data after the zip"))
    elif end.trailing < 0:
        findings.append(_error("GAS101", "the zip comment runs past the end of the file"))
    return findings


# --------------------------------------------------------------------------- entries


def _structure_findings(
    path: Path, zf: zipfile.ZipFile, bounds: tuple[int, int], max_total_size: int
) -> tuple[list[Finding], list[_Data]]:
    """Everything the directory and the local headers say, before any entry is read; and
    where each entry's data lies (for the CRC pass)."""
    infos = zf.infolist()
    findings = _name_findings(infos) + _duplicate_findings(infos)
    for info in infos:
        findings += _kind_findings(info) + _method_findings(info)
        findings += _unicode_path_findings(info, info.extra, "central directory")
    findings += _size_findings(infos, max_total_size)
    with path.open("rb") as f:
        layout, data = _layout_findings(f, os.fstat(f.fileno()).st_size, bounds, infos)
    return findings + layout, data


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain file at the zip's root (the loader extracts it flat)."""
    parts = name.replace("\\", "/").split("/")
    checks = [
        (not name, "an empty name"),
        (name.startswith(("/", "\\")) or bool(_DRIVE.match(name)), "an absolute path"),
        (".." in parts, "a '..' path component"),
        ("\\" in name, "a backslash (a folder separator on Windows)"),
        (name.endswith("/"), "a directory entry (the zip holds no folders)"),
        ("/" in name, "not at the root of the zip (the zip holds no folders)"),
        (any(ord(c) < 32 or c == "\x7f" for c in name), "control characters in the name"),
        (any(_invisible(c) for c in name), "invisible or unassigned characters in the name"),
        (":" in name or name in (".",), "not a portable file name"),
    ]
    return next((why for bad, why in checks if bad), None)


def _invisible(char: str) -> bool:
    """Format characters (right-to-left overrides, zero-width joiners), surrogates, private
    use and unassigned code points: a name holding them reads as another name."""
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _name_findings(infos: list[zipfile.ZipInfo]) -> list[Finding]:
    findings: list[Finding] = []
    for info in infos:
        problem = _name_problem(info.orig_filename)
        if problem is not None:
            findings.append(_error("GAS102", f"{info.orig_filename!r}: {problem}", file=None))
    return findings


def _duplicate_findings(infos: list[zipfile.ZipInfo]) -> list[Finding]:
    findings: list[Finding] = []
    counts = Counter(info.orig_filename for info in infos)
    for name, n in counts.items():
        if n > 1:
            findings.append(
                _error(
                    "GAS103",
                    f"{n} entries are named {name!r}",
                    file=name,
                    hint="unzip tools disagree on which one wins",
                )
            )
    folded: defaultdict[str, set[str]] = defaultdict(set)
    for name in counts:
        folded[_folded(name)].add(name)
    for names in folded.values():
        if len(names) > 1:
            listed = ", ".join(repr(n) for n in sorted(names))
            findings.append(
                _error(
                    "GAS103",
                    f"names differ only in case or Unicode normalisation: {listed}",
                    hint="they collide on case-insensitive or normalising file systems (macOS)",
                )
            )
    return findings


def _folded(name: str) -> str:
    """The name as a case-insensitive, normalising file system sees it."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKD", name).casefold())


def _kind_findings(info: zipfile.ZipInfo) -> list[Finding]:
    """Symlinks and other special files (the unix mode in the high half of external_attr)."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        message = f"{info.orig_filename!r} is a symbolic link"
        return [_error("GAS104", message, hint="store the file itself, not a link to it")]
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return [_error("GAS104", f"{info.orig_filename!r} is a special file (mode {mode:o})")]
    if (stat.S_ISDIR(mode) or info.external_attr & _DOS_DIRECTORY) and not info.is_dir():
        message = f"{info.orig_filename!r} is marked as a directory"
        return [_error("GAS102", message, hint="the zip holds no folders")]
    return []


def _extra_fields(extra: bytes) -> Iterable[tuple[int, bytes]]:
    """The (tag, body) records of an extra field block; a record running past the end stops."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if pos + 4 + length > len(extra):
            return
        yield tag, extra[pos + 4 : pos + 4 + length]
        pos += 4 + length


def _unicode_path_findings(info: zipfile.ZipInfo, extra: bytes, where: str) -> list[Finding]:
    """An Info-ZIP Unicode Path field (0x7075) renames the entry for unzip, never for Python:
    refuse one that names anything but the header's own name."""
    findings = []
    for tag, body in _extra_fields(extra):
        if tag != _UNICODE_PATH_EXTRA:
            continue
        other = body[5:].decode("utf-8", "replace") if len(body) >= 5 else ""
        if other != info.orig_filename:
            findings.append(
                _error(
                    "GAS107",
                    f"a Unicode Path extra field in the {where} renames the entry to {other!r}",
                    file=info.orig_filename,
                    hint="unzip tools would extract it under that other name",
                )
            )
    return findings


def _method_findings(info: zipfile.ZipInfo) -> list[Finding]:
    name = info.orig_filename
    findings: list[Finding] = []
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG):
        findings.append(
            _error("GAS105", "the entry is encrypted", file=name, hint="zip it without a password")
        )
    if info.flag_bits & _FLAG_PATCHED:
        findings.append(_error("GAS106", "compressed patched data (flag bit 5)", file=name))
    if info.compress_type not in _METHODS:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        findings.append(
            _error(
                "GAS106",
                f"compressed with {method}; only stored and deflate are read everywhere",
                file=name,
            )
        )
    return findings


def _size_findings(infos: list[zipfile.ZipInfo], max_total_size: int) -> list[Finding]:
    findings: list[Finding] = []
    total = sum(info.file_size for info in infos)
    if total > max_total_size:
        findings.append(
            _error(
                "GAS108",
                f"the entries unpack to {total} bytes, over the {max_total_size}-byte cap",
            )
        )
    for info in infos:
        ratio_limit = MAX_RATIO * info.compress_size
        if info.file_size > RATIO_MIN_SIZE and info.file_size > ratio_limit:
            ratio = info.file_size / max(info.compress_size, 1)
            findings.append(
                _error(
                    "GAS108",
                    f"{info.file_size} bytes from {info.compress_size} compressed ({ratio:.0f}:1,"
                    f" over {MAX_RATIO}:1)",
                    file=info.orig_filename,
                    hint="a zip bomb, or a file that should not be in the submission",
                )
            )
    return findings


# --------------------------------------------------------------------------- local headers


@dataclass(frozen=True)
class _Local:
    """A local header's own copy of an entry's name, flags, method, CRC and sizes."""

    name: str
    flags: int
    method: int
    crc: int
    compress_size: int
    file_size: int
    data_start: int
    extra: bytes
    zip64: bool  # sizes came from a zip64 extra field (its data descriptor has 8-byte sizes)


@dataclass(frozen=True)
class _Data:
    """Where an entry's bytes lie, and what the directory says they hold."""

    name: str
    start: int
    compress_size: int
    file_size: int
    crc: int
    method: int


def _layout_findings(
    f: BinaryIO, size: int, bounds: tuple[int, int], infos: list[zipfile.ZipInfo]
) -> tuple[list[Finding], list[_Data]]:
    """Each local header (and data descriptor) against the central directory, then entries
    against each other: no overlaps, and no bytes that belong to no entry."""
    first, cd_start = bounds
    findings: list[Finding] = []
    spans: list[tuple[int, int, str]] = []
    data: list[_Data] = []
    for info in infos:
        local = _read_local(f, info, size)
        if isinstance(local, Finding):
            findings.append(local)
            continue
        findings += _compare_local(info, local)
        findings += _unicode_path_findings(info, local.extra, "local header")
        end = local.data_start + info.compress_size
        if end > size:
            message = f"the entry's data runs {end - size} bytes past the end: truncated"
            findings.append(_error("GAS101", message, file=info.orig_filename))
            continue
        if local.flags & _FLAG_DESCRIPTOR:
            end, problem = _read_descriptor(f, end, info, local.zip64)
            if problem is not None:
                findings.append(_error("GAS107", problem, file=info.orig_filename))
        if end > cd_start:
            message = "the entry's data runs into the central directory"
            findings.append(_error("GAS107", message, file=info.orig_filename))
        spans.append((info.header_offset, end, info.orig_filename))
        data.append(
            _Data(
                info.orig_filename,
                local.data_start,
                info.compress_size,
                info.file_size,
                info.CRC,
                info.compress_type,
            )
        )
    return findings + _overlap_findings(spans, first, cd_start), data


def _read_local(f: BinaryIO, info: zipfile.ZipInfo, size: int) -> _Local | Finding:
    name = info.orig_filename
    if not 0 <= info.header_offset <= size:
        return _error("GAS107", f"header offset {info.header_offset} is outside the file", name)
    f.seek(info.header_offset)
    raw = f.read(_LOCAL.size)
    if len(raw) < _LOCAL.size:
        return _error("GAS101", "the local header lies past the end of the file", file=name)
    sig, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = _LOCAL.unpack(raw)
    if sig != _LOCAL_SIG:
        where = f"offset {info.header_offset}"
        return _error("GAS107", f"no local header at {where}, where the directory says", file=name)
    raw_name, extra = f.read(name_len), f.read(extra_len)
    if len(raw_name) < name_len or len(extra) < extra_len:
        return _error("GAS101", "the local header runs past the end of the file", file=name)
    local_name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
    zip64 = _SATURATED in (usize, csize)
    usize, csize = _zip64_sizes(usize, csize, extra)
    start = info.header_offset + _LOCAL.size + name_len + extra_len
    return _Local(local_name, flags, method, crc, csize, usize, start, extra, zip64)


def _read_descriptor(
    f: BinaryIO, at: int, info: zipfile.ZipInfo, zip64: bool
) -> tuple[int, str | None]:
    """The data descriptor after an entry's data (flag bit 3): where it ends, and whether its
    CRC and sizes disagree with the central directory's (tools that stream trust it)."""
    f.seek(at)
    raw = f.read(4 + 4 + 16)
    has_sig = raw[:4] == _DESCRIPTOR_SIG
    body = raw[4:] if has_sig else raw
    width = 8 if zip64 else 4
    if len(body) < 4 + 2 * width:
        return at + len(raw), "the data descriptor runs past the end of the file"
    crc = struct.unpack_from("<I", body)[0]
    csize, usize = struct.unpack_from("<QQ" if zip64 else "<II", body, 4)
    end = at + (4 if has_sig else 0) + 4 + 2 * width
    if (crc, csize, usize) != (info.CRC, info.compress_size, info.file_size):
        return end, "the data descriptor's CRC-32 or sizes differ from the central directory's"
    return end, None


def _zip64_sizes(usize: int, csize: int, extra: bytes) -> tuple[int, int]:
    """The real sizes when the 32-bit ones are saturated (zip64 extra: size, then compressed)."""
    if _SATURATED not in (usize, csize):
        return usize, csize
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == _ZIP64_EXTRA:
            values = [v for (v,) in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
            if usize == _SATURATED and values:
                usize = values.pop(0)
            if csize == _SATURATED and values:
                csize = values.pop(0)
            break
        pos += 4 + length
    return usize, csize


def _compare_local(info: zipfile.ZipInfo, local: _Local) -> list[Finding]:
    """Every field both headers carry must agree; tools differ in which copy they trust."""
    descriptor = bool(local.flags & _FLAG_DESCRIPTOR)
    mismatches = [
        ("name", local.name != info.orig_filename),
        ("compression method", local.method != info.compress_type),
        ("encryption flag", bool(local.flags & 1) != bool(info.flag_bits & 1)),
        ("CRC-32", _differs(local.crc, info.CRC, descriptor)),
        ("compressed size", _differs(local.compress_size, info.compress_size, descriptor)),
        ("size", _differs(local.file_size, info.file_size, descriptor)),
    ]
    name = info.orig_filename
    findings = [
        _error(
            "GAS107",
            f"the local header's {what} differs from the central directory's",
            file=name,
            hint=f"local name {local.name!r}" if what == "name" else None,
        )
        for what, bad in mismatches
        if bad
    ]
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        message = f"stored entry of {info.file_size} bytes declares {info.compress_size} stored"
        findings.append(_error("GAS107", message, file=name))
    return findings


def _differs(local: int, central: int, descriptor: bool) -> bool:
    """A data descriptor lets the local header leave CRC and sizes at zero, nothing else."""
    return local != central and not (descriptor and local == 0)


def _overlap_findings(
    spans: list[tuple[int, int, str]], first: int, cd_start: int
) -> list[Finding]:
    """Sorted by offset, each entry must end before the next begins (no shared bytes), and
    start where the one before it ended (no hidden bytes between entries)."""
    findings: list[Finding] = []
    reach, owner = first, ""  # the furthest any earlier entry extends, and which one
    for start, end, name in sorted(spans):
        if start > reach:
            findings.append(_gap(reach, start))
        if start < reach:
            findings.append(
                _error(
                    "GAS107",
                    f"entries overlap: {name!r} starts inside {owner!r}",
                    file=name,
                    hint="overlapping entries are how zip bombs multiply their size",
                )
            )
        if end > reach:
            reach, owner = end, name
    if spans and cd_start > reach:
        findings.append(_gap(reach, cd_start))
    return findings


def _gap(start: int, end: int) -> Finding:
    return _error(
        "GAS107",
        f"{end - start} bytes at offset {start} belong to no entry",
        hint="data hidden between entries; zip the files themselves",
    )


# --------------------------------------------------------------------------- contents


def _crc_findings(path: Path, data: list[_Data]) -> list[Finding]:
    """Stream every entry's data once and compare its CRC-32 and size with the directory's.

    Stored bytes are hashed as they lie (at the speed of the build's own hashing); deflate is
    inflated in bounded steps, never past the declared size, so a lying entry cannot cost
    memory or time beyond its declared size.
    """
    findings: list[Finding] = []
    buffer = mmap.mmap(-1, CHUNK)  # page-aligned, as blobs.measure_file reads
    try:
        with path.open("rb", buffering=0) as f:
            for entry in data:
                problem = _data_problem(f, buffer, entry)
                if problem is not None:
                    findings.append(_error("GAS109", problem, file=entry.name))
    finally:
        buffer.close()
    return findings


def _data_problem(f: BinaryIO, buffer: mmap.mmap, entry: _Data) -> str | None:
    f.seek(entry.start)
    if entry.method == zipfile.ZIP_STORED:
        crc, size = _stored_crc(f, buffer, entry.compress_size)
    else:
        result = _inflated_crc(f, entry)
        if isinstance(result, str):
            return result
        crc, size = result
    if size != entry.file_size:
        return f"the entry unpacks to {size} bytes, not the {entry.file_size} declared"
    if crc != entry.crc:
        return (
            f"the data's CRC-32 is {crc:08x}, the directory says {entry.crc:08x}"
            " (unzip refuses it: 'bad CRC')"
        )
    return None


def _stored_crc(f: BinaryIO, buffer: mmap.mmap, length: int) -> tuple[int, int]:
    view = memoryview(buffer)
    crc, total = 0, 0
    try:
        while total < length:
            n = f.readinto(view[: min(CHUNK, length - total)])  # type: ignore[attr-defined]
            if not n:
                break
            chunk = view[:n]
            crc = crc32(chunk, crc)
            chunk.release()
            total += n
    finally:
        view.release()
    return crc, total


def _inflated_crc(f: BinaryIO, entry: _Data) -> tuple[int, int] | str:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    crc, size, left = 0, 0, entry.compress_size
    try:
        while left > 0 and not inflater.eof:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            while not inflater.eof:  # bounded steps: a bomb never sits in memory whole
                out = inflater.decompress(chunk, CHUNK)
                chunk = inflater.unconsumed_tail
                crc, size = crc32(out, crc), size + len(out)
                if size > entry.file_size:
                    return f"the entry unpacks to more than the {entry.file_size} bytes declared"
                if not chunk and len(out) < CHUNK:
                    break  # this input is used up and nothing is pending
    except zlib.error as exc:
        return f"the entry's deflate data is corrupt ({exc})"
    if not inflater.eof:
        return "the entry's deflate data ends before its last block"
    if left or inflater.unused_data:
        return "the entry's deflate data ends before its declared compressed size"
    return crc, size


def _fileset_findings(zf: zipfile.ZipFile, opts: CheckOptions, *, safe: bool) -> list[Finding]:
    """The files a format allows, named one by one (GAS110)."""
    infos = zf.infolist()
    # Names already refused as paths (GAS102) are not judged again; links count as present.
    names = sorted({i.orig_filename for i in infos if _name_problem(i.orig_filename) is None})
    fmt = opts.format or infer_format(i.orig_filename for i in infos)
    if fmt == "onnx":
        return _onnx_fileset(names)
    weights = _weights_name(zf, names) if safe else _fallback_weights_name(names)
    return _safetensors_fileset(names, weights)


def _weights_name(zf: zipfile.ZipFile, names: list[str]) -> str:
    """Which entry is the weights file: the one the config names, when it is there.

    Otherwise the lone ``.safetensors`` entry stands in, so a config naming the wrong file is
    reported once, by the config check (GAS207), not twice; with no such entry, the name the
    config gives (or the default) is what is missing.
    """
    config = None
    if CONFIG_FILE in names and zf.getinfo(CONFIG_FILE).file_size <= MAX_CONFIG_BYTES:
        config = zf.read(CONFIG_FILE)
    return _weights_name_from(config, names)


def _weights_name_from(config_bytes: bytes | None, names: list[str]) -> str:
    declared = DEFAULT_WEIGHTS_FILE
    if config_bytes is not None:
        config, _ = parse_config(config_bytes)
        declared = declared_weights_file(config)
    return declared if declared in names else _fallback_weights_name(names, declared)


def check_fileset(sub: Submission, opts: CheckOptions) -> list[Finding]:
    """GAS110 for any submission view (an unpacked directory, a staged build): the same file
    set rules the zip check applies to its entries."""
    names = sub.names()
    fmt = opts.format or infer_format(names)
    if fmt == "onnx":
        return _onnx_fileset(names)
    config = None
    if CONFIG_FILE in names and sub.size(CONFIG_FILE) <= MAX_CONFIG_BYTES:
        config = sub.read(CONFIG_FILE)
    return _safetensors_fileset(names, _weights_name_from(config, names))


def _fallback_weights_name(names: list[str], default: str = DEFAULT_WEIGHTS_FILE) -> str:
    candidates = [n for n in names if n.endswith(WEIGHTS_SUFFIX)]
    return candidates[0] if len(candidates) == 1 else default


def _safetensors_fileset(names: list[str], weights: str) -> list[Finding]:
    required = [CONFIG_FILE, MODEL_FILE, weights]
    layout = f"{', '.join(required)} and optionally {', '.join(sorted(OPTIONAL_FILES))}"
    weights_hint = (
        f"the weights: model.weights_file of {CONFIG_FILE}, {DEFAULT_WEIGHTS_FILE} if unset"
    )
    findings = [
        _error(
            "GAS110",
            f"{name} is missing",
            file=name,
            hint=weights_hint if name == weights else None,
        )
        for name in required
        if name not in names
    ]
    allowed = {*required, *OPTIONAL_FILES}
    findings += [
        _error(
            "GAS110",
            f"unexpected file {name!r}",
            file=name,
            hint=f"a safetensors submission holds exactly {layout}",
        )
        for name in names
        if name not in allowed
    ]
    return findings


def _onnx_fileset(names: list[str]) -> list[Finding]:
    models = [n for n in names if n.lower().endswith(ONNX_SUFFIX)]
    findings: list[Finding] = []
    if not models:
        findings.append(_error("GAS110", "no .onnx file", hint="an ONNX submission holds one"))
    elif len(models) > 1:
        listed = ", ".join(models)
        findings.append(_error("GAS110", f"{len(models)} .onnx files ({listed}); one is allowed"))
    findings += [
        _error(
            "GAS110",
            f"unexpected file {name!r}",
            file=name,
            hint="an ONNX submission holds one .onnx file; external-data files are not allowed",
        )
        for name in names
        if name not in models
    ]
    return findings
