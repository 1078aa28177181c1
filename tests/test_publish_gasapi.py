"""The upload API client: request shapes, error mapping, bounded retries, streamed PUT."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("bittensor_wallet")

from bittensor_wallet import Keypair

from fakes.gas_api import serve_gas_api
from fakes.publishing import FakeClock, make_zip
from gasbuild.errors import PublishError, TransportError
from gasbuild.publish.epistula import verify_request
from gasbuild.publish.gasapi import (
    AlreadyUploaded,
    BadSignature,
    BurnAlreadyUsed,
    BurnReceipt,
    BurnRequired,
    GasApiClient,
    RetryPolicy,
    SubmissionInProgress,
    Timeouts,
    UploadsDisabled,
    error_for,
    error_text,
    normalise_tx_hash,
    retry_after,
)

ALICE = Keypair.create_from_uri("//Alice")
TX = "ab" * 32  # BitMind's form


def response(status: int, body: object = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


# -- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "detail", "kind", "retryable"),
    [
        (409, "File with this hash already exists", AlreadyUploaded, False),
        (409, "  FILE WITH THIS HASH ALREADY EXISTS ", AlreadyUploaded, False),
        (409, "tx hash already exists", PublishError, False),
        (409, "A file with this hash already exists for another hotkey", PublishError, False),
        (409, "This burn already belongs to another registration", PublishError, False),
        (409, "This burn does not match the current registration", PublishError, False),
        (409, "Registration changed; please retry with a fresh registration", PublishError, False),
        (409, "Upload reservation expired; please retry", PublishError, False),
        (409, "This burn has already been used", BurnAlreadyUsed, False),
        (
            409,
            "A submission is already in progress for this registration",
            SubmissionInProgress,
            True,
        ),
        (409, "", PublishError, False),
        (400, "File with this hash already exists", PublishError, False),
        (403, "Invalid signature", BadSignature, False),
        (403, "This registration has already used its one submission", BurnRequired, False),
        (403, "already used its free submission. Burn 0.5 TAO", BurnRequired, False),
        (403, "burn_tx_hash is required for a further model", BurnRequired, False),
        (403, "Hotkey is not registered", PublishError, False),
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


def test_in_progress_is_a_reservation_only_at_presign() -> None:
    text = {"detail": "A submission is already in progress for this registration"}
    assert type(error_for("presigned", response(409, text))) is SubmissionInProgress
    assert type(error_for("confirm", response(409, text))) is PublishError


def test_burn_hint_explains_the_rule() -> None:
    error = error_for("presign", response(403, {"message": "free submission used"}))
    assert isinstance(error, BurnRequired)
    assert "--burn-receipt" in str(error) and "one free submission per hotkey" in str(error)
    assert "gasbuild burn" in str(error)


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
    assert BurnReceipt.parse("0x" + "AB" * 32 + ":5") == BurnReceipt(TX, 5)
    assert BurnReceipt.parse(" 0X" + "aB" * 32 + ":0007 ") == BurnReceipt(TX, 7)
    assert BurnReceipt.of(TX, "12").payload() == {"burn_tx_hash": TX, "burn_block": 12}
    for bad in (
        "nope",
        f"{TX}:",
        f"{TX}:x",
        "0x12:5",
        f"{TX}:0",
        f"{TX}:-3",
        f"{TX}:1.5",
        f"{TX}:٣",
    ):
        with pytest.raises(ValueError):
            BurnReceipt.parse(bad)
    with pytest.raises(ValueError):
        BurnReceipt("0x" + TX, 5)  # only the normalised form is a receipt


HEX = "0123456789abcdef"


@given(
    digits=st.text(alphabet=HEX, min_size=64, max_size=64),
    upper=st.lists(st.booleans(), min_size=64, max_size=64),
    prefix=st.sampled_from(["", "0x", "0X"]),
    block=st.integers(min_value=1, max_value=2**63),
)
def test_any_case_or_prefix_of_64_hex_digits_normalises(
    digits: str, upper: list[bool], prefix: str, block: int
) -> None:
    typed = prefix + "".join(c.upper() if u else c for c, u in zip(digits, upper, strict=True))
    assert normalise_tx_hash(typed) == digits
    receipt = BurnReceipt.parse(f"{typed}:{block}")
    assert receipt == BurnReceipt(digits, block)
    assert receipt.payload() == {"burn_tx_hash": digits, "burn_block": block}


@given(st.text(max_size=80))
def test_anything_else_is_refused_with_what_is_expected(text: str) -> None:
    if re.fullmatch(r"\s*(0[xX])?[0-9a-fA-F]{64}\s*", text):
        return
    with pytest.raises(ValueError, match="64 hex digits"):
        normalise_tx_hash(text)


@given(
    digits=st.text(alphabet=HEX, min_size=1, max_size=80).filter(lambda d: len(d) != 64),
    prefix=st.sampled_from(["", "0x"]),
)
def test_wrong_lengths_are_refused(digits: str, prefix: str) -> None:
    with pytest.raises(ValueError, match="not a transaction hash"):
        BurnReceipt.parse(f"{prefix}{digits}:5")


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


def presigned_answer(model_id: object = "m1") -> httpx.Response:
    data = {
        "model_id": model_id,
        "presigned_url": "https://r2/x",
        "r2_key": "k",
        "submissions_max": 3,
    }
    return response(200, {"data": data})


def test_presign_body_and_signature(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return presigned_answer()

    api = client_for(handler, FakeClock())
    typed = BurnReceipt.parse("0x" + TX.upper() + ":9")
    result = api.presign(tmp_path / "image_detector.zip", "f" * 64, 10, "image", "general", typed)
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


@pytest.mark.parametrize("model_id", [9, 0, "m-9", "9"])
def test_model_id_goes_back_exactly_as_received(model_id: object) -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        if request.url.path.endswith("/presigned"):
            return presigned_answer(model_id)
        return response(200, {"data": {"status": "confirmed"}})

    api = client_for(handler, FakeClock())
    answer = api.presign(Path("z.zip"), "f" * 64, 1, "image", "general")
    assert answer.model_id == model_id and type(answer.model_id) is type(model_id)
    api.confirm(answer.model_id, "f" * 64)
    sent = json.loads(seen[-1])
    assert sent["model_id"] == model_id and type(sent["model_id"]) is type(model_id)
    assert (
        seen[-1]
        == json.dumps({"model_id": model_id, "file_hash": "f" * 64}, separators=(",", ":")).encode()
    )


@pytest.mark.parametrize("model_id", [True, 1.5, None, "", [1]])
def test_unusable_model_ids_are_refused(model_id: object) -> None:
    api = client_for(lambda r: presigned_answer(model_id), FakeClock())
    with pytest.raises(PublishError, match="model_id"):
        api.presign(Path("z.zip"), "f" * 64, 1, "image", "general")


def test_a_held_reservation_is_waited_out_then_presigned() -> None:
    clock = FakeClock()
    busy = response(409, {"detail": "A submission is already in progress for this registration"})
    answers = [busy, busy, busy, presigned_answer(9)]
    api = client_for(lambda r: answers.pop(0), clock)
    assert api.presign(Path("z.zip"), "f" * 64, 1, "image", "general").model_id == 9
    assert clock.sleeps == [5.0, 10.0, 20.0]  # doubling, no jitter


def test_a_held_reservation_honours_retry_after_and_the_budget() -> None:
    clock = FakeClock()
    busy = {"detail": "A submission is already in progress for this registration"}
    api = client_for(
        lambda r: response(409, busy, {"Retry-After": "40"}), clock, budget_seconds=100.0
    )
    with pytest.raises(SubmissionInProgress) as raised:
        api.presign(Path("z.zip"), "f" * 64, 1, "image", "general")
    assert clock.sleeps == [40.0, 40.0]  # a third wait would pass the 100 s budget
    assert not raised.value.retryable
    text = str(raised.value)
    assert "still so after 3 attempt(s)" in text and "wait a few minutes" in text


def test_a_held_reservation_waits_as_long_as_retry_after_says() -> None:
    clock = FakeClock()
    busy = {"detail": "A submission is already in progress for this registration"}
    answers = [response(409, busy, {"Retry-After": "1"}), response(409, busy, {"Retry-After": "0"})]
    api = client_for(lambda r: answers.pop(0) if answers else presigned_answer(3), clock)
    assert api.presign(Path("z.zip"), "f" * 64, 1, "image", "general").model_id == 3
    assert clock.sleeps == [1.0, 0.5]


def test_a_409_at_confirm_is_a_failure() -> None:
    for detail in ("File with this hash already exists", "Upload reservation expired"):
        api = client_for(lambda r, d=detail: response(409, {"detail": d}), FakeClock())
        with pytest.raises(PublishError, match="409"):
            api.confirm(9, "f" * 64)


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
