"""Epistula v2 signing against a fixed keypair (//Alice) and a fixed vector."""

from __future__ import annotations

import pytest

pytest.importorskip("bittensor_wallet")

from bittensor_wallet import Keypair

from gasbuild.errors import PublishError
from gasbuild.publish.epistula import EpistulaError, message, sign_request, verify_request

ALICE_SS58 = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BOB_SS58 = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
BODY = b'{"filename":"image_detector.zip","file_size":10}'
BODY_SHA256 = "63bb5abceb38dc1b37ce18bbedb7bf3ca739f4e751bfbb92ed98a929de8cd9df"
UUID = "123e4567-e89b-42d3-a456-426614174000"
STAMP = 1_700_000_000_000


@pytest.fixture(scope="module")
def alice() -> Keypair:
    return Keypair.create_from_uri("//Alice")


def test_message_is_digest_uuid_timestamp_and_a_trailing_dot() -> None:
    assert message(BODY, UUID, STAMP) == f"{BODY_SHA256}.{UUID}.{STAMP}."


def test_fixed_vector_headers_and_signature(alice: Keypair) -> None:
    headers = sign_request(alice, BODY, timestamp_ms=STAMP, uuid=UUID)
    assert alice.ss58_address == ALICE_SS58
    assert set(headers) == {
        "Epistula-Version",
        "Epistula-Timestamp",
        "Epistula-Uuid",
        "Epistula-Signed-By",
        "Epistula-Request-Signature",
    }
    assert headers["Epistula-Version"] == "2"
    assert headers["Epistula-Timestamp"] == str(STAMP)
    assert headers["Epistula-Uuid"] == UUID
    assert headers["Epistula-Signed-By"] == ALICE_SS58
    signature = headers["Epistula-Request-Signature"]
    assert signature.startswith("0x") and len(signature) == 2 + 128
    expected = f"{BODY_SHA256}.{UUID}.{STAMP}.".encode()
    assert Keypair(ss58_address=ALICE_SS58).verify(expected, bytes.fromhex(signature[2:]))
    assert verify_request(headers, BODY, now_ms=STAMP) == ALICE_SS58


def test_fresh_uuid_and_time_by_default(alice: Keypair) -> None:
    first = sign_request(alice, BODY)
    second = sign_request(alice, BODY)
    assert first["Epistula-Uuid"] != second["Epistula-Uuid"]
    assert verify_request(first, BODY) == ALICE_SS58


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: ({**h, "Epistula-Uuid": "123e4567-e89b-42d3-a456-426614174001"}, b),
        lambda h, b: ({**h, "Epistula-Timestamp": str(STAMP + 1)}, b),
        lambda h, b: ({**h, "Epistula-Signed-By": BOB_SS58}, b),
    ],
    ids=["body", "uuid", "timestamp", "signer"],
)
def test_tampering_fails(alice: Keypair, tamper) -> None:  # type: ignore[no-untyped-def]
    headers = sign_request(alice, BODY, timestamp_ms=STAMP, uuid=UUID)
    bad_headers, bad_body = tamper(headers, BODY)
    with pytest.raises(EpistulaError, match="does not verify"):
        verify_request(bad_headers, bad_body, now_ms=STAMP)


def test_header_names_are_case_insensitive(alice: Keypair) -> None:
    headers = {k.lower(): v for k, v in sign_request(alice, BODY, timestamp_ms=STAMP).items()}
    assert verify_request(headers, BODY, now_ms=STAMP) == ALICE_SS58


def test_clock_skew_window(alice: Keypair) -> None:
    headers = sign_request(alice, BODY, timestamp_ms=STAMP, uuid=UUID)
    assert verify_request(headers, BODY, now_ms=STAMP + 15_000) == ALICE_SS58
    with pytest.raises(EpistulaError, match="clock skew"):
        verify_request(headers, BODY, now_ms=STAMP + 15_001)
    with pytest.raises(EpistulaError, match="clock skew"):
        verify_request(headers, BODY, now_ms=STAMP - 15_001)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"Epistula-Version": "1"}, "version"),
        ({"Epistula-Timestamp": "soon"}, "milliseconds"),
        ({"Epistula-Uuid": "not-a-uuid"}, "uuid"),
        ({"Epistula-Signed-By": "5bogus"}, "ss58"),
        ({"Epistula-Request-Signature": "abcd"}, "0x"),
        ({"Epistula-Request-Signature": "0xzz"}, "hex"),
    ],
)
def test_malformed_headers(alice: Keypair, change: dict[str, str], match: str) -> None:
    headers = {**sign_request(alice, BODY, timestamp_ms=STAMP, uuid=UUID), **change}
    with pytest.raises(EpistulaError, match=match):
        verify_request(headers, BODY, now_ms=STAMP)


def test_missing_header_is_named(alice: Keypair) -> None:
    headers = sign_request(alice, BODY, timestamp_ms=STAMP, uuid=UUID)
    del headers["Epistula-Uuid"]
    with pytest.raises(EpistulaError, match="missing header Epistula-Uuid"):
        verify_request(headers, BODY, now_ms=STAMP)


def test_epistula_errors_belong_to_the_tree() -> None:
    assert issubclass(EpistulaError, PublishError)
