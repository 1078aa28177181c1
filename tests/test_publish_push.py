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
from gasbuild.errors import (
    CheckFailed,
    GasbuildError,
    PublishError,
    TransportError,
    UsageError,
    UserError,
)
from gasbuild.publish.chain import ChainUnavailable, MemoryChain, NotRegistered, commitment_string
from gasbuild.publish.gasapi import (
    BadSignature,
    BurnReceipt,
    BurnRequired,
    RetryPolicy,
    Timeouts,
    UploadsDisabled,
)
from gasbuild.publish.push import PushItem, PushReport, PushSettings, no_checks, push
from gasbuild.publish.receipts import ReceiptStore
from gasbuild.stages.validate.findings import Finding

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
        return push(
            items,
            self.settings(**kw),
            checker=checker,
            events=events or RecordingEvents(),
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
    upload = env.server.uploads[receipt.model_id]
    assert upload.confirmed and upload.r2_key == receipt.r2_key


# -- the fault matrix ------------------------------------------------------------------------

OK = "ok"
MATRIX: list[tuple[str, str, list[str], Any, dict[str, int]]] = [
    ("presign-500-then-ok", "presigned", ["500"], OK, {"presigned": 2, "put": 1, "confirm": 1}),
    ("presign-503-then-ok", "presigned", ["503"], OK, {"presigned": 2}),
    ("presign-429-retry-after", "presigned", ["429"], OK, {"presigned": 2}),
    ("presign-reset", "presigned", ["reset"], OK, {"presigned": 2}),
    ("presign-timeout", "presigned", ["timeout"], OK, {"presigned": 2, "put": 1}),
    ("put-reset-mid-body", "put", ["reset"], OK, {"presigned": 1, "put": 2, "confirm": 1}),
    ("put-500-then-ok", "put", ["500"], OK, {"put": 2}),
    ("put-timeout", "put", ["timeout"], OK, {"put": 2}),
    ("confirm-500-then-ok", "confirm", ["500"], OK, {"confirm": 2}),
    ("confirm-timeout-applied", "confirm", ["timeout"], OK, {"confirm": 2}),
    ("presign-409-duplicate", "presigned", ["409dup"], PublishError, {"presigned": 1, "put": 0}),
    ("presign-409-other", "presigned", ["409other"], PublishError, {"presigned": 1, "put": 0}),
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
    assert "Upload reservation conflict: another upload is in progress" in str(report.error)


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
    report = env.push(items, events=events)
    assert [r.modality for r in report.items] == ["image", "video", "audio"]
    assert [r.status for r in report.items] == ["pushed", "failed", "not-reached"]
    assert isinstance(report.error, BurnRequired)
    assert "--burn-receipt" in str(report.error)
    assert any("share hotkey 'img'" in w for w in events.warnings)
    assert env.server.total_confirmations == 1
    assert_pushed(env, items[2])


def test_burn_receipt_buys_a_second_submission(env: Env) -> None:
    items = [image(env), item(env.tmp / "dist", "video", "img", b"v")]
    report = env.push(items, burn_receipts={"video": BurnReceipt(TX, 77)})
    assert report.ok, report.error
    assert env.server.bodies[1]["burn_tx_hash"] == TX
    assert env.server.bodies[1]["burn_block"] == 77
    assert "burn_tx_hash" not in env.server.bodies[0]
    assert env.server.confirmations[env.addresses["img"]] == 2


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
