"""Push orchestration against the fake upload API and MemoryChain: faults, resume, preflight."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("bittensor_wallet")

from fakes.gas_api import GasApiState, serve_gas_api
from fakes.publishing import FakeClock, RecordingEvents, item, make_wallet
from gasbuild.check.findings import Finding
from gasbuild.errors import (
    CheckFailed,
    GasbuildError,
    PublishError,
    TransportError,
    UsageError,
    UserError,
)
from gasbuild.publish.burn import BurnFailed, BurnOutcomeUnknown, BurnQuote, MemoryBurner
from gasbuild.publish.chain import ChainUnavailable, MemoryChain, NotRegistered, commitment_string
from gasbuild.publish.gasapi import (
    AlreadyUploaded,
    BadSignature,
    BurnReceipt,
    BurnRequired,
    RetryPolicy,
    SubmissionInProgress,
    Timeouts,
    UploadsDisabled,
    normalise_tx_hash,
)
from gasbuild.publish.push import (
    BurnDeclined,
    PushItem,
    PushReport,
    PushSettings,
    no_checks,
    push,
)
from gasbuild.publish.receipts import BurnStore, ReceiptStore

TX = "cd" * 32  # BitMind's form: 64 lowercase hex digits, no 0x


@dataclass
class Env:
    tmp: Path
    wallets: Path
    addresses: dict[str, str]
    chain: MemoryChain
    server: GasApiState
    clock: FakeClock

    def settings(self, **overrides: Any) -> PushSettings:
        values: dict[str, Any] = {
            "wallet_name": "miner",
            "wallet_path": str(self.wallets),
            "upload_url": self.server.base_url,
            "chain": self.chain,
            "state_dir": self.tmp / ".gasbuild",
            "retry": RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, budget_seconds=60),
            "timeouts": Timeouts(connect=2, read=0.5, write=2, pool=2),
            "chain_retry_delay": 2.0,
            "readback_delay": 0.0,
        }
        values.update(overrides)
        return PushSettings(**values)

    def push(self, items: list[PushItem], events: RecordingEvents | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        checker = kw.pop("checker", no_checks)
        approve_burn = kw.pop("approve_burn", None)
        return push(
            items,
            self.settings(**kw),
            checker=checker,
            events=events or RecordingEvents(),
            approve_burn=approve_burn,
            sleep=self.clock.sleep,
            clock=self.clock.monotonic,
        )

    def receipt(self, sha256: str, state_dir: Path | None = None):  # type: ignore[no-untyped-def]
        return ReceiptStore(state_dir or self.tmp / ".gasbuild").load(sha256)


@pytest.fixture(scope="module")
def wallets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("wallets")
    return path, make_wallet(path, "miner", ("img", "vid", "aud", "lonely"))


@pytest.fixture
def env(
    tmp_path: Path,
    wallets: tuple[Path, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Env]:
    monkeypatch.delenv("GASBUILD_UPLOAD_URL", raising=False)
    monkeypatch.delenv("GASBUILD_CHAIN", raising=False)
    path, addresses = wallets
    registered = [addresses[h] for h in ("img", "vid", "aud")]
    clock = FakeClock()
    chain = MemoryChain(tmp_path / "chain.json", registered=registered, clock=clock.time)
    with serve_gas_api() as server:
        server.slow_seconds = 1.0
        server.clock = clock.monotonic  # reservations expire on the client's fake clock
        server.reservation_seconds = 12.0
        yield Env(tmp_path, path, addresses, chain, server, clock)


def image(env: Env, hotkey: str = "img", payload: bytes = b"i") -> PushItem:
    return item(env.tmp / "dist", "image", hotkey, payload)


def assert_pushed(env: Env, pushed: PushItem, hotkey: str = "img") -> None:
    receipt = env.receipt(pushed.sha256)
    assert receipt is not None
    assert receipt.uploaded and receipt.confirmed and receipt.committed and receipt.verified
    ss58 = env.addresses[hotkey]
    expected = commitment_string(receipt.r2_key, pushed.sha256, ss58)
    assert receipt.commitment == expected
    assert env.chain.get_commitment(ss58, 34) == expected
    assert isinstance(receipt.model_id, int)  # as the service handed it out
    upload = env.server.uploads[receipt.model_id]
    assert upload.confirmed and upload.r2_key == receipt.r2_key


# -- the fault matrix ------------------------------------------------------------------------

OK = "ok"
MATRIX: list[tuple[str, str, list[str], Any, dict[str, int]]] = [
    ("presign-500-then-ok", "presigned", ["500"], OK, {"presigned": 2, "put": 1, "confirm": 1}),
    ("presign-503-then-ok", "presigned", ["503"], OK, {"presigned": 2}),
    ("presign-429-retry-after", "presigned", ["429"], OK, {"presigned": 2}),
    ("presign-reset", "presigned", ["reset"], OK, {"presigned": 2}),
    # the first presign reached the service, its answer was lost: the retry meets "already in
    # progress" and waits the reservation out (5 s, then 10 s of the 12 s), never uploading twice
    ("presign-timeout", "presigned", ["timeout"], OK, {"presigned": 4, "put": 1, "confirm": 1}),
    ("presign-lost", "presigned", ["lost"], OK, {"presigned": 4, "put": 1, "confirm": 1}),
    ("put-reset-mid-body", "put", ["reset"], OK, {"presigned": 1, "put": 2, "confirm": 1}),
    ("put-500-then-ok", "put", ["500"], OK, {"put": 2}),
    ("put-timeout", "put", ["timeout"], OK, {"put": 2}),
    ("confirm-500-then-ok", "confirm", ["500"], OK, {"confirm": 2}),
    ("confirm-timeout-applied", "confirm", ["timeout"], OK, {"confirm": 2}),
    ("confirm-lost-applied", "confirm", ["lost"], OK, {"confirm": 2}),
    ("presign-409-duplicate", "presigned", ["409dup"], PublishError, {"presigned": 1, "put": 0}),
    ("presign-409-other", "presigned", ["409other"], PublishError, {"presigned": 1, "put": 0}),
    ("presign-409-txhash", "presigned", ["409txhash"], PublishError, {"presigned": 1, "put": 0}),
    ("confirm-409-dup", "confirm", ["409dup"], PublishError, {"confirm": 1}),
    ("presign-403-signature", "presigned", ["403sig"], BadSignature, {"presigned": 1}),
    ("presign-403-burn", "presigned", ["403burn"], BurnRequired, {"presigned": 1}),
    ("presign-503-disabled", "presigned", ["503disabled"], UploadsDisabled, {"presigned": 1}),
    ("presign-500-always", "presigned", ["500"] * 3, TransportError, {"presigned": 3}),
    ("put-reset-always", "put", ["reset"] * 3, TransportError, {"put": 3, "confirm": 0}),
    ("confirm-500-always", "confirm", ["500"] * 3, TransportError, {"confirm": 3}),
]


@pytest.mark.parametrize(
    ("endpoint", "faults", "outcome", "calls"),
    [case[1:] for case in MATRIX],
    ids=[case[0] for case in MATRIX],
)
def test_fault_matrix(
    env: Env, endpoint: str, faults: list[str], outcome: Any, calls: dict[str, int]
) -> None:
    env.server.fault(endpoint, *faults)
    pushed = image(env)
    report = env.push([pushed])
    for name, count in calls.items():
        assert env.server.calls.get(name, 0) == count, name
    receipt = env.receipt(pushed.sha256)
    if outcome is OK:
        assert report.ok, report.error
        assert report.items[0].status == "pushed"
        assert env.server.total_confirmations == 1
        assert_pushed(env, pushed)
        return
    assert type(report.error) is outcome or (
        outcome is PublishError and isinstance(report.error, PublishError)
    )
    assert report.error.exit_code == 1
    assert report.items[0].status == "failed"
    assert env.server.total_confirmations == 0
    # the receipt records exactly what the service acknowledged
    if env.server.calls.get("put", 0) == 0:
        assert receipt is None
    elif endpoint == "put":
        assert receipt is not None and receipt.model_id and not receipt.uploaded
    else:
        assert receipt is not None and receipt.uploaded and not receipt.confirmed
    # a re-run without faults finishes the job, never re-sending what was acknowledged
    before = dict(env.server.calls)
    again = env.push([pushed])
    assert again.ok, again.error
    assert env.server.total_confirmations == 1
    assert_pushed(env, pushed)
    if endpoint == "confirm":
        assert env.server.calls["put"] == before["put"]  # uploaded earlier: no second PUT
        assert env.server.calls["presigned"] == before["presigned"]


def test_409_message_says_what_to_do(env: Env) -> None:
    env.server.fault("presigned", "409dup")
    report = env.push([image(env)])
    text = str(report.error)
    assert "already holds this exact zip" in text and "receipt" in text
    assert "gasbuild push --commit-only" in text


def test_other_409_is_shown_as_is(env: Env) -> None:
    env.server.fault("presigned", "409other")
    report = env.push([image(env)])
    assert "Registration changed; please retry with a fresh registration" in str(report.error)
    assert not isinstance(report.error, AlreadyUploaded)


# -- resume ------------------------------------------------------------------------------


def test_rerun_after_success_uploads_nothing(env: Env) -> None:
    pushed = image(env)
    assert env.push([pushed]).ok
    before = dict(env.server.calls)
    again = env.push([pushed])
    assert again.ok and again.items[0].status == "already-pushed"
    assert env.server.calls == before


def test_duplicate_409_with_receipt_goes_to_commit(env: Env) -> None:
    pushed = image(env)
    assert env.push([pushed]).ok
    store = ReceiptStore(env.tmp / ".gasbuild")
    receipt = env.receipt(pushed.sha256)
    # as if interrupted right after the PUT: only the presign was recorded; chain is empty
    store.save(replace(receipt, uploaded=False, confirmed=False, committed=False, verified=False))
    fresh = MemoryChain(registered=[env.addresses["img"]])
    report = env.push([pushed], chain=fresh)
    assert report.ok and report.items[0].status == "resumed"
    assert env.server.calls["put"] == 1 and env.server.total_confirmations == 1
    assert fresh.get_commitment(env.addresses["img"], 34) == receipt.commitment


def test_duplicate_409_without_receipt_fails_clearly(env: Env) -> None:
    pushed = image(env)
    assert env.push([pushed]).ok
    report = env.push([pushed], state_dir=env.tmp / "elsewhere")
    assert isinstance(report.error, PublishError) and report.error.exit_code == 1
    assert "no receipt here records its storage key" in str(report.error)
    assert env.server.calls["put"] == 1


def test_refused_confirm_of_an_earlier_upload_resets_its_receipt(env: Env) -> None:
    env.server.fault("confirm", "500", "500", "500")
    pushed = image(env)
    assert isinstance(env.push([pushed]).error, TransportError)
    env.server.uploads.clear()  # the service forgot the unconfirmed upload
    report = env.push([pushed])
    assert isinstance(report.error, PublishError) and "Unknown model_id" in str(report.error)
    assert "uploads afresh" in str(report.error)
    receipt = env.receipt(pushed.sha256)
    assert receipt is not None and not receipt.uploaded and receipt.model_id is None
    assert env.push([pushed]).ok
    assert env.server.calls["put"] == 2 and env.server.total_confirmations == 1
    assert_pushed(env, pushed)


def test_interrupt_mid_put_leaves_receipts_consistent(env: Env) -> None:
    class Interrupting(RecordingEvents):
        def progress(self, label: str, sent: int, total: int) -> None:
            raise KeyboardInterrupt

    pushed = image(env, payload=b"big" * 200_000)
    with pytest.raises(KeyboardInterrupt):
        env.push([pushed], events=Interrupting())
    receipt = env.receipt(pushed.sha256)
    assert receipt is not None and receipt.model_id and not receipt.uploaded
    assert env.push([pushed]).ok
    assert env.server.total_confirmations == 1
    assert_pushed(env, pushed)


# -- preflight: nothing leaves the machine unless everything passes --------------------------


def test_unregistered_hotkey_stops_before_any_upload(env: Env) -> None:
    items = [image(env), item(env.tmp / "dist", "audio", "lonely")]
    with pytest.raises(NotRegistered) as raised:
        env.push(items)
    assert env.addresses["lonely"] in str(raised.value) and "nothing was uploaded" in str(
        raised.value
    )
    assert env.server.calls == {}
    assert not (env.tmp / ".gasbuild").exists()


def test_failed_checks_stop_before_any_upload(env: Env) -> None:
    def checker(pushed: PushItem) -> list[Finding]:
        if pushed.modality == "video":
            return [Finding("GAS301", "error", "model.py imports os")]
        return [Finding("GAS299", "warning", "fine")]

    events = RecordingEvents()
    items = [image(env), item(env.tmp / "dist", "video", "vid")]
    with pytest.raises(CheckFailed, match="video"):
        env.push(items, events=events, checker=checker)
    assert len(events.checked) == 2
    assert env.server.calls == {}


@pytest.mark.parametrize(
    ("vertical", "modality", "match"),
    [("human", "audio", "not offered for audio"), ("sports", "image", "not offered")],
)
def test_vertical_rules(env: Env, vertical: str, modality: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as raised:
        env.push([item(env.tmp / "dist", modality, "aud")], vertical=vertical)
    assert raised.value.exit_code == 2


def test_missing_wallet_names_the_path(env: Env) -> None:
    with pytest.raises(UserError) as raised:
        env.push([image(env, hotkey="nope")])
    assert raised.value.exit_code == 2
    assert str(env.wallets / "miner" / "hotkeys" / "nope") in str(raised.value)


def test_dry_run_returns_the_plan(env: Env) -> None:
    report = env.push([image(env)], dry_run=True)
    assert report.dry_run and report.ok and report.items[0].status == "planned"
    assert env.server.calls == {}


def test_commit_only_needs_a_confirmed_receipt(env: Env) -> None:
    with pytest.raises(PublishError, match="nothing to commit"):
        env.push([image(env)], commit_only=True)


# -- several modalities, hotkeys and the burn rule --------------------------------------------


def test_modalities_in_order_and_a_late_failure_keeps_the_earlier(env: Env) -> None:
    events = RecordingEvents()
    items = [
        item(env.tmp / "dist", "audio", "aud", b"a"),
        item(env.tmp / "dist", "video", "img", b"v"),  # shares the image hotkey, no burn
        image(env),
    ]
    report = env.push(items, events=events, allow_shared_hotkey=True)
    assert [r.modality for r in report.items] == ["image", "video", "audio"]
    assert [r.status for r in report.items] == ["pushed", "failed", "not-reached"]
    assert isinstance(report.error, BurnRequired)
    assert "--burn-receipt" in str(report.error)
    assert any("share hotkey 'img'" in w for w in events.warnings)
    assert env.server.total_confirmations == 1
    assert_pushed(env, items[2])


def test_a_shared_hotkey_without_a_burn_is_refused_before_any_upload(env: Env) -> None:
    items = [image(env), item(env.tmp / "dist", "video", "img", b"v")]
    with pytest.raises(UsageError) as info:
        env.push(items)
    message = str(info.value)
    assert "share hotkey 'img'" in message and "nothing was uploaded" in message
    assert "--allow-shared-hotkey" in message and "[models.X] hotkey" in message
    assert info.value.exit_code == 2
    assert env.server.bodies == []  # not even a presign
    # With a burn receipt for the later model, or --burn, the same push goes ahead.
    report = env.push(items, burn=True, approve_burn=lambda *_: False)
    assert report.items[0].status == "pushed"


def test_burn_receipt_buys_a_second_submission(env: Env) -> None:
    items = [image(env), item(env.tmp / "dist", "video", "img", b"v")]
    typed = BurnReceipt.parse("0X" + TX.upper() + ":77")  # as a user may paste it
    report = env.push(items, burn_receipts={"video": typed})
    assert report.ok, report.error
    # BitMind's flow: video presigns without a burn first, and only the 403 brings the receipt
    assert ["burn_tx_hash" in body for body in env.server.bodies] == [False, False, True]
    assert env.server.bodies[2]["burn_tx_hash"] == TX
    assert env.server.bodies[2]["burn_block"] == 77
    assert env.server.confirmations[env.addresses["img"]] == 2
    assert env.server.spent_burns == {TX}


def test_three_modalities_three_hotkeys(env: Env) -> None:
    items = [
        image(env),
        item(env.tmp / "dist", "video", "vid", b"v"),
        item(env.tmp / "dist", "audio", "aud", b"a"),
    ]
    report = env.push(items)
    assert report.ok and [r.status for r in report.items] == ["pushed"] * 3
    for pushed, hotkey in zip(items, ("img", "vid", "aud"), strict=True):
        assert_pushed(env, pushed, hotkey)


# -- the chain: failures are warnings once the upload is confirmed ----------------------------


class FailingChain:
    def __init__(self, inner: MemoryChain, error: GasbuildError) -> None:
        self.inner, self.error, self.attempts = inner, error, 0

    def is_registered(self, hotkey_ss58: str, netuid: int) -> bool:
        return self.inner.is_registered(hotkey_ss58, netuid)

    def set_commitment(self, signer: Any, netuid: int, data: str) -> int | None:
        self.attempts += 1
        raise self.error

    def get_commitment(self, hotkey_ss58: str, netuid: int) -> str | None:
        return self.inner.get_commitment(hotkey_ss58, netuid)


def test_commit_failure_is_a_warning_then_commit_only(env: Env) -> None:
    pushed = image(env)
    failing = FailingChain(env.chain, ChainUnavailable("chain: websocket closed"))
    events = RecordingEvents()
    report = env.push([pushed], chain=failing, events=events)
    assert report.ok and report.items[0].status == "pushed"
    assert failing.attempts == 3  # chain_attempts, bounded
    warning = report.items[0].warnings[0]
    assert "the push counts" in warning and "gasbuild push --commit-only" in warning
    assert events.warnings == [warning]
    receipt = env.receipt(pushed.sha256)
    assert receipt.confirmed and not receipt.committed
    calls = dict(env.server.calls)
    again = env.push([pushed], commit_only=True)
    assert again.ok and again.items[0].status == "committed"
    assert env.server.calls == calls  # nothing uploaded again
    assert_pushed(env, pushed)


def test_not_registered_at_commit_is_never_retried(env: Env) -> None:
    failing = FailingChain(env.chain, NotRegistered("AccountNotAllowedCommit"))
    report = env.push([image(env)], chain=failing)
    assert report.ok and failing.attempts == 1
    assert "AccountNotAllowedCommit" in report.items[0].warnings[0]


def test_quota_is_waited_out_with_a_countdown(env: Env) -> None:
    chain = MemoryChain(
        registered=[env.addresses["img"]], quota_bytes=150, epoch_seconds=600, clock=env.clock.time
    )
    env.clock.now = 6000.0 + 590.0  # ten seconds before the next epoch
    chain.set_commitment(_Signer(env.addresses["img"]), 34, "earlier")  # uses 100 of 150
    events = RecordingEvents()
    pushed = image(env)
    report = env.push([pushed], chain=chain, events=events)
    assert report.ok and not report.items[0].warnings
    assert events.countdowns[0][1] == pytest.approx(10.0)
    assert events.countdowns[-1][1] == 0.0
    assert chain.get_commitment(env.addresses["img"], 34) == env.receipt(pushed.sha256).commitment


def test_quota_wait_is_bounded(env: Env) -> None:
    chain = MemoryChain(
        registered=[env.addresses["img"]], quota_bytes=150, epoch_seconds=6000, clock=env.clock.time
    )
    env.clock.now = 0.0
    chain.set_commitment(_Signer(env.addresses["img"]), 34, "earlier")
    report = env.push([image(env)], chain=chain, quota_wait_max=60.0)
    assert report.ok
    warning = report.items[0].warnings[0]
    assert "SpaceLimitExceeded" in warning and "next epoch (in about 100 min)" in warning


@dataclass
class _Signer:
    ss58_address: str
    wallet: Any = None
    keypair: Any = None


# -- secrets and mirrors --------------------------------------------------------------------


def test_no_secret_leaves_the_wallet(env: Env) -> None:
    events = RecordingEvents()
    pushed = image(env)
    report = env.push([pushed], events=events, mirror_url=str(env.tmp / "mirror"))
    assert report.ok
    secrets = json.loads((env.wallets / "miner" / "hotkeys" / "img").read_text())
    values = [secrets[k] for k in ("secretPhrase", "secretSeed", "privateKey")]
    written = [p.read_text() for p in (env.tmp / ".gasbuild").rglob("*.json")]
    written.append(json.dumps(report.to_json()))
    written.extend(events.infos + events.warnings)
    written.append(repr(report))
    for text in written:
        for value in values:
            assert value not in text
            assert value.removeprefix("0x") not in text


def test_mirror_copies_zip_and_receipt(env: Env) -> None:
    pushed = image(env)
    report = env.push([pushed], mirror_url=f"file://{env.tmp / 'mirror'}")
    assert report.ok and not report.items[0].warnings
    copy = env.tmp / "mirror" / pushed.sha256
    assert (copy / pushed.zip_path.name).read_bytes() == pushed.zip_path.read_bytes()
    assert json.loads((copy / "receipt.json").read_text())["confirmed"] is True


def test_report_json_shape(env: Env) -> None:
    report: PushReport = env.push([image(env)])
    data = report.to_json()
    assert data["ok"] and data["exit_code"] == 0
    model = data["models"][0]
    assert model["status"] == "pushed" and model["verified"] and model["r2_key"]


def test_unreachable_chain_in_preflight_uploads_nothing(env: Env) -> None:
    class Unreachable(FailingChain):
        def is_registered(self, hotkey_ss58: str, netuid: int) -> bool:
            raise ChainUnavailable("chain: ConnectionRefusedError")

    with pytest.raises(TransportError, match="nothing was uploaded"):
        env.push([image(env)], chain=Unreachable(env.chain, ChainUnavailable("x")))
    assert env.server.calls == {}


def test_hotkey_shows_only_public_facts(env: Env) -> None:
    from gasbuild.publish.wallet import load_hotkey

    hotkey = load_hotkey("miner", "img", str(env.wallets))
    secrets = json.loads((env.wallets / "miner" / "hotkeys" / "img").read_text())
    for text in (repr(hotkey), str(hotkey)):
        assert env.addresses["img"] in text
        for key in ("secretPhrase", "secretSeed", "privateKey"):
            assert secrets[key] not in text
            assert secrets[key].removeprefix("0x") not in text


# -- the burn: BitMind's flow, and never spent twice -----------------------------------------


def video_on_img(env: Env, payload: bytes = b"v") -> PushItem:
    return item(env.tmp / "dist", "video", "img", payload)


def spend_free_submission(env: Env) -> None:
    assert env.push([image(env)]).ok


def coldkey(env: Env) -> str:
    from bittensor_wallet import Wallet

    return str(Wallet(name="miner", path=str(env.wallets)).coldkeypub.ss58_address)


def burns(env: Env) -> BurnStore:
    return BurnStore(env.tmp / ".gasbuild")


def never(modality: str, quote: BurnQuote) -> None:
    raise AssertionError(f"no burn should be offered ({modality}: {quote})")


def test_second_model_is_refused_with_the_burn_explanation(env: Env) -> None:
    spend_free_submission(env)
    report = env.push([video_on_img(env)])
    assert isinstance(report.error, BurnRequired) and report.error.exit_code == 1
    text = str(report.error)
    assert "This registration has already used its one submission" in text  # the service's words
    assert "0.5 TAO worth of subnet-34 alpha" in text
    assert "gasbuild burn --modality video" in text and "--burn-receipt video=" in text
    assert env.server.total_confirmations == 1 and env.server.calls["put"] == 1
    assert MemoryBurner(env.chain).burns() == []


@pytest.mark.parametrize(
    "words",
    [
        "This registration has already used its one submission",
        "This registration has already used its free submission. Burn 0.5 TAO",
        "burn_tx_hash and burn_block are required for another model",
        "Another model costs 0.5 TAO of SN34 alpha",
        "Hotkey already used its slot",
    ],
)
def test_bitminds_words_for_a_used_submission(env: Env, words: str) -> None:
    spend_free_submission(env)
    env.server.used_text = words
    report = env.push([video_on_img(env)])
    assert isinstance(report.error, BurnRequired) and words in str(report.error)


def test_given_burn_waits_until_the_service_asks_for_one(env: Env) -> None:
    report = env.push([image(env)], burn_receipts={"image": BurnReceipt(TX, 5)})
    assert report.ok, report.error
    assert all("burn_tx_hash" not in body for body in env.server.bodies)  # the free one covered it
    record = burns(env).load(TX)
    assert record is not None and record.status == "unspent" and record.block == 5
    # a later model on the hotkey uses the saved burn without being given it again
    video = video_on_img(env)
    assert env.push([video]).ok
    assert env.server.bodies[-1]["burn_tx_hash"] == TX
    record = burns(env).load(TX)
    assert record is not None and record.status == "spent" and record.used_by == video.sha256
    assert isinstance(record.model_id, int)


def test_a_spent_burn_is_refused_before_anything_is_sent(env: Env) -> None:
    spend_free_submission(env)
    assert env.push([video_on_img(env)], burn_receipts={"video": BurnReceipt(TX, 5)}).ok
    calls = dict(env.server.calls)
    audio = item(env.tmp / "dist", "audio", "img", b"a")
    with pytest.raises(UsageError, match="already spent") as raised:
        env.push([audio], burn_receipts={"audio": BurnReceipt(TX, 5)})
    assert raised.value.exit_code == 2
    assert env.server.calls == calls and env.server.total_confirmations == 2


def test_a_burn_the_service_reports_used_is_spent_and_replaced(env: Env) -> None:
    spend_free_submission(env)
    env.server.spent_burns.add(TX)  # used by some other upload
    asked: list[tuple[str, BurnQuote]] = []
    video = video_on_img(env)
    report = env.push(
        [video],
        burn_receipts={"video": BurnReceipt(TX, 5)},
        burn=True,
        approve_burn=lambda modality, quote: asked.append((modality, quote)),
    )
    assert report.ok, report.error
    made = MemoryBurner(env.chain).burns()
    assert len(made) == 1 and len(asked) == 1
    new_tx = normalise_tx_hash(made[0]["tx_hash"])
    sent = [body.get("burn_tx_hash") for body in env.server.bodies[1:]]
    assert sent == [None, TX, new_tx]
    old = burns(env).load(TX)
    assert old is not None and old.status == "spent" and "already been used" in (old.note or "")
    assert env.server.confirmations[env.addresses["img"]] == 2


def test_burn_is_offered_only_when_the_service_asks(env: Env) -> None:
    report = env.push([image(env)], burn=True, approve_burn=never)
    assert report.ok and MemoryBurner(env.chain).burns() == []


def test_burn_made_after_asking_recorded_and_pushed(env: Env) -> None:
    spend_free_submission(env)
    asked: list[tuple[str, BurnQuote]] = []
    events = RecordingEvents()
    video = video_on_img(env)
    report = env.push(
        [video],
        events=events,
        burn=True,
        approve_burn=lambda modality, quote: asked.append((modality, quote)),
    )
    assert report.ok, report.error
    [(modality, quote)] = asked
    assert modality == "video" and quote.coldkey_ss58 == coldkey(env)
    assert quote.hotkey_ss58 == env.addresses["img"] and quote.netuid == 34
    assert "0.5 TAO worth of subnet-34 alpha" in quote.describe()
    assert coldkey(env) in quote.describe()
    [made] = MemoryBurner(env.chain).burns()
    assert made["coldkey"] == coldkey(env) and made["hotkey"] == env.addresses["img"]
    tx = normalise_tx_hash(made["tx_hash"])
    assert env.server.bodies[-1]["burn_tx_hash"] == tx
    assert env.server.bodies[-1]["burn_block"] == made["block"]
    record = burns(env).load(tx)
    assert record is not None and (record.status, record.source) == ("spent", "burned")
    assert record.coldkey_ss58 == coldkey(env) and record.used_by == video.sha256
    assert any(f"burned in block {made['block']}" in line for line in events.infos)
    # nothing of the coldkey but its public address is written or said
    secrets = json.loads((env.wallets / "miner" / "coldkey").read_text())
    written = [p.read_text() for p in (env.tmp / ".gasbuild").rglob("*.json")]
    written += [env.chain.path.read_text() if env.chain.path else ""]
    written += events.infos + events.warnings + [quote.describe(), repr(quote)]
    for key in ("secretPhrase", "secretSeed", "privateKey"):
        for text in written:
            assert secrets[key].removeprefix("0x") not in text
    # a re-run uploads nothing and burns nothing
    calls = dict(env.server.calls)
    again = env.push([video], burn=True, approve_burn=never)
    assert again.ok and again.items[0].status == "already-pushed"
    assert env.server.calls == calls and len(MemoryBurner(env.chain).burns()) == 1


def test_declined_burn_burns_nothing(env: Env) -> None:
    spend_free_submission(env)

    def decline(modality: str, quote: BurnQuote) -> None:
        raise BurnDeclined(f"{modality}: burn declined; nothing was burned")

    report = env.push([video_on_img(env)], burn=True, approve_burn=decline)
    assert isinstance(report.error, BurnDeclined)
    assert MemoryBurner(env.chain).burns() == []
    assert burns(env).records(env.addresses["img"], 34) == []
    assert env.server.total_confirmations == 1


class DroppedBurn(MemoryBurner):
    """The burn is signed and sent, then the connection drops: its outcome is unknown."""

    def burn(self, hotkey: Any, quote: BurnQuote, on_signed: Any) -> BurnReceipt:
        on_signed("ef" * 32)
        raise BurnOutcomeUnknown("the burn was sent but its outcome is unknown (closed)")


class RefusedBurn(MemoryBurner):
    def burn(self, hotkey: Any, quote: BurnQuote, on_signed: Any) -> BurnReceipt:
        on_signed("aa" * 32)
        raise BurnFailed("the chain refused the burn: NotEnoughStake")


def test_unknown_burn_outcome_blocks_another_burn(env: Env) -> None:
    spend_free_submission(env)
    video = video_on_img(env)
    first = env.push([video], burn=True, burner=DroppedBurn(env.chain))
    assert isinstance(first.error, BurnOutcomeUnknown)
    record = burns(env).load("ef" * 32)
    assert record is not None and record.status == "pending"
    second = env.push([video], burn=True, approve_burn=never)
    assert isinstance(second.error, PublishError) and "outcome is unknown" in str(second.error)
    assert MemoryBurner(env.chain).burns() == []
    # looked up on an explorer: it landed in block 42
    third = env.push([video], burn_receipts={"video": BurnReceipt.of("0x" + "EF" * 32, 42)})
    assert third.ok, third.error
    record = burns(env).load("ef" * 32)
    assert record is not None and record.status == "spent" and record.block == 42
    assert env.server.total_confirmations == 2


def test_refused_burn_is_not_reused(env: Env) -> None:
    spend_free_submission(env)
    video = video_on_img(env)
    first = env.push([video], burn=True, burner=RefusedBurn(env.chain))
    assert isinstance(first.error, BurnFailed)
    record = burns(env).load("aa" * 32)
    assert record is not None and record.status == "failed"
    second = env.push([video], burn=True)
    assert second.ok, second.error
    assert env.server.bodies[-1]["burn_tx_hash"] != "aa" * 32


def test_saved_burn_is_reused_after_a_failed_upload(env: Env) -> None:
    spend_free_submission(env)
    env.server.fault("put", "reset", "reset", "reset")
    video = video_on_img(env)
    first = env.push([video], burn=True)
    assert isinstance(first.error, TransportError)
    [made] = MemoryBurner(env.chain).burns()
    tx = normalise_tx_hash(made["tx_hash"])
    record = burns(env).load(tx)
    assert record is not None and record.status == "unspent" and record.used_by == video.sha256
    second = env.push([video], burn=True, approve_burn=never)
    assert second.ok, second.error
    assert len(MemoryBurner(env.chain).burns()) == 1
    assert env.server.bodies[-1]["burn_tx_hash"] == tx
    assert env.server.confirmations[env.addresses["img"]] == 2


def test_a_burn_held_by_an_unconfirmed_upload_is_not_lent_to_another(env: Env) -> None:
    spend_free_submission(env)
    env.server.fault("confirm", "500", "500", "500")
    video = video_on_img(env)
    assert isinstance(
        env.push([video], burn_receipts={"video": BurnReceipt(TX, 5)}).error, TransportError
    )
    audio = item(env.tmp / "dist", "audio", "img", b"a")
    report = env.push([audio])  # TX may still be confirmed by the video upload
    assert isinstance(report.error, BurnRequired)
    assert all(body.get("burn_tx_hash") != TX for body in env.server.bodies[3:])
    assert env.push([video]).ok  # the video upload confirms with it
    assert env.server.confirmations[env.addresses["img"]] == 2


# -- the service's values and words ------------------------------------------------------------


def test_model_id_goes_back_as_received(env: Env) -> None:
    pushed = image(env)
    assert env.push([pushed]).ok
    [sent] = env.server.confirm_bodies
    assert sent["model_id"] == 9 and type(sent["model_id"]) is int
    stored = json.loads((env.tmp / ".gasbuild" / "receipts" / f"{pushed.sha256}.json").read_text())
    assert stored["model_id"] == 9


def test_a_version_1_receipt_with_a_stringified_id_confirms(env: Env) -> None:
    env.server.fault("confirm", "500", "500", "500")
    pushed = image(env)
    assert isinstance(env.push([pushed]).error, TransportError)
    path = env.tmp / ".gasbuild" / "receipts" / f"{pushed.sha256}.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "model_id": str(data["model_id"]), "version": 1}))
    assert env.push([pushed]).ok
    assert [type(body["model_id"]) for body in env.server.confirm_bodies] == [int]
    assert env.server.total_confirmations == 1


def test_a_txhash_409_is_not_taken_for_a_duplicate(env: Env) -> None:
    env.server.fault("put", "reset", "reset", "reset")
    pushed = image(env)
    assert isinstance(env.push([pushed]).error, TransportError)
    receipt = env.receipt(pushed.sha256)
    assert receipt is not None and receipt.r2_key  # a storage key, not uploaded
    env.server.fault("presigned", "409txhash")
    report = env.push([pushed])
    assert isinstance(report.error, PublishError)
    assert not isinstance(report.error, AlreadyUploaded)
    assert "tx hash already exists" in str(report.error)
    receipt = env.receipt(pushed.sha256)
    assert receipt is not None and not receipt.confirmed and not receipt.committed


def test_a_held_reservation_gives_up_with_one_clear_line(env: Env) -> None:
    env.server.fault("presigned", *["409progress"] * 30)
    report = env.push([image(env)])
    error = report.error
    assert isinstance(error, SubmissionInProgress) and not error.retryable
    assert error.exit_code == 1
    text = str(error)
    assert "A submission is already in progress for this registration" in text
    assert "wait a few minutes" in text and "\n" not in text
    assert env.server.calls.get("put", 0) == 0 and env.server.total_confirmations == 0
    assert 0 < sum(env.clock.sleeps) <= 60  # the step's budget


def test_storage_key_too_long_for_the_chain(env: Env) -> None:
    env.server.key_prefix = "k" * 100
    pushed = image(env)
    report = env.push([pushed])
    assert report.ok, report.error  # confirmed: the push counts
    [warning] = report.items[0].warnings
    assert "too long for the chain's 128-byte commitment field" in warning
    assert "--commit-only" not in warning
    assert env.chain.get_commitment(env.addresses["img"], 34) is None
    receipt = env.receipt(pushed.sha256)
    assert receipt is not None and receipt.confirmed and not receipt.committed
