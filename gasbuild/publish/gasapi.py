"""BitMind's upload API: presign -> PUT (streamed from disk) -> confirm (SPEC §4).

Every answer the service can give is mapped to gasbuild's exception tree in one place
(:func:`error_for`), because the mapping *is* the policy: which faults are retried, which are
the miner's to fix, and which are the network saying no. Only the 409 whose text says a file
with this hash already exists means "already uploaded"; a 503 "uploads ... disabled" is the
submission window being closed, not an outage, so it is never retried.

Retries are bounded twice: a number of attempts and a time budget per step, with exponential
backoff and full jitter (a fleet of miners retrying in lockstep is what the jitter prevents). The
clock, the sleep and the random source are injectable so tests run in no time.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gasbuild.errors import GasbuildError, PublishError, TransportError
from gasbuild.publish.epistula import Signer, sign_request

if TYPE_CHECKING:  # imported where requests are made: `gasbuild status` needs none of it
    import httpx

DEFAULT_UPLOAD_URL = "https://upload.bitmind.ai/upload"
CHUNK_SIZE = 1 << 20
CONTENT_TYPE = "application/octet-stream"

T = TypeVar("T")
ProgressCallback = Callable[[int], None]  # bytes sent so far in this attempt
RetryCallback = Callable[[str, TransportError, float], None]  # step, fault, seconds to wait


class AlreadyUploaded(PublishError):
    """409: the service already holds a file with this exact hash."""


class UploadsDisabled(PublishError):
    """503 "uploads ... disabled": the submission window is closed; retrying will not help."""


class BurnRequired(PublishError):
    """403: this hotkey's free submission is used; another needs a burn receipt."""


class BadSignature(PublishError):
    """403: the service did not accept the Epistula signature."""


@dataclass(frozen=True)
class BurnReceipt:
    """Proof of the 0.5 TAO-worth alpha burn that buys a further counted submission."""

    tx_hash: str
    block: int

    @classmethod
    def parse(cls, text: str) -> BurnReceipt:
        """``TX_HASH:BLOCK``; raises ValueError with what is wrong."""
        tx_hash, sep, block = text.strip().rpartition(":")
        if not sep or not tx_hash or not block.isdigit():
            raise ValueError(f"{text!r} is not TX_HASH:BLOCK")
        if not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", tx_hash):
            raise ValueError(f"{tx_hash!r} is not a 32-byte hex transaction hash")
        return cls(tx_hash if tx_hash.startswith("0x") else "0x" + tx_hash, int(block))


@dataclass(frozen=True)
class Presigned:
    """The service's answer to a presign: where to PUT, and the key to commit on chain."""

    model_id: str
    presigned_url: str
    r2_key: str
    submissions_used: int | None = None
    submissions_max: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, plus a time budget per step."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    budget_seconds: float = 300.0
    min_upload_rate: float = 256 * 1024  # bytes/s added to the PUT's budget per byte of zip

    def delay(self, failure: int, rng: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**failure)]."""
        return rng() * min(self.max_delay, self.base_delay * (2.0**failure))


@dataclass(frozen=True)
class Timeouts:
    """Per-request timeouts; ``write`` bounds one chunk of the PUT, not the whole upload."""

    connect: float = 10.0
    read: float = 120.0
    write: float = 120.0
    pool: float = 10.0

    def httpx(self) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class GasApiClient:
    """Signed requests to the upload API; one instance per hotkey (it signs as that key)."""

    def __init__(
        self,
        base_url: str,
        keypair: Signer,
        *,
        transport: httpx.BaseTransport | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        on_retry: RetryCallback | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._on_retry = on_retry
        self.keypair = keypair
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        import httpx

        self._http = httpx.Client(
            transport=transport,
            timeout=(timeouts or Timeouts()).httpx(),
            follow_redirects=False,
            trust_env=transport is None,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GasApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the three steps ------------------------------------------------------------------

    def presign(
        self,
        zip_path: Path,
        sha256: str,
        size: int,
        modality: str,
        vertical: str,
        burn_receipt: BurnReceipt | None = None,
    ) -> Presigned:
        """Reserve an upload; the answer carries the presigned URL and the storage key."""
        payload: dict[str, Any] = {
            "filename": zip_path.name,
            "file_size": size,
            "expected_hash": sha256,
            "content_type": CONTENT_TYPE,
            "modality": modality,
            "vertical": vertical,
        }
        if burn_receipt is not None:
            payload["burn_tx_hash"] = burn_receipt.tx_hash
            payload["burn_block"] = burn_receipt.block
        answer = self._retrying("presign", lambda: self._post("presigned", payload))
        return _presigned(answer)

    def upload(
        self,
        presigned_url: str,
        zip_path: Path,
        size: int,
        progress_cb: ProgressCallback | None = None,
    ) -> None:
        """PUT the zip, streamed from disk with an explicit Content-Length (never chunked)."""
        budget = self.retry.budget_seconds + size / self.retry.min_upload_rate
        self._retrying(
            "upload", lambda: self._put(presigned_url, zip_path, size, progress_cb), budget
        )

    def confirm(self, model_id: str, sha256: str) -> None:
        """Tell the service the upload is complete; this is what counts the submission."""
        payload = {"model_id": model_id, "file_hash": sha256}
        self._retrying("confirm", lambda: self._post("confirm", payload))

    # -- one attempt ------------------------------------------------------------------------

    def _post(self, endpoint: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **sign_request(self.keypair, body)}
        url = f"{self.base_url}/{endpoint}"
        with _transport_errors(endpoint):
            response = self._http.post(url, content=body, headers=headers)
        if response.status_code != 200:
            raise error_for(endpoint, response)
        try:
            return response.json()
        except ValueError:
            raise PublishError(f"{endpoint}: the upload service answered 200, not JSON") from None

    def _put(
        self, url: str, zip_path: Path, size: int, progress_cb: ProgressCallback | None
    ) -> None:
        actual = zip_path.stat().st_size
        if actual != size:
            raise PublishError(
                f"{zip_path} is {actual} bytes, expected {size}: it changed since it was hashed"
            )
        headers = {"Content-Type": CONTENT_TYPE, "Content-Length": str(size)}
        with _transport_errors("upload"):
            response = self._http.put(
                url, content=_chunks(zip_path, size, progress_cb), headers=headers
            )
        if response.status_code not in (200, 201, 204):
            raise error_for("upload", response)

    # -- retries ----------------------------------------------------------------------------

    def _retrying(self, step: str, attempt: Callable[[], T], budget: float | None = None) -> T:
        """Run ``attempt`` until it succeeds, a non-retryable error, or the bounds are hit."""
        limit = self.retry.budget_seconds if budget is None else budget
        started = self._clock()
        failures = 0
        while True:
            try:
                return attempt()
            except TransportError as error:
                failures += 1
                wait = self._next_wait(error, failures, started, limit)
                if wait is None:
                    raise _gave_up(step, error, failures) from error
                if self._on_retry is not None:
                    self._on_retry(step, error, wait)
                self._sleep(wait)

    def _next_wait(
        self, error: TransportError, failures: int, started: float, limit: float
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when it must not be made."""
        if not error.retryable or failures >= self.retry.attempts:
            return None
        wait = self.retry.delay(failures - 1, self._rng)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        if self._clock() - started + wait > limit:
            return None
        return wait


# -- error mapping: the one place ---------------------------------------------------------


def error_for(step: str, response: httpx.Response) -> GasbuildError:
    """The exception for a non-success answer (see the module docstring for the policy)."""
    status = response.status_code
    text = error_text(response)
    shown = f"{step}: the upload service answered {status}: {text}"
    lowered = text.lower()
    if status == 409:
        if "already exist" in lowered and "hash" in lowered:
            return AlreadyUploaded(shown)
        return PublishError(shown)
    if status == 403:
        return _forbidden(shown, lowered)
    if status == 503 and "disabled" in lowered:
        return UploadsDisabled(
            f"{step}: submission window closed ({text})",
            hint="uploads open again with the next competition cycle; push then",
        )
    if status == 429 or status >= 500:
        return TransportError(shown, retry_after=retry_after(response))
    if step == "upload" and status == 400 and "digest" in lowered:
        return PublishError(shown, hint="the zip changed after it was hashed; rebuild and push")
    return PublishError(shown)


def _forbidden(shown: str, lowered: str) -> PublishError:
    if "signature" in lowered or "epistula" in lowered:
        return BadSignature(
            shown,
            hint="check the machine's clock (15 s allowed) and that the hotkey is the registered"
            " one",
        )
    if any(word in lowered for word in ("burn", "free submission", "submission used")):
        return BurnRequired(shown, hint=BURN_HINT)
    if "expired" in lowered or "accessdenied" in lowered.replace(" ", ""):
        return PublishError(shown, hint="the presigned URL expired; run push again for a new one")
    return PublishError(shown)


BURN_HINT = (
    "the network counts one free submission per hotkey, whatever the modality; a further counted"
    " model on this hotkey needs a burn of 0.5 TAO worth of subnet-34 alpha: burn it, then pass"
    " --burn-receipt MODALITY=TX_HASH:BLOCK, or push this modality from its own registered hotkey"
)


def error_text(response: httpx.Response) -> str:
    """The service's own words: JSON ``detail``/``error``/``message``, S3 XML, or the body."""
    raw = response.text.strip()
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("detail", "error", "message"):
            if data.get(key):
                return _flatten(data[key])
    code = re.search(r"<Code>(.*?)</Code>", raw, re.S)
    message = re.search(r"<Message>(.*?)</Message>", raw, re.S)
    if code or message:
        parts = [m.group(1).strip() for m in (code, message) if m]
        return ": ".join(parts)
    return " ".join(raw.split())[:300] or response.reason_phrase


def _flatten(value: Any) -> str:
    """FastAPI puts a list of ``{"msg": ...}`` in ``detail``; anything else is shown as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(
            _flatten(item.get("msg", item) if isinstance(item, dict) else item) for item in value
        )
    if isinstance(value, dict):
        for key in ("message", "msg", "detail", "error"):
            if key in value:
                return _flatten(value[key])
    return json.dumps(value, separators=(",", ":"))


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _gave_up(step: str, error: TransportError, failures: int) -> TransportError:
    if not error.retryable:
        return error
    return TransportError(
        f"{error.message} (gave up after {failures} attempt(s))",
        hint=error.hint or "the upload service is unreachable or failing; push again later",
        retryable=False,
    )


@contextmanager
def _transport_errors(step: str) -> Iterator[None]:
    """Turn httpx's timeouts, resets and refused connections into a retryable TransportError."""
    import httpx

    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransportError(f"{step}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TransportError(f"{step}: connection failed ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _chunks(path: Path, size: int, progress_cb: ProgressCallback | None) -> Iterator[bytes]:
    """The file in CHUNK_SIZE pieces; exactly ``size`` bytes or an error (never a short body)."""
    sent = 0
    with path.open("rb") as handle:
        while sent < size:
            chunk = handle.read(min(CHUNK_SIZE, size - sent))
            if not chunk:
                raise PublishError(f"{path} shrank while it was being uploaded")
            sent += len(chunk)
            yield chunk
            if progress_cb is not None:
                progress_cb(sent)


def _presigned(answer: Any) -> Presigned:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise PublishError("presign: the upload service's answer has no `data` object")
    missing = [k for k in ("model_id", "presigned_url", "r2_key") if not data.get(k)]
    if missing:
        raise PublishError(f"presign: the upload service's answer lacks {', '.join(missing)}")
    return Presigned(
        model_id=str(data["model_id"]),
        presigned_url=str(data["presigned_url"]),
        r2_key=str(data["r2_key"]),
        submissions_used=_optional_int(data.get("submissions_used")),
        submissions_max=_optional_int(data.get("submissions_max")),
    )


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
