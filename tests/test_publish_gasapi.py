"""The upload API client: request shapes, error mapping, bounded retries, streamed PUT."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

pytest.importorskip("bittensor_wallet")

from bittensor_wallet import Keypair

from fakes.gas_api import serve_gas_api
from fakes.publishing import FakeClock, make_zip
from gasbuild.errors import PublishError, TransportError
from gasbuild.publish.epistula import verify_request
from gasbuild.publish.gasapi import (
    AlreadyUploaded,
    BadSignature,
    BurnReceipt,
    BurnRequired,
    GasApiClient,
    RetryPolicy,
    Timeouts,
    UploadsDisabled,
    error_for,
    error_text,
    retry_after,
)

ALICE = Keypair.create_from_uri("//Alice")
TX = "0x" + "ab" * 32


def response(status: int, body: object = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


# -- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "detail", "kind", "retryable"),
    [
        (409, "A file with this hash already exists", AlreadyUploaded, False),
        (409, "Upload reservation conflict", PublishError, False),
        (403, "Invalid signature", BadSignature, False),
        (403, "Free submission already used; burn required", BurnRequired, False),
        (503, "Uploads for image are disabled", UploadsDisabled, False),
        (503, "Service Unavailable", TransportError, True),
        (500, "boom", TransportError, True),
        (502, "bad gateway", TransportError, True),
        (429, "slow down", TransportError, True),
        (400, "bad request", PublishError, False),
        (404, "not found", PublishError, False),
    ],
)
def test_error_mapping(status: int, detail: str, kind: type, retryable: bool) -> None:
    error = error_for("presign", response(status, {"detail": detail}))
    assert type(error) is kind
    assert error.retryable is retryable
    assert detail in str(error)


def test_only_the_duplicate_hash_409_is_already_uploaded() -> None:
    other = error_for("presign", response(409, {"detail": "credit conflict for this hotkey"}))
    assert type(other) is PublishError
    assert "credit conflict for this hotkey" in str(other)


def test_burn_hint_explains_the_rule() -> None:
    error = error_for("presign", response(403, {"message": "free submission used"}))
    assert isinstance(error, BurnRequired)
    assert "--burn-receipt" in str(error) and "one free submission per hotkey" in str(error)


def test_window_closed_is_not_retryable_and_says_so() -> None:
    error = error_for("presign", response(503, {"detail": "Uploads for audio are disabled"}))
    assert "submission window closed" in str(error) and not error.retryable


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"detail": "a"}, "a"),
        ({"error": "b"}, "b"),
        ({"message": "c"}, "c"),
        ({"detail": [{"msg": "field required"}, {"msg": "bad"}]}, "field required; bad"),
        (
            b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            "AccessDenied: Request has expired",
        ),
        (b"plain words", "plain words"),
    ],
)
def test_error_text(body: object, text: str) -> None:
    assert error_text(response(400, body)) == text


def test_retry_after() -> None:
    assert retry_after(response(429, {}, {"Retry-After": "7"})) == 7.0
    assert retry_after(response(429, {})) is None
    assert retry_after(response(429, {}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0


def test_expired_presigned_put() -> None:
    error = error_for(
        "upload",
        response(
            403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        ),
    )
    assert "expired" in str(error) and "push again" in str(error)


def test_burn_receipt_parse() -> None:
    assert BurnReceipt.parse(f"{TX}:123") == BurnReceipt(TX, 123)
    assert BurnReceipt.parse("ab" * 32 + ":5").tx_hash == TX
    for bad in ("nope", f"{TX}:", f"{TX}:x", "0x12:5"):
        with pytest.raises(ValueError):
            BurnReceipt.parse(bad)


# -- requests and retries, against a mock transport --------------------------------------------


def client_for(handler, clock: FakeClock, **policy: float) -> GasApiClient:  # type: ignore[no-untyped-def]
    return GasApiClient(
        "https://upload.example/upload/",
        ALICE,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=clock.sleep,
        clock=clock.monotonic,
        rng=lambda: 1.0,
    )


def presigned_answer() -> httpx.Response:
    data = {"model_id": "m1", "presigned_url": "https://r2/x", "r2_key": "k", "submissions_max": 3}
    return response(200, {"data": data})


def test_presign_body_and_signature(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return presigned_answer()

    api = client_for(handler, FakeClock())
    result = api.presign(
        tmp_path / "image_detector.zip", "f" * 64, 10, "image", "general", BurnReceipt(TX, 9)
    )
    assert (result.model_id, result.r2_key, result.submissions_max) == ("m1", "k", 3)
    assert result.submissions_used is None
    request = seen[0]
    assert request.url == "https://upload.example/upload/presigned"
    expected = (
        '{"filename":"image_detector.zip","file_size":10,"expected_hash":"' + "f" * 64 + '",'
        '"content_type":"application/octet-stream","modality":"image","vertical":"general",'
        f'"burn_tx_hash":"{TX}","burn_block":9}}'
    )
    assert request.content.decode() == expected
    assert verify_request(dict(request.headers), request.content) == ALICE.ss58_address


def test_retries_are_bounded_with_backoff() -> None:
    clock = FakeClock()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["Epistula-Uuid"])
        return response(500, {"detail": "boom"})

    api = client_for(handler, clock, attempts=4, base_delay=1.0, max_delay=3.0)
    with pytest.raises(TransportError, match="gave up after 4") as raised:
        api.confirm("m1", "f" * 64)
    assert not raised.value.retryable
    assert clock.sleeps == [1.0, 2.0, 3.0]  # full jitter at its maximum, capped
    assert len(set(calls)) == 4  # each attempt signed afresh


def test_retry_after_is_honoured_within_budget() -> None:
    clock = FakeClock()
    answers = [response(429, {"detail": "slow"}, {"Retry-After": "20"}), presigned_answer()]
    api = client_for(lambda r: answers.pop(0), clock, base_delay=0.5)
    api.presign(Path("z.zip"), "f" * 64, 1, "image", "general")
    assert clock.sleeps == [20.0]


def test_budget_stops_retrying() -> None:
    clock = FakeClock()
    api = client_for(
        lambda r: response(429, {}, {"Retry-After": "100"}), clock, budget_seconds=50.0
    )
    with pytest.raises(TransportError):
        api.confirm("m1", "f" * 64)
    assert clock.sleeps == []


def test_not_retried() -> None:
    clock = FakeClock()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return response(503, {"detail": "Uploads for video are disabled"})

    with pytest.raises(UploadsDisabled):
        client_for(handler, clock).confirm("m1", "f" * 64)
    assert len(calls) == 1 and clock.sleeps == []


def test_connection_errors_are_retried() -> None:
    clock = FakeClock()
    answers: list[object] = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        response(200, {"data": {}}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    client_for(handler, clock).confirm("m1", "f" * 64)
    assert len(clock.sleeps) == 2


def test_presign_answer_must_have_the_keys() -> None:
    api = client_for(lambda r: response(200, {"data": {"model_id": "m"}}), FakeClock())
    with pytest.raises(PublishError, match="presigned_url, r2_key"):
        api.presign(Path("z.zip"), "f" * 64, 1, "image", "general")


# -- the PUT, against the loopback server ------------------------------------------------------


def test_put_streams_with_content_length_and_no_signature(tmp_path: Path) -> None:
    zip_path, digest, size = make_zip(tmp_path / "image_detector.zip", "image", b"x" * 5000)
    sent: list[int] = []
    with serve_gas_api() as server:
        api = GasApiClient(server.base_url, ALICE, timeouts=Timeouts(read=5, write=5))
        with api:
            presigned = api.presign(zip_path, digest, size, "image", "general")
            api.upload(presigned.presigned_url, zip_path, size, sent.append)
            api.confirm(presigned.model_id, digest)
    headers = server.put_headers[0]
    assert headers["content-length"] == str(size)
    assert "transfer-encoding" not in headers
    assert not any(key.startswith("epistula") for key in headers)
    assert headers["content-type"] == "application/octet-stream"
    assert sent[-1] == size
    assert server.total_confirmations == 1


def test_put_refuses_a_changed_file(tmp_path: Path) -> None:
    zip_path, _, size = make_zip(tmp_path / "image_detector.zip", "image")
    api = client_for(lambda r: response(200, {}), FakeClock())
    with pytest.raises(PublishError, match="changed since it was hashed"):
        api.upload("https://r2/x", zip_path, size + 1)


def test_the_fake_service_really_verifies_signatures(tmp_path: Path) -> None:
    class Impostor:
        ss58_address = ALICE.ss58_address

        def sign(self, data: bytes) -> bytes:
            return bytes(Keypair.create_from_uri("//Bob").sign(data))

    zip_path, digest, size = make_zip(tmp_path / "image_detector.zip", "image")
    with serve_gas_api() as server:
        api = GasApiClient(server.base_url, Impostor())
        with api, pytest.raises(BadSignature, match="signature does not verify"):
            api.presign(zip_path, digest, size, "image", "general")
    assert server.uploads == {}
