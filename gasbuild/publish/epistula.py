"""Epistula v2 request signing, as BitMind's upload API expects it (SPEC §4).

The server authenticates every presign and confirm request by a hotkey signature over the body's
digest, a fresh uuid and a millisecond timestamp. The signed message ends with a dot because the
v2 format has a fourth, empty "signed for" field; leaving the dot out makes every signature fail.
``verify_request`` is the server's side of the same rule: the fake upload API in the tests uses
it, so a client change that breaks signing fails locally, not against the network.
"""

from __future__ import annotations

import hashlib
import time
import uuid as uuid_mod
from collections.abc import Mapping
from typing import Protocol

from gasbuild.errors import PublishError

VERSION = "2"
MAX_SKEW_MS = 15_000

HEADER_VERSION = "Epistula-Version"
HEADER_TIMESTAMP = "Epistula-Timestamp"
HEADER_UUID = "Epistula-Uuid"
HEADER_SIGNED_BY = "Epistula-Signed-By"
HEADER_SIGNATURE = "Epistula-Request-Signature"


class Signer(Protocol):
    """What signing needs of a hotkey: its address and ``sign`` (a bittensor Keypair has both)."""

    @property
    def ss58_address(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class EpistulaError(PublishError):
    """A request's Epistula headers are missing, malformed, expired or do not verify."""


def message(body: bytes, uuid: str, timestamp_ms: int) -> str:
    """The exact string that is signed: ``<sha256(body)>.<uuid>.<timestamp>.`` (trailing dot)."""
    return f"{hashlib.sha256(body).hexdigest()}.{uuid}.{timestamp_ms}."


def sign_request(
    keypair: Signer,
    body: bytes,
    *,
    timestamp_ms: int | None = None,
    uuid: str | None = None,
) -> dict[str, str]:
    """The five Epistula v2 headers for ``body``; a fresh uuid and the current time by default.

    Sign each attempt anew: a retried request with an old timestamp would fall outside the
    server's 15 s window.
    """
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    nonce = str(uuid_mod.uuid4()) if uuid is None else uuid
    signature = keypair.sign(message(body, nonce, stamp).encode())
    return {
        HEADER_VERSION: VERSION,
        HEADER_TIMESTAMP: str(stamp),
        HEADER_UUID: nonce,
        HEADER_SIGNED_BY: keypair.ss58_address,
        HEADER_SIGNATURE: "0x" + bytes(signature).hex(),
    }


def verify_request(
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_ms: int | None = None,
    max_skew_ms: int = MAX_SKEW_MS,
) -> str:
    """Check a signed request as the server does; return the signer's ss58 address.

    Raises :class:`EpistulaError` naming the first problem: a missing header, another version,
    a timestamp outside ``max_skew_ms`` of ``now_ms``, a malformed uuid or address, or a
    signature that does not verify for this body.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    values = {name: _header(lowered, name) for name in _REQUIRED}
    if values[HEADER_VERSION] != VERSION:
        raise EpistulaError(f"unsupported Epistula version {values[HEADER_VERSION]!r}")
    stamp = _timestamp(values[HEADER_TIMESTAMP])
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - stamp) > max_skew_ms:
        raise EpistulaError("request timestamp is outside the allowed clock skew")
    try:
        uuid_mod.UUID(values[HEADER_UUID])
    except ValueError:
        raise EpistulaError("Epistula-Uuid is not a uuid") from None
    signer = values[HEADER_SIGNED_BY]
    signature = _signature(values[HEADER_SIGNATURE])
    text = message(body, values[HEADER_UUID], stamp)
    if not _verifies(signer, text.encode(), signature):
        raise EpistulaError("signature does not verify")
    return signer


_REQUIRED = (HEADER_VERSION, HEADER_TIMESTAMP, HEADER_UUID, HEADER_SIGNED_BY, HEADER_SIGNATURE)


def _header(lowered: Mapping[str, str], name: str) -> str:
    value = lowered.get(name.lower())
    if not value:
        raise EpistulaError(f"missing header {name}")
    return value


def _timestamp(text: str) -> int:
    if not text.isdigit():
        raise EpistulaError("Epistula-Timestamp is not an integer of milliseconds")
    return int(text)


def _signature(text: str) -> bytes:
    if not text.startswith("0x"):
        raise EpistulaError("Epistula-Request-Signature must be 0x-prefixed hex")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise EpistulaError("Epistula-Request-Signature is not hex") from None


def _verifies(ss58: str, data: bytes, signature: bytes) -> bool:
    """Verify with bittensor-wallet's sr25519 machinery (imported here: it is optional)."""
    from bittensor_wallet import Keypair

    try:
        public = Keypair(ss58_address=ss58)
    except Exception:  # the Rust binding raises ValueError or its own types
        raise EpistulaError("Epistula-Signed-By is not a valid ss58 address") from None
    try:
        return bool(public.verify(data, signature))
    except Exception:
        return False
