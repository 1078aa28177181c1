"""BitMind's upload API: presign -> PUT (streamed from disk) -> confirm (SPEC §4).

Every answer the service can give is mapped to gasbuild's exception tree in one place
(:func:`error_for`), because the mapping *is* the policy: which faults are retried, which are
the miner's to fix, and which are the network saying no. The service's own words are read the
way BitMind's client reads them: only the 409 whose text is exactly (case-folded) "file with
this hash already exists" means "already uploaded" (a looser test would take "tx hash already
exists" for one); a 403 naming the free or one submission, ``burn_tx_hash``, "0.5 tao" or
"already used" means a burn is required; a 409 "already been used" is a spent burn; a 409
"already in progress" is a reservation held by an earlier presign (perhaps one whose answer was
lost), waited out within the budget. A 503 "uploads ... disabled" is the submission window
being closed, not an outage, so it is never retried.

Values go back to the service exactly as it handed them out: ``model_id`` is an integer on the
wire and is confirmed as one (a string would be refused). Burn receipts are sent in BitMind's
form, 64 lowercase hex digits without ``0x`` and an integer block, whatever the user typed.

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
RESERVATION_MIN_WAIT = 0.5  # even when Retry-After says 0: never a hot loop

T = TypeVar("T")
ProgressCallback = Callable[[int], None]  # bytes sent so far in this attempt
RetryCallback = Callable[[str, TransportError, float], None]  # step, fault, seconds to wait


class AlreadyUploaded(PublishError):
    """409: the service already holds a file with this exact hash."""


class UploadsDisabled(PublishError):
    """503 "uploads ... disabled": the submission window is closed; retrying will not help."""


class BurnRequired(PublishError):
    """403: this hotkey's free submission is used; another needs a burn receipt."""


class BurnAlreadyUsed(PublishError):
    """409 "this burn has already been used": the receipt bought an earlier submission."""


class SubmissionInProgress(TransportError):
    """409 "a submission is already in progress": an earlier presign holds the reservation.

    Retryable (the reservation expires or is released), but on its own schedule: see
    :meth:`RetryPolicy.reservation_wait`. Giving up on it is one clear line, never a second
    upload.
    """


class BadSignature(PublishError):
    """403: the service did not accept the Epistula signature."""


ModelId = int | str  # as the service hands it out (an integer today); never converted

_TX_HASH = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")
_BLOCK = re.compile(r"[0-9]+")


def normalise_tx_hash(text: str) -> str:
    """BitMind's form of an extrinsic hash: 64 lowercase hex digits, no ``0x``.

    Accepts what people paste from explorers and the SDK (``0x``/``0X``, upper case,
    surrounding spaces); raises ValueError saying what is expected for anything else.
    """
    match = _TX_HASH.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a transaction hash (expected 64 hex digits, with or without 0x)"
        )
    return match.group(1).lower()


@dataclass(frozen=True)
class BurnReceipt:
    """Proof of the 0.5 TAO-worth alpha burn that buys a further counted submission.

    Always held in the form the service expects (``tx_hash`` 64 lowercase hex digits without
    ``0x``, ``block`` a positive integer): construct it with :meth:`of` or :meth:`parse`.
    """

    tx_hash: str
    block: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.tx_hash):
            raise ValueError(f"burn tx hash {self.tx_hash!r} is not 64 lowercase hex digits")
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block <= 0:
            raise ValueError(f"burn block {self.block!r} is not a positive integer")

    @classmethod
    def of(cls, tx_hash: str, block: int | str) -> BurnReceipt:
        """Normalise a hash and a block number from any source (user, SDK, a saved file)."""
        text = str(block).strip()
        if not _BLOCK.fullmatch(text) or int(text) <= 0:
            raise ValueError(f"{block!r} is not a block number (a positive integer)")
        return cls(normalise_tx_hash(tx_hash), int(text))

    @classmethod
    def parse(cls, text: str) -> BurnReceipt:
        """``TX_HASH:BLOCK``; raises ValueError with what is wrong."""
        tx_hash, sep, block = text.strip().rpartition(":")
        if not sep or not tx_hash or not block:
            raise ValueError(f"{text!r} is not TX_HASH:BLOCK")
        return cls.of(tx_hash, block)

    def payload(self) -> dict[str, Any]:
        """The presign fields, exactly as BitMind's client sends them."""
        return {"burn_tx_hash": self.tx_hash, "burn_block": self.block}

    def __str__(self) -> str:
        return f"{self.tx_hash}:{self.block}"


@dataclass(frozen=True)
class Presigned:
    """The service's answer to a presign: where to PUT, and the key to commit on chain."""

    model_id: ModelId
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
    reservation_delay: float = 5.0  # first wait on "a submission is already in progress"
    reservation_max_delay: float = 60.0
    reservation_attempts: int = 12

    def delay(self, failure: int, rng: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**failure)]."""
        return rng() * min(self.max_delay, self.base_delay * (2.0**failure))

    def reservation_wait(self, conflict: int) -> float:
        """Doubling waits for a held reservation. No jitter: the conflict is this hotkey's own
        (its expiry is on the service's clock), not a fleet's; the step's budget bounds it."""
        return min(self.reservation_max_delay, self.reservation_delay * (2.0**conflict))


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
        """Reserve an upload; the answer carries the presigned URL and the storage key.

        ``burn_receipt`` is attached only when the caller was told a burn is required (BitMind's
        flow: presign without a burn first).
        """
        payload: dict[str, Any] = {
            "filename": zip_path.name,
            "file_size": size,
            "expected_hash": sha256,
            "content_type": CONTENT_TYPE,
            "modality": modality,
            "vertical": vertical,
        }
        if burn_receipt is not None:
            payload.update(burn_receipt.payload())
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

    def confirm(self, model_id: ModelId, sha256: str) -> None:
        """Tell the service the upload is complete; this is what counts the submission.

        Only a 200 confirms; ``model_id`` goes back exactly as the presign handed it out.
        """
        payload: dict[str, Any] = {"model_id": model_id, "file_hash": sha256}
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
        faults = conflicts = 0
        while True:
            try:
                return attempt()
            except TransportError as error:
                if isinstance(error, SubmissionInProgress):
                    conflicts += 1
                else:
                    faults += 1
                wait = self._next_wait(error, faults, conflicts, started, limit)
                if wait is None:
                    raise _gave_up(
                        step, error, faults + conflicts, self._clock() - started
                    ) from error
                if self._on_retry is not None:
                    self._on_retry(step, error, wait)
                self._sleep(wait)

    def _next_wait(
        self,
        error: TransportError,
        faults: int,
        conflicts: int,
        started: float,
        limit: float,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when it must not be made."""
        if not error.retryable:
            return None
        if isinstance(error, SubmissionInProgress):
            if conflicts >= self.retry.reservation_attempts:
                return None
            wait = self.retry.reservation_wait(conflicts - 1)
            if error.retry_after is not None:  # the service knows when its reservation ends
                wait = max(RESERVATION_MIN_WAIT, error.retry_after)
        else:
            if faults >= self.retry.attempts:
                return None
            wait = self.retry.delay(faults - 1, self._rng)
            if error.retry_after is not None:
                wait = max(wait, error.retry_after)
        if self._clock() - started + wait > limit:
            return None
        return wait


# -- error mapping: the one place ---------------------------------------------------------


DUPLICATE_TEXT = "file with this hash already exists"
SUBMISSION_USED_WORDS = (
    "free submission",
    "one submission",
    "burn_tx_hash",
    "0.5 tao",
    "already used",
)


def is_duplicate(text: str) -> bool:
    """The one answer that means "already uploaded": exactly this text, case-folded."""
    return text.strip().casefold() == DUPLICATE_TEXT


def is_submission_used(text: str) -> bool:
    """A 403 saying this hotkey's free submission is used (BitMind's client's words)."""
    folded = text.casefold()
    return any(word in folded for word in SUBMISSION_USED_WORDS)


def error_for(step: str, response: httpx.Response) -> GasbuildError:
    """The exception for a non-success answer (see the module docstring for the policy)."""
    status = response.status_code
    text = error_text(response)
    shown = f"{step}: the upload service answered {status}: {text}"
    folded = text.casefold()
    if status == 409:
        return _conflict(step, shown, text, response)
    if status == 403:
        return _forbidden(shown, folded)
    if status == 503 and "disabled" in folded:
        return UploadsDisabled(
            f"{step}: submission window closed ({text})",
            hint="uploads open again with the next competition cycle; push then",
        )
    if status == 429 or status >= 500:
        return TransportError(shown, retry_after=retry_after(response))
    if step == "upload" and status == 400 and "digest" in folded:
        return PublishError(shown, hint="the zip changed after it was hashed; rebuild and push")
    return PublishError(shown)


def _conflict(step: str, shown: str, text: str, response: httpx.Response) -> GasbuildError:
    """409s: duplicates, spent burns and held reservations; every other one is shown as is."""
    folded = text.casefold()
    if is_duplicate(text):
        return AlreadyUploaded(shown)
    if step.startswith("presign") and "already in progress" in folded:
        return SubmissionInProgress(shown, retry_after=retry_after(response))
    if "already been used" in folded:
        return BurnAlreadyUsed(shown)
    return PublishError(shown)


def _forbidden(shown: str, folded: str) -> PublishError:
    if "signature" in folded or "epistula" in folded:
        return BadSignature(
            shown,
            hint="check the machine's clock (15 s allowed) and that the hotkey is the registered"
            " one",
        )
    if is_submission_used(folded):
        return BurnRequired(shown, hint=BURN_HINT)
    if "expired" in folded or "accessdenied" in folded.replace(" ", ""):
        return PublishError(shown, hint="the presigned URL expired; run push again for a new one")
    return PublishError(shown)


BURN_HINT = (
    "the network counts one free submission per hotkey, whatever the modality; a further counted"
    " model on this hotkey needs a burn of 0.5 TAO worth of subnet-34 alpha: let gasbuild make it"
    " (`gasbuild burn --modality MODALITY`, or push --burn), or pass --burn-receipt"
    " MODALITY=TX_HASH:BLOCK for a burn already made, or push this modality from its own"
    " registered hotkey"
)

RESERVATION_HINT = (
    "an earlier request from this hotkey (perhaps one whose answer was lost) still holds the"
    " upload reservation; nothing more was uploaded or counted: wait a few minutes for it to"
    " expire, then push again"
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


def _gave_up(step: str, error: TransportError, attempts: int, waited: float) -> TransportError:
    if not error.retryable:
        return error
    if isinstance(error, SubmissionInProgress):
        return SubmissionInProgress(
            f"{error.message} (still so after {attempts} attempt(s) over {waited:.0f} s)",
            hint=RESERVATION_HINT,
            retryable=False,
        )
    return TransportError(
        f"{error.message} (gave up after {attempts} attempt(s))",
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
    """The file in CHUNK_SIZE pieces; exactly ``size`` bytes or an error (never a short body).

    ``progress_cb`` hears 0 when the body starts (so a bar exists while the first chunk is on
    its way: a zip under one chunk would otherwise report only once, when it is all sent),
    then the bytes handed to the transport after each chunk, ending at ``size``.
    """
    sent = 0
    if progress_cb is not None:
        progress_cb(0)
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
    missing = [k for k in ("presigned_url", "r2_key") if not data.get(k)]
    if data.get("model_id") in (None, ""):
        missing.insert(0, "model_id")
    if missing:
        raise PublishError(f"presign: the upload service's answer lacks {', '.join(missing)}")
    return Presigned(
        model_id=_model_id(data["model_id"]),
        presigned_url=str(data["presigned_url"]),
        r2_key=str(data["r2_key"]),
        submissions_used=_optional_int(data.get("submissions_used")),
        submissions_max=_optional_int(data.get("submissions_max")),
    )


def _model_id(value: Any) -> ModelId:
    """The model id exactly as received: the confirm must send back the same JSON value."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PublishError(
            f"presign: the upload service's model_id {value!r} is neither a number nor a string"
        )
    return value


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
