"""gas.lock: what each build resolved and produced, in a stable, diff-friendly TOML file.

Per model: every input (path relative to gas.toml, sha256, size), each zip entry's digest, and
the zip itself. No timestamps, no absolute paths, keys sorted: two builds of the same inputs on two
machines write the same bytes. Models not rebuilt this time (``--only``) keep their entries.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from gasbuild.blobs import atomic_write
from gasbuild.errors import ManifestError, display_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_NAME = "gas.lock"
LOCK_VERSION = 1
HEADER = "# gas.lock: written by gasbuild; do not edit. Commit it with gas.toml.\n"


def read(path: Path) -> dict[str, Any]:
    """The lock's models table (empty when there is no lock yet)."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(
            f"{display_path(path)}: unreadable lock file ({exc})",
            hint="delete it and run `gasbuild build` to write a fresh one",
        ) from None
    models = data.get("models", {})
    return models if isinstance(models, dict) else {}


def render(models: dict[str, Any]) -> bytes:
    """The lock file's bytes for a models table."""
    body = tomli_w.dumps({"version": LOCK_VERSION, "models": _sorted(models)})
    return (HEADER + body).encode("utf-8")


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    return value


def write(path: Path, updates: Mapping[str, Any]) -> bool:
    """Merge ``updates`` (per-modality entries) into the lock; write only if bytes change."""
    models = read(path)
    models.update(updates)
    data = render(models)
    if path.exists() and path.read_bytes() == data:
        return False
    atomic_write(path, data)
    return True
