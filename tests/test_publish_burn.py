"""The burn seam (quote, sign, send, block of inclusion) and the burn records, offline.

BittensorBurner runs against a stand-in subtensor whose calls are bound to the installed
bittensor 10.4 / async-substrate-interface signatures, so a call the SDK would not accept fails
here. No burn is ever made for real.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("bittensor_wallet")

from fakes.publishing import make_wallet
from gasbuild.errors import PublishError, UserError
from gasbuild.publish.burn import (
    BittensorBurner,
    BurnFailed,
    BurnOutcomeUnknown,
    BurnQuote,
    MemoryBurner,
    alpha_for_fee,
    burner_from_env,
)
from gasbuild.publish.chain import MemoryChain
from gasbuild.publish.gasapi import BurnReceipt
from gasbuild.publish.receipts import FORMAT_VERSION, BurnRecord, BurnStore, Receipt, ReceiptStore
from gasbuild.publish.wallet import Hotkey, coldkey_address, load_hotkey

TX_BYTES = bytes.fromhex("AB" * 32)


@pytest.fixture(scope="module")
def hotkey(tmp_path_factory: pytest.TempPathFactory) -> Hotkey:
    path = tmp_path_factory.mktemp("wallets")
    make_wallet(path, "miner", ("img",))
    return load_hotkey("miner", "img", str(path))


class Substrate:
    def __init__(self, receipt: Any = None, error: Exception | None = None) -> None:
        self.receipt = receipt
        self.error = error
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def create_signed_extrinsic(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("create_signed_extrinsic", args, kwargs))
        return SimpleNamespace(extrinsic_hash=TX_BYTES)

    def submit_extrinsic(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("submit_extrinsic", args, kwargs))
        if self.error is not None:
            raise self.error
        return self.receipt

    def get_block_number(self, block_hash: str | None = None) -> int:
        self.calls.append(("get_block_number", (block_hash,), {}))
        return 5_000_123


class Subtensor:
    """The bittensor 10.4 ``Subtensor`` methods a burn uses; every call is recorded."""

    def __init__(
        self, *, price: float = 0.5, stake_rao: int = 0, free_tao: float = 2.0, **substrate: Any
    ) -> None:
        self.price, self.stake_rao, self.free_tao = price, stake_rao, free_tao
        self.substrate = Substrate(**substrate)
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.refuse_params: set[str] = set()

    def get_subnet_price(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("get_subnet_price", args, kwargs))
        return SimpleNamespace(tao=self.price)

    def get_stake(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("get_stake", args, kwargs))
        return SimpleNamespace(rao=self.stake_rao)

    def get_balance(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("get_balance", args, kwargs))
        return SimpleNamespace(tao=self.free_tao)

    def compose_call(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("compose_call", args, kwargs))
        if self.refuse_params & set(args[2]):
            raise ValueError(f"unknown parameter in {sorted(args[2])}")
        return {"call": args[1], "params": args[2]}


def assert_sdk_accepts(fake: Subtensor) -> None:
    bittensor = pytest.importorskip("bittensor")
    sync = pytest.importorskip("async_substrate_interface.sync_substrate")
    for name, args, kwargs in fake.calls:
        inspect.signature(getattr(bittensor.Subtensor, name)).bind(None, *args, **kwargs)
    for name, args, kwargs in fake.substrate.calls:
        inspect.signature(getattr(sync.SubstrateInterface, name)).bind(None, *args, **kwargs)


def landed(block_number: int | None = None, ok: bool = True) -> Any:
    return SimpleNamespace(
        is_success=ok,
        block_number=block_number,
        block_hash="0xb10c",
        error_message={"name": "NotEnoughStakeToWithdraw", "docs": "not enough stake"},
    )


# -- the quote --------------------------------------------------------------------------------


def test_alpha_for_the_fee_has_slack() -> None:
    assert alpha_for_fee(0.5) == (1_000_000_000, 1_020_000_001)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(PublishError, match="alpha price"):
            alpha_for_fee(bad)


def test_quote_burns_staked_alpha_when_there_is_enough(hotkey: Hotkey) -> None:
    fake = Subtensor(price=0.5, stake_rao=5_000_000_000)
    quote = BittensorBurner(34, subtensor=fake).quote(hotkey, 34)
    assert (quote.method, quote.amount_rao) == ("burn_alpha", 1_020_000_001)
    assert quote.coldkey_ss58 == coldkey_address(hotkey) != hotkey.ss58_address
    text = quote.describe()
    assert "0.5 TAO worth of subnet-34 alpha" in text and quote.coldkey_ss58 in text
    assert "cannot be undone" in text
    assert [c[0] for c in fake.calls] == ["get_subnet_price", "get_stake"]
    assert_sdk_accepts(fake)


def test_quote_caps_the_slack_at_the_stake(hotkey: Hotkey) -> None:
    fake = Subtensor(price=0.5, stake_rao=1_000_000_000)  # exactly the fee, no slack
    quote = BittensorBurner(34, subtensor=fake).quote(hotkey, 34)
    assert (quote.method, quote.amount_rao) == ("burn_alpha", 1_000_000_000)


def test_quote_buys_and_burns_with_free_tao_otherwise(hotkey: Hotkey) -> None:
    fake = Subtensor(price=0.5, stake_rao=10, free_tao=0.75)
    quote = BittensorBurner(34, subtensor=fake).quote(hotkey, 34)
    assert (quote.method, quote.amount_rao) == ("add_stake_burn", 500_000_000)
    assert "spends 0.5 free TAO" in quote.describe()
    assert_sdk_accepts(fake)


def test_quote_without_the_means_names_the_coldkey(hotkey: Hotkey) -> None:
    fake = Subtensor(price=0.5, stake_rao=10, free_tao=0.1)
    with pytest.raises(UserError) as raised:
        BittensorBurner(34, subtensor=fake).quote(hotkey, 34)
    assert coldkey_address(hotkey) in str(raised.value) and raised.value.exit_code == 2


def test_quote_when_the_chain_fails_says_nothing_was_burned(hotkey: Hotkey) -> None:
    class Down(Subtensor):
        def get_subnet_price(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("websocket closed")

    with pytest.raises(PublishError, match="nothing was burned"):
        BittensorBurner(34, subtensor=Down()).quote(hotkey, 34)


# -- the burn ---------------------------------------------------------------------------------


def quote_for(hotkey: Hotkey, method: str = "burn_alpha", amount: int = 1_020_000_001) -> BurnQuote:
    return BurnQuote(34, hotkey.ss58_address, coldkey_address(hotkey), method, amount, 0.5)


def test_burn_signs_records_then_sends_and_reads_the_block(hotkey: Hotkey) -> None:
    fake = Subtensor(receipt=landed(block_number=None))
    order: list[str] = []

    def on_signed(tx_hash: str) -> None:
        order.append(tx_hash)
        assert [c[0] for c in fake.substrate.calls] == ["create_signed_extrinsic"]

    receipt = BittensorBurner(34, subtensor=fake).burn(hotkey, quote_for(hotkey), on_signed)
    assert receipt == BurnReceipt("ab" * 32, 5_000_123)  # 10.4 leaves block_number empty
    assert order == ["ab" * 32]
    [compose] = [c for c in fake.calls if c[0] == "compose_call"]
    assert compose[1] == (
        "SubtensorModule",
        "burn_alpha",
        {"hotkey": hotkey.ss58_address, "netuid": 34, "amount": 1_020_000_001},
    )
    create = fake.substrate.calls[0][2]
    assert create["era"] == {"period": 64}
    assert create["keypair"].ss58_address == coldkey_address(hotkey)  # signed by the coldkey
    submit = fake.substrate.calls[1][2]
    assert submit == {"wait_for_inclusion": True, "wait_for_finalization": True}
    assert_sdk_accepts(fake)


def test_burn_alpha_parameter_name_of_older_runtimes(hotkey: Hotkey) -> None:
    fake = Subtensor(receipt=landed(block_number=77))
    fake.refuse_params = {"amount"}
    receipt = BittensorBurner(34, subtensor=fake).burn(hotkey, quote_for(hotkey), lambda t: None)
    assert receipt.block == 77
    params = [c[1][2] for c in fake.calls if c[0] == "compose_call"]
    assert [sorted(p) for p in params] == [
        ["amount", "hotkey", "netuid"],
        ["alpha_amount", "hotkey", "netuid"],
    ]


def test_add_stake_burn_call(hotkey: Hotkey) -> None:
    fake = Subtensor(receipt=landed(block_number=12))
    quote = quote_for(hotkey, "add_stake_burn", 500_000_000)
    BittensorBurner(34, subtensor=fake).burn(hotkey, quote, lambda t: None)
    [compose] = [c for c in fake.calls if c[0] == "compose_call"]
    assert compose[1][1:] == (
        "add_stake_burn",
        {"hotkey": hotkey.ss58_address, "netuid": 34, "amount": 500_000_000, "limit": None},
    )


def test_a_dropped_connection_after_sending_is_an_unknown_outcome(hotkey: Hotkey) -> None:
    fake = Subtensor(error=ConnectionResetError("peer closed"))
    signed: list[str] = []
    with pytest.raises(BurnOutcomeUnknown) as raised:
        BittensorBurner(34, subtensor=fake).burn(hotkey, quote_for(hotkey), signed.append)
    assert signed == ["ab" * 32]
    assert "ab" * 32 in str(raised.value) and "--burn-receipt" in str(raised.value)


def test_a_refused_burn_is_a_definite_failure(hotkey: Hotkey) -> None:
    fake = Subtensor(receipt=landed(ok=False))
    with pytest.raises(BurnFailed, match="NotEnoughStakeToWithdraw"):
        BittensorBurner(34, subtensor=fake).burn(hotkey, quote_for(hotkey), lambda t: None)


def test_no_coldkey_here_is_a_user_error(tmp_path: Path) -> None:
    make_wallet(tmp_path, "miner", ("img",))
    (tmp_path / "miner" / "coldkey").unlink()
    hot = load_hotkey("miner", "img", str(tmp_path))
    fake = Subtensor(receipt=landed(1))
    with pytest.raises(UserError, match="coldkey") as raised:
        BittensorBurner(34, subtensor=fake).burn(hot, quote_for(hot), lambda t: None)
    assert raised.value.exit_code == 2 and "--burn-receipt" in str(raised.value)
    assert fake.substrate.calls == []


# -- the stand-in, and choosing one -----------------------------------------------------------


def test_memory_burner_records_burns_on_the_chain_file(tmp_path: Path, hotkey: Hotkey) -> None:
    chain = MemoryChain(tmp_path / "chain.json")
    burner = MemoryBurner(chain)
    quote = burner.quote(hotkey, 34)
    assert quote.coldkey_ss58 == coldkey_address(hotkey) and quote.method == "burn_alpha"
    signed: list[str] = []
    first = burner.burn(hotkey, quote, signed.append)
    second = burner.burn(hotkey, quote, signed.append)
    assert signed == [first.tx_hash, second.tx_hash] and first.tx_hash != second.tx_hash
    assert second.block == first.block + 1
    stored = json.loads((tmp_path / "chain.json").read_text())["burns"]
    assert [b["block"] for b in stored] == [first.block, second.block]
    assert stored[0]["tx_hash"] == "0x" + first.tx_hash  # as an SDK prints it
    assert isinstance(
        burner_from_env(34, env={"GASBUILD_CHAIN": f"memory:{tmp_path / 'c'}"}), MemoryBurner
    )
    assert isinstance(burner_from_env(34, env={}), BittensorBurner)
    assert burner_from_env(34, env={}).network == "finney"  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="GASBUILD_CHAIN"):
        burner_from_env(34, env={"GASBUILD_CHAIN": "redis:x"})


# -- records ----------------------------------------------------------------------------------


def test_burn_records_per_hotkey_oldest_first(tmp_path: Path) -> None:
    store = BurnStore(tmp_path)
    for tx, hot, status in [
        ("b" * 64, "5H", "unspent"),
        ("a" * 64, "5H", "pending"),
        ("c" * 64, "5X", "unspent"),
    ]:
        store.save(BurnRecord(tx, hot, 34, None if status == "pending" else 3, status))
    assert [r.tx_hash for r in store.records("5H", 34)] == ["b" * 64, "a" * 64]
    assert [r.tx_hash for r in store.unspent("5H", 34)] == ["b" * 64]
    assert [r.tx_hash for r in store.pending("5H", 34)] == ["a" * 64]
    assert store.records("5H", 35) == []
    assert store.unspent("5H", 34)[0].receipt() == BurnReceipt("b" * 64, 3)
    with pytest.raises(ValueError):
        store.pending("5H", 34)[0].receipt()


def test_an_unreadable_burn_record_is_an_error_not_absent(tmp_path: Path) -> None:
    store = BurnStore(tmp_path)
    store.save(BurnRecord("a" * 64, "5H", 34, 3))
    store.path("a" * 64).write_text("{torn")
    with pytest.raises(UserError, match="unreadable burn record"):
        store.records("5H", 34)


def test_receipts_keep_the_model_id_type(tmp_path: Path) -> None:
    store = ReceiptStore(tmp_path)
    for model_id in (9, "m-9"):
        store.save(Receipt("a" * 64, "image", "5H", 34, 1, model_id=model_id))
        loaded = store.load("a" * 64)
        assert loaded is not None and loaded.model_id == model_id
        assert type(loaded.model_id) is type(model_id)
    path = store.path("a" * 64)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "model_id": "9", "version": 1}))  # gasbuild before 2
    loaded = store.load("a" * 64)
    assert loaded is not None and loaded.model_id == 9 and loaded.version == FORMAT_VERSION
