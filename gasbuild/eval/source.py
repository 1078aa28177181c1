"""Where an eval's data lives: a local directory, or any fsspec URL mirrored into the cache.

``hf://datasets/org/name/path`` and ``s3://bucket/prefix`` are copied once into
``<cache>/eval-data/<digest of the URL>/`` (a ``.complete`` marker makes a copy cut short by an
interrupt start over) and read from there, as weights are cached; huggingface_hub / s3fs are
imported by fsspec only when such a URL is used.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from gasbuild.blobs import expand_user
from gasbuild.errors import SourceError, UsageError

if TYPE_CHECKING:
    from gasbuild.cache import Cache
    from gasbuild.manifest import Project

COMPLETE = ".complete"


def is_url(text: str) -> bool:
    return "://" in text


def project_data_dir(project: Project | None, given: str | None, cache: Cache | None) -> Path:
    """``--data`` (relative to the working directory), else ``[eval] data`` (to gas.toml)."""
    if given is not None:
        return resolve(given, Path.cwd(), cache)
    configured = project.manifest.eval.data if project is not None else None
    if configured is None:
        raise UsageError(
            "no data to evaluate on",
            hint='pass --data DIR, or set [eval] data = "DIR" in gas.toml',
        )
    assert project is not None
    return resolve(configured, project.root, cache)


def resolve(text: str, base: Path, cache: Cache | None) -> Path:
    """A local directory for ``text``: a path, or a URL's cached mirror."""
    if not is_url(text):
        path = (base / expand_user(text)).resolve()
        if not path.is_dir():
            raise UsageError(
                f"data directory {text} does not exist",
                hint="give --data DIR (or [eval] data); `gasbuild eval --help` shows the layout",
            )
        return path
    if cache is None:
        raise UsageError(f"data URL {text} needs the cache", hint="drop --no-cache")
    target = cache.root / "eval-data" / hashlib.sha256(text.encode()).hexdigest()[:32]
    if (target / COMPLETE).is_file():
        return target
    return _mirror(text, target, cache)


def _mirror(url: str, target: Path, cache: Cache) -> Path:
    import fsspec

    with cache.lock(f"eval-data {url}"):
        if (target / COMPLETE).is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        try:
            fs, path = fsspec.core.url_to_fs(url)
            fs.get(path.rstrip("/") + "/", str(target) + "/", recursive=True)
        except ImportError as exc:
            raise SourceError(
                f"data URL {url}: {exc}", hint="pip install 'gasbuild[hf]' or 'gasbuild[s3]'"
            ) from None
        except Exception as exc:  # any backend's error: one line
            shutil.rmtree(target, ignore_errors=True)
            raise SourceError(f"data URL {url}: cannot copy it ({exc})") from None
        (target / COMPLETE).write_text(url + "\n")
    return target
