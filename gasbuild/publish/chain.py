"""The chain side of a push: registration checks, the commitment, and reading it back.

:class:`ChainRegistry` is the seam. :class:`MemoryChain` keeps the chain's rules (one commitment
per hotkey per subnet, at most 128 bytes, a per-epoch byte quota in which every commitment costs
at least 100 bytes, unregistered hotkeys refused) in memory or in a JSON file, for tests and for
staging runs (``GASBUILD_CHAIN=memory:PATH``). :class:`BittensorChain` talks to subtensor through
whichever bittensor SDK is installed: 10.x (``Subtensor.set_commitment``) or the 11.x rewrite
(a raw ``Commitments.set_commitment`` call and typed reads).

The commitment's size is checked before anything is sent (:func:`check_commitment_size`): a
storage key too long for the chain's 128-byte field is said as such, never left to surface as
a chain error. The 10.x SDK's receipt leaves ``block_number`` empty; :func:`inclusion_block`
reads the block of inclusion from the block hash instead.

SDK failures are mapped here, once: ``AccountNotAllowedCommit`` becomes :class:`NotRegistered`
(never retried: the reference client retried it forever), ``SpaceLimitExceeded`` becomes
:class:`QuotaExceeded` (wait for the next epoch), a socket that cannot be opened becomes
``chain: cannot reach URL: <why>`` (as the upload service's errors read), anything else a
retryable TransportError. Every SDK call runs under a deadline (:func:`with_deadline`): the
substrate client has none of its own for a peer that accepts and never answers.
bittensor is imported only when a :class:`BittensorChain` is first used.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from gasbuild.errors import GasbuildError, PublishError, TransportError, UserError

MAX_COMMITMENT_BYTES = 128
MIN_COMMIT_BYTES = 100
DEFAULT_QUOTA_BYTES = 3100  # staging default per epoch; the real cap is the pallet's MaxSpace
DEFAULT_EPOCH_SECONDS = 361 * 12.0  # subnet 34: tempo 360 blocks of 12 s
BLOCK_SECONDS = 12.0
CHAIN_ENV = "GASBUILD_CHAIN"
UNREACHABLE_HINT = "retry, or --chain-endpoint URL"

# The SDK's network names and the endpoints they stand for (bittensor's NETWORK_MAP), so that
# an error names the address that could not be reached.
NETWORK_URLS = {
    "finney": "wss://entrypoint-finney.opentensor.ai:443",
    "test": "wss://test.finney.opentensor.ai:443",
    "archive": "wss://archive.chain.opentensor.ai:443",
    "local": "ws://127.0.0.1:9944",
}


@dataclass(frozen=True)
class Deadlines:
    """Seconds each kind of chain call may take before the push gives up on it.

    ``connect`` covers the websocket handshake and the SDK's metadata download; ``commit``
    waits for finalization (a few blocks of 12 s).
    """

    connect: float = 30.0
    read: float = 60.0
    commit: float = 240.0


T = TypeVar("T")


class NotRegistered(PublishError):
    """The hotkey has no UID on the subnet (``AccountNotAllowedCommit``); never retried."""


class QuotaExceeded(PublishError):
    """The hotkey's commitment bytes for this epoch are used up (``SpaceLimitExceeded``)."""

    def __init__(self, message: str, *, wait_seconds: float | None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.wait_seconds = wait_seconds


class CommitmentTooLong(PublishError):
    """The commitment string would exceed the chain's 128 bytes."""


class ChainUnavailable(TransportError):
    """The chain could not be reached, or refused for a reason worth retrying."""


class CommitSigner(Protocol):
    """What committing needs of a hotkey (see :class:`gasbuild.publish.wallet.Hotkey`)."""

    @property
    def ss58_address(self) -> str: ...

    @property
    def wallet(self) -> Any: ...

    @property
    def keypair(self) -> Any: ...


class ChainRegistry(Protocol):
    """Registration, commitment and read-back: all a push needs of the chain."""

    def is_registered(self, hotkey_ss58: str, netuid: int) -> bool: ...

    def set_commitment(self, signer: CommitSigner, netuid: int, data: str) -> int | None: ...

    def get_commitment(self, hotkey_ss58: str, netuid: int) -> str | None: ...


# -- the commitment string ----------------------------------------------------------------


def commitment_hash(file_hash: str, hotkey_ss58: str) -> str:
    """``sha256(file_hash + hotkey)[:16]``: binds the committed key to this zip and hotkey."""
    return hashlib.sha256((file_hash + hotkey_ss58).encode()).hexdigest()[:16]


def commitment_string(r2_key: str, file_hash: str, hotkey_ss58: str) -> str:
    """``{"key":"<r2_key>","hash":"<h16>"}`` (compact JSON), at most 128 bytes."""
    data = json.dumps(
        {"key": r2_key, "hash": commitment_hash(file_hash, hotkey_ss58)}, separators=(",", ":")
    )
    check_commitment_size(data, r2_key)
    return data


def check_commitment_size(data: str, r2_key: str | None = None) -> None:
    """Refuse a commitment over the chain's 128 bytes before any extrinsic is made."""
    size = len(data.encode())
    if size <= MAX_COMMITMENT_BYTES:
        return
    if r2_key is None:
        try:
            r2_key = str(json.loads(data).get("key"))
        except (ValueError, AttributeError):
            r2_key = None
    what = f"storage key {r2_key!r}" if r2_key else "the commitment"
    raise CommitmentTooLong(
        f"{what} is too long for the chain's {MAX_COMMITMENT_BYTES}-byte commitment field: the"
        f" commitment would be {size} bytes",
        hint="it cannot be committed on chain as the network defines the commitment; the upload"
        " itself stands; report the key to BitMind",
    )


def inclusion_block(receipt: Any, substrate: Any = None) -> int | None:
    """The block an extrinsic was included in, from a bittensor 10.x receipt.

    ``block_number`` is empty on the receipts 10.4 returns after ``wait_for_inclusion``; the
    block hash is there, and the substrate interface turns it into a number.
    """
    number = getattr(receipt, "block_number", None)
    if isinstance(number, int) and not isinstance(number, bool) and number > 0:
        return number
    block_hash = getattr(receipt, "block_hash", None)
    source = substrate if substrate is not None else getattr(receipt, "substrate", None)
    getter = getattr(source, "get_block_number", None)
    if not block_hash or not callable(getter):
        return None
    try:
        number = getter(block_hash)
    except Exception:  # the block is included either way; only its number is unknown
        return None
    return number if isinstance(number, int) and number > 0 else None


def network_for(netuid: int, endpoint: str | None = None) -> str:
    """The subtensor network: the endpoint when given, else finney for subnet 34, else test."""
    if endpoint:
        return endpoint
    return "finney" if netuid == 34 else "test"


def chain_from_env(
    netuid: int, endpoint: str | None = None, env: Mapping[str, str] | None = None
) -> ChainRegistry:
    """``GASBUILD_CHAIN=memory:PATH`` (staging, tests) or the real chain."""
    value = (os.environ if env is None else env).get(CHAIN_ENV, "").strip()
    if not value:
        return BittensorChain(netuid, endpoint)
    kind, _, rest = value.partition(":")
    if kind == "memory" and rest:
        return MemoryChain(Path(rest).expanduser())
    raise UserError(f"{CHAIN_ENV}={value!r} is not understood", hint="use memory:PATH, or unset it")


def chain_failure(text: str, wait: Callable[[], float | None]) -> GasbuildError:
    """The exception for an SDK failure message (the one mapping of chain errors)."""
    lowered = text.lower()
    if "accountnotallowedcommit" in lowered or "not registered" in lowered:
        return NotRegistered(
            f"the chain refused the commitment: the hotkey is not registered ({text.strip()})",
            hint="register the hotkey on the subnet (btcli subnets register), then commit",
        )
    if "spacelimitexceeded" in lowered:
        return QuotaExceeded(
            "the hotkey's commitment quota for this epoch is used up (SpaceLimitExceeded)",
            wait_seconds=wait(),
            hint="it resets at the next epoch",
        )
    return ChainUnavailable(f"chain: {text.strip() or 'the commitment failed'}")


def endpoint_url(network: str) -> str:
    """The address behind an SDK network name (``finney``), or the endpoint itself."""
    return NETWORK_URLS.get(network, network)


def unreachable(url: str, exc: BaseException) -> ChainUnavailable:
    """``chain: cannot reach URL: name not resolved`` for a socket-level failure."""
    return ChainUnavailable(
        f"chain: cannot reach {url}: {_socket_reason(exc)}", hint=UNREACHABLE_HINT
    )


def is_socket_failure(exc: BaseException) -> bool:
    """Whether an SDK exception is (caused by) a failure to open or keep a connection."""
    return any(isinstance(e, (OSError, EOFError)) for e in _causes(exc)) or type(exc).__name__ in {
        "ConnectionClosed",
        "ConnectionClosedError",
        "InvalidURI",
        "InvalidHandshake",
    }


def _socket_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return "name not resolved"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, TimeoutError):
            return "timed out"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason or cause})"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, its arguments that are exceptions, and its causes (bounded)."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 16:
        current = pending.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [a for a in current.args if isinstance(a, BaseException)]
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]
    return seen


def with_deadline(call: Callable[[], T], seconds: float, what: str, url: str) -> T:
    """Run ``call`` in a daemon thread and wait at most ``seconds`` for it.

    A call that overruns is abandoned (the thread dies with the process) and reported as
    ChainUnavailable; a commit that overran may still land, so that one is not retryable.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"gasbuild-chain-{what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ChainUnavailable(
            f"chain: {url} did not answer ({what}) within {seconds:g} s",
            hint="the commitment may still land; `gasbuild status` shows it"
            if what == "commit"
            else UNREACHABLE_HINT,
            retryable=what != "commit",
        )
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


# -- MemoryChain ------------------------------------------------------------------------


class MemoryChain:
    """The chain's commitment rules without a chain; optionally persisted to a JSON file.

    The file (``GASBUILD_CHAIN=memory:PATH``) holds ``registered`` (a list of ss58 addresses,
    or an object mapping netuid to such a list), the commitments, each hotkey's bytes used this
    epoch, and optionally ``quota_bytes`` and ``epoch_seconds``. It is re-read before and
    written (temp file + rename) after every operation, so separate processes see one chain.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        registered: Iterable[str] = (),
        quota_bytes: int = DEFAULT_QUOTA_BYTES,
        epoch_seconds: float = DEFAULT_EPOCH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._defaults = {"quota_bytes": quota_bytes, "epoch_seconds": epoch_seconds}
        self._memory: dict[str, Any] = {"registered": sorted(set(registered))}

    # -- the protocol -------------------------------------------------------------------

    def is_registered(self, hotkey_ss58: str, netuid: int) -> bool:
        with self._lock:
            return _registered(self._read(), hotkey_ss58, netuid)

    def set_commitment(self, signer: CommitSigner, netuid: int, data: str) -> int:
        hotkey = signer.ss58_address
        size = len(data.encode())
        with self._lock:
            state = self._read()
            if not _registered(state, hotkey, netuid):
                raise chain_failure("AccountNotAllowedCommit", lambda: None)
            check_commitment_size(data)
            self._charge(state, hotkey, netuid, max(MIN_COMMIT_BYTES, size))
            block = self.next_block(state)
            commitments = state.setdefault("commitments", {}).setdefault(str(netuid), {})
            commitments[hotkey] = {"data": data, "block": block}
            self._write(state)
            return block

    def get_commitment(self, hotkey_ss58: str, netuid: int) -> str | None:
        with self._lock:
            entry = self._read().get("commitments", {}).get(str(netuid), {}).get(hotkey_ss58)
        return None if entry is None else str(entry["data"])

    # -- helpers for tests and staging ----------------------------------------------------

    def peek(self, look: Callable[[Mapping[str, Any]], T]) -> T:
        """Read the state under the lock without writing it."""
        with self._lock:
            return look(self._read())

    def transact(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Apply ``change`` to the state under the lock and persist it (used by MemoryBurner)."""
        with self._lock:
            state = self._read()
            result = change(state)
            self._write(state)
            return result

    def next_block(self, state: dict[str, Any]) -> int:
        """Advance the stand-in chain by one block inside ``transact``; returns its number."""
        block = int(state.get("block", 0)) + 1
        state["block"] = block
        return block

    def register(self, hotkey_ss58: str) -> None:
        """Register a hotkey on every subnet."""
        with self._lock:
            state = self._read()
            listed = state.get("registered", [])
            if isinstance(listed, list) and hotkey_ss58 not in listed:
                state["registered"] = sorted([*listed, hotkey_ss58])
            elif isinstance(listed, dict):
                for hotkeys in listed.values():
                    hotkeys.append(hotkey_ss58)
            self._write(state)

    def seconds_until_next_epoch(self) -> float:
        with self._lock:
            period = self._setting(self._read(), "epoch_seconds")
        return period - (self._clock() % period)

    # -- internals ----------------------------------------------------------------------

    def _charge(self, state: dict[str, Any], hotkey: str, netuid: int, cost: int) -> None:
        period = self._setting(state, "epoch_seconds")
        epoch = int(self._clock() // period)
        usage = state.setdefault("usage", {}).setdefault(str(netuid), {})
        record = usage.get(hotkey)
        used = int(record["bytes"]) if record and record.get("epoch") == epoch else 0
        if used + cost > self._setting(state, "quota_bytes"):
            wait = period - (self._clock() % period)
            raise chain_failure("SpaceLimitExceeded", lambda: wait)
        usage[hotkey] = {"epoch": epoch, "bytes": used + cost}

    def _setting(self, state: Mapping[str, Any], key: str) -> float:
        return float(state.get(key, self._defaults[key]))

    def _read(self) -> dict[str, Any]:
        if self.path is None:
            return self._memory
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {"registered": list(self._memory["registered"])}
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path}: not a readable memory chain ({exc})") from None
        return data if isinstance(data, dict) else {}

    def _write(self, state: dict[str, Any]) -> None:
        if self.path is None:
            self._memory = state
            return
        from gasbuild.publish.receipts import atomic_write_text

        atomic_write_text(self.path, json.dumps(state, indent=2, sort_keys=True) + "\n")


def _registered(state: Mapping[str, Any], hotkey: str, netuid: int) -> bool:
    listed = state.get("registered", [])
    if isinstance(listed, dict):
        return hotkey in listed.get(str(netuid), [])
    return hotkey in listed


# -- BittensorChain -----------------------------------------------------------------------


class BittensorChain:
    """The real chain through the installed bittensor SDK (10.x or 11.x), connected lazily.

    ``client`` injects an SDK object (a 10.x ``Subtensor`` or an 11.x client) for tests;
    ``major`` forces the adapter instead of reading the installed version.
    """

    def __init__(
        self,
        netuid: int,
        endpoint: str | None = None,
        *,
        client: Any = None,
        major: int | None = None,
        calls: Any = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.netuid = netuid
        self.network = network_for(netuid, endpoint)
        self.url = endpoint_url(self.network)
        self.deadlines = deadlines or Deadlines()
        self._client = client
        self._major = major
        self._calls = calls
        self._adapter: _V10Adapter | _V11Adapter | None = None

    def is_registered(self, hotkey_ss58: str, netuid: int) -> bool:
        return bool(self._guarded("read", lambda a: a.is_registered(hotkey_ss58, netuid)))

    def set_commitment(self, signer: CommitSigner, netuid: int, data: str) -> int | None:
        check_commitment_size(data)
        block = self._guarded("commit", lambda a: a.set_commitment(signer, netuid, data))
        return block if isinstance(block, int) else None

    def get_commitment(self, hotkey_ss58: str, netuid: int) -> str | None:
        text = self._guarded("read", lambda a: a.get_commitment(hotkey_ss58, netuid))
        return text if isinstance(text, str) and text else None

    def _guarded(
        self, what: str, operation: Callable[[_V10Adapter | _V11Adapter], object]
    ) -> object:
        """Connect if needed, then run an SDK operation under its deadline; every
        non-gasbuild exception is mapped (socket failures to "cannot reach", the rest through
        chain_failure)."""
        adapter = self._get_adapter()
        seconds = self.deadlines.commit if what == "commit" else self.deadlines.read
        try:
            return with_deadline(lambda: operation(adapter), seconds, what, self.url)
        except GasbuildError:
            raise
        except Exception as exc:
            if is_socket_failure(exc):
                raise unreachable(self.url, exc) from exc
            raise chain_failure(f"{type(exc).__name__}: {exc}", adapter.quota_wait) from exc

    def _get_adapter(self) -> _V10Adapter | _V11Adapter:
        if self._adapter is None:
            major = self._major if self._major is not None else installed_major()
            if major not in (10, 11):
                raise UserError(
                    f"bittensor {major}.x is not supported for pushing",
                    hint="install bittensor>=10.4,<12 (pip install 'gasbuild[chain]')",
                )
            if self._client is None:
                import bittensor  # noqa: F401  (slow to import: not part of the deadline)
            try:
                self._adapter = with_deadline(
                    lambda: self._connect(major), self.deadlines.connect, "connect", self.url
                )
            except GasbuildError:
                raise
            except Exception as exc:  # the SDK raises ConnectionError, OSError, its own types
                raise unreachable(self.url, exc) from exc
        return self._adapter

    def _connect(self, major: int) -> _V10Adapter | _V11Adapter:
        if major == 10:
            return _V10Adapter(self.network, self.netuid, self._client)
        return _V11Adapter(self.network, self.netuid, self._client, self._calls)


def installed_major() -> int:
    """The installed bittensor's major version, without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("bittensor")
    except PackageNotFoundError:
        raise UserError(
            "committing to the chain needs the bittensor SDK",
            hint="pip install 'gasbuild[chain]', or set GASBUILD_CHAIN=memory:PATH for staging",
        ) from None
    head = text.split(".", 1)[0]
    return int(head) if head.isdigit() else -1


class _V10Adapter:
    """bittensor 10.x: ``Subtensor(network=...)`` and its commitment methods (BitMind pins 10.4)."""

    def __init__(self, network: str, netuid: int, subtensor: Any = None) -> None:
        if subtensor is None:
            import bittensor

            subtensor = bittensor.Subtensor(network=network)
        self.subtensor = subtensor
        self.netuid = netuid

    def is_registered(self, hotkey_ss58: str, netuid: int) -> bool:
        return bool(self.subtensor.is_hotkey_registered(hotkey_ss58=hotkey_ss58, netuid=netuid))

    def set_commitment(self, signer: CommitSigner, netuid: int, data: str) -> int | None:
        response = self.subtensor.set_commitment(
            signer.wallet,
            netuid,
            data,
            wait_for_inclusion=True,
            wait_for_finalization=True,
        )
        if not getattr(response, "success", False):
            raise chain_failure(str(getattr(response, "message", "") or ""), self.quota_wait)
        receipt = getattr(response, "extrinsic_receipt", None)
        return inclusion_block(receipt, getattr(self.subtensor, "substrate", None))

    def get_commitment(self, hotkey_ss58: str, netuid: int) -> str | None:
        uid = self.subtensor.get_uid_for_hotkey_on_subnet(hotkey_ss58=hotkey_ss58, netuid=netuid)
        if uid is None:
            return None
        text = self.subtensor.get_commitment(netuid=netuid, uid=uid)
        return str(text) if text else None

    def quota_wait(self) -> float | None:
        try:
            blocks = self.subtensor.blocks_until_next_epoch(netuid=self.netuid)
        except Exception:
            return None
        return None if blocks is None else float(blocks + 1) * BLOCK_SECONDS


class _V11Adapter:
    """bittensor 11.x: a blocking ``Subtensor`` client, reads by name, raw pallet calls.

    Written from the 11.3 sources (``SyncClient.read``, ``submit_call(call, wallet,
    signer="hotkey")``, ``calls.Commitments.set_commitment(netuid, info)``, ``ExtrinsicResult``);
    exercised offline only, against an injected client.
    """

    def __init__(self, network: str, netuid: int, client: Any = None, calls: Any = None):
        if client is None or calls is None:
            import bittensor

            client = bittensor.Subtensor(network) if client is None else client
            calls = getattr(bittensor, "calls", None) if calls is None else calls
        self.client = client
        self.calls = calls
        self.netuid = netuid

    def is_registered(self, hotkey_ss58: str, netuid: int) -> bool:
        return self.client.read("uid", hotkey_ss58=hotkey_ss58, netuid=netuid) is not None

    def set_commitment(self, signer: CommitSigner, netuid: int, data: str) -> int | None:
        raw = data.encode()
        call = self.calls.Commitments.set_commitment(
            netuid=netuid, info={"fields": [{f"Raw{len(raw)}": raw}]}
        )
        result = self.client.submit_call(
            call,
            signer.keypair,
            signer="hotkey",
            wait_for_inclusion=True,
            wait_for_finalization=True,
        )
        if not getattr(result, "success", False):
            error = getattr(result, "error", None)
            name = str(getattr(error, "name", "") or "")
            text = f"{name} {getattr(result, 'message', '') or ''}"
            raise chain_failure(text, self.quota_wait)
        extrinsic_id = str(getattr(result, "extrinsic_id", "") or "")
        head = extrinsic_id.split("-", 1)[0]
        return int(head) if head.isdigit() else None

    def get_commitment(self, hotkey_ss58: str, netuid: int) -> str | None:
        found = self.client.read("commitment", netuid=netuid, hotkey_ss58=hotkey_ss58)
        if found is None:
            return None
        data = getattr(found, "data", found)
        return str(data) if data else None

    def quota_wait(self) -> float | None:
        try:
            blocks = self.client.read("blocks_until_next_epoch", netuid=self.netuid)
            seconds = float(self.client.block_time())
        except Exception:
            return None
        return None if blocks is None else float(blocks + 1) * seconds
