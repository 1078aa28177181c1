"""hf:// sources: pin a branch or tag to the commit it points at, so gas.lock is exact.

URLs follow huggingface_hub's filesystem: ``hf://[datasets/|spaces/]org/repo[@revision]/path``.
The form ``hf://org/repo/path@revision`` is accepted too and rewritten. huggingface_hub is
imported only here, only when an hf:// source is fetched; ``HF_ENDPOINT`` and ``HF_TOKEN`` come
from the environment as usual.
"""

from __future__ import annotations

import re
from typing import Any

from gasbuild.errors import SourceError

COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TYPE_PREFIXES = ("datasets/", "spaces/")


def normalise_hf_url(url: str) -> str:
    """Move a trailing ``file@revision`` to the ``repo@revision/file`` form HfFileSystem reads."""
    body = url.removeprefix("hf://")
    prefix = next((p for p in _TYPE_PREFIXES if body.startswith(p)), "")
    body = body[len(prefix) :]
    parts = body.split("/")
    if len(parts) >= 3 and "@" not in parts[1] and "@" in parts[-1]:
        name, _, revision = parts[-1].rpartition("@")
        parts[1] = f"{parts[1]}@{revision}"
        parts[-1] = name
    return "hf://" + prefix + "/".join(parts)


def resolve_hf(url: str) -> tuple[str, dict[str, Any]]:
    """The URL pinned to a commit, and ``{"revision": commit}`` for the lock."""
    try:
        from huggingface_hub import HfApi, HfFileSystem
    except ImportError:
        raise SourceError(
            f"{url} needs huggingface_hub", hint="pip install 'gasbuild[hf]'"
        ) from None
    url = normalise_hf_url(url)
    resolved = HfFileSystem().resolve_path(url)
    repo_id = resolved.repo_id  # type: ignore[union-attr]
    repo_type = resolved.repo_type  # type: ignore[union-attr]
    revision = resolved.revision  # type: ignore[union-attr]
    path_in_repo = resolved.path_in_repo  # type: ignore[union-attr]
    if revision is None or not COMMIT.match(revision):
        info = HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision)
        revision = str(info.sha)
    prefix = "" if repo_type in (None, "model") else f"{repo_type}s/"
    return f"hf://{prefix}{repo_id}@{revision}/{path_in_repo}", {"revision": revision}
