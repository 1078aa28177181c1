"""Mirror copies of pushed zips and their receipts to any fsspec URL (``[publish] mirror``).

The network keeps the only authoritative copy of a submission; a team wants its own, next to
the receipt that says what was pushed where. Copies land at ``<url>/<sha256>/<zip name>`` and
``<url>/<sha256>/receipt.json``; the zip is streamed in chunks, never read whole. A mirror is a
convenience: the caller reports a failure as a warning and the push stands.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CHUNK_SIZE = 1 << 20


def mirror_paths(url: str, sha256: str, zip_name: str) -> tuple[str, str]:
    """Where the zip and its receipt go under ``url``."""
    base = f"{url.rstrip('/')}/{sha256}"
    return f"{base}/{zip_name}", f"{base}/receipt.json"


def mirror(url: str, zip_path: Path, receipt_path: Path, sha256: str) -> list[str]:
    """Copy the zip and its receipt under ``url``; return the destination URLs."""
    import fsspec

    zip_dest, receipt_dest = mirror_paths(url, sha256, zip_path.name)
    protocol, _ = fsspec.core.split_protocol(url)
    options = {"auto_mkdir": True} if protocol in (None, "file", "local") else {}
    for source, dest in ((zip_path, zip_dest), (receipt_path, receipt_dest)):
        with source.open("rb") as reader, fsspec.open(dest, "wb", **options) as writer:
            shutil.copyfileobj(reader, writer, CHUNK_SIZE)
    return [zip_dest, receipt_dest]
