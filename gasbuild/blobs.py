"""Files as the build sees them: measured once, hashed while written, never half-written.

Every stage and the cache share these few helpers, so that no stage imports another stage for
them (fetch and convert used to borrow the zip writer's):

- ``FileBlob`` / ``measure_file``: a file with its size, CRC-32 and sha256, read once;
- ``HashingWriter``: a write-through stream that hashes and counts what passes (a zip, a
  converted model or a download is digested while it is written, never read back);
- ``temp_beside`` / ``atomic_write``: a temp file in the target's folder, renamed into place only
  when complete, removed otherwise. Temp names carry the writer's pid
  (``.<name>.<pid>.<random>.tmp``), so a later run can tell a killed writer's leftovers from a
  live writer's file (``stale_temp_files``).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

try:  # ISA-L's CRC-32 runs ~3x faster than zlib's here; same polynomial, same results
    from isal.isal_zlib import crc32 as crc32
except ImportError:  # pragma: no cover - isal has wheels for the common platforms
    from zlib import crc32 as crc32

CHUNK = 1 << 20  # 1 MiB: large enough for sha256/CRC throughput, small enough to stay flat
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.tmp$")

# Told the byte count of each chunk as it is read or written (a progress bar's ``advance``):
# once per CHUNK, never per byte, so a bar costs nothing measurable on a 1 GiB file.
Progress = Callable[[int], None]
# Files smaller than this get no bar: they are read in well under a second, and a bar that
# appears and vanishes at once is noise (the step's spinner still runs).
PROGRESS_FROM_BYTES = 32 << 20


@dataclass(frozen=True)
class FileBlob:
    """A file on disk with the digests measured when it was fetched or written."""

    path: Path
    size: int
    crc32: int
    sha256: str


def measure_file(path: Path, progress: Progress | None = None) -> FileBlob:
    """Hash a file once for sha256, CRC-32 and size, through one page-aligned buffer;
    ``progress`` is told each chunk's size (a bar on a terminal: hashing 1 GiB takes seconds)."""
    sha = hashlib.sha256()
    crc = 0
    size = 0
    buffer = mmap.mmap(-1, CHUNK)  # page-aligned: reads several times faster than a bytearray
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as src:
            while True:
                n = src.readinto(view)
                if not n:
                    break
                chunk = view[:n]
                sha.update(chunk)
                crc = crc32(chunk, crc)
                size += n
                chunk.release()
                if progress is not None:
                    progress(n)
    finally:
        view.release()
        buffer.close()
    return FileBlob(path=path, size=size, crc32=crc, sha256=sha.hexdigest())


def sha256_file(path: Path) -> str:
    """The lowercase hex sha256 of a file, streamed."""
    return measure_file(path).sha256


class HashingWriter:
    """Writes through to a raw file, computing sha256 and CRC-32 and counting every byte."""

    def __init__(self, raw: BinaryIO, *, crc: bool = True) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.crc32 = 0
        self.offset = 0
        self._crc = crc

    def write(self, data: bytes | memoryview) -> int:
        self.sha.update(data)
        if self._crc:
            self.crc32 = crc32(data, self.crc32)
        view = memoryview(data)
        total = view.nbytes
        while view:
            written = self.raw.write(view)
            if written is None:  # pragma: no cover - only for non-blocking raw files
                raise OSError("short write")
            view = view[written:]
        self.offset += total
        return total

    @property
    def size(self) -> int:
        return self.offset

    def hexdigest(self) -> str:
        return self.sha.hexdigest()


def temp_name_prefix(target: Path) -> str:
    """The prefix of our temp files beside ``target`` (the pid lets a sweep find orphans)."""
    return f".{target.name}.{os.getpid()}."


@contextlib.contextmanager
def temp_beside(target: Path, *, directory: Path | None = None) -> Iterator[Path]:
    """A temp file in ``target``'s folder (or ``directory``), removed unless it was renamed.

    Being in the same folder makes the final ``os.replace`` atomic.
    """
    folder = target.parent if directory is None else directory
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=temp_name_prefix(target), suffix=TEMP_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def replace_into(tmp: Path, dest: Path, *, unlink_first: bool = False, mode: int = 0o644) -> None:
    """Give ``tmp`` its final permissions and rename it to ``dest``.

    ``unlink_first``: ext4 (auto_da_alloc) flushes a file's data to disk when it is renamed *over*
    an existing file, which made replacing a 1 GiB zip cost twice what writing it did. Unlinking
    first avoids that; a reader sees the old file, briefly none, then the new one — never a
    partial file.
    """
    os.chmod(tmp, mode)
    if unlink_first:
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
    os.replace(tmp, dest)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename: never half-written.

    ``durable=False`` skips the fsync, for cache entries: after a crash an entry is at worst
    missing or unparsable, which is a cache miss. On ext4 an fsync also flushes every other
    dirty file, which cost a second after writing a converted model of 1 GiB.
    """
    with temp_beside(path) as tmp:
        with tmp.open("wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        replace_into(tmp, path, mode=0o644)


def expand_user(path: str | Path) -> Path:
    """``~`` and ``~user`` expanded as a shell does: left as written when there is no such
    user or no home directory (pathlib raises RuntimeError there)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


NAME_MAX = 255  # bytes in one path component on Linux and macOS filesystems


def long_component(path: str | Path) -> str | None:
    """The first component of ``path`` longer than the filesystem allows, if any."""
    for part in Path(path).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            return part
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process of this id runs (on this machine, in this pid namespace)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def stale_temp_files(folder: Path, pattern: re.Pattern[str] = _TEMP_NAME) -> list[Path]:
    """Our temp files in ``folder`` whose writing process is gone (a killed build's leftovers).

    ``pattern`` tells our names from others' by a ``pid`` group (default: ``temp_beside``'s
    ``.<name>.<pid>.<random>.tmp``); a name it does not match is never touched."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    stale = []
    for name in names:
        match = pattern.match(name)
        if match and not pid_alive(int(match["pid"])):
            stale.append(folder / name)
    return stale


def sweep_stale_temp_files(folder: Path) -> int:
    """Remove a killed writer's temp files in ``folder``; how many were removed."""
    removed = 0
    for path in stale_temp_files(folder):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed
