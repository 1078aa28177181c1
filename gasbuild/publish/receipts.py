"""Durable push state, one small JSON file per zip digest, so an interrupted push resumes.

``<project>/.gasbuild/receipts/<sha256>.json`` records what the upload service and the chain
have acknowledged for that exact zip: the model id and storage key the presign returned, whether
the PUT and the confirm succeeded, and the commitment and its block; and the figures of the
zip's last ``gasbuild eval`` (or push gate), if one ran, as they stood when the upload was
reserved. Each field is written only after the acknowledgement it records, with a temp file +
rename, so a crash or Ctrl-C leaves the previous consistent state. The record never holds
secrets: the hotkey appears as its public ss58 address only.

Resume rules (see ``push``): a confirmed zip is never uploaded again; an uploaded but
unconfirmed one is confirmed without a new PUT; a receipt with a storage key is what lets a
"file already exists" 409 go straight to the chain commitment. The model id is kept as the
service handed it out (an integer stays an integer), because the confirm must send it back so.

Burn receipts live beside them, ``receipts/burns/<tx hash>.json``, one per burn: a burn bought
one further counted submission for one hotkey, so the store says whether it is still unspent,
which confirmed upload spent it, or (``pending``) that it was sent and its outcome is not known
yet, in which case no further burn is made for that hotkey until someone knows. A burn is spent
when a confirm of an upload presigned with it succeeds, or when the service says it was used.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gasbuild.blobs import atomic_write
from gasbuild.publish.gasapi import BurnReceipt, ModelId

RECEIPTS_DIR = "receipts"
BURNS_DIR = "burns"
# 2: model_id kept as received (version 1 turned it into a string); 3: ``eval`` added
FORMAT_VERSION = 3


@dataclass
class Receipt:
    """What is known to have happened to one zip (by digest) on one hotkey and subnet."""

    sha256: str
    modality: str
    hotkey_ss58: str
    netuid: int
    size: int
    vertical: str = "general"
    model_id: ModelId | None = None
    r2_key: str | None = None
    uploaded: bool = False
    confirmed: bool = False
    committed: bool = False
    verified: bool = False
    block: int | None = None
    commitment: str | None = None
    submissions_used: int | None = None
    submissions_max: int | None = None
    presigned_at: str | None = None  # when the service answered the presign (ISO 8601, UTC)
    burn_tx_hash: str | None = None  # the burn this upload was presigned with, if any
    note: str | None = None
    # The zip's last eval when it was presigned (``gasbuild.eval.gate.summary``): the figures
    # the miner saw before spending the slot. None: no eval of this exact zip had run.
    eval: dict[str, Any] | None = None
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
        return "new" if self.model_id is None else "presigned"

    def belongs_to(self, hotkey_ss58: str, netuid: int) -> bool:
        """Only a receipt of the same hotkey and subnet may drive a resume."""
        return self.hotkey_ss58 == hotkey_ss58 and self.netuid == netuid

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        model_id = values.get("model_id")
        if values.get("version", 1) < 2 and isinstance(model_id, str) and model_id.isascii():
            # version 1 wrote str(model_id); the service hands out integers
            values["model_id"] = int(model_id) if model_id.isdigit() else model_id
        if not isinstance(values.get("eval"), dict):
            values["eval"] = None  # absent before version 3
        values["version"] = FORMAT_VERSION
        return cls(**values)


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


@dataclass
class BurnRecord:
    """One burn for one hotkey on one subnet, and what became of it (never a secret)."""

    tx_hash: str  # BitMind's form: 64 lowercase hex digits, no 0x
    hotkey_ss58: str
    netuid: int
    block: int | None = None  # None while pending
    status: str = "unspent"  # pending, unspent, spent, failed
    coldkey_ss58: str | None = None  # the paying coldkey's public address, when gasbuild burned
    source: str = "given"  # given (--burn-receipt) or burned (made by gasbuild)
    used_by: str | None = None  # sha256 of the zip presigned with it (spent once confirmed)
    model_id: ModelId | None = None
    note: str | None = None
    created: str = ""
    updated: str = ""

    def receipt(self) -> BurnReceipt:
        """The presign fields; only an unspent (landed) burn has a block."""
        if self.block is None:
            raise ValueError(f"burn {self.tx_hash} has no block yet")
        return BurnReceipt(self.tx_hash, self.block)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BurnRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class BurnStore:
    """Burn records under ``<state_dir>/receipts/burns``, one file per transaction hash.

    Unlike zip receipts, a record that cannot be read is an error, not "absent": forgetting a
    burn could buy the same submission twice, or hide a pending one.
    """

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / RECEIPTS_DIR / BURNS_DIR

    def path(self, tx_hash: str) -> Path:
        return self.root / f"{tx_hash}.json"

    def load(self, tx_hash: str) -> BurnRecord | None:
        path = self.path(tx_hash)
        try:
            data = json.loads(path.read_text("utf-8"))
            return BurnRecord.from_json(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            from gasbuild.errors import UserError

            raise UserError(
                f"{path}: unreadable burn record ({type(exc).__name__})",
                hint="restore it, or move it aside once you know whether that burn was used",
            ) from None

    def records(self, hotkey_ss58: str, netuid: int) -> list[BurnRecord]:
        """This hotkey's burns on this subnet, oldest first."""
        if not self.root.is_dir():
            return []
        found = [self.load(p.stem) for p in sorted(self.root.glob("*.json"))]
        mine = [r for r in found if r and r.hotkey_ss58 == hotkey_ss58 and r.netuid == netuid]
        return sorted(mine, key=lambda r: (r.created, r.tx_hash))

    def unspent(self, hotkey_ss58: str, netuid: int) -> list[BurnRecord]:
        return [r for r in self.records(hotkey_ss58, netuid) if r.status == "unspent"]

    def pending(self, hotkey_ss58: str, netuid: int) -> list[BurnRecord]:
        return [r for r in self.records(hotkey_ss58, netuid) if r.status == "pending"]

    def save(self, record: BurnRecord) -> Path:
        now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        record.created = record.created or now
        record.updated = now
        path = self.path(record.tx_hash)
        atomic_write_text(path, json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n")
        return path


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a torn one."""
    atomic_write(path, text.encode("utf-8"))
