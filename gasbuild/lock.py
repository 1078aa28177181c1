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

from gasbuild.blobs import atomic_write, sweep_stale_temp_files
from gasbuild.errors import ManifestError, UserError, display_path
from gasbuild.urls import redact_url, url_secret_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_NAME = "gas.lock"
LOCK_VERSION = 1
HEADER = "# gas.lock: written by gasbuild; do not edit. Commit it with gas.toml.\n"


class LockMismatch(UserError):
    """``--locked`` and gas.lock is missing or does not match what the build resolved."""


MAX_LOCK_BYTES = 16 << 20  # a lock is a few KiB per model


def read(path: Path) -> dict[str, Any]:
    """The lock's models table (empty when there is no lock yet)."""
    if not path.exists() and not path.is_symlink():
        return {}
    hint = "delete it and run `gasbuild build` to write a fresh one"
    try:
        if not path.is_file():  # a FIFO would block the read, a directory cannot be read
            raise ManifestError(f"{display_path(path)}: not a regular file", hint=hint)
        if path.stat().st_size > MAX_LOCK_BYTES:
            raise ManifestError(f"{display_path(path)}: too large for a lock file", hint=hint)
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ManifestError(
            f"{display_path(path)}: unreadable lock file ({why})", hint=hint
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
    """Merge ``updates`` (per-modality entries) into the lock; write only if bytes change.

    gas.lock is committed: a URL that carries a credential never reaches it (the manifest
    refuses those; any that slipped through is recorded redacted). A killed build's temp
    files beside it are swept first.
    """
    models = read(path)
    models.update(updates)
    data = render(_scrubbed(models))
    try:
        if path.exists() and path.read_bytes() == data:
            return False
        sweep_stale_temp_files(path.parent)
        atomic_write(path, data)
    except OSError as exc:
        raise UserError(
            f"{display_path(path)}: cannot write the lock file ({exc.strerror or exc})",
            hint="the folder of gas.toml must be writable (or build with --locked in CI)",
        ) from None
    return True


def check_inputs(
    key: str,
    locked: dict[str, Any] | None,
    inputs: dict[str, dict[str, Any]],
    entries: dict[str, str],
) -> None:
    """``--locked``, before anything is written: the resolved inputs and the zip's entries
    must be exactly what gas.lock says for the model at ``key`` (e.g. ``models.image``)."""
    if not locked:
        raise LockMismatch(
            f"gas.lock has no entry for {key}",
            hint="run `gasbuild lock` and commit gas.lock",
        )
    changes = differences("inputs", locked.get("inputs", {}), inputs)
    changes += differences("entries", locked.get("entries", {}), entries)
    if changes:
        raise LockMismatch(
            f"gas.lock is stale for {key}: " + "; ".join(changes[:4]),
            hint="run `gasbuild lock` to accept the change, then commit gas.lock",
        )


def check_output(key: str, locked: dict[str, Any] | None, entry: dict[str, Any]) -> None:
    """``--locked``, after packaging: the zip must be the one gas.lock records."""
    changes = differences("output", (locked or {}).get("output", {}), entry["output"])
    if changes:
        raise LockMismatch(
            f"{key} did not reproduce the zip in gas.lock: " + "; ".join(changes),
            hint="the same inputs gave other bytes; report this with both zips",
        )


def differences(prefix: str, old: Any, new: Any) -> list[str]:
    """Each leaf that differs between two lock entries, as ``prefix.key would change ...``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += differences(f"{prefix}.{key}", old.get(key), new.get(key))
        return out
    if old == new:
        return []
    return [f"{prefix} would change from {old!r} to {new!r}"]


def _scrubbed(value: Any) -> Any:
    """``value`` with every secret-bearing ``url`` redacted."""
    if isinstance(value, dict):
        return {
            k: redact_url(v)
            if k == "url" and isinstance(v, str) and url_secret_problem(v)
            else _scrubbed(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value
