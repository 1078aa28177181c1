"""Fetch stage: resolve an input to a local file with known sha256, CRC-32 and size.

Local paths are hashed in place (never copied), once: the stat cache remembers the digests of an
unchanged file. A ``sha256``/``size`` pin is enforced here, before anything downstream runs.
"""

from __future__ import annotations

from pathlib import Path

from gasbuild.cache import Cache, FileStat
from gasbuild.errors import Location, SourceError, display_path
from gasbuild.stages.package import FileBlob, measure_file

STAGE_VERSION = "1"


def fetch_local(
    path: Path,
    cache: Cache,
    *,
    sha256: str | None = None,
    size: int | None = None,
    location: Location | None = None,
    key: str = "path",
) -> tuple[FileBlob, bool]:
    """The file's blob and whether its digests came from the cache (no bytes read)."""
    try:
        before = FileStat.of(path)
    except FileNotFoundError:
        raise SourceError(
            f"{key}: {display_path(path)} does not exist",
            hint="fix the path (it is relative to gas.toml)",
            location=location,
        ) from None
    except OSError as exc:
        raise SourceError(
            f"{key}: cannot read {display_path(path)} ({exc.strerror})", location=location
        ) from None
    if not path.is_file():
        raise SourceError(f"{key}: {display_path(path)} is not a file", location=location)
    known = cache.get_digests(path)
    hit = known is not None
    if known is not None:
        blob = FileBlob(path, int(known["size"]), int(known["crc32"]), str(known["sha256"]))
    else:
        blob = measure_file(path)
        if FileStat.of(path) == before:  # not changed while we read it: safe to remember
            digests = {"sha256": blob.sha256, "crc32": blob.crc32, "size": blob.size}
            cache.put_digests(path, before, digests)
    _check_pins(blob, sha256, size, location, key)
    return blob, hit


def _check_pins(
    blob: FileBlob, sha256: str | None, size: int | None, location: Location | None, key: str
) -> None:
    where = display_path(blob.path)
    if size is not None and blob.size != size:
        raise SourceError(
            f"{key}: {where} is {blob.size} bytes, the pin says {size}",
            hint="the file changed: update the pin only if the new file is the one you want",
            location=location,
        )
    if sha256 is not None and blob.sha256 != sha256:
        raise SourceError(
            f"{key}: {where} has sha256 {blob.sha256}, the pin says {sha256}",
            hint="the file changed: update the pin only if the new file is the one you want",
            location=location,
        )
