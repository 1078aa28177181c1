"""Durable push state, one small JSON file per zip digest, so an interrupted push resumes.

``<project>/.gasbuild/receipts/<sha256>.json`` records what the upload service and the chain
have acknowledged for that exact zip: the model id and storage key the presign returned, whether
the PUT and the confirm succeeded, and the commitment and its block. Each field is written only
after the acknowledgement it records, with a temp file + rename, so a crash or Ctrl-C leaves the
previous consistent state. The record never holds secrets: the hotkey appears as its public
ss58 address only.

Resume rules (see ``push``): a confirmed zip is never uploaded again; an uploaded but
unconfirmed one is confirmed without a new PUT; a receipt with a storage key is what lets a
"file already exists" 409 go straight to the chain commitment.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gasbuild.blobs import atomic_write

RECEIPTS_DIR = "receipts"
FORMAT_VERSION = 1


@dataclass
class Receipt:
    """What is known to have happened to one zip (by digest) on one hotkey and subnet."""

    sha256: str
    modality: str
    hotkey_ss58: str
    netuid: int
    size: int
    vertical: str = "general"
    model_id: str | None = None
    r2_key: str | None = None
    uploaded: bool = False
    confirmed: bool = False
    committed: bool = False
    verified: bool = False
    block: int | None = None
    commitment: str | None = None
    submissions_used: int | None = None
    submissions_max: int | None = None
    note: str | None = None
    updated: str = ""
    version: int = FORMAT_VERSION

    @property
    def state(self) -> str:
        """One word for tables: presigned, uploaded, confirmed, committed or verified."""
        if self.verified:
            return "verified"
        if self.committed:
            return "committed"
        if self.confirmed:
            return "confirmed"
        if self.uploaded:
            return "uploaded"
        return "presigned" if self.model_id else "new"

    def belongs_to(self, hotkey_ss58: str, netuid: int) -> bool:
        """Only a receipt of the same hotkey and subnet may drive a resume."""
        return self.hotkey_ss58 == hotkey_ss58 and self.netuid == netuid

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class ReceiptStore:
    """Receipts under ``<state_dir>/receipts``; unreadable files count as absent."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / RECEIPTS_DIR

    def path(self, sha256: str) -> Path:
        return self.root / f"{sha256}.json"

    def load(self, sha256: str) -> Receipt | None:
        try:
            data = json.loads(self.path(sha256).read_text("utf-8"))
            return Receipt.from_json(data) if isinstance(data, dict) else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            return None  # a torn or foreign file: behave as if nothing were known

    def save(self, receipt: Receipt) -> Path:
        receipt.updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
        path = self.path(receipt.sha256)
        atomic_write_text(path, json.dumps(receipt.to_json(), indent=2, sort_keys=True) + "\n")
        return path


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a torn one."""
    atomic_write(path, text.encode("utf-8"))
