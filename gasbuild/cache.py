"""The local cache: an action cache keyed by stage inputs, and a stat cache for file digests.

A stage's key is ``sha256(stage, stage version, gasbuild version, canonical params, input
digests)``. Before a stage runs, its key is looked up; on a hit its recorded outputs are reused.
The stat cache remembers a file's digests under its (size, mtime_ns, inode, device), as git's
index does, so an unchanged multi-GB weights file is not read again; the digest still decides
everything downstream.

Every write goes to a temp file in the same directory and is renamed into place, so a reader sees
a whole entry or none, two builds can share one cache, and a build killed at any moment leaves at
most a stray ``*.tmp`` that nothing trusts. An entry that fails to parse is treated as a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gasbuild import __version__

CACHE_ENV = "GASBUILD_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$GASBUILD_CACHE_DIR``, else the platform's user cache dir (``~/.cache/gasbuild``)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gasbuild", appauthor=False))


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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


class Cache:
    """Action and stat caches under one directory; ``enabled=False`` makes every lookup miss."""

    def __init__(self, root: Path, *, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled

    def _action_path(self, key: str) -> Path:
        return self.root / "actions" / key[:2] / f"{key}.json"

    def _stat_path(self, path: Path) -> Path:
        name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()
        return self.root / "stat" / name[:2] / f"{name}.json"

    def _read_json(self, path: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def get_action(self, key: str) -> dict[str, Any] | None:
        """The outputs recorded for ``key``, or None on a miss (or when disabled)."""
        if not self.enabled:
            return None
        return self._read_json(self._action_path(key))

    def put_action(self, key: str, outputs: dict[str, Any]) -> None:
        atomic_write(self._action_path(key), canonical_json(outputs))

    def get_digests(self, path: Path) -> dict[str, Any] | None:
        """Digests recorded for ``path`` if its stat is unchanged since they were measured."""
        if not self.enabled:
            return None
        record = self._read_json(self._stat_path(path))
        if record is None:
            return None
        try:
            now = FileStat.of(path)
        except OSError:
            return None
        if record.get("stat") != [now.size, now.mtime_ns, now.ino, now.dev]:
            return None
        digests = record.get("digests")
        return digests if isinstance(digests, dict) else None

    def put_digests(self, path: Path, stat: FileStat, digests: dict[str, Any]) -> None:
        """Remember ``digests`` for ``path`` as it was when ``stat`` was taken."""
        record = {
            "path": str(path.resolve()),
            "stat": [stat.size, stat.mtime_ns, stat.ino, stat.dev],
            "digests": digests,
        }
        atomic_write(self._stat_path(path), canonical_json(record))
