"""The commitment string, MemoryChain's rules, and the bittensor adapters (offline)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fakes.publishing import FakeClock
from gasbuild.errors import TransportError, UserError
from gasbuild.publish.chain import (
    BittensorChain,
    ChainUnavailable,
    CommitmentTooLong,
    Deadlines,
    MemoryChain,
    NotRegistered,
    QuotaExceeded,
    chain_failure,
    chain_from_env,
    commitment_hash,
    commitment_string,
    endpoint_url,
    inclusion_block,
    is_socket_failure,
    network_for,
    unreachable,
    with_deadline,
)
from gasbuild.publish.wallet import Hotkey

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"


def signer(ss58: str = ALICE) -> Hotkey:
    return Hotkey.from_keypair(SimpleNamespace(ss58_address=ss58), wallet="wallet-object")


# -- commitment string --------------------------------------------------------------------


def test_commitment_string_exact() -> None:
    data = commitment_string("models/5Grwva/image/abc.zip", "a" * 64, ALICE)
    assert data == '{"key":"models/5Grwva/image/abc.zip","hash":"25f7a7522f6c7347"}'
    assert commitment_hash("a" * 64, ALICE) == "25f7a7522f6c7347"
    assert json.loads(data) == {"key": "models/5Grwva/image/abc.zip", "hash": "25f7a7522f6c7347"}


def test_commitment_string_at_most_128_bytes() -> None:
    overhead = len(commitment_string("", "a" * 64, ALICE))
    assert len(commitment_string("k" * (128 - overhead), "a" * 64, ALICE)) == 128
    with pytest.raises(CommitmentTooLong, match="129 bytes") as raised:
        commitment_string("k" * (129 - overhead), "a" * 64, ALICE)
    text = str(raised.value)
    assert "storage key 'kkk" in text
    assert "too long for the chain's 128-byte commitment field" in text
    assert not raised.value.retryable


def test_a_too_long_commitment_never_reaches_the_sdk() -> None:
    fake = FakeSubtensor10(response=None)
    chain = BittensorChain(34, client=fake, major=10)
    data = '{"key":"' + "k" * 120 + '","hash":"25f7a7522f6c7347"}'
    with pytest.raises(CommitmentTooLong, match="128-byte commitment field"):
        chain.set_commitment(signer(), 34, data)
    assert fake.calls == []


def test_network_by_netuid() -> None:
    assert network_for(34) == "finney"
    assert network_for(340) == "test"
    assert network_for(34, "ws://127.0.0.1:9944") == "ws://127.0.0.1:9944"


def test_chain_from_env(tmp_path: Path) -> None:
    chain = chain_from_env(34, env={"GASBUILD_CHAIN": f"memory:{tmp_path / 'c.json'}"})
    assert isinstance(chain, MemoryChain)
    real = chain_from_env(34, env={})
    assert isinstance(real, BittensorChain) and real.network == "finney"
    with pytest.raises(UserError, match="GASBUILD_CHAIN"):
        chain_from_env(34, env={"GASBUILD_CHAIN": "redis:x"})


def test_error_mapping() -> None:
    assert isinstance(chain_failure("AccountNotAllowedCommit", lambda: None), NotRegistered)
    quota = chain_failure("Module error: SpaceLimitExceeded", lambda: 42.0)
    assert isinstance(quota, QuotaExceeded) and quota.wait_seconds == 42.0
    other = chain_failure("Connection refused", lambda: None)
    assert isinstance(other, ChainUnavailable) and other.retryable
    assert not NotRegistered("x").retryable


# -- MemoryChain -----------------------------------------------------------------------------


def test_memory_chain_one_commitment_per_hotkey() -> None:
    chain = MemoryChain(registered=[ALICE, BOB])
    first = chain.set_commitment(signer(), 34, '{"key":"a"}')
    second = chain.set_commitment(signer(), 34, '{"key":"b"}')
    chain.set_commitment(signer(BOB), 34, '{"key":"c"}')
    assert second > first
    assert chain.get_commitment(ALICE, 34) == '{"key":"b"}'
    assert chain.get_commitment(BOB, 34) == '{"key":"c"}'
    assert chain.get_commitment(ALICE, 35) is None


def test_memory_chain_refuses_unregistered_and_long() -> None:
    chain = MemoryChain(registered=[ALICE])
    assert chain.is_registered(ALICE, 34) and not chain.is_registered(BOB, 34)
    with pytest.raises(NotRegistered):
        chain.set_commitment(signer(BOB), 34, "x")
    with pytest.raises(CommitmentTooLong):
        chain.set_commitment(signer(), 34, "x" * 129)
    chain.set_commitment(signer(), 34, "x" * 128)


def test_memory_chain_quota_counts_at_least_100_bytes() -> None:
    clock = FakeClock(now=0.0)
    chain = MemoryChain(registered=[ALICE], quota_bytes=250, epoch_seconds=100, clock=clock.time)
    chain.set_commitment(signer(), 34, "x")  # counts 100
    chain.set_commitment(signer(), 34, "y")  # 200
    clock.now = 30.0
    with pytest.raises(QuotaExceeded) as raised:
        chain.set_commitment(signer(), 34, "z")
    assert raised.value.wait_seconds == pytest.approx(70.0)
    assert chain.get_commitment(ALICE, 34) == "y"
    clock.now = 100.0  # the next epoch resets usage
    chain.set_commitment(signer(), 34, "z")
    assert chain.get_commitment(ALICE, 34) == "z"


def test_memory_chain_file_is_shared_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"registered": [ALICE]}))
    one, two = MemoryChain(path), MemoryChain(path)
    assert one.is_registered(ALICE, 34) and not one.is_registered(BOB, 34)
    block = one.set_commitment(signer(), 34, "hello")
    assert two.get_commitment(ALICE, 34) == "hello"
    stored = json.loads(path.read_text())
    assert stored["commitments"]["34"][ALICE] == {"data": "hello", "block": block}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.json"]  # no temp files left


def test_memory_chain_registered_per_netuid(tmp_path: Path) -> None:
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"registered": {"34": [ALICE]}}))
    chain = MemoryChain(path)
    assert chain.is_registered(ALICE, 34) and not chain.is_registered(ALICE, 1)


def test_memory_chain_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "chain.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match="memory chain"):
        MemoryChain(path).is_registered(ALICE, 34)


# -- bittensor 10.x adapter, against the installed SDK's real signatures ---------------------


class FakeSubtensor10:
    """Mimics the 10.4 Subtensor methods the adapter uses; records every call."""

    def __init__(self, response: Any = None, registered: bool = True) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.response = response
        self.registered = registered
        self.stored: str = ""

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def is_hotkey_registered(self, *args: Any, **kwargs: Any) -> bool:
        self._record("is_hotkey_registered", *args, **kwargs)
        return self.registered

    def set_commitment(self, *args: Any, **kwargs: Any) -> Any:
        self._record("set_commitment", *args, **kwargs)
        if isinstance(self.response, Exception):
            raise self.response
        self.stored = args[2]
        return self.response

    def get_uid_for_hotkey_on_subnet(self, *args: Any, **kwargs: Any) -> int | None:
        self._record("get_uid_for_hotkey_on_subnet", *args, **kwargs)
        return 7 if self.registered else None

    def get_commitment(self, *args: Any, **kwargs: Any) -> str:
        self._record("get_commitment", *args, **kwargs)
        return self.stored

    def blocks_until_next_epoch(self, *args: Any, **kwargs: Any) -> int:
        self._record("blocks_until_next_epoch", *args, **kwargs)
        return 9


def _assert_calls_bind(fake: FakeSubtensor10) -> None:
    bittensor = pytest.importorskip("bittensor")
    for name, args, kwargs in fake.calls:
        method = getattr(bittensor.Subtensor, name)
        inspect.signature(method).bind(None, *args, **kwargs)


def test_v10_adapter_round_trip() -> None:
    types = pytest.importorskip("bittensor.core.types")
    receipt = SimpleNamespace(block_number=1234)
    ok = types.ExtrinsicResponse(success=True, message="ok", extrinsic_receipt=receipt)
    fake = FakeSubtensor10(response=ok)
    chain = BittensorChain(34, client=fake, major=10)
    assert chain.network == "finney"
    assert chain.is_registered(ALICE, 34)
    assert chain.set_commitment(signer(), 34, '{"key":"k"}') == 1234
    assert chain.get_commitment(ALICE, 34) == '{"key":"k"}'
    assert fake.calls[1][1][0] == "wallet-object"  # the wallet, as set_commitment wants
    _assert_calls_bind(fake)


def test_v10_adapter_reads_the_block_of_inclusion() -> None:
    """bittensor 10.4's receipt after wait_for_inclusion has a block hash, no block number."""
    types = pytest.importorskip("bittensor.core.types")
    receipts = pytest.importorskip("async_substrate_interface.sync_substrate")

    class Substrate:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def get_block_number(self, block_hash: str) -> int:
            self.asked.append(block_hash)
            return 4_321_000

    substrate = Substrate()
    receipt = receipts.ExtrinsicReceipt(
        substrate=substrate, extrinsic_hash="0x" + "ab" * 32, block_hash="0xb10c", finalized=True
    )
    assert receipt.block_number is None  # what left "block None" in the receipts
    ok = types.ExtrinsicResponse(success=True, message="ok", extrinsic_receipt=receipt)
    fake = FakeSubtensor10(response=ok)
    fake.substrate = substrate  # type: ignore[attr-defined]
    assert BittensorChain(34, client=fake, major=10).set_commitment(signer(), 34, "x") == 4_321_000
    assert substrate.asked == ["0xb10c"]
    _assert_calls_bind(fake)


def test_inclusion_block_without_anything_to_read_it_from() -> None:
    assert inclusion_block(SimpleNamespace(block_number=7)) == 7
    assert inclusion_block(SimpleNamespace(block_number=None, block_hash=None)) is None
    broken = SimpleNamespace(get_block_number=lambda h: (_ for _ in ()).throw(OSError("gone")))
    assert inclusion_block(SimpleNamespace(block_number=None, block_hash="0x1"), broken) is None


def test_v10_adapter_maps_failures() -> None:
    types = pytest.importorskip("bittensor.core.types")
    refused = types.ExtrinsicResponse(
        success=False, message="Subtensor returned `AccountNotAllowedCommit(Module)` error"
    )
    with pytest.raises(NotRegistered):
        BittensorChain(34, client=FakeSubtensor10(refused), major=10).set_commitment(
            signer(), 34, "x"
        )
    full = types.ExtrinsicResponse(success=False, message="SpaceLimitExceeded")
    fake = FakeSubtensor10(full)
    with pytest.raises(QuotaExceeded) as raised:
        BittensorChain(34, client=fake, major=10).set_commitment(signer(), 34, "x")
    assert raised.value.wait_seconds == 10 * 12.0
    broken = FakeSubtensor10(ConnectionError("websocket closed"))
    with pytest.raises(TransportError) as failed:
        BittensorChain(34, client=broken, major=10).set_commitment(signer(), 34, "x")
    assert failed.value.retryable
    _assert_calls_bind(fake)
    _assert_calls_bind(broken)


def test_v10_adapter_unregistered_reads() -> None:
    fake = FakeSubtensor10(registered=False)
    chain = BittensorChain(34, client=fake, major=10)
    assert not chain.is_registered(BOB, 34)
    assert chain.get_commitment(BOB, 34) is None
    _assert_calls_bind(fake)


# -- bittensor 11.x adapter (not installed here: an injected client and call builders) --------


class FakeClient11:
    def __init__(self, result: Any, uid: int | None = 3) -> None:
        self.result = result
        self.uid = uid
        self.submitted: list[tuple[Any, Any, dict[str, Any]]] = []
        self.stored: str | None = None

    def read(self, name: str, **params: Any) -> Any:
        if name == "uid":
            assert set(params) == {"hotkey_ss58", "netuid"}
            return self.uid
        if name == "commitment":
            assert set(params) == {"netuid", "hotkey_ss58"}
            return None if self.stored is None else SimpleNamespace(data=self.stored, block=5)
        if name == "blocks_until_next_epoch":
            return 4
        raise AssertionError(name)

    def block_time(self) -> float:
        return 12.0

    def submit_call(self, call: Any, wallet: Any, **kwargs: Any) -> Any:
        self.submitted.append((call, wallet, kwargs))
        if self.result.success:
            raw = next(iter(call["info"]["fields"][0].values()))
            self.stored = raw.decode()
        return self.result


class FakeCalls:
    class Commitments:
        @staticmethod
        def set_commitment(netuid: int, info: Any) -> dict[str, Any]:
            return {"module": "Commitments", "netuid": netuid, "info": info}


def test_v11_adapter_round_trip() -> None:
    client = FakeClient11(SimpleNamespace(success=True, extrinsic_id="4321-2", message=""))
    chain = BittensorChain(34, client=client, major=11, calls=FakeCalls)
    assert chain.is_registered(ALICE, 34)
    assert chain.set_commitment(signer(), 34, '{"key":"k"}') == 4321
    call, _key, options = client.submitted[0]
    assert call["info"] == {"fields": [{"Raw11": b'{"key":"k"}'}]}
    assert options == {
        "signer": "hotkey",
        "wait_for_inclusion": True,
        "wait_for_finalization": True,
    }
    assert chain.get_commitment(ALICE, 34) == '{"key":"k"}'


def test_v11_adapter_maps_failures() -> None:
    refused = SimpleNamespace(
        success=False, message="refused", error=SimpleNamespace(name="AccountNotAllowedCommit")
    )
    with pytest.raises(NotRegistered):
        BittensorChain(34, client=FakeClient11(refused), major=11, calls=FakeCalls).set_commitment(
            signer(), 34, "x"
        )
    full = SimpleNamespace(
        success=False, message="", error=SimpleNamespace(name="SpaceLimitExceeded")
    )
    with pytest.raises(QuotaExceeded) as raised:
        BittensorChain(34, client=FakeClient11(full), major=11, calls=FakeCalls).set_commitment(
            signer(), 34, "x"
        )
    assert raised.value.wait_seconds == 5 * 12.0
    assert not BittensorChain(34, client=FakeClient11(full, uid=None), major=11).is_registered(
        BOB, 34
    )


def test_unsupported_major() -> None:
    with pytest.raises(UserError, match=r"bittensor 9\.x"):
        BittensorChain(34, client=object(), major=9).is_registered(ALICE, 34)


# -- unreachable endpoints and deadlines (issue 16.3) ---------------------------------------


def test_socket_failures_read_like_the_upload_service() -> None:
    import socket

    resolved = unreachable("wss://x.invalid:443", ConnectionError(socket.gaierror(-2, "n")))
    assert str(resolved) == (
        "chain: cannot reach wss://x.invalid:443: name not resolved"
        " (retry, or --chain-endpoint URL)"
    )
    refused = OSError("wrapped")
    refused.__cause__ = ConnectionRefusedError(111, "refused")
    assert "connection refused" in str(unreachable("ws://h:1", refused))
    assert is_socket_failure(refused)
    assert not is_socket_failure(ValueError("a decoding error"))
    assert endpoint_url(network_for(34)) == "wss://entrypoint-finney.opentensor.ai:443"


def test_deadline_abandons_a_call_that_never_returns() -> None:
    import threading

    release = threading.Event()
    try:
        with pytest.raises(ChainUnavailable, match=r"did not answer \(read\) within 0.2 s") as r:
            with_deadline(lambda: release.wait(30), 0.2, "read", "ws://h:1")
        assert r.value.retryable
        with pytest.raises(ChainUnavailable, match="may still land") as c:
            with_deadline(lambda: release.wait(30), 0.2, "commit", "ws://h:1")
        assert not c.value.retryable  # a commit that overran may have landed
    finally:
        release.set()
    assert with_deadline(lambda: 7, 5, "read", "ws://h:1") == 7
    with pytest.raises(KeyError):
        with_deadline(lambda: {}["x"], 5, "read", "ws://h:1")


class HangingSubtensor(FakeSubtensor10):
    def __init__(self) -> None:
        super().__init__()
        import threading

        self.release = threading.Event()

    def is_hotkey_registered(self, *args: Any, **kwargs: Any) -> bool:
        self.release.wait(30)
        return True


def test_every_sdk_call_has_a_deadline() -> None:
    fake = HangingSubtensor()
    chain = BittensorChain(
        34, "ws://127.0.0.1:9", client=fake, major=10, deadlines=Deadlines(read=0.2)
    )
    try:
        with pytest.raises(ChainUnavailable, match=r"ws://127.0.0.1:9 did not answer"):
            chain.is_registered(ALICE, 34)
    finally:
        fake.release.set()
    broken = FakeSubtensor10(ConnectionError(ConnectionRefusedError(111, "refused")))
    with pytest.raises(ChainUnavailable, match="cannot reach wss://entrypoint-finney"):
        BittensorChain(34, client=broken, major=10).set_commitment(signer(), 34, "x")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("wss://nonexistent.invalid:443", "name not resolved"),
        ("ws://127.0.0.1:9", "connection refused"),
        ("silent", r"did not answer \(connect\) within 1 s"),
    ],
)
def test_real_sdk_against_unreachable_endpoints(endpoint: str, reason: str) -> None:
    """The installed SDK connecting to nothing: one mapped error, within the deadline."""
    import socket

    pytest.importorskip("bittensor")
    with socket.socket() as silent:  # accepts the TCP connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        if endpoint == "silent":
            endpoint = f"ws://127.0.0.1:{silent.getsockname()[1]}"
        chain = BittensorChain(34, endpoint, deadlines=Deadlines(connect=1))
        with pytest.raises(ChainUnavailable, match=reason) as raised:
            chain.get_commitment(ALICE, 34)
    assert str(raised.value).startswith("chain: ")
    assert "\n" not in str(raised.value)
