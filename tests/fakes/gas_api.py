"""A fake GAS upload API on 127.0.0.1: presign, presigned PUT, confirm, with faults on request.

It behaves as SPEC §4 describes the real service: every presign and confirm must carry a valid
Epistula v2 signature (checked with the real keypair machinery), the presigned URL points back
at this server, the PUT body must hash to the presign's ``expected_hash``, a confirmed hash
answers the duplicate-file 409 thereafter, and each hotkey gets one free counted submission
(a further one needs a burn receipt). Confirming twice is idempotent and counts once, so tests
can assert that no slot was ever spent twice.

Faults are queued per endpoint (``presigned``, ``put``, ``confirm``) and consumed one per
request: ``500``, ``503``, ``reset`` (close the connection; for a PUT after reading half the
body), ``timeout`` (answer after ``slow_seconds``; a confirm is applied first, as a server that
was slow to answer would have), ``409dup``, ``409other``, ``429`` (with ``Retry-After``),
``403sig``, ``403burn``, ``503disabled``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gasbuild.publish.epistula import EpistulaError, verify_request

DUPLICATE = "File with this hash already exists"


@dataclass
class Upload:
    model_id: str
    hotkey: str
    modality: str
    expected_hash: str
    size: int
    r2_key: str
    burn: dict[str, Any] | None = None
    put_ok: bool = False
    confirmed: bool = False


@dataclass
class GasApiState:
    base_url: str = ""
    faults: dict[str, list[str]] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    accepted: dict[str, str] = field(default_factory=dict)  # sha256 -> model_id
    confirmations: dict[str, int] = field(default_factory=dict)  # hotkey -> counted
    calls: dict[str, int] = field(default_factory=dict)  # endpoint -> requests seen
    put_headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # presign bodies as received
    free_per_hotkey: int = 1
    submissions_max: int = 3
    retry_after: str = "0"
    slow_seconds: float = 1.0
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
    "409other": (409, {"detail": "Upload reservation conflict: another upload is in progress"}),
    "429": (429, {"detail": "Too many requests"}),
    "403sig": (403, {"detail": "Invalid Epistula signature"}),
    "403burn": (403, {"detail": "Free submission already used for this hotkey; burn required"}),
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
            if fault == "timeout":
                time.sleep(state.slow_seconds)
            elif self._canned(fault):
                return
            hotkey = self._signed(body)
            if hotkey is None:
                return
            data = json.loads(body)
            state.bodies.append(data)
            with state.lock:
                answer = self._reserve(hotkey, data)
            self._send(*answer)

        def _reserve(self, hotkey: str, data: dict[str, Any]) -> tuple[int, Any]:
            expected = data["expected_hash"]
            if expected in state.accepted:
                return 409, {"detail": DUPLICATE}
            burn = None
            if "burn_tx_hash" in data:
                burn = {"tx": data["burn_tx_hash"], "block": data["burn_block"]}
            if state.confirmations.get(hotkey, 0) >= state.free_per_hotkey and burn is None:
                return 403, {"detail": "Free submission already used for this hotkey; burn"}
            model_id = uuid.uuid4().hex
            r2_key = f"models/{hotkey[:8]}/{data['modality']}/{model_id}.zip"
            state.uploads[model_id] = Upload(
                model_id, hotkey, data["modality"], expected, data["file_size"], r2_key, burn
            )
            used = state.confirmations.get(hotkey, 0)
            return 200, {
                "data": {
                    "model_id": model_id,
                    "presigned_url": f"{state.base_url}/r2/{model_id}?X-Amz-Signature=fake",
                    "r2_key": r2_key,
                    "submissions_used": used,
                    "submissions_max": state.submissions_max,
                }
            }

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
            upload = state.uploads.get(model_id)
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
            if fault != "timeout" and self._canned(fault):
                return
            hotkey = self._signed(body)
            if hotkey is None:
                return
            data = json.loads(body)
            with state.lock:
                answer = self._apply_confirm(hotkey, data)
            if fault == "timeout":
                time.sleep(state.slow_seconds)
            self._send(*answer)

        def _apply_confirm(self, hotkey: str, data: dict[str, Any]) -> tuple[int, Any]:
            upload = state.uploads.get(data.get("model_id", ""))
            if upload is None or upload.hotkey != hotkey:
                return 404, {"detail": "Unknown model_id"}
            if upload.expected_hash != data.get("file_hash") or not upload.put_ok:
                return 400, {"detail": "File not uploaded or hash mismatch"}
            if not upload.confirmed:
                upload.confirmed = True
                state.confirmations[hotkey] = state.confirmations.get(hotkey, 0) + 1
                state.accepted[upload.expected_hash] = upload.model_id
            return 200, {"data": {"model_id": upload.model_id, "status": "confirmed"}}

    return Handler


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
