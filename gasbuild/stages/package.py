"""Package stage: a deterministic, streaming zip writer.

Reproducible in a few plain rules, after flit_core: entries in the order given (the caller sorts),
one fixed timestamp (SOURCE_DATE_EPOCH or 1980-01-01), 0644 regular-file permissions, made by
"unix", no extra fields but the zip64 ones the format requires, and every entry stored. Deflate
would not be reproducible across machines: zlib and zlib-ng (which some distributions link into
Python) write different bytes for the same input, and the text entries are only a few KiB.
CRC and sizes are known before an entry is written (the fetch stage measured them), so every
local header is final and there are no data descriptors and no seeking back: the bytes go out
once, in order, through the sha256 that becomes the zip's digest. A large entry is copied
through one page-aligned buffer, so memory stays flat whatever the weights' size; its CRC is
recomputed on the way and compared, which catches a file changed since it was hashed.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gasbuild.blobs import (
    CHUNK,
    FileBlob,
    HashingWriter,
    Progress,
    crc32,
    replace_into,
    sweep_stale_temp_files,
    temp_beside,
)
from gasbuild.errors import BuildError, UserError, display_path

STAGE_VERSION = "2"  # 2: text entries stored, not deflated (zlib-ng writes other bytes)
DEFAULT_DATE_TIME = (1980, 1, 1, 0, 0, 0)
# Python's zipfile switches to zip64 past 2 GiB (some readers treat sizes as signed); so do we.
ZIP64_LIMIT = (1 << 31) - 1
FILE_MODE = 0o100644
STORED = 0


@dataclass(frozen=True)
class Entry:
    """One zip entry: small bytes, or a file blob (streamed); both stored."""

    name: str
    data: bytes | FileBlob

    @classmethod
    def text(cls, name: str, data: bytes) -> Entry:
        return cls(name, data)

    @classmethod
    def file(cls, name: str, blob: FileBlob) -> Entry:
        return cls(name, blob)


@dataclass(frozen=True)
class ZipResult:
    """What was written: the zip's sha256 and size."""

    sha256: str
    size: int


def zip_date_time(environ: dict[str, str] | None = None) -> tuple[int, int, int, int, int, int]:
    """SOURCE_DATE_EPOCH as a zip timestamp (clamped to 1980..2107), else 1980-01-01 00:00:00."""
    env = os.environ if environ is None else environ
    value = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return DEFAULT_DATE_TIME
    try:
        seconds = int(value)
    except ValueError:
        raise BuildError(
            f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds",
            hint="unset it or set it to e.g. $(git log -1 --format=%ct)",
        ) from None
    t = time.gmtime(max(seconds, 315532800))  # 1980-01-01T00:00:00Z
    year = min(t.tm_year, 2107)
    return (year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _dos(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    dos_time = (hour << 11) | (minute << 5) | (second // 2)
    dos_date = ((year - 1980) << 9) | (month << 5) | day
    return dos_time, dos_date


@dataclass
class _Written:
    name: bytes
    flags: int
    method: int
    crc32: int
    compressed: int
    size: int
    offset: int


def write_zip(
    dest: Path,
    entries: Iterable[Entry],
    *,
    date_time: tuple[int, int, int, int, int, int] = DEFAULT_DATE_TIME,
    progress: Progress | None = None,
) -> ZipResult:
    """Write ``entries`` to ``dest`` atomically (temp file, then rename); return its digest.

    A killed build's temp files in the output folder are swept first. An output folder that
    cannot be made or written (a file of that name, /proc, no space) is one line, exit 2.
    ``progress`` is told the bytes of each entry's data as they go out (per chunk for files),
    adding up to ``payload_size(entries)``: a zip of 1 GiB takes seconds to write.
    """
    try:
        sweep_stale_temp_files(dest.parent)
        with temp_beside(dest) as tmp:
            with open(tmp, "wb", buffering=0) as raw:
                out = HashingWriter(raw, crc=False)
                written = [_write_entry(out, entry, date_time, progress) for entry in entries]
                _write_central_directory(out, written, date_time)
            # No fsync: the rename is atomic for every reader and survives a killed build;
            # waiting for the disk would only add power-loss durability to a file any build
            # can remake.
            replace_into(tmp, dest, unlink_first=True)
    except OSError as exc:
        raise _output_error(dest, exc) from None
    return ZipResult(sha256=out.sha.hexdigest(), size=out.offset)


def _output_error(dest: Path, exc: OSError) -> UserError:
    """Why the zip cannot be written, naming the folder ([build] out or --out) to fix."""
    folder = display_path(dest.parent)
    why = exc.strerror or str(exc)
    if isinstance(exc, FileExistsError | NotADirectoryError):
        why = "a file of that name is in the way, not a directory"
    return UserError(
        f"cannot write {display_path(dest)}: {why}",
        hint=f"[build] out (or --out) must name a directory you can write; {folder} is not",
    )


def payload_size(entries: Iterable[Entry]) -> int:
    """The bytes of the entries' data (what ``write_zip`` reports to its progress bar)."""
    return sum(len(e.data) if isinstance(e.data, bytes) else e.data.size for e in entries)


def _write_entry(
    out: HashingWriter,
    entry: Entry,
    date_time: tuple[int, int, int, int, int, int],
    progress: Progress | None,
) -> _Written:
    name = entry.name.encode("utf-8")
    flags = 0 if entry.name.isascii() else 0x800  # bit 11: the name is UTF-8
    if isinstance(entry.data, bytes):
        size = len(entry.data)
        record = _Written(name, flags, STORED, crc32(entry.data), size, size, out.offset)
        _write_local_header(out, record, date_time)
        out.write(entry.data)
        if progress is not None:
            progress(size)
        return record
    blob = entry.data
    record = _Written(name, flags, STORED, blob.crc32, blob.size, blob.size, out.offset)
    _write_local_header(out, record, date_time)
    _copy_blob(out, blob, progress)
    return record


def _copy_blob(out: HashingWriter, blob: FileBlob, progress: Progress | None) -> None:
    """Stream a file into the zip through one page-aligned buffer, checking size and CRC."""
    buffer = mmap.mmap(-1, CHUNK)  # page-aligned: copies several times faster than a bytearray
    view = memoryview(buffer)
    crc = 0
    total = 0
    try:
        with open(blob.path, "rb", buffering=0) as src:
            while True:
                n = src.readinto(view)
                if not n:
                    break
                chunk = view[:n]
                crc = crc32(chunk, crc)
                out.write(chunk)
                total += n
                chunk.release()
                if progress is not None:
                    progress(n)
    finally:
        view.release()
        buffer.close()
    if total != blob.size or crc != blob.crc32:
        raise BuildError(
            f"{blob.path} changed while it was being packaged",
            hint="do not write to input files during a build; run the build again",
        )


def _needs_zip64(record: _Written) -> bool:
    return record.size > ZIP64_LIMIT or record.compressed > ZIP64_LIMIT


def _write_local_header(
    out: HashingWriter, record: _Written, date_time: tuple[int, int, int, int, int, int]
) -> None:
    dos_time, dos_date = _dos(date_time)
    extra = b""
    compressed, size, version = record.compressed, record.size, 20
    if _needs_zip64(record):
        extra = struct.pack("<HHQQ", 0x0001, 16, record.size, record.compressed)
        compressed = size = 0xFFFFFFFF
        version = 45
    header = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        version,
        record.flags,
        record.method,
        dos_time,
        dos_date,
        record.crc32,
        compressed,
        size,
        len(record.name),
        len(extra),
    )
    out.write(header + record.name + extra)


def _write_central_directory(
    out: HashingWriter, records: list[_Written], date_time: tuple[int, int, int, int, int, int]
) -> None:
    dos_time, dos_date = _dos(date_time)
    start = out.offset
    for record in records:
        zip64_fields: list[int] = []
        size, compressed, offset = record.size, record.compressed, record.offset
        if record.size > ZIP64_LIMIT or record.compressed > ZIP64_LIMIT:
            zip64_fields += [record.size, record.compressed]
            size = compressed = 0xFFFFFFFF
        if record.offset > ZIP64_LIMIT:
            zip64_fields.append(record.offset)
            offset = 0xFFFFFFFF
        extra = b""
        if zip64_fields:
            extra = struct.pack(
                f"<HH{len(zip64_fields)}Q", 0x0001, 8 * len(zip64_fields), *zip64_fields
            )
        version = 45 if zip64_fields else 20
        header = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (3 << 8) | version,  # made by unix
            version,
            record.flags,
            record.method,
            dos_time,
            dos_date,
            record.crc32,
            compressed,
            size,
            len(record.name),
            len(extra),
            0,  # comment
            0,  # disk number start
            0,  # internal attributes
            FILE_MODE << 16,
            offset,
        )
        out.write(header + record.name + extra)
    _write_end_records(out, len(records), start, out.offset - start)


def _write_end_records(out: HashingWriter, count: int, cd_start: int, cd_size: int) -> None:
    if cd_start > ZIP64_LIMIT or cd_size > ZIP64_LIMIT or count >= 0xFFFF:
        zip64_end = out.offset
        out.write(
            struct.pack(
                "<IQHHIIQQQQ",
                0x06064B50,
                44,
                (3 << 8) | 45,
                45,
                0,
                0,
                count,
                count,
                cd_size,
                cd_start,
            )
        )
        out.write(struct.pack("<IIQI", 0x07064B50, 0, zip64_end, 1))
        count16 = min(count, 0xFFFF)
        out.write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                count16,
                count16,
                min(cd_size, 0xFFFFFFFF),
                min(cd_start, 0xFFFFFFFF),
                0,
            )
        )
        return
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_start, 0))
