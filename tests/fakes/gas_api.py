"""A fake GAS upload API on 127.0.0.1: presign, presigned PUT, confirm, with faults on request.

It behaves as SPEC §4 and BitMind's client describe the real service, in BitMind's words:

- every presign and confirm must carry a valid Epistula v2 signature (checked with the real
  keypair machinery); the presigned URL points back at this server; the PUT body must hash to
  the presign's ``expected_hash``;
- ``model_id`` is an integer; a confirm that sends it back as anything else (a string) is
  answered 404, as a service that checks the type would;
- a confirmed hash answers 409 "File with this hash already exists" thereafter;
- each hotkey gets one free counted submission; a further presign without a burn is answered
  403 "This registration has already used its one submission"; the burn fields must be in
  BitMind's form (``burn_tx_hash`` 64 lowercase hex digits, ``burn_block`` a positive integer)
  or the presign is refused 422; a burn spent by a confirmed upload answers 409 "This burn has
  already been used", and a burn presented by another hotkey 409 "This burn already belongs to
  another registration";
- a presign reserves the hotkey's submission until that upload is confirmed or
  ``reservation_seconds`` pass (on ``clock``, which tests share with the client's fake clock);
  another presign meanwhile is answered 409 "A submission is already in progress for this
  registration";
- confirming twice is idempotent and counts once, so tests can assert that no slot was ever
  spent twice (``confirmations``, ``total_confirmations``).

Faults are queued per endpoint (``presigned``, ``put``, ``confirm``) and consumed one per
request: ``500``, ``503``, ``reset`` (close the connection; for a PUT after reading half the
body), ``lost`` (apply the request, then close the connection without answering: the answer is
lost), ``timeout`` (apply the request, then answer after ``slow_seconds``), ``409dup``,
``409other``, ``409progress``, ``409txhash``, ``409burnused``, ``429`` (with ``Retry-After``),
``403sig``, ``403burn``, ``503disabled``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gasbuild.publish.epistula import EpistulaError, verify_request

DUPLICATE = "File with this hash already exists"
ONE_SUBMISSION = "This registration has already used its one submission"
FREE_USED = "This registration has already used its free submission. Burn 0.5 TAO"
IN_PROGRESS = "A submission is already in progress for this registration"
BURN_USED = "This burn has already been used"
BURN_ELSEWHERE = "This burn already belongs to another registration"


@dataclass
class Upload:
    model_id: int
    hotkey: str
    modality: str
    expected_hash: str
    size: int
    r2_key: str
    burn: dict[str, Any] | None = None
    reserved_until: float = 0.0
    put_ok: bool = False
    confirmed: bool = False


@dataclass
class GasApiState:
    base_url: str = ""
    faults: dict[str, list[str]] = field(default_factory=dict)
    uploads: dict[int, Upload] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)  # sha256 -> model_id
    confirmations: dict[str, int] = field(default_factory=dict)  # hotkey -> counted
    burns: dict[str, str] = field(default_factory=dict)  # burn tx hash -> hotkey it serves
    spent_burns: set[str] = field(default_factory=set)
    calls: dict[str, int] = field(default_factory=dict)  # endpoint -> requests seen
    put_headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # presign bodies as received
    confirm_bodies: list[dict[str, Any]] = field(default_factory=list)
    free_per_hotkey: int = 1
    submissions_max: int = 3
    used_text: str = ONE_SUBMISSION
    retry_after: str = "0"
    slow_seconds: float = 1.0
    reservation_seconds: float = 20.0
    reservation_retry_after: str | None = None  # Retry-After on "already in progress"
    key_prefix: str = "models"
    clock: Callable[[], float] = time.monotonic
    next_model_id: int = 9
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, endpoint: str, *kinds: str) -> None:
        self.faults.setdefault(endpoint, []).extend(kinds)

    def next_fault(self, endpoint: str) -> str | None:
        with self.lock:
            self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
            pending = self.faults.get(endpoint) or []
            return pending.pop(0) if pending else None

    @property
    def total_confirmations(self) -> int:
        return sum(self.confirmations.values())


_CANNED = {
    "500": (500, {"detail": "Internal Server Error"}),
    "503": (503, {"detail": "Service Unavailable"}),
    "409dup": (409, {"detail": DUPLICATE}),
    "409other": (409, {"detail": "Registration changed; please retry with a fresh registration"}),
    "409progress": (409, {"detail": IN_PROGRESS}),
    "409txhash": (409, {"detail": "tx hash already exists"}),
    "409burnused": (409, {"detail": BURN_USED}),
    "429": (429, {"detail": "Too many requests"}),
    "403sig": (403, {"detail": "Invalid Epistula signature"}),
    "403burn": (403, {"detail": FREE_USED}),
    "503disabled": (503, {"detail": "Uploads for image are disabled"}),
}


def _handler(state: GasApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        # -- plumbing -------------------------------------------------------------------

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            ctype = "application/xml" if isinstance(payload, bytes) else "application/json"
            self.send_header("Content-Type", ctype)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _drop(self) -> None:
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _canned(self, fault: str | None) -> bool:
            """Answer a canned fault; True when the request is finished."""
            if fault in _CANNED:
                status, payload = _CANNED[fault]
                extra = {"Retry-After": state.retry_after} if fault == "429" else None
                self._send(status, payload, extra)
                return True
            if fault == "reset":
                self._drop()
                return True
            return False

        def _signed(self, body: bytes) -> str | None:
            try:
                return verify_request(dict(self.headers.items()), body)
            except EpistulaError as exc:
                self._send(403, {"detail": f"Invalid signature: {exc.message}"})
                return None

        # -- routes ---------------------------------------------------------------------

        def do_POST(self) -> None:
            if self.path.endswith("/presigned"):
                self._presigned()
            elif self.path.endswith("/confirm"):
                self._confirm()
            else:
                self._send(404, {"detail": "Not Found"})

        def do_PUT(self) -> None:
            if not self.path.startswith("/r2/"):
                self._send(404, {"detail": "Not Found"})
                return
            self._put(self.path.split("?", 1)[0].removeprefix("/r2/"))

        def _presigned(self) -> None:
            body = self._body()
            fault = state.next_fault("presigned")
            if fault not in ("timeout", "lost") and self._canned(fault):
                return
            hotkey = self._signed(body)
            if hotkey is None:
                return
            data = json.loads(body)
            state.bodies.append(data)
            with state.lock:
                answer = self._reserve(hotkey, data)
            self._finish(fault, answer)

        def _finish(self, fault: str | None, answer: tuple[int, Any, dict[str, str]]) -> None:
            """Answer a request already applied; ``lost``/``timeout`` lose the answer."""
            if fault == "lost":
                self._drop()
                return
            if fault == "timeout":
                time.sleep(state.slow_seconds)
            self._send(*answer)

        def _reserve(self, hotkey: str, data: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
            expected = data["expected_hash"]
            if expected in state.accepted:
                return 409, {"detail": DUPLICATE}, {}
            burn, refusal = _burn_of(data)
            if refusal is not None:
                return 422, {"detail": refusal}, {}
            used = state.confirmations.get(hotkey, 0)
            if used >= state.free_per_hotkey and burn is None:
                return 403, {"detail": state.used_text}, {}
            if burn is not None:
                if burn["tx"] in state.spent_burns:
                    return 409, {"detail": BURN_USED}, {}
                if state.burns.setdefault(burn["tx"], hotkey) != hotkey:
                    return 409, {"detail": BURN_ELSEWHERE}, {}
            now = state.clock()
            for upload in state.uploads.values():
                if upload.hotkey == hotkey and not upload.confirmed and upload.reserved_until > now:
                    extra = {}
                    if state.reservation_retry_after is not None:
                        extra["Retry-After"] = state.reservation_retry_after
                    return 409, {"detail": IN_PROGRESS}, extra
            model_id = state.next_model_id
            state.next_model_id += 1
            r2_key = f"{state.key_prefix}/{hotkey[:8]}/{data['modality']}/{model_id}.zip"
            state.uploads[model_id] = Upload(
                model_id,
                hotkey,
                data["modality"],
                expected,
                data["file_size"],
                r2_key,
                burn,
                reserved_until=now + state.reservation_seconds,
            )
            answer = {
                "model_id": model_id,
                "presigned_url": f"{state.base_url}/r2/{model_id}?X-Amz-Signature=fake",
                "r2_key": r2_key,
                "submissions_used": used,
                "submissions_max": state.submissions_max,
            }
            return 200, {"data": answer}, {}

        def _put(self, model_id: str) -> None:
            state.put_headers.append({k.lower(): v for k, v in self.headers.items()})
            length = int(self.headers.get("Content-Length") or -1)
            fault = state.next_fault("put")
            if fault == "reset":
                self.rfile.read(max(0, length // 2))
                self._drop()
                return
            body = self.rfile.read(length) if length >= 0 else b""
            if fault == "timeout":
                time.sleep(state.slow_seconds)
            elif self._canned(fault):
                return
            upload = state.uploads.get(int(model_id)) if model_id.isdigit() else None
            if upload is None or length < 0:
                self._send(403, _xml("AccessDenied", "Request has expired"))
                return
            if hashlib.sha256(body).hexdigest() != upload.expected_hash:
                self._send(400, _xml("BadDigest", "The Content-SHA256 you specified did not match"))
                return
            upload.put_ok = True
            self._send(200, b"")

        def _confirm(self) -> None:
            body = self._body()
            fault = state.next_fault("confirm")
            if fault not in ("timeout", "lost") and self._canned(fault):
                return
            hotkey = self._signed(body)
            if hotkey is None:
                return
            data = json.loads(body)
            state.confirm_bodies.append(data)
            with state.lock:
                status, payload = self._apply_confirm(hotkey, data)
            self._finish(fault, (status, payload, {}))

        def _apply_confirm(self, hotkey: str, data: dict[str, Any]) -> tuple[int, Any]:
            model_id = data.get("model_id")
            if isinstance(model_id, bool) or not isinstance(model_id, int):
                return 404, {"detail": "Unknown model_id"}  # "9" is not 9
            upload = state.uploads.get(model_id)
            if upload is None or upload.hotkey != hotkey:
                return 404, {"detail": "Unknown model_id"}
            if upload.expected_hash != data.get("file_hash") or not upload.put_ok:
                return 400, {"detail": "File not uploaded or hash mismatch"}
            if not upload.confirmed:
                upload.confirmed = True
                state.confirmations[hotkey] = state.confirmations.get(hotkey, 0) + 1
                state.accepted[upload.expected_hash] = upload.model_id
                if upload.burn is not None:
                    state.spent_burns.add(upload.burn["tx"])
            return 200, {"data": {"model_id": upload.model_id, "status": "confirmed"}}

    return Handler


def _burn_of(data: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The burn fields of a presign body, or why they are refused (BitMind's form only)."""
    if "burn_tx_hash" not in data and "burn_block" not in data:
        return None, None
    tx, block = data.get("burn_tx_hash"), data.get("burn_block")
    if not isinstance(tx, str) or not re.fullmatch(r"[0-9a-f]{64}", tx):
        return None, "burn_tx_hash must be 64 lowercase hex characters without 0x"
    if isinstance(block, bool) or not isinstance(block, int) or block <= 0:
        return None, "burn_block must be a positive integer"
    return {"tx": tx, "block": block}, None


def _xml(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or reset on purpose are not errors here


@contextmanager
def serve_gas_api() -> Iterator[GasApiState]:
    """Run the fake API on 127.0.0.1 (a free port) for the duration of the block."""
    state = GasApiState()
    server = _Server(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
