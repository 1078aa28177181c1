"""The burn that buys a further counted submission on a hotkey (SPEC §4), behind a small seam.

A hotkey's first counted submission is free; each further one needs a burn of 0.5 TAO worth of
the subnet's alpha, whose receipt (extrinsic hash and block) goes with the presign. BitMind's
client makes that burn with the coldkey after asking, and so does gasbuild: :class:`Burner`
first *quotes* (what it costs, which coldkey pays, read-only) so the question can name both,
then *burns*. The burn is the irreversible step, so its transaction hash is handed to
``on_signed`` after signing and before sending: the caller records the burn as pending, and a
burn whose outcome is unknown (the connection dropped after sending) is never followed by a
second one for the same hotkey.

:class:`BittensorBurner` does it as BitMind's client does with the bittensor 10.4 SDK: when the
coldkey has enough alpha staked on the hotkey, ``SubtensorModule.burn_alpha`` (the fee at the
pool price plus 2% slack, at most the stake), otherwise ``add_stake_burn`` of 0.5 free TAO; a
mortal extrinsic signed with the coldkey, sent, and waited for until finalized; the block of
inclusion is read from the receipt's block hash (10.4 leaves ``block_number`` empty).
:class:`MemoryBurner` keeps the same contract on :class:`~gasbuild.publish.chain.MemoryChain`
(tests, ``GASBUILD_CHAIN=memory:PATH`` staging): it records burns and hands out a fake hash and
block. bittensor is imported only inside :class:`BittensorBurner`.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gasbuild.errors import GasbuildError, PublishError, UserError
from gasbuild.publish.chain import CHAIN_ENV, MemoryChain, inclusion_block, network_for
from gasbuild.publish.gasapi import BurnReceipt, normalise_tx_hash
from gasbuild.publish.wallet import Hotkey, coldkey_address, unlock_coldkey

BURN_FEE_TAO = 0.5
PRICE_SLACK = 0.02  # the pool price moves between the quote and the block
RAO = 1_000_000_000
ERA_PERIOD = 64  # blocks a signed burn stays valid: an unsent one cannot land much later
DEFAULT_MEMORY_PRICE = 0.05  # TAO per alpha on the stand-in chain

OnSigned = Callable[[str], None]  # the burn's tx hash, before it is sent


class BurnFailed(PublishError):
    """The chain included the burn and refused it (or refused to take it): nothing was burned."""


class BurnOutcomeUnknown(PublishError):
    """The burn was sent but whether it landed is not known; never followed by another."""


@dataclass(frozen=True)
class BurnQuote:
    """What a burn would do, read before asking: the method, the amount and who pays."""

    netuid: int
    hotkey_ss58: str
    coldkey_ss58: str
    method: str  # burn_alpha (alpha staked on the hotkey) or add_stake_burn (free TAO)
    amount_rao: int  # alpha rao for burn_alpha, TAO rao for add_stake_burn
    price_tao: float | None = None  # TAO per alpha when quoted

    def describe(self) -> str:
        """One line for the question: the cost, how it is paid, and the paying coldkey."""
        cost = f"{BURN_FEE_TAO:g} TAO worth of subnet-{self.netuid} alpha"
        if self.method == "add_stake_burn":
            how = f"spends {self.amount_rao / RAO:g} free TAO to buy that alpha and burn it"
        else:
            price = "" if self.price_tao is None else f" at {self.price_tao:.6g} TAO per alpha"
            how = (
                f"burns {self.amount_rao / RAO:.6f} alpha{price} (2% price slack) staked on"
                f" hotkey {self.hotkey_ss58}"
            )
        return (
            f"a burn of {cost}: {how}; paid by coldkey {self.coldkey_ss58}; transaction fees"
            " are extra and it cannot be undone"
        )


class Burner(Protocol):
    """Quote and make the burn for one further counted submission on a hotkey."""

    def quote(self, hotkey: Hotkey, netuid: int) -> BurnQuote: ...

    def burn(self, hotkey: Hotkey, quote: BurnQuote, on_signed: OnSigned) -> BurnReceipt: ...


def alpha_for_fee(price_tao: float) -> tuple[int, int]:
    """(minimum, padded) alpha rao worth the fee at ``price_tao`` TAO per alpha."""
    if not math.isfinite(price_tao) or price_tao <= 0:
        raise PublishError(
            f"the subnet's alpha price reads as {price_tao!r} TAO; cannot size the burn"
        )
    minimum = int(BURN_FEE_TAO / price_tao * RAO)
    padded = int(BURN_FEE_TAO / price_tao * (1 + PRICE_SLACK) * RAO) + 1
    return minimum, padded


def burner_from_env(
    netuid: int, endpoint: str | None = None, env: Mapping[str, str] | None = None
) -> Burner:
    """The burner on the same chain as :func:`~gasbuild.publish.chain.chain_from_env`."""
    value = (os.environ if env is None else env).get(CHAIN_ENV, "").strip()
    kind, _, rest = value.partition(":")
    if kind == "memory" and rest:
        return MemoryBurner(MemoryChain(Path(rest).expanduser()))
    if value:
        raise UserError(
            f"{CHAIN_ENV}={value!r} is not understood", hint="use memory:PATH, or unset it"
        )
    return BittensorBurner(netuid, endpoint)


# -- MemoryBurner ---------------------------------------------------------------------------


class MemoryBurner:
    """Burns on the stand-in chain: recorded under ``burns`` in its state, a fake hash and block.

    The coldkey is unlocked as for a real burn, so a staging run fails where a real one would.
    ``alpha_price_tao`` in the state file overrides the price.
    """

    def __init__(self, chain: MemoryChain, *, price_tao: float = DEFAULT_MEMORY_PRICE) -> None:
        self.chain = chain
        self.price_tao = price_tao

    def quote(self, hotkey: Hotkey, netuid: int) -> BurnQuote:
        price = float(self.chain.peek(lambda s: s.get("alpha_price_tao", self.price_tao)))
        _, padded = alpha_for_fee(price)
        coldkey = coldkey_address(hotkey)
        return BurnQuote(netuid, hotkey.ss58_address, coldkey, "burn_alpha", padded, price)

    def burn(self, hotkey: Hotkey, quote: BurnQuote, on_signed: OnSigned) -> BurnReceipt:
        unlock_coldkey(hotkey)
        tx_hash = "0x" + uuid.uuid4().hex + uuid.uuid4().hex  # what an SDK prints
        on_signed(normalise_tx_hash(tx_hash))

        def record(state: dict[str, Any]) -> int:
            block = self.chain.next_block(state)
            state.setdefault("burns", []).append(
                {
                    "tx_hash": tx_hash,
                    "block": block,
                    "netuid": quote.netuid,
                    "hotkey": quote.hotkey_ss58,
                    "coldkey": quote.coldkey_ss58,
                    "method": quote.method,
                    "amount_rao": quote.amount_rao,
                }
            )
            return block

        return BurnReceipt.of(tx_hash, self.chain.transact(record))

    def burns(self) -> list[dict[str, Any]]:
        """Every burn made on this stand-in chain (tests)."""
        return list(self.chain.peek(lambda s: list(s.get("burns", []))))


# -- BittensorBurner ------------------------------------------------------------------------


class BittensorBurner:
    """The burn through the bittensor 10.x SDK, connected on first use (``subtensor`` injects)."""

    def __init__(self, netuid: int, endpoint: str | None = None, *, subtensor: Any = None):
        self.network = network_for(netuid, endpoint)
        self._subtensor = subtensor

    def quote(self, hotkey: Hotkey, netuid: int) -> BurnQuote:
        coldkey = coldkey_address(hotkey)
        sub = self._sdk()
        price = float(getattr(self._read(lambda: sub.get_subnet_price(netuid)), "tao", 0) or 0)
        minimum, padded = alpha_for_fee(price)
        stake = self._read(lambda: sub.get_stake(coldkey, hotkey.ss58_address, netuid))
        staked = int(getattr(stake, "rao", 0) or 0)
        if staked >= minimum:
            amount = min(staked, padded)
            return BurnQuote(netuid, hotkey.ss58_address, coldkey, "burn_alpha", amount, price)
        balance = self._read(lambda: sub.get_balance(coldkey))
        free = float(getattr(balance, "tao", 0) or 0)
        if free < BURN_FEE_TAO:
            raise UserError(
                f"coldkey {coldkey} has neither {BURN_FEE_TAO:g} TAO worth of subnet-{netuid}"
                f" alpha staked on hotkey {hotkey.ss58_address} ({staked / RAO:.4f} alpha) nor"
                f" {BURN_FEE_TAO:g} free TAO ({free:.4f})",
                hint="stake or transfer to that coldkey first, then push again",
            )
        fee = int(BURN_FEE_TAO * RAO)
        return BurnQuote(netuid, hotkey.ss58_address, coldkey, "add_stake_burn", fee, price)

    def burn(self, hotkey: Hotkey, quote: BurnQuote, on_signed: OnSigned) -> BurnReceipt:
        keypair = unlock_coldkey(hotkey)
        sub = self._sdk()
        call = self._compose(sub, quote)
        substrate = sub.substrate
        extrinsic = self._read(
            lambda: substrate.create_signed_extrinsic(
                call=call, keypair=keypair, era={"period": ERA_PERIOD}
            )
        )
        tx_hash = _hash_of(extrinsic)
        on_signed(tx_hash)
        try:
            receipt = substrate.submit_extrinsic(
                extrinsic, wait_for_inclusion=True, wait_for_finalization=True
            )
            landed = bool(receipt.is_success)
        except Exception as exc:
            raise BurnOutcomeUnknown(
                f"the burn {tx_hash} was sent but its outcome is unknown"
                f" ({type(exc).__name__}: {exc})",
                hint=_UNKNOWN_HINT,
            ) from exc
        if not landed:
            raise BurnFailed(
                f"the chain refused the burn {tx_hash}: {_error_text(receipt)}; nothing was"
                " burned (the transaction fee may be charged)"
            )
        block = inclusion_block(receipt, substrate)
        if block is None:
            raise BurnOutcomeUnknown(
                f"the burn {tx_hash} landed but its block number could not be read",
                hint=_UNKNOWN_HINT,
            )
        return BurnReceipt(tx_hash, block)

    # -- internals ----------------------------------------------------------------------

    def _sdk(self) -> Any:
        if self._subtensor is None:
            try:
                import bittensor
            except ImportError:
                raise UserError(
                    "burning needs the bittensor SDK",
                    hint="pip install 'gasbuild[chain]', or burn elsewhere and pass --burn-receipt",
                ) from None
            self._subtensor = self._read(lambda: bittensor.Subtensor(network=self.network))
        return self._subtensor

    def _read(self, operation: Callable[[], Any]) -> Any:
        """Run an SDK call made before anything is sent; failures are plain, nothing burned."""
        try:
            return operation()
        except GasbuildError:
            raise
        except Exception as exc:
            raise PublishError(
                f"chain ({self.network}): {type(exc).__name__}: {exc}; nothing was burned",
                hint="check the network and --chain-endpoint, then try again",
            ) from exc

    def _compose(self, sub: Any, quote: BurnQuote) -> Any:
        """The call, with the parameter names of the runtime at hand (they changed once)."""
        base = {"hotkey": quote.hotkey_ss58, "netuid": quote.netuid}
        if quote.method == "add_stake_burn":
            tries = [{**base, "amount": quote.amount_rao, "limit": None}]
        else:
            tries = [{**base, name: quote.amount_rao} for name in ("amount", "alpha_amount")]
        last: Exception | None = None
        for params in tries:
            try:
                return sub.compose_call("SubtensorModule", quote.method, params)
            except Exception as exc:  # unknown call or parameter names on this runtime
                last = exc
        raise PublishError(
            f"chain ({self.network}) does not offer SubtensorModule.{quote.method} as expected"
            f" ({type(last).__name__}: {last}); nothing was burned"
        )


_UNKNOWN_HINT = (
    "look the hash up on a block explorer; if it landed, push again with --burn-receipt"
    " TX_HASH:BLOCK; gasbuild makes no further burn for this hotkey until the pending record"
    " under .gasbuild/receipts/burns/ is resolved"
)


def _hash_of(extrinsic: Any) -> str:
    """The extrinsic's hash (known before sending), in BitMind's form."""
    value = getattr(extrinsic, "extrinsic_hash", None)
    if isinstance(value, bytes | bytearray):
        value = bytes(value).hex()
    try:
        return normalise_tx_hash(str(value))
    except ValueError:
        raise PublishError("the signed burn has no readable hash; nothing was sent") from None


def _error_text(receipt: Any) -> str:
    try:
        message = receipt.error_message
    except Exception:
        return "no reason given"
    if isinstance(message, dict):
        parts = [str(message.get(k)) for k in ("name", "docs") if message.get(k)]
        return ": ".join(parts) or str(message)
    return str(message or "no reason given")
