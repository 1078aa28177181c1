"""The cache: a content-addressed store, an action cache, a stat cache, and an optional remote.

* **Objects** (``objects/ab/<sha256>``): fetched or converted files, named by their digest.
* **Actions** (``actions/ab/<key>.json``): a stage's outputs under its key, where
  ``key = sha256(stage, stage version, gasbuild version, canonical params, input digests)``.
* **Stat records** (``stat/ab/<hash of path>.json``): a local file's digests under its
  (size, mtime_ns, inode, device), as git's index does, so an unchanged multi-GB file is not read
  again. A file modified less than ``RACY_SECONDS`` ago is not recorded (git's "racy" rule: a
  same-size rewrite within the clock's granularity would otherwise go unnoticed).
* **Remote** (``[cache] remote``, any fsspec URL): read-through and write-back of objects and
  actions with the same layout, every object verified by digest on read; any remote failure is a
  warning and the build goes on locally.

Every write goes to a temp file in the same directory and is renamed into place, so a reader sees
a whole entry or none, two builds can share one cache, and a build killed at any moment leaves at
most a stray ``*.tmp`` that nothing trusts. An entry that fails to parse is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gasbuild._version import __version__
from gasbuild.blobs import atomic_write, expand_user, stale_temp_files
from gasbuild.errors import UserError
from gasbuild.urls import error_text, is_url, redact_url

CACHE_ENV = "GASBUILD_CACHE_DIR"
# A stage's own temp names in tmp/ (besides blobs' ``.<name>.<pid>.<random>.tmp``): the
# conversion output before it is stored, and the export's working folder.
_STAGE_TEMP = re.compile(r"^(convert-[0-9a-f]+|gasbuild-export)-(?P<pid>\d+)[-.]")
RACY_SECONDS = 2.0

Warn = Callable[[str], None]


def default_cache_dir(configured: str | None = None, base: Path | None = None) -> Path:
    """``$GASBUILD_CACHE_DIR``, else ``[cache] dir``, else the user cache dir."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return _local_dir(override, f"${CACHE_ENV}")
    if configured:
        path = _local_dir(configured, "[cache] dir")
        return path if path.is_absolute() or base is None else base / path
    import platformdirs

    return Path(platformdirs.user_cache_dir("gasbuild", appauthor=False))


def _local_dir(value: str, where: str) -> Path:
    """A local cache directory; a URL here (``s3://KEY:SECRET@...``) would silently become a
    folder named after it, credentials and all."""
    if is_url(value) or "\x00" in value:
        shown = redact_url(value) if is_url(value) else "a NUL byte"
        raise UserError(
            f"{where} must be a local directory, not {shown}",
            hint="a shared cache is [cache] remote in gas.toml",
        )
    try:
        return expand_user(value)
    except RuntimeError:  # ~user with no such user
        raise UserError(f"{where}: cannot expand {value!r}") from None


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def files_digest(files: Iterable[tuple[str, Path]]) -> str:
    """sha256 over (name, file) pairs, each name and content length-prefixed, in the order
    given: the digest of code or templates that a stage's results depend on."""
    h = hashlib.sha256()
    for name, path in files:
        raw = name.encode()
        data = path.read_bytes()
        h.update(len(raw).to_bytes(8, "big") + raw + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def source_digest(paths: Iterable[Path]) -> str:
    """sha256 over files' names and bytes (folders: their ``*.py`` files, recursively, sorted)."""
    return files_digest(
        (file.relative_to(path.parent).as_posix(), file)
        for path in paths
        for file in (sorted(path.rglob("*.py")) if path.is_dir() else [path])
    )


def action_key(stage: str, version: str, params: Any, inputs: dict[str, str]) -> str:
    """The cache key of one stage run: everything that may change its outputs, hashed."""
    material = {
        "stage": stage,
        "stage_version": version,
        "gasbuild": __version__,
        "params": params,
        "inputs": inputs,
    }
    return hashlib.sha256(canonical_json(material)).hexdigest()


@dataclass(frozen=True)
class FileStat:
    """The parts of ``os.stat`` that change when a file's content may have changed."""

    size: int
    mtime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, path: Path) -> FileStat:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)

    def as_list(self) -> list[int]:
        return [self.size, self.mtime_ns, self.ino, self.dev]


class RemoteCache:
    """The same layout at an fsspec URL. Every method may raise; ``Cache`` turns that into a
    warning, because a shared cache must never be the reason a build fails."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        self.shown = redact_url(self.url)  # what messages print: never a credential
        self.fs, self.root = fsspec.core.url_to_fs(self.url)

    def _action(self, key: str) -> str:
        return f"{self.root}/actions/{key[:2]}/{key}.json"

    def _object(self, sha256: str) -> str:
        return f"{self.root}/objects/{sha256[:2]}/{sha256}"

    def get_action(self, key: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(self._action(key)))
        except FileNotFoundError:
            return None

    def _parent_dirs(self, path: str) -> None:
        """A local or mounted directory (file://, a shared NFS path) needs its folders made;
        object stores have none to make."""
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if "file" in protocols or "local" in protocols:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)

    def put_action(self, key: str, data: bytes) -> None:
        self._parent_dirs(self._action(key))
        self.fs.pipe_file(self._action(key), data)

    def has_object(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._object(sha256)))

    def open_object(self, sha256: str) -> Any:
        return self.fs.open(self._object(sha256), "rb")

    def put_object(self, sha256: str, path: Path) -> None:
        target = self._object(sha256)
        if not self.fs.exists(target):
            self._parent_dirs(target)
            self.fs.put_file(str(path), target)


class Cache:
    """Local store plus optional remote; ``enabled=False`` makes every lookup miss."""

    def __init__(
        self,
        root: Path,
        *,
        enabled: bool = True,
        remote: RemoteCache | None = None,
        remote_write: bool = True,
        warn: Warn | None = None,
    ) -> None:
        self.root = root
        self.enabled = enabled
        self.remote = remote
        self.remote_write = remote_write
        self._warn = warn or (lambda message: None)
        self._remote_broken = False
        self._swept: set[Path] = set()

    # -- paths ---------------------------------------------------------------------------
    def _action_path(self, key: str) -> Path:
        return self.root / "actions" / key[:2] / f"{key}.json"

    def _stat_path(self, path: Path) -> Path:
        name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()
        return self.root / "stat" / name[:2] / f"{name}.json"

    def _folder_path(self, folder: Path) -> Path:
        name = hashlib.sha256(f"{folder.resolve()}/".encode()).hexdigest()
        return self.root / "stat" / name[:2] / f"{name}.folder.json"

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def temp_dir(self) -> Path:
        """Where downloads land before they are verified and renamed into the store."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sweep_temp_files(self) -> int:
        """Remove what killed builds left in ``tmp/``: downloads, conversions and export
        folders whose writing process is gone (a live build's files are never touched).
        Returns how many were removed."""
        folder = self.root / "tmp"
        doomed = stale_temp_files(folder) + stale_temp_files(folder, _STAGE_TEMP)
        for path in doomed:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                _remove(path)
        self._swept.add(folder)
        return len(doomed)

    def _sweep_once(self, folder: Path) -> None:
        """Sweep a killed writer's temp files from a folder this run writes into, once."""
        if folder not in self._swept:
            self._swept.add(folder)
            for path in stale_temp_files(folder):
                _remove(path)

    def lock(self, name: str, timeout: float = 3600) -> Any:
        """An inter-process lock for one piece of work (a download, an output zip), so that two
        builds on one cache do it once; the second then finds the result. Locks hold no secret:
        the file name is a hash of ``name``."""
        import filelock

        digest = hashlib.sha256(name.encode()).hexdigest()
        path = self.root / "locks" / f"{digest[:16]}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return filelock.FileLock(str(path), timeout=timeout)

    # -- remote guard --------------------------------------------------------------------
    def _with_remote(self, what: str, call: Callable[[RemoteCache], Any]) -> Any:
        if self.remote is None or self._remote_broken:
            return None
        try:
            return call(self.remote)
        except Exception as exc:  # any backend error: warn once, go on locally
            self._remote_broken = True
            self._warn(
                f"remote cache {self.remote.shown}: {what} failed ({error_text(exc)}); "
                "going on with the local cache only"
            )
            return None

    # -- actions -------------------------------------------------------------------------
    @staticmethod
    def _parse(data: bytes | None) -> dict[str, Any] | None:
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def get_action(self, key: str) -> dict[str, Any] | None:
        """The outputs recorded for ``key`` (local, then remote), or None on a miss."""
        if not self.enabled:
            return None
        path = self._action_path(key)
        try:
            local = self._parse(path.read_bytes())
        except OSError:
            local = None
        if local is not None:
            touch(path)
            return local
        data = self._with_remote("read", lambda r: r.get_action(key))
        found = self._parse(data)
        if found is not None:
            atomic_write(path, canonical_json(found), durable=False)
        return found

    def put_action(self, key: str, outputs: dict[str, Any]) -> None:
        data = canonical_json(outputs)
        path = self._action_path(key)
        self._sweep_once(path.parent)
        atomic_write(path, data, durable=False)
        if self.remote_write:
            self._with_remote("write", lambda r: r.put_action(key, data))

    # -- objects -------------------------------------------------------------------------
    def has_object(self, sha256: str) -> bool:
        path = self.object_path(sha256)
        if self.enabled and path.is_file():
            touch(path)
            return True
        return False

    def add_object(self, tmp: Path, sha256: str) -> Path:
        """Move a verified temp file into the store (idempotent: first writer wins)."""
        dest = self.object_path(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)
        if self.remote_write:
            self._with_remote("upload", lambda r: r.put_object(sha256, dest))
        return dest

    def open_remote_object(self, sha256: str) -> Any:
        """A stream of the object from the remote, or None when it is not there."""

        def opener(r: RemoteCache) -> Any:
            return r.open_object(sha256) if r.has_object(sha256) else None

        return self._with_remote("read", opener)

    # -- stat records --------------------------------------------------------------------
    def get_digests(self, path: Path) -> dict[str, Any] | None:
        """Digests recorded for ``path`` if its stat is unchanged since they were measured."""
        if not self.enabled:
            return None
        try:
            record = self._parse(self._stat_path(path).read_bytes())
            now = FileStat.of(path)
        except OSError:
            return None
        if record is None or record.get("stat") != now.as_list():
            return None
        digests = record.get("digests")
        return digests if isinstance(digests, dict) else None

    def put_digests(
        self, path: Path, stat: FileStat, digests: dict[str, Any], *, ours: bool = False
    ) -> None:
        """Remember ``digests`` for ``path`` as it was when ``stat`` was taken.

        A file modified in the last ``RACY_SECONDS`` is not recorded unless gasbuild itself has
        just written it (``ours``): its digests come from the bytes written, not from a read.
        """
        if not ours and time.time() - stat.mtime_ns / 1e9 < RACY_SECONDS:
            return
        record = {"path": str(path.resolve()), "stat": stat.as_list(), "digests": digests}
        target = self._stat_path(path)
        self._sweep_once(target.parent)
        atomic_write(target, canonical_json(record), durable=False)

    def get_folder_digests(self, folder: Path) -> dict[str, Any]:
        """The file records ``put_folder_digests`` kept for ``folder``: relative path ->
        ``{"stat": [...], "sha256": ...}``. The caller trusts an entry only while that file's
        stat is unchanged (``FileStat.as_list``)."""
        if not self.enabled:
            return {}
        try:
            record = self._parse(self._folder_path(folder).read_bytes())
        except OSError:
            return {}
        files = record.get("files") if record else None
        return files if isinstance(files, dict) else {}

    def put_folder_digests(self, folder: Path, files: dict[str, tuple[FileStat, str]]) -> None:
        """Remember the sha256 of many files beneath ``folder`` in one record (an eval's data
        set of thousands of samples is one write, not thousands of stat records), merged into
        the previous one. Files modified in the last ``RACY_SECONDS`` are left out, as in
        ``put_digests``."""
        now = time.time()
        fresh = {
            name: {"stat": stat.as_list(), "sha256": sha256}
            for name, (stat, sha256) in files.items()
            if now - stat.mtime_ns / 1e9 >= RACY_SECONDS
        }
        known = self.get_folder_digests(folder)
        if all(known.get(name) == entry for name, entry in fresh.items()):
            return
        record = {"path": str(folder.resolve()), "files": {**known, **fresh}}
        target = self._folder_path(folder)
        self._sweep_once(target.parent)
        atomic_write(target, canonical_json(record), durable=False)

    # -- maintenance (gasbuild cache ...) -------------------------------------------------
    def entries(self) -> Iterator[tuple[str, Path]]:
        """Every stored file with its kind: ``object``, ``action``, ``stat`` or ``tmp``."""
        for kind, folder in (
            ("object", "objects"),
            ("action", "actions"),
            ("stat", "stat"),
            ("tmp", "tmp"),
        ):
            base = self.root / folder
            if base.is_dir():
                for path in sorted(base.rglob("*")):
                    if path.is_file():
                        yield ("tmp" if path.name.endswith(".tmp") else kind), path


# ------------------------------------------------------------------------------------------------
# Maintenance: what `gasbuild cache ls | du | verify | gc` do.


@dataclass(frozen=True)
class EntryInfo:
    kind: str
    path: Path
    size: int
    mtime: float


def scan(cache: Cache) -> list[EntryInfo]:
    """Every file in the local cache with its kind, size and last use (``touch`` moves the
    access time; a new entry's is its write time)."""
    out = []
    for kind, path in cache.entries():
        try:
            st = path.stat()
        except OSError:
            continue
        out.append(EntryInfo(kind, path, st.st_size, max(st.st_mtime, st.st_atime)))
    return out


def verify(cache: Cache) -> list[str]:
    """Rehash every object and parse every record; remove what is corrupt; say what was removed."""
    removed = []
    for kind, path in cache.entries():
        bad = False
        if kind == "object":
            sha = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    sha.update(chunk)
            bad = sha.hexdigest() != path.name
        elif kind in ("action", "stat"):
            try:
                bad = not isinstance(json.loads(path.read_bytes()), dict)
            except (OSError, ValueError):
                bad = True
        if bad:
            _remove(path)
            removed.append(f"{kind} {path.relative_to(cache.root)}")
    return removed


def gc(
    cache: Cache, *, max_size: int | None, older_than: float | None, now: float | None = None
) -> list[EntryInfo]:
    """Drop temp files of dead builds, entries unused for ``older_than`` seconds, then the least
    recently used until the cache fits in ``max_size`` bytes. Returns what was removed."""
    now = time.time() if now is None else now
    entries = scan(cache)
    doomed = [e for e in entries if e.kind == "tmp" and now - e.mtime > 3600]
    if older_than is not None:
        doomed += [e for e in entries if e.kind != "tmp" and now - e.mtime > older_than]
    kept = sorted((e for e in entries if e not in doomed), key=lambda e: e.mtime)
    if max_size is not None:
        total = sum(e.size for e in kept)
        while kept and total > max_size:
            oldest = kept.pop(0)
            doomed.append(oldest)
            total -= oldest.size
    for entry in doomed:
        _remove(entry.path)
    return doomed


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.chmod(0o644)
        path.unlink()


def touch(path: Path) -> None:
    """Mark an entry as used now (gc evicts the least recently used first).

    Only the access time moves: the modification time is part of the stat record that lets a
    no-op build trust a stored object's digests without reading it again.
    """
    with contextlib.suppress(OSError):
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))
