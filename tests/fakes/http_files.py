"""A loopback HTTP file server with faults on request (127.0.0.1 only, stops by itself)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FileServer:
    files: dict[str, bytes] = field(default_factory=dict)
    # path -> faults consumed one per GET: "drop" (close after half), "corrupt" (flip a byte)
    faults: dict[str, list[str]] = field(default_factory=dict)
    gets: dict[str, int] = field(default_factory=dict)
    base_url: str = ""


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _headers(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("ETag", '"v1"')
            self.end_headers()

        def do_HEAD(self) -> None:
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self._headers(body)

        def do_GET(self) -> None:
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            state.gets[self.path] = state.gets.get(self.path, 0) + 1
            pending = state.faults.get(self.path) or []
            fault = pending.pop(0) if pending else None
            if fault == "corrupt":
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            self._headers(body)
            if fault == "drop":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve_files() -> Iterator[FileServer]:
    state = FileServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
