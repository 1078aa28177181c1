"""How many submissions each hotkey has used, as far as this project knows, for ``push --dry-run``.

A dry run must not ask the upload service: the only request that returns the service's count
is the presign, and a presign reserves an upload slot (and blocks the next presign for that
hotkey while the reservation lasts). So the outlook is built from what this project recorded:

- the zip receipts (``.gasbuild/receipts/*.json``): every confirmed upload on a hotkey counted
  one submission, and each presign answer recorded the service's ``submissions_used`` and
  ``submissions_max`` at that moment;
- the burn records (``receipts/burns/``): unspent burns pay for further submissions, and a
  pending one blocks any new burn for its hotkey.

What a push would spend follows the network's rule: one free counted submission per hotkey,
whatever the modality; a further one needs a burn. A model also needs one when an earlier
model of the same push spends the hotkey's free submission first. None of this is the service's
word: a hotkey may have pushed from another machine, so a hotkey this project never pushed
from is "unknown", not "free".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gasbuild.publish.receipts import BurnStore, Receipt, ReceiptStore

if TYPE_CHECKING:
    from gasbuild.publish.push import PlannedItem, PushPlan

FREE_PER_HOTKEY = 1  # the network's rule since September 2026 (docs/push.md)


@dataclass(frozen=True)
class HotkeyCount:
    """What this project's receipts know of one hotkey's counted submissions on one subnet."""

    hotkey_ss58: str
    netuid: int
    confirmed: int  # confirmed uploads recorded here: each counted one submission
    service_used: int | None  # ``submissions_used`` of the latest presign answer recorded here
    service_max: int | None  # ``submissions_max`` of that answer
    answered: str | None  # when that answer was recorded (ISO 8601, UTC)
    receipts: int  # receipts of this hotkey and subnet, whatever their state
    unspent_burns: int
    pending_burns: int

    @property
    def known(self) -> bool:
        """Whether anything was ever recorded here for this hotkey (else: "unknown")."""
        return self.receipts > 0 or self.unspent_burns > 0 or self.pending_burns > 0

    @property
    def used(self) -> int | None:
        """At least this many submissions are used: the largest of the lower bounds (the
        confirms recorded here, the service's count when it last answered, and 1 when a burn
        is saved or pending: a burn is made only once the service said the free submission is
        used); None if nothing is known."""
        if not self.known:
            return None
        burned = 1 if self.unspent_burns or self.pending_burns else 0
        return max(self.confirmed, self.service_used or 0, burned)

    def age_seconds(self, now: datetime) -> float | None:
        """How old the service's last answer is (None when there is none)."""
        when = _parse_time(self.answered)
        return None if when is None else max(0.0, (now - when).total_seconds())


def count_for(state_dir: Path, hotkey_ss58: str, netuid: int) -> HotkeyCount:
    """Read this hotkey's receipts and burns under ``state_dir`` (the project's .gasbuild)."""
    mine = [r for r in all_receipts(state_dir) if r.belongs_to(hotkey_ss58, netuid)]
    answered = [r for r in mine if r.submissions_max is not None or r.submissions_used is not None]
    latest = max(answered, key=lambda r: r.presigned_at or r.updated, default=None)
    burns = BurnStore(state_dir)
    return HotkeyCount(
        hotkey_ss58=hotkey_ss58,
        netuid=netuid,
        confirmed=sum(1 for r in mine if r.confirmed),
        service_used=None if latest is None else latest.submissions_used,
        service_max=None if latest is None else latest.submissions_max,
        answered=None if latest is None else (latest.presigned_at or latest.updated or None),
        receipts=len(mine),
        unspent_burns=len(burns.unspent(hotkey_ss58, netuid)),
        pending_burns=len(burns.pending(hotkey_ss58, netuid)),
    )


def all_receipts(state_dir: Path) -> list[Receipt]:
    """Every readable zip receipt of the project (unreadable ones count as absent, as in
    :class:`ReceiptStore`)."""
    root = ReceiptStore(state_dir).root
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob("*.json")):
        try:
            data = json.loads(path.read_text("utf-8"))
            if isinstance(data, dict):
                found.append(Receipt.from_json(data))
        except (OSError, ValueError, TypeError):
            continue
    return found


# -- a push's outlook ---------------------------------------------------------------------


@dataclass(frozen=True)
class ModelOutlook:
    """What pushing one model would do to its hotkey's submissions."""

    modality: str
    hotkey_name: str
    action: str  # upload, confirm (an earlier upload), commit (already confirmed)
    uses_submission: bool  # only a confirm counts one: upload and confirm do
    needs_burn: bool | None  # None: not known (no push from here yet)
    burn_reason: str | None  # shared-hotkey (an earlier model of this push) or used-up
    first_on_hotkey: str | None  # the model of this push that spends the free one first
    burn_source: str | None  # given (--burn-receipt) or saved (an unspent burn), if one covers it

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "uses_submission": self.uses_submission,
            "needs_burn": self.needs_burn,
            "burn_reason": self.burn_reason,
            "burn_source": self.burn_source,
        }


@dataclass(frozen=True)
class HotkeyOutlook:
    """One hotkey of a push: what is known of its count and what its models would spend."""

    name: str
    count: HotkeyCount
    models: tuple[ModelOutlook, ...]

    def to_json(self, now: datetime) -> dict[str, Any]:
        count = self.count
        age = count.age_seconds(now)
        return {
            "name": self.name,
            "hotkey": count.hotkey_ss58,
            "netuid": count.netuid,
            "known": count.known,
            "used": count.used,
            "confirmed_here": count.confirmed,
            "service_used": count.service_used,
            "max": count.service_max,
            "max_answered": count.answered if count.service_max is not None else None,
            "max_age_seconds": None if count.service_max is None or age is None else int(age),
            "unspent_burns": count.unspent_burns,
            "pending_burns": count.pending_burns,
            "modalities": [m.modality for m in self.models],
            "needs_burn": [m.modality for m in self.models if m.needs_burn],
        }


def outlook(plan: PushPlan) -> list[HotkeyOutlook]:
    """Per hotkey of the plan (in push order): its count and what each model would spend."""
    settings = plan.settings
    by_hotkey: dict[str, list[PlannedItem]] = {}
    for planned in plan.items:
        by_hotkey.setdefault(planned.item.hotkey_name, []).append(planned)
    result = []
    for name, planned_items in by_hotkey.items():
        count = count_for(settings.state_dir, planned_items[0].hotkey.ss58_address, settings.netuid)
        models = _models(planned_items, count, commit_only=settings.commit_only)
        result.append(HotkeyOutlook(name, count, tuple(models)))
    return result


def _models(
    items: list[PlannedItem], count: HotkeyCount, *, commit_only: bool
) -> list[ModelOutlook]:
    """Walk one hotkey's models in push order; the first spender takes the free submission."""
    models = []
    first: str | None = None
    saved = count.unspent_burns
    for planned in items:
        action = _action(planned.receipt, commit_only)
        spends = action == "upload"  # a resumed confirm was presigned (and paid) already
        needs: bool | None = False
        reason = source = None
        if spends:
            needs, reason = _needs_burn(count, first)
            if needs and planned.burn is not None:
                source = "given"
            elif needs and saved > 0:
                source, saved = "saved", saved - 1
            first = first or planned.item.modality
        models.append(
            ModelOutlook(
                modality=planned.item.modality,
                hotkey_name=planned.item.hotkey_name,
                action=action,
                uses_submission=action in ("upload", "confirm"),
                needs_burn=needs,
                burn_reason=reason,
                first_on_hotkey=first if reason == "shared-hotkey" else None,
                burn_source=source,
            )
        )
    return models


def _needs_burn(count: HotkeyCount, first: str | None) -> tuple[bool | None, str | None]:
    if first is not None:
        return True, "shared-hotkey"
    used = count.used
    if used is None:
        return None, None
    limit = (
        FREE_PER_HOTKEY if count.service_max is None else min(FREE_PER_HOTKEY, count.service_max)
    )
    return (True, "used-up") if used >= limit else (False, None)


def _action(receipt: Receipt | None, commit_only: bool) -> str:
    if commit_only or (receipt is not None and receipt.confirmed):
        return "commit"
    if receipt is not None and receipt.uploaded and receipt.model_id is not None:
        return "confirm"
    return "upload"


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def describe_age(seconds: float) -> str:
    """``3 days ago``: the age of the service's last answer, for people."""
    minutes = seconds / 60
    if minutes < 1:
        return "just now"
    for size, unit in ((60 * 24, "day"), (60, "hour"), (1, "minute")):
        if minutes >= size:
            whole = int(minutes // size)
            return f"{whole} {unit}{'s' if whole != 1 else ''} ago"
    return "just now"  # pragma: no cover
