"""A loopback stand-in for the small part of the Hugging Face Hub API that hf:// needs.

Serves one model repo ``org/repo`` whose ``main`` branch points at ``COMMIT``: repo info by
revision, the file tree, and ``resolve`` downloads. Run as a script, it serves until killed and
prints its base URL; tests start it on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = {"w.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + b"\x00" * 64}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[str] = []  # noqa: RUF012 - shared log, read by the test

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: bytes, content_type: str = "application/json", code: int = 200) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        Handler.requests.append(f"{self.command} {self.path}")
        prefix = "/api/models/org/repo"
        if self.path.startswith(f"{prefix}/tree/"):
            tree = [
                {"type": "file", "path": n, "size": len(b), "oid": "b" * 40}
                for n, b in FILES.items()
            ]
            self._send(json.dumps(tree).encode())
        elif self.path.startswith(prefix):
            info = {"id": "org/repo", "sha": COMMIT, "siblings": [{"rfilename": n} for n in FILES]}
            self._send(json.dumps(info).encode())
        elif self.path.startswith(f"/org/repo/resolve/{COMMIT}/"):
            name = self.path.rsplit("/", 1)[1]
            if name in FILES:
                self._send(FILES[name], "application/octet-stream")
            else:
                self._send(b'{"error": "not found"}', code=404)
        else:
            self._send(b'{"error": "not found"}', code=404)

    do_GET = _route
    do_HEAD = _route


def start() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
