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
from gasbuild.urls import error_text, is_url, redact_url, redact_urls_in

if TYPE_CHECKING:
    from gasbuild.cache import Cache
    from gasbuild.manifest import Project

COMPLETE = ".complete"


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
        raise UsageError(f"data URL {redact_url(text)} needs the cache", hint="drop --no-cache")
    target = cache.root / "eval-data" / hashlib.sha256(text.encode()).hexdigest()[:32]
    if (target / COMPLETE).is_file():
        return target
    return _mirror(text, target, cache)


def _mirror(url: str, target: Path, cache: Cache) -> Path:
    """Copy the data behind ``url`` into ``target``. Messages and the marker show the URL
    redacted: a signed URL's query or a ``user:password@`` is never printed nor cached."""
    import fsspec

    shown = redact_url(url)
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
                f"data URL {shown}: {error_text(exc)}",
                hint="pip install 'gasbuild[hf]' or 'gasbuild[s3]'",
            ) from None
        except Exception as exc:  # any backend's error: one line
            shutil.rmtree(target, ignore_errors=True)
            raise _copy_error(shown, exc) from None
        if not any(p.is_file() for p in target.rglob("*")):
            shutil.rmtree(target, ignore_errors=True)
            raise SourceError(f"data URL {shown}: holds no files", hint=_WHERE_HINT)
        (target / COMPLETE).write_text(shown + "\n")
    return target


_WHERE_HINT = "the URL names the folder holding <modality>/<class>/ (gasbuild eval --help)"
# Network failures of HTTP clients that do not derive from ConnectionError (httpx's, used by
# huggingface_hub; botocore's, used by s3fs), by class name: importing them just to compare
# would load every backend.
_NETWORK_ERRORS = frozenset({"NetworkError", "TimeoutException", "EndpointConnectionError"})


def _copy_error(shown: str, exc: Exception) -> SourceError:
    """A backend's failure as one line: not found, unreachable, or whatever it said.

    s3fs and fsspec's local and memory filesystems raise FileNotFoundError for a missing bucket,
    prefix or folder (its text is sometimes only the path list); huggingface_hub raises a
    ConnectionError subclass when offline (``HF_HUB_OFFLINE=1``), httpx's when unreachable.
    """
    said = redact_urls_in(" ".join(str(exc).split()))[:200]
    if isinstance(exc, FileNotFoundError):
        detail = "" if said.startswith("[") or not said else f" ({said})"
        return SourceError(f"data URL {shown}: not found{detail}", hint=_WHERE_HINT)
    if isinstance(exc, ConnectionError | TimeoutError) or _NETWORK_ERRORS & {
        c.__name__ for c in type(exc).__mro__
    }:
        return SourceError(
            f"data URL {shown}: cannot reach it ({said or type(exc).__name__})",
            hint="check the network; once copied, the data is read from the cache",
        )
    return SourceError(
        f"data URL {shown}: cannot copy it ({said or type(exc).__name__})",
        hint="check the URL and the backend's credentials (AWS_* for s3://, HF_TOKEN for hf://)",
    )
