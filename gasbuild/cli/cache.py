"""``gasbuild cache ls|du|verify|gc``: the local cache that builds and evals share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gasbuild.cli.options import maybe_project, project_options
from gasbuild.errors import UsageError


@click.group("cache")
def cache_group() -> None:
    """Inspect and trim the local cache: the [cache] dir of the gas.toml here (or -C DIR),
    else $GASBUILD_CACHE_DIR or the user cache dir."""


def _local_cache(directory: Path | None, manifest_file: Path | None) -> Any:
    """The cache of the project in -C DIR / -f FILE / here (its ``[cache] dir``), else
    $GASBUILD_CACHE_DIR or the user cache: the one its builds use."""
    from gasbuild.cache import Cache, default_cache_dir

    project = maybe_project(directory, manifest_file)
    if project is None:
        return Cache(default_cache_dir())
    return Cache(default_cache_dir(project.manifest.cache.dir, project.root))


@cache_group.command("ls")
@project_options
def cache_ls(directory: Path | None, manifest_file: Path | None) -> None:
    """List the stored objects (fetched files) and how many records there are."""
    from gasbuild import cache as cache_mod
    from gasbuild import ui

    cache = _local_cache(directory, manifest_file)
    entries = cache_mod.scan(cache)
    rows = [
        [e.path.name, ui.human_size(e.size), _age(e.mtime)] for e in entries if e.kind == "object"
    ]
    ui.table(f"objects in {cache.root}", ["sha256", "size", "last used"], rows)
    counts = {k: sum(1 for e in entries if e.kind == k) for k in ("action", "stat", "tmp")}
    ui.out.print(", ".join(f"{n} {k} records" for k, n in counts.items()), highlight=False)


@cache_group.command("du")
@project_options
def cache_du(directory: Path | None, manifest_file: Path | None) -> None:
    """Disk used by the cache, per kind of entry."""
    from gasbuild import cache as cache_mod
    from gasbuild import ui

    cache = _local_cache(directory, manifest_file)
    entries = cache_mod.scan(cache)
    rows = []
    for kind in ("object", "action", "stat", "tmp"):
        chosen = [e for e in entries if e.kind == kind]
        rows.append([kind, str(len(chosen)), ui.human_size(sum(e.size for e in chosen))])
    rows.append(["total", str(len(entries)), ui.human_size(sum(e.size for e in entries))])
    ui.table(str(cache.root), ["kind", "entries", "size"], rows)


@cache_group.command("verify")
@project_options
def cache_verify(directory: Path | None, manifest_file: Path | None) -> None:
    """Rehash every object and parse every record; remove anything corrupt."""
    from gasbuild import cache as cache_mod
    from gasbuild import ui

    removed = cache_mod.verify(_local_cache(directory, manifest_file))
    for line in removed:
        ui.print_warning(f"removed corrupt {line}")
    ui.out.print(f"{len(removed)} corrupt entries removed", highlight=False)


@cache_group.command("gc")
@click.option(
    "--max-size", metavar="SIZE", help="Evict least recently used entries above SIZE (e.g. 20G)."
)
@click.option("--older-than", metavar="AGE", help="Remove entries unused for AGE (e.g. 30d, 12h).")
@project_options
def cache_gc(
    directory: Path | None, manifest_file: Path | None, max_size: str | None, older_than: str | None
) -> None:
    """Remove stale temp files, old entries, and the least recently used beyond a size."""
    from gasbuild import cache as cache_mod
    from gasbuild import ui

    removed = cache_mod.gc(
        _local_cache(directory, manifest_file),
        max_size=None if max_size is None else _parse_size(max_size, "--max-size"),
        older_than=None if older_than is None else _parse_age(older_than),
    )
    freed = sum(e.size for e in removed)
    ui.out.print(f"removed {len(removed)} entries, freed {ui.human_size(freed)}", highlight=False)
    from gasbuild.sandbox.runner import sweep_sandbox_dirs

    swept = sweep_sandbox_dirs()  # smoke/export temp dirs a killed gasbuild left behind
    if swept:
        ui.out.print(f"removed {swept} orphaned sandbox directories", highlight=False)


def _parse_size(text: str, flag: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in units else ""
    try:
        return int(float(value[: len(value) - len(unit)]) * units[unit])
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a size", hint="e.g. 500M, 20G") from None


def _parse_age(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip().lower()
    try:
        return float(value[:-1]) * units[value[-1]]
    except (KeyError, ValueError, IndexError):
        raise UsageError(f"--older-than: {text!r} is not an age", hint="e.g. 12h, 30d") from None


def _age(mtime: float) -> str:
    import time

    seconds = max(0.0, time.time() - mtime)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return "just now"
