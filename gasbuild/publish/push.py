"""Push built zips to GAS: preflight everything, then upload and commit one modality at a time.

The order of work is the design. Nothing is uploaded until every modality has passed preflight:
each hotkey loads and is registered on the subnet, each zip passes the checks, the vertical fits
the modality. A refusal found late (an unregistered hotkey for audio) would otherwise have spent
the image and video slots already. Then, per modality in the network's order (image, video,
audio): presign -> PUT -> confirm -> commit -> read back, writing the receipt after every
acknowledged step, so that a re-run resumes where the last one stopped and never uploads a
confirmed zip again.

A push is done once the upload is confirmed (the network's rule since September 2026), and only
a 200 from the confirm records a confirmation: a chain commitment that still fails after
bounded retries is a loud warning naming the resume command, not a failure. An unregistered
hotkey is never retried; a used-up commitment quota is waited out up to a bound, with a
countdown.

The burn follows BitMind's flow: presign without a burn first; only when the service answers
that the hotkey's free submission is used is a burn receipt attached, and the presign made
again. The receipt is the one given for this modality (``--burn-receipt``), else an unspent one
saved for this hotkey, else (with ``burn`` set, after ``approve_burn`` has shown the cost and
the paying coldkey) a burn made there and then. Burns are recorded in the receipts store, so a
burn is never spent twice: spent when the confirm of the upload it bought succeeds, or when the
service says it was used; a burn whose outcome is unknown blocks any further burn for that
hotkey.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gasbuild.check.findings import Finding
from gasbuild.errors import (
    CheckFailed,
    GasbuildError,
    PublishError,
    SourceError,
    TransportError,
    UsageError,
    display_path,
)
from gasbuild.eval.gate import summary as eval_summary
from gasbuild.publish.burn import (
    Burner,
    BurnFailed,
    BurnQuote,
    MemoryBurner,
    burner_from_env,
)
from gasbuild.publish.chain import (
    ChainRegistry,
    CommitmentTooLong,
    MemoryChain,
    NotRegistered,
    QuotaExceeded,
    chain_from_env,
    commitment_string,
)
from gasbuild.publish.gasapi import (
    DEFAULT_UPLOAD_URL,
    AlreadyUploaded,
    BurnAlreadyUsed,
    BurnReceipt,
    BurnRequired,
    GasApiClient,
    ModelId,
    Presigned,
    RetryPolicy,
    SubmissionInProgress,
    Timeouts,
)
from gasbuild.publish.receipts import BurnRecord, BurnStore, Receipt, ReceiptStore
from gasbuild.publish.slots import HotkeyOutlook, ModelOutlook, outlook
from gasbuild.publish.wallet import Hotkey, load_hotkey
from gasbuild.resources import STATE_DIR
from gasbuild.submission import MODALITIES, VERTICALS, Modality

if TYPE_CHECKING:
    import httpx

UPLOAD_URL_ENV = "GASBUILD_UPLOAD_URL"
BURN_RULE = (
    "the network counts one free submission per hotkey, whatever the modality; a further counted"
    " model on this hotkey needs a burn of 0.5 TAO worth of subnet-34 alpha"
)
GASBUILD_BURN_HINT = (
    "`gasbuild burn --modality {modality}` makes it (it shows the cost and the paying coldkey"
    " and asks first), or pass --burn-receipt {modality}=TX_HASH:BLOCK for a burn already made,"
    " or push {modality} from its own registered hotkey"
)
ApproveBurn = Callable[[str, BurnQuote], None]  # modality, quote; raises to decline


class BurnDeclined(PublishError):
    """The user said no to the burn a further submission needs."""


class PushDeclined(PublishError):
    """The user answered no at the push's confirmation prompt: nothing was pushed (exit 1, as
    a declined burn; Ctrl-C or Ctrl-D there is an interruption, exit 130)."""


@dataclass(frozen=True)
class PushItem:
    """One zip to push: which slot it goes to, its digest and size, and the hotkey's name."""

    modality: Modality
    zip_path: Path
    sha256: str
    size: int
    hotkey_name: str


@dataclass(frozen=True)
class PushSettings:
    """Everything a push needs besides the zips; defaults are the network's."""

    wallet_name: str = "default"
    wallet_path: str | None = None
    netuid: int = 34
    vertical: str = "general"
    upload_url: str | None = None  # GASBUILD_UPLOAD_URL overrides; default BitMind's service
    chain_endpoint: str | None = None
    chain: ChainRegistry | None = None  # default: GASBUILD_CHAIN=memory:PATH, else bittensor
    state_dir: Path = Path(STATE_DIR)
    dry_run: bool = False
    commit_only: bool = False
    burn_receipts: Mapping[str, BurnReceipt] = field(default_factory=dict)
    burn: bool = False  # may make a burn when the service says one is needed (after asking)
    # Two models on one hotkey with no burn for the later ones: refused before any upload
    # (the second would be refused after the first spent the hotkey's slot) unless allowed.
    allow_shared_hotkey: bool = False
    burner: Burner | None = None  # default: on the same chain as ``chain``
    burn_hint: str = GASBUILD_BURN_HINT  # what to do, formatted with {modality}
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    chain_attempts: int = 3
    chain_retry_delay: float = 60.0
    quota_wait_max: float = 1800.0
    readback_attempts: int = 3
    readback_delay: float = 12.0
    mirror_url: str | None = None
    resume_hint: str = "gasbuild push --commit-only"

    def resolved_upload_url(self, env: Mapping[str, str] | None = None) -> str:
        """GASBUILD_UPLOAD_URL, else the configured URL, else BitMind's; http(s) only."""
        url = (os.environ if env is None else env).get(UPLOAD_URL_ENV) or self.upload_url
        url = (url or DEFAULT_UPLOAD_URL).strip()
        if not url.startswith(("https://", "http://")):
            raise UsageError(f"upload URL {url!r} is not http(s)")
        return url

    def resolved_chain(self) -> ChainRegistry:
        return self.chain or chain_from_env(self.netuid, self.chain_endpoint)

    def resolved_burner(self, chain: ChainRegistry) -> Burner:
        """The configured burner; a stand-in chain burns on itself; else by environment."""
        if self.burner is not None:
            return self.burner
        if isinstance(chain, MemoryChain):
            return MemoryBurner(chain)
        return burner_from_env(self.netuid, self.chain_endpoint)


Checker = Callable[[PushItem], list[Finding]]


def no_checks(item: PushItem) -> list[Finding]:
    """A checker that finds nothing (tests, and zips checked moments ago by the same run)."""
    return []


def make_checker(
    *,
    smoke: bool = True,
    deep: bool = False,
    smoke_memory_mb: int | None = None,
    smoke_timeout: float | None = None,
) -> Checker:
    """gasbuild's own checks (``check_zip_path``), as strict as ``gasbuild check``."""

    def check(item: PushItem) -> list[Finding]:
        from gasbuild.check import CheckOptions, check_zip_path

        options = CheckOptions(
            modality=item.modality,
            smoke=smoke,
            deep=deep,
            smoke_memory_mb=smoke_memory_mb,
            smoke_timeout=smoke_timeout,
        )
        return check_zip_path(item.zip_path, options, display_path(item.zip_path))

    return check


class Events:
    """What a push tells its user as it goes; the base class stays silent (library use)."""

    def info(self, message: str) -> None:
        """A step started or finished."""

    def warning(self, message: str) -> None:
        """Something the miner must know about although the push goes on."""

    def findings(self, origin: str, findings: list[Finding]) -> None:
        """Check results for one zip."""

    def progress(self, label: str, sent: int, total: int) -> None:
        """Bytes of the current PUT attempt sent so far (``sent`` restarts on a retry)."""

    def countdown(self, label: str, seconds_left: float) -> None:
        """A bounded wait (chain quota, retry delay); called about once a second, last with 0."""


# -- plan and report ------------------------------------------------------------------------


@dataclass
class PlannedItem:
    """A zip that passed preflight, with its loaded hotkey and what is already known of it."""

    item: PushItem
    hotkey: Hotkey
    burn: BurnReceipt | None = None
    receipt: Receipt | None = None


@dataclass
class PushPlan:
    """The outcome of preflight: what will be pushed where. Nothing has left the machine."""

    items: list[PlannedItem]
    settings: PushSettings
    upload_url: str
    chain: ChainRegistry
    warnings: list[str] = field(default_factory=list)


@dataclass
class ItemResult:
    """What happened to one modality."""

    modality: str
    zip_path: Path
    sha256: str
    size: int
    hotkey_ss58: str
    status: str  # planned, pushed, resumed, already-pushed, committed, failed, not-reached
    receipt: Receipt | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    outlook: ModelOutlook | None = None  # dry runs: what it would spend of its hotkey's count

    def to_json(self) -> dict[str, Any]:
        r = self.receipt
        extra = {} if self.outlook is None else self.outlook.to_json()
        return {
            "modality": self.modality,
            "zip": str(self.zip_path),
            "sha256": self.sha256,
            "size": self.size,
            "hotkey": self.hotkey_ss58,
            "status": self.status,
            "state": r.state if r else None,
            "model_id": r.model_id if r else None,
            "r2_key": r.r2_key if r else None,
            "confirmed": bool(r and r.confirmed),
            "committed": bool(r and r.committed),
            "verified": bool(r and r.verified),
            "block": r.block if r else None,
            "commitment": r.commitment if r else None,
            "submissions_used": r.submissions_used if r else None,
            "submissions_max": r.submissions_max if r else None,
            "burn_tx_hash": r.burn_tx_hash if r else None,
            "eval": r.eval if r else None,
            "warnings": self.warnings,
            "error": self.error,
            **extra,
        }


@dataclass
class PushReport:
    """Per-modality results; ``error`` is the failure that stopped the push, if any."""

    items: list[ItemResult]
    dry_run: bool = False
    error: GasbuildError | None = None
    hotkeys: list[HotkeyOutlook] = field(default_factory=list)  # dry runs: per hotkey

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_error(self) -> None:
        if self.error is not None:
            raise self.error

    def to_json(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        data: dict[str, Any] = {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "error": None if self.error is None else str(self.error),
            "exit_code": 0 if self.error is None else self.error.exit_code,
            "models": [item.to_json() for item in self.items],
        }
        if self.dry_run:
            data["hotkeys"] = [h.to_json(now) for h in self.hotkeys]
        return data


# -- entry points ---------------------------------------------------------------------------


def push(
    items: Iterable[PushItem],
    settings: PushSettings,
    *,
    checker: Checker | None = None,
    events: Events | None = None,
    confirm: Callable[[PushPlan], None] | None = None,
    approve_burn: ApproveBurn | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    loader: Callable[[str, str, str | None], Hotkey] = load_hotkey,
) -> PushReport:
    """Preflight, then (unless a dry run) push; preflight failures raise, push failures report.

    ``checker`` defaults to gasbuild's full checks; pass :func:`no_checks` to skip them.
    ``confirm`` sees the plan before anything is uploaded and raises to stop. ``approve_burn``
    sees each burn's quote before it is made (only with ``settings.burn``) and raises
    :class:`BurnDeclined` (or anything) to refuse it.
    """
    events = events or Events()
    checks = make_checker() if checker is None else checker
    plan = preflight(items, settings, checker=checks, events=events, loader=loader)
    if settings.dry_run:
        return planned_report(plan)
    if confirm is not None:
        confirm(plan)
    return execute(
        plan,
        events=events,
        approve_burn=approve_burn,
        transport=transport,
        sleep=sleep,
        clock=clock,
    )


def preflight(
    items: Iterable[PushItem],
    settings: PushSettings,
    *,
    checker: Checker,
    events: Events,
    loader: Callable[[str, str, str | None], Hotkey] = load_hotkey,
) -> PushPlan:
    """Every check that can refuse a push, before any byte is uploaded (see module docstring)."""
    ordered = _ordered(list(items))
    _check_settings(ordered, settings)
    _check_files(ordered)
    hotkeys = _load_hotkeys(ordered, settings, loader)
    warnings = [] if settings.commit_only else _shared_hotkey_warnings(ordered, hotkeys, settings)
    if warnings and not (settings.burn or settings.allow_shared_hotkey):
        raise UsageError(
            warnings[0] + "; nothing was uploaded",
            hint="give each model its own hotkey ([models.X] hotkey in gas.toml), pass"
            " --burn-receipt or --burn for the later ones, or --allow-shared-hotkey if the"
            " service's count allows it",
        )
    for warning in warnings:
        events.warning(warning)
    if not settings.commit_only:
        _run_checks(ordered, checker, events)
    chain = settings.resolved_chain()
    _check_registered(ordered, hotkeys, chain, settings.netuid)
    store = ReceiptStore(settings.state_dir)
    planned = []
    for item in ordered:
        hotkey = hotkeys[item.hotkey_name]
        receipt = _usable_receipt(store, item, hotkey, settings, events)
        planned.append(
            PlannedItem(item, hotkey, settings.burn_receipts.get(item.modality), receipt)
        )
    if settings.commit_only:
        _check_committable(planned)
    else:
        _check_given_burns(planned, settings)
    return PushPlan(planned, settings, settings.resolved_upload_url(), chain, warnings)


def planned_report(plan: PushPlan) -> PushReport:
    """What a dry run returns: the plan, each item with its receipt as it stands, and per
    hotkey what this project knows of its submissions (never asked of the service: a presign
    would reserve a slot; see :mod:`gasbuild.publish.slots`)."""
    hotkeys = outlook(plan)
    by_modality = {m.modality: m for h in hotkeys for m in h.models}
    results = [_result(p, "planned") for p in plan.items]
    for result in results:
        result.outlook = by_modality.get(result.modality)
    return PushReport(results, dry_run=True, hotkeys=hotkeys)


def execute(
    plan: PushPlan,
    *,
    events: Events | None = None,
    approve_burn: ApproveBurn | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> PushReport:
    """Push each planned modality in order; stop at the first failure, keeping what was done."""
    run = _Run(plan, events or Events(), transport, sleep, clock, approve_burn)
    results: list[ItemResult] = []
    try:
        run.record_given_burns()
        for index, planned in enumerate(plan.items):
            try:
                results.append(run.push_item(planned))
            except GasbuildError as error:
                results.append(_result(planned, "failed", error=str(error)))
                results.extend(_result(p, "not-reached") for p in plan.items[index + 1 :])
                return PushReport(results, error=error)
    finally:
        run.close()
    return PushReport(results)


# -- preflight helpers ----------------------------------------------------------------------


def _ordered(items: list[PushItem]) -> list[PushItem]:
    if not items:
        raise UsageError("nothing to push", hint="declare a model, or pass a zip")
    seen: dict[str, PushItem] = {}
    for item in items:
        if item.modality not in MODALITIES:
            raise UsageError(f"unknown modality {item.modality!r}")
        if item.modality in seen:
            raise UsageError(f"two zips for {item.modality}; the network takes one per modality")
        seen[item.modality] = item
    return [seen[m] for m in MODALITIES if m in seen]


def _check_settings(items: list[PushItem], settings: PushSettings) -> None:
    if settings.vertical not in VERTICALS:
        raise UsageError(
            f"vertical {settings.vertical!r} is not offered", hint="choose general or human"
        )
    if settings.vertical == "human" and any(i.modality == "audio" for i in items):
        raise UsageError(
            "the human vertical is not offered for audio",
            hint="push audio with vertical general, separately from image/video",
        )
    pushed = {i.modality for i in items}
    for modality in settings.burn_receipts:
        if modality not in pushed:
            raise UsageError(f"--burn-receipt {modality}=...: {modality} is not being pushed")
    given = [b.tx_hash for b in settings.burn_receipts.values()]
    if len(set(given)) != len(given):
        raise UsageError(
            "--burn-receipt: the same burn is given for two modalities",
            hint="one burn buys one further submission; give each modality its own burn",
        )
    settings.resolved_upload_url()


def _check_files(items: list[PushItem]) -> None:
    for item in items:
        try:
            size = item.zip_path.stat().st_size
        except OSError:
            raise SourceError(f"{display_path(item.zip_path)}: no such zip") from None
        if size != item.size:
            raise SourceError(
                f"{display_path(item.zip_path)} is {size} bytes, expected {item.size}",
                hint="it changed after it was built; build again",
            )


def _load_hotkeys(
    items: list[PushItem],
    settings: PushSettings,
    loader: Callable[[str, str, str | None], Hotkey],
) -> dict[str, Hotkey]:
    names = list(dict.fromkeys(item.hotkey_name for item in items))
    return {name: loader(settings.wallet_name, name, settings.wallet_path) for name in names}


def _shared_hotkey_warnings(
    items: list[PushItem], hotkeys: Mapping[str, Hotkey], settings: PushSettings
) -> list[str]:
    """One counted submission per hotkey: a second modality on it needs a burn receipt."""
    warnings = []
    by_hotkey: dict[str, list[str]] = {}
    for item in items:
        by_hotkey.setdefault(item.hotkey_name, []).append(item.modality)
    for name, modalities in by_hotkey.items():
        unpaid = [m for m in modalities[1:] if m not in settings.burn_receipts]
        if unpaid:
            remedy = (
                "a burn, which gasbuild will offer (--burn)"
                if settings.burn
                else "a burn (--burn lets gasbuild make it; --burn-receipt passes one made)"
            )
            warnings.append(
                f"{' and '.join(modalities)} share hotkey {name!r}"
                f" ({hotkeys[name].ss58_address}): the network counts one free submission per"
                f" hotkey, so {', '.join(unpaid)} will need {remedy} unless a saved burn or the"
                " hotkey's free submission covers it"
            )
    return warnings


def _run_checks(items: list[PushItem], checker: Checker, events: Events) -> None:
    failed = []
    for item in items:
        findings = checker(item)
        events.findings(display_path(item.zip_path), findings)
        if any(f.severity == "error" for f in findings):
            failed.append(item.modality)
    if failed:
        raise CheckFailed(
            f"checks failed for {', '.join(failed)}; nothing was uploaded",
            hint="fix the errors above, or see `gasbuild check` for details",
        )


def _check_registered(
    items: list[PushItem], hotkeys: Mapping[str, Hotkey], chain: ChainRegistry, netuid: int
) -> None:
    for name in dict.fromkeys(item.hotkey_name for item in items):
        hotkey = hotkeys[name]
        try:
            registered = chain.is_registered(hotkey.ss58_address, netuid)
        except TransportError as error:
            raise TransportError(
                f"cannot check the registration of hotkey {name!r}: {error.message};"
                " nothing was uploaded",
                hint="check the network and --chain-endpoint, then push again",
                retryable=False,
            ) from error
        if not registered:
            modalities = ", ".join(i.modality for i in items if i.hotkey_name == name)
            raise NotRegistered(
                f"hotkey {name!r} ({hotkey.ss58_address}) is not registered on subnet {netuid};"
                f" nothing was uploaded ({modalities})",
                hint=f"register it first: btcli subnets register --netuid {netuid}"
                f" --wallet.hotkey {name}",
            )


def _usable_receipt(
    store: ReceiptStore,
    item: PushItem,
    hotkey: Hotkey,
    settings: PushSettings,
    events: Events,
) -> Receipt | None:
    receipt = store.load(item.sha256)
    if receipt is None:
        return None
    if not receipt.belongs_to(hotkey.ss58_address, settings.netuid):
        events.warning(
            f"{item.modality}: the receipt for this zip is for hotkey {receipt.hotkey_ss58} on"
            f" subnet {receipt.netuid}; pushing afresh for {hotkey.ss58_address}"
        )
        return None
    return receipt


def _check_given_burns(planned: list[PlannedItem], settings: PushSettings) -> None:
    """A burn given on the command line must not be one this project already spent."""
    store = BurnStore(settings.state_dir)
    for p in planned:
        if p.burn is None:
            continue
        record = store.load(p.burn.tx_hash)
        if record is None:
            continue
        flag = f"--burn-receipt {p.item.modality}={p.burn.tx_hash[:12]}...:{p.burn.block}"
        if record.hotkey_ss58 != p.hotkey.ss58_address or record.netuid != settings.netuid:
            raise UsageError(
                f"{flag}: this burn is recorded for hotkey {record.hotkey_ss58} on subnet"
                f" {record.netuid}, not {p.hotkey.ss58_address} on {settings.netuid}",
                hint="a burn buys a submission for the hotkey it was made for",
            )
        if record.status == "spent":
            on = f" on the upload of {record.used_by[:12]}" if record.used_by else ""
            raise UsageError(
                f"{flag}: this burn was already spent{on} (model {record.model_id})",
                hint="one burn buys one further submission; make a new burn (--burn)",
            )


def _check_committable(planned: list[PlannedItem]) -> None:
    for p in planned:
        r = p.receipt
        if r is None or not r.confirmed or not r.r2_key:
            raise PublishError(
                f"{p.item.modality}: no confirmed upload is recorded for this zip"
                f" (sha256 {p.item.sha256[:12]}), so there is nothing to commit",
                hint="run the push without --commit-only first",
            )


def _result(
    planned: PlannedItem,
    status: str,
    *,
    receipt: Receipt | None = None,
    warnings: list[str] | None = None,
    error: str | None = None,
) -> ItemResult:
    item = planned.item
    return ItemResult(
        modality=item.modality,
        zip_path=item.zip_path,
        sha256=item.sha256,
        size=item.size,
        hotkey_ss58=planned.hotkey.ss58_address,
        status=status,
        receipt=receipt or planned.receipt,
        warnings=warnings or [],
        error=error,
    )


# -- one run ----------------------------------------------------------------------------------


class _Run:
    """The state of one execution: API clients per hotkey, the receipt store, the callbacks."""

    def __init__(
        self,
        plan: PushPlan,
        events: Events,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        approve_burn: ApproveBurn | None = None,
    ) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.events = events
        self.transport = transport
        self.sleep = sleep
        self.clock = clock
        self.approve_burn = approve_burn
        self.store = ReceiptStore(plan.settings.state_dir)
        self.burns = BurnStore(plan.settings.state_dir)
        self.clients: dict[str, GasApiClient] = {}

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def api(self, hotkey: Hotkey) -> GasApiClient:
        client = self.clients.get(hotkey.ss58_address)
        if client is None:
            client = GasApiClient(
                self.plan.upload_url,
                hotkey,
                transport=self.transport,
                timeouts=self.settings.timeouts,
                retry=self.settings.retry,
                sleep=self.sleep,
                clock=self.clock,
                on_retry=self.retrying,
            )
            self.clients[hotkey.ss58_address] = client
        return client

    def retrying(self, step: str, error: TransportError, wait: float) -> None:
        if isinstance(error, SubmissionInProgress):
            self.events.warning(
                f"{error}: an earlier presign (perhaps one whose answer was lost) holds the"
                f" reservation; asking again in {wait:.1f} s"
            )
            return
        self.events.warning(f"{error}; retrying {step} in {wait:.1f} s")

    # -- one modality -------------------------------------------------------------------

    def push_item(self, planned: PlannedItem) -> ItemResult:
        item = planned.item
        if self.settings.commit_only:
            receipt, status = planned.receipt, "committed"
            assert receipt is not None  # preflight's _check_committable
        else:
            receipt, status = self.upload(planned)
        warnings, was_on_chain = self.commit(planned, receipt)
        if status == "resumed" and was_on_chain and planned.receipt and planned.receipt.confirmed:
            status = "already-pushed"
        warnings.extend(self.mirror(item, receipt))
        for warning in warnings:
            self.events.warning(warning)
        return _result(planned, status, receipt=receipt, warnings=warnings)

    def upload(self, planned: PlannedItem) -> tuple[Receipt, str]:
        """Presign, PUT and confirm as far as the receipt says is still needed."""
        item, receipt = planned.item, planned.receipt
        if receipt is not None and receipt.confirmed:
            self.events.info(f"{item.modality}: already uploaded and confirmed; not uploading")
            return receipt, "resumed"
        if receipt is not None and receipt.uploaded and receipt.model_id is not None:
            self.events.info(f"{item.modality}: uploaded earlier; confirming {receipt.model_id}")
            self.confirm_earlier(planned, receipt)
            return receipt, "resumed"
        try:
            receipt, url = self.presign(planned)
        except AlreadyUploaded as duplicate:
            return self.already_uploaded(planned, duplicate), "resumed"
        self.put(planned, receipt, url)
        self.confirm(planned, receipt)
        return receipt, "pushed"

    def presign(self, planned: PlannedItem) -> tuple[Receipt, str]:
        """Reserve the upload; the receipt records model id and storage key before the PUT."""
        item = planned.item
        self.events.info(f"{item.modality}: requesting an upload slot")
        answer, burn = self.reserve(planned)
        receipt = Receipt(
            sha256=item.sha256,
            modality=item.modality,
            hotkey_ss58=planned.hotkey.ss58_address,
            netuid=self.settings.netuid,
            size=item.size,
            vertical=self.settings.vertical,
            model_id=answer.model_id,
            r2_key=answer.r2_key,
            submissions_used=answer.submissions_used,
            submissions_max=answer.submissions_max,
            presigned_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            burn_tx_hash=None if burn is None else burn.tx_hash,
            eval=eval_summary(self.settings.state_dir, item.sha256),
        )
        self.store.save(receipt)
        if burn is not None:
            self.hold_burn(burn, item.sha256)
        if answer.submissions_max is not None:
            used = "?" if answer.submissions_used is None else answer.submissions_used
            self.events.info(
                f"{item.modality}: submissions on this hotkey: {used} of {answer.submissions_max}"
            )
        return receipt, answer.presigned_url

    def request(self, planned: PlannedItem, burn: BurnReceipt | None) -> Presigned:
        item = planned.item
        return self.api(planned.hotkey).presign(
            item.zip_path, item.sha256, item.size, item.modality, self.settings.vertical, burn
        )

    # -- the burn -------------------------------------------------------------------------

    def reserve(self, planned: PlannedItem) -> tuple[Presigned, BurnReceipt | None]:
        """BitMind's flow: presign without a burn; only a "submission used" 403 brings one.

        A burn the service reports as already used is marked spent and the next one is tried;
        at most one burn is made per modality per run.
        """
        try:
            return self.request(planned, None), None
        except BurnRequired as refused:
            needed: PublishError = refused
        tried: set[str] = set()
        made = False
        while True:
            burn, made = self.burn_for(planned, needed, tried, made)
            tried.add(burn.tx_hash)
            self.events.info(
                f"{planned.item.modality}: the free submission is used; presigning again with"
                f" burn {burn.tx_hash[:12]}... (block {burn.block})"
            )
            try:
                return self.request(planned, burn), burn
            except BurnAlreadyUsed as used:
                self.spend(burn.tx_hash, planned.hotkey, note=used.message)
                needed = used
            except BurnRequired as refused:
                raise BurnRequired(
                    f"{refused.message} (with burn {burn.tx_hash}:{burn.block})",
                    hint="the service did not accept this burn for this hotkey; if it is not a"
                    " burn made by this hotkey's coldkey for subnet"
                    f" {self.settings.netuid}, move"
                    f" {display_path(self.burns.path(burn.tx_hash))} aside",
                ) from refused

    def burn_for(
        self, planned: PlannedItem, needed: PublishError, tried: set[str], made: bool
    ) -> tuple[BurnReceipt, bool]:
        """The burn to attach next: given, else saved and free, else a new one (if allowed)."""
        for candidate in self.saved_burns(planned):
            if candidate.tx_hash not in tried:
                return candidate, made
        hotkey = planned.hotkey.ss58_address
        pending = self.burns.pending(hotkey, self.settings.netuid)
        if pending:
            path = display_path(self.burns.path(pending[0].tx_hash))
            raise PublishError(
                f"{planned.item.modality}: a burn for this hotkey ({pending[0].tx_hash}) was sent"
                " earlier and its outcome is unknown; no further burn is made until it is"
                " resolved",
                hint="look it up on a block explorer: if it landed, push again with"
                f" --burn-receipt {planned.item.modality}=TX_HASH:BLOCK; if it did not, move"
                f" {path} aside",
            ) from needed
        if not self.settings.burn or made:
            hint = self.settings.burn_hint.format(modality=planned.item.modality)
            raise BurnRequired(needed.message, hint=f"{BURN_RULE}: {hint}") from needed
        return self.new_burn(planned), True

    def saved_burns(self, planned: PlannedItem) -> list[BurnReceipt]:
        """This modality's given burn, then unspent ones saved for the hotkey that no other
        modality of this run was given and no other upload may still confirm with."""
        others = {
            p.burn.tx_hash for p in self.plan.items if p.burn is not None and p is not planned
        }
        found = [] if planned.burn is None else [planned.burn]
        for record in self.burns.unspent(planned.hotkey.ss58_address, self.settings.netuid):
            if record.tx_hash in others or record.block is None:
                continue
            if self.held_elsewhere(record, planned.item.sha256):
                continue
            if planned.burn is None or record.tx_hash != planned.burn.tx_hash:
                found.append(record.receipt())
        return found

    def held_elsewhere(self, record: BurnRecord, sha256: str) -> bool:
        """Whether another zip's upload, presigned with this burn, may still be confirmed."""
        if record.used_by is None or record.used_by == sha256:
            return False
        holder = self.store.load(record.used_by)
        return bool(holder and holder.uploaded and holder.burn_tx_hash == record.tx_hash)

    def new_burn(self, planned: PlannedItem) -> BurnReceipt:
        """Quote, ask, burn; the burn is recorded pending before it is sent."""
        hotkey, netuid = planned.hotkey, self.settings.netuid
        burner = self.settings.resolved_burner(self.plan.chain)
        quote = burner.quote(hotkey, netuid)
        if self.approve_burn is None:  # the approver shows the quote itself
            self.events.info(f"{planned.item.modality}: this needs {quote.describe()}")
        else:
            self.approve_burn(planned.item.modality, quote)
        signed: list[str] = []

        def on_signed(tx_hash: str) -> None:
            signed.append(tx_hash)
            record = BurnRecord(tx_hash, hotkey.ss58_address, netuid, status="pending")
            record.coldkey_ss58, record.source = quote.coldkey_ss58, "burned"
            self.burns.save(record)

        try:
            receipt = burner.burn(hotkey, quote, on_signed)
        except BurnFailed:
            for tx_hash in signed:
                self.set_burn(tx_hash, status="failed")
            raise
        record = BurnRecord(receipt.tx_hash, hotkey.ss58_address, netuid, receipt.block)
        record.coldkey_ss58, record.source = quote.coldkey_ss58, "burned"
        self.burns.save(record)
        self.events.info(
            f"{planned.item.modality}: burned in block {receipt.block} (tx {receipt.tx_hash});"
            f" receipt saved in {display_path(self.burns.path(receipt.tx_hash))}"
        )
        return receipt

    def record_given_burns(self) -> None:
        """Keep the burns given on the command line, so a later run can reuse an unused one."""
        for p in self.plan.items:
            if p.burn is None or self.settings.commit_only:
                continue
            record = self.burns.load(p.burn.tx_hash)
            if record is not None and record.status in ("unspent", "spent"):
                continue
            self.burns.save(
                BurnRecord(
                    p.burn.tx_hash, p.hotkey.ss58_address, self.settings.netuid, p.burn.block
                )
            )

    def hold_burn(self, burn: BurnReceipt, sha256: str) -> None:
        """Note which zip's upload was presigned with the burn (spent once it is confirmed)."""
        self.set_burn(burn.tx_hash, used_by=sha256)

    def spend(
        self,
        tx_hash: str,
        hotkey: Hotkey,
        *,
        sha256: str | None = None,
        model_id: ModelId | None = None,
        note: str | None = None,
    ) -> None:
        record = self.burns.load(tx_hash) or BurnRecord(
            tx_hash, hotkey.ss58_address, self.settings.netuid
        )
        record.status = "spent"
        record.used_by = sha256 or record.used_by
        if model_id is not None:
            record.model_id = model_id
        record.note = note or record.note
        self.burns.save(record)

    def set_burn(self, tx_hash: str, **changes: Any) -> None:
        record = self.burns.load(tx_hash)
        if record is None:
            return
        for name, value in changes.items():
            setattr(record, name, value)
        self.burns.save(record)

    def put(self, planned: PlannedItem, receipt: Receipt, url: str) -> None:
        item = planned.item
        self.events.info(f"{item.modality}: uploading {display_path(item.zip_path)}")

        def progress(sent: int) -> None:
            self.events.progress(item.modality, sent, item.size)

        self.api(planned.hotkey).upload(url, item.zip_path, item.size, progress)
        receipt.uploaded = True
        self.store.save(receipt)

    def confirm(self, planned: PlannedItem, receipt: Receipt) -> None:
        """Confirm the upload (this is what counts the submission). Only a 200 records a
        confirmation: every other answer, a 409 included, is a failure, as in BitMind's client."""
        assert receipt.model_id is not None
        self.api(planned.hotkey).confirm(receipt.model_id, planned.item.sha256)
        receipt.confirmed = True
        self.store.save(receipt)
        if receipt.burn_tx_hash is not None:
            self.spend(
                receipt.burn_tx_hash,
                planned.hotkey,
                sha256=receipt.sha256,
                model_id=receipt.model_id,
                note="spent by a confirmed upload",
            )
        self.events.info(f"{planned.item.modality}: upload confirmed (model {receipt.model_id})")

    def confirm_earlier(self, planned: PlannedItem, receipt: Receipt) -> None:
        """Confirm an upload a previous run made. If the service refuses it (not a network
        fault), forget that upload: only a confirm spends the slot, so uploading afresh on the
        next run is safe, whereas keeping the receipt would retry the refused confirm forever.
        The storage key stays: should the service answer the next presign with "file with this
        hash already exists", it is the key that file was stored under."""
        try:
            self.confirm(planned, receipt)
        except PublishError as error:
            receipt.uploaded = False
            receipt.model_id = receipt.burn_tx_hash = None
            self.store.save(receipt)
            raise PublishError(
                error.message,
                hint="the earlier upload could not be confirmed; its receipt was reset, so"
                " pushing again uploads afresh",
            ) from error

    def already_uploaded(self, planned: PlannedItem, duplicate: AlreadyUploaded) -> Receipt:
        """The 409 "file with this hash already exists": resume from the receipt, or explain."""
        item, receipt = planned.item, planned.receipt
        if receipt is None or not receipt.r2_key:
            raise PublishError(
                f"{item.modality}: the upload service already holds this exact zip (sha256"
                f" {item.sha256[:12]}), but no receipt here records its storage key, so it"
                " cannot be committed from this machine",
                hint="if it was pushed from another machine, copy that machine's"
                f" .gasbuild/receipts/{item.sha256}.json into"
                f" {display_path(self.store.root)}/ and run `{self.settings.resume_hint}`; to"
                " submit it as a new model, change it (e.g. bump its version) and rebuild",
            ) from duplicate
        self.events.info(f"{item.modality}: the service already has this zip; committing it")
        receipt.uploaded = receipt.confirmed = True
        self.store.save(receipt)
        return receipt

    # -- chain ----------------------------------------------------------------------------

    def commit(self, planned: PlannedItem, receipt: Receipt) -> tuple[list[str], bool]:
        """Commit and read back. Every failure here is a warning: the push is already done.

        Returns the warnings and whether the chain held this commitment before we started.
        """
        item, hotkey = planned.item, planned.hotkey
        try:
            assert receipt.r2_key is not None
            data = commitment_string(receipt.r2_key, item.sha256, hotkey.ss58_address)
            if self.read(hotkey.ss58_address) == data:
                self.events.info(f"{item.modality}: the chain already holds this commitment")
                receipt.committed = receipt.verified = True
                receipt.commitment = data
                self.store.save(receipt)
                return [], True
            self.events.info(f"{item.modality}: committing to subnet {self.settings.netuid}")
            block = self.set_commitment(planned, data)
        except GasbuildError as error:
            return [self.commit_warning(item.modality, error)], False
        receipt.committed, receipt.verified = True, False
        receipt.block, receipt.commitment = block, data
        self.store.save(receipt)
        if not self.read_back(hotkey.ss58_address, data):
            return [
                f"{item.modality}: the commitment was sent (block {block}) but reading it back"
                " did not show it; check later with `gasbuild status`"
            ], False
        receipt.verified = True
        self.store.save(receipt)
        self.events.info(f"{item.modality}: committed and verified on chain (block {block})")
        return [], False

    def commit_warning(self, modality: str, error: GasbuildError) -> str:
        if isinstance(error, CommitmentTooLong):
            return f"{modality}: uploaded and confirmed (the push counts), but {error}"
        message = (
            f"{modality}: uploaded and confirmed (the push counts), but the chain commitment"
            f" failed: {error}. Run `{self.settings.resume_hint}` to commit it"
        )
        if isinstance(error, QuotaExceeded) and error.wait_seconds is not None:
            message += f" after the next epoch (in about {error.wait_seconds / 60:.0f} min)"
        return message

    def set_commitment(self, planned: PlannedItem, data: str) -> int | None:
        """Bounded retries; NotRegistered at once; a quota is waited out up to quota_wait_max."""
        failures = 0
        waited = 0.0
        while True:
            try:
                return self.plan.chain.set_commitment(planned.hotkey, self.settings.netuid, data)
            except NotRegistered:
                raise
            except QuotaExceeded as quota:
                wait = max(1.0, quota.wait_seconds or self.settings.chain_retry_delay)
                if waited + wait > self.settings.quota_wait_max:
                    raise
                self.countdown(f"{planned.item.modality}: commitment quota, next epoch", wait)
                waited += wait
            except TransportError as error:
                failures += 1
                if not error.retryable or failures >= self.settings.chain_attempts:
                    raise
                label = f"{planned.item.modality}: retrying the commitment ({error})"
                self.countdown(label, self.settings.chain_retry_delay)

    def read(self, hotkey_ss58: str) -> str | None:
        try:
            return self.plan.chain.get_commitment(hotkey_ss58, self.settings.netuid)
        except GasbuildError:
            return None

    def read_back(self, hotkey_ss58: str, data: str) -> bool:
        for attempt in range(max(1, self.settings.readback_attempts)):
            if attempt:
                self.sleep(self.settings.readback_delay)
            if self.read(hotkey_ss58) == data:
                return True
        return False

    def countdown(self, label: str, seconds: float) -> None:
        remaining = seconds
        while remaining > 0:
            self.events.countdown(label, remaining)
            step = min(1.0, remaining)
            self.sleep(step)
            remaining -= step
        self.events.countdown(label, 0.0)

    # -- mirror ---------------------------------------------------------------------------

    def mirror(self, item: PushItem, receipt: Receipt) -> list[str]:
        url = self.settings.mirror_url
        if not url:
            return []
        from gasbuild.publish.storage import mirror

        try:
            copies = mirror(url, item.zip_path, self.store.path(item.sha256), item.sha256)
        except Exception as exc:  # any fsspec backend error; the push itself stands
            return [f"{item.modality}: mirror to {url} failed ({type(exc).__name__}: {exc})"]
        self.events.info(f"{item.modality}: mirrored to {copies[0]}")
        return []
