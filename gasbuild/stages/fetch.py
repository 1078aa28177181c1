"""Fetch stage: turn a source (local path or any fsspec URL) into a local file with known digests.

One small interface, :class:`Source`, with two implementations: :class:`LocalSource` (hashed in
place, never copied; the stat cache spares re-reading an unchanged file) and :class:`UrlSource`
(any fsspec URL; streamed into the content-addressed store, hashed while copying, renamed into
place only when the pins match). A URL's bytes are looked up by digest first (the pin, or the
digest gas.lock recorded for that URL), so a locked build touches the network only for what the
cache lacks; ``offline`` forbids that, ``refresh`` ignores the lock.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from gasbuild.blobs import (
    CHUNK,
    PROGRESS_FROM_BYTES,
    TEMP_SUFFIX,
    FileBlob,
    crc32,
    expand_user,
    measure_file,
    temp_name_prefix,
)
from gasbuild.cache import Cache, FileStat
from gasbuild.errors import Location, SourceError, TransportError, display_path
from gasbuild.urls import error_text, redact_url

STAGE_VERSION = "1"
DOWNLOAD_ATTEMPTS = 3
RETRY_BASE_SECONDS = 0.5


# (description, total bytes or None) -> a bar: .advance(n_bytes), .finish() when done.
class ProgressBar(Protocol):
    """What a download reports its bytes to (``ui.Bar`` on a terminal)."""

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


ProgressFactory = Callable[[str, int | None], ProgressBar]


@dataclass(frozen=True)
class FetchOptions:
    offline: bool = False
    refresh: bool = False
    progress: ProgressFactory | None = None


@dataclass
class Fetched:
    """A fetched input: the file and its digests, whether the cache answered, and its record."""

    blob: FileBlob
    hit: bool
    record: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """One input file, wherever it lives."""

    key: str  # the manifest key, e.g. "models.image.weights", for messages
    location: Location | None

    def fetch(
        self, cache: Cache, pins: Pins, options: FetchOptions, locked: dict[str, Any] | None
    ) -> Fetched: ...


@dataclass(frozen=True)
class Pins:
    sha256: str | None = None
    size: int | None = None


# ------------------------------------------------------------------------------------------------
# Local files


@dataclass
class LocalSource:
    path: Path
    root: Path
    key: str
    location: Location | None = None

    def fetch(
        self, cache: Cache, pins: Pins, options: FetchOptions, locked: dict[str, Any] | None
    ) -> Fetched:
        blob, hit = hash_local(
            self.path, cache, key=self.key, location=self.location, progress=options.progress
        )
        check_pins(blob, pins, self.key, self.location, display_path(self.path))
        return Fetched(blob, hit, {"path": _relative(self.path, self.root)})


def hash_local(
    path: Path,
    cache: Cache,
    *,
    key: str,
    location: Location | None,
    progress: ProgressFactory | None = None,
) -> tuple[FileBlob, bool]:
    """A local file's blob and whether its digests came from the stat cache (no bytes read).

    Reading is the slow part of a first build of large weights (seconds per GiB), so a bar
    (``progress``) counts the bytes hashed; a stat-cache hit reads nothing and shows none.
    """
    try:
        before = FileStat.of(path)
    except FileNotFoundError:
        raise SourceError(
            f"{key}: {display_path(path)} does not exist",
            hint="paths are relative to gas.toml",
            location=location,
        ) from None
    except OSError as exc:
        raise SourceError(
            f"{key}: cannot read {display_path(path)} ({exc.strerror})", location=location
        ) from None
    if not path.is_file():
        raise SourceError(f"{key}: {display_path(path)} is not a file", location=location)
    known = cache.get_digests(path)
    if known is not None:
        return FileBlob(path, int(known["size"]), int(known["crc32"]), str(known["sha256"])), True
    try:
        blob = measured(path, progress, progress_label(key, "hashing", path.name), before.size)
    except OSError as exc:  # unreadable (permissions), or it went away while being read
        raise SourceError(
            f"{key}: cannot read {display_path(path)} ({exc.strerror or exc})", location=location
        ) from None
    if FileStat.of(path) == before:  # unchanged while we read it: safe to remember
        cache.put_digests(path, before, _digests(blob))
    return blob, False


def measured(
    path: Path, progress: ProgressFactory | None, label: str, total: int | None
) -> FileBlob:
    """``measure_file`` with a bar, when there is a terminal to show one on and the file is
    large enough to take a while."""
    if progress is None or (total or 0) < PROGRESS_FROM_BYTES:
        return measure_file(path)
    bar = progress(label, total)
    try:
        return measure_file(path, bar.advance)
    finally:
        bar.finish()


def progress_label(key: str, verb: str, name: str, width: int = 28) -> str:
    """A bar's description that leaves the bar room at 80 columns: ``image: hashing w.pt``
    (the model from a ``models.<modality>...`` key, a long file name cut and marked)."""
    parts = key.split(".")
    model = parts[1] if len(parts) > 1 and parts[0] == "models" else key
    text = f"{model}: {verb} {name}"
    return text if len(text) <= width else text[: width - 1] + "…"


def _digests(blob: FileBlob) -> dict[str, Any]:
    return {"sha256": blob.sha256, "crc32": blob.crc32, "size": blob.size}


def check_pins(blob: FileBlob, pins: Pins, key: str, location: Location | None, where: str) -> None:
    """Enforce the ``size`` and ``sha256`` pins of gas.toml."""
    hint = "the file changed: update the pin only if the new file is the one you want"
    if pins.size is not None and blob.size != pins.size:
        raise SourceError(
            f"{key}: {where} is {blob.size} bytes, the pin says {pins.size}",
            hint=hint,
            location=location,
        )
    if pins.sha256 is not None and blob.sha256 != pins.sha256:
        raise SourceError(
            f"{key}: {where} has sha256 {blob.sha256}, the pin says {pins.sha256}",
            hint=hint,
            location=location,
        )


def _relative(path: Path, root: Path) -> str:
    import os

    return Path(os.path.relpath(path, root)).as_posix()


# ------------------------------------------------------------------------------------------------
# URLs (any fsspec filesystem)


@dataclass
class UrlSource:
    url: str
    key: str
    location: Location | None = None

    def fetch(
        self, cache: Cache, pins: Pins, options: FetchOptions, locked: dict[str, Any] | None
    ) -> Fetched:
        record: dict[str, Any] = {"url": self.url}
        usable_lock = (
            locked if (locked and locked.get("url") == self.url and not options.refresh) else None
        )
        known = pins.sha256 or (usable_lock or {}).get("sha256")
        if usable_lock:
            record.update({k: v for k, v in usable_lock.items() if k in ("revision", "etag")})
        if known and cache.has_object(known):
            blob = _stored_blob(cache, known)
            check_pins(blob, pins, self.key, self.location, redact_url(self.url))
            return Fetched(blob, True, record)
        if known and not options.refresh:
            pulled = _pull_from_remote_cache(cache, known, options)
            if pulled is not None:
                check_pins(pulled, pins, self.key, self.location, redact_url(self.url))
                return Fetched(pulled, True, record)
        if options.offline:
            missing = f" (sha256 {known})" if known else ""
            raise SourceError(
                f"{self.key}: {redact_url(self.url)} is not in the cache{missing} and the build"
                " is offline",
                hint="run the build once online (without --offline / GASBUILD_OFFLINE)",
                location=self.location,
            )
        with cache.lock(f"url:{self.url}"):  # a concurrent build downloads it once
            if known and cache.has_object(known):
                return Fetched(_stored_blob(cache, known), True, record)
            blob, meta = self._download(cache, pins, options)
        record.update(meta)
        return Fetched(blob, False, record)

    def _download(
        self, cache: Cache, pins: Pins, options: FetchOptions
    ) -> tuple[FileBlob, dict[str, Any]]:
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                return _download_once(self, cache, pins, options)
            except SourceError:
                raise
            except Exception as exc:  # network faults of any backend: retried, bounded
                if attempt == DOWNLOAD_ATTEMPTS:
                    reason = error_text(exc)
                    raise TransportError(
                        f"{self.key}: downloading {redact_url(self.url)} failed {attempt} times"
                        f" ({reason})",
                        hint="check the network and the credentials in your environment",
                    ) from None
                time.sleep(RETRY_BASE_SECONDS * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover


def _stored_blob(cache: Cache, sha256: str) -> FileBlob:
    path = cache.object_path(sha256)
    known = cache.get_digests(path)
    if known is not None and known.get("sha256") == sha256:
        return FileBlob(path, int(known["size"]), int(known["crc32"]), sha256)
    blob = measure_file(path)
    if blob.sha256 != sha256:  # corrupted on disk: drop it and fetch again
        path.unlink(missing_ok=True)
        raise TransportError(f"cache object {sha256} was corrupt and has been removed; run again")
    cache.put_digests(path, FileStat.of(path), _digests(blob), ours=True)
    return blob


def cached_object(cache: Cache, sha256: str, options: FetchOptions) -> FileBlob | None:
    """A stage output by digest: from the local store, else pulled from the remote cache (so a
    teammate's conversion or export is reused), else None: the stage must run."""
    if cache.has_object(sha256):
        return _stored_blob(cache, sha256)
    return _pull_from_remote_cache(cache, sha256, options)


def _pull_from_remote_cache(cache: Cache, sha256: str, options: FetchOptions) -> FileBlob | None:
    stream = cache.open_remote_object(sha256)
    if stream is None:
        return None
    with stream:
        blob = _stream_into_store(cache, stream, None, f"remote cache {sha256[:12]}", options)
    if blob.sha256 != sha256:
        cache.object_path(blob.sha256).unlink(missing_ok=True)
        return None
    return blob


def _download_once(
    source: UrlSource, cache: Cache, pins: Pins, options: FetchOptions
) -> tuple[FileBlob, dict[str, Any]]:
    import fsspec

    url, meta = resolve_url(source.url)
    shown = redact_url(source.url)
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:  # the backend's package (s3fs, huggingface_hub) is missing
        raise _extra_missing(source, shown, exc) from None
    except (ValueError, TypeError, KeyError) as exc:  # an unknown protocol, a malformed URL
        raise SourceError(
            f"{source.key}: {shown} is not a URL gasbuild can read ({error_text(exc)})",
            hint="use https://, s3://, gs://, hf:// or a local path",
            location=source.location,
        ) from None
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise SourceError(
            f"{source.key}: {shown} does not exist", location=source.location
        ) from None
    except PermissionError as exc:
        raise SourceError(
            f"{source.key}: access to {shown} was refused ({error_text(exc)})",
            hint="set the backend's credentials in the environment (AWS_*, HF_TOKEN, ...)",
            location=source.location,
        ) from None
    except ImportError as exc:  # the backend's package (s3fs, huggingface_hub) is missing
        raise _extra_missing(source, shown, exc) from None
    size = info.get("size")
    for name in ("ETag", "etag", "VersionId", "version_id"):
        if info.get(name):
            meta.setdefault(
                "etag" if "tag" in name.lower() else "version", str(info[name]).strip('"')
            )
    with fs.open(path, "rb") as stream:
        blob = _stream_into_store(
            cache,
            stream,
            size,
            shown,
            options,
            pins=pins,
            key=source.key,
            location=source.location,
        )
    return blob, meta


def resolve_url(url: str) -> tuple[str, dict[str, Any]]:
    """Pin moving references: an hf:// URL without a commit is resolved to one."""
    if not url.startswith("hf://"):
        return url, {}
    from gasbuild.stages.hfresolve import resolve_hf

    return resolve_hf(url)


def _extra_missing(source: UrlSource, shown: str, exc: ImportError) -> SourceError:
    """fsspec imports a protocol's backend when the URL is parsed or first used."""
    return SourceError(
        f"{source.key}: {shown} needs an extra package ({error_text(exc)})",
        hint="pip install 'gasbuild[s3]' for s3://, 'gasbuild[hf]' for hf://",
        location=source.location,
    )


def _stream_into_store(
    cache: Cache,
    stream: BinaryIO,
    size: int | None,
    label: str,
    options: FetchOptions,
    *,
    pins: Pins | None = None,
    key: str = "",
    location: Location | None = None,
) -> FileBlob:
    """Copy a stream to a temp file in the store, hashing while copying; verify, then rename."""
    import os
    import tempfile

    # Named as blobs.temp_beside names temp files (with our pid), so that a later build can
    # sweep what a killed download left behind.
    prefix = temp_name_prefix(Path("download"))
    fd, tmp_name = tempfile.mkstemp(dir=cache.temp_dir(), prefix=prefix, suffix=TEMP_SUFFIX)
    tmp = Path(tmp_name)
    bar = options.progress(label, size) if options.progress else None
    try:
        sha, crc, total = hashlib.sha256(), 0, 0
        with os.fdopen(fd, "wb", buffering=0) as out:
            while True:
                data = stream.read(CHUNK)
                if not data:
                    break
                sha.update(data)
                crc = crc32(data, crc)
                out.write(data)
                total += len(data)
                if bar:
                    bar.advance(len(data))
            os.fsync(out.fileno())
        if size is not None and total != size:
            raise OSError(f"connection ended after {total} of {size} bytes")
        blob = FileBlob(tmp, total, crc, sha.hexdigest())
        if pins is not None:
            check_pins(blob, pins, key, location, label)
        final = cache.add_object(tmp, blob.sha256)
        blob = FileBlob(final, blob.size, blob.crc32, blob.sha256)
        cache.put_digests(final, FileStat.of(final), _digests(blob), ours=True)
        return blob
    finally:
        tmp.unlink(missing_ok=True)
        if bar:
            bar.finish()


def make_source(
    spec_path: str | None, spec_url: str | None, root: Path, key: str, location: Location | None
) -> Source:
    """The Source for a manifest entry (the manifest guarantees exactly one of path/url)."""
    if spec_url is not None and spec_url.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        local = unquote(urlsplit(spec_url).path)
        return LocalSource(_resolved(root, local, key, location), root, key, location)
    if spec_url is not None:
        return UrlSource(spec_url, key, location)
    assert spec_path is not None
    return LocalSource(_resolved(root, spec_path, key, location), root, key, location)


def _resolved(root: Path, given: str, key: str, location: Location | None) -> Path:
    """``given`` (relative to ``root``) with ``~`` expanded and links followed; a link loop, an
    unknown ``~user`` or a NUL byte is the user's to fix, said in one line."""
    try:
        return (root / expand_user(given)).resolve()
    except RuntimeError as exc:  # a symlink loop, or ~user with no such user
        why = "a symbolic link loop" if "loop" in str(exc).lower() else "an unknown ~user"
        raise SourceError(f"{key}: {given!r} is {why}", location=location) from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SourceError(f"{key}: cannot resolve {given!r} ({why})", location=location) from None
