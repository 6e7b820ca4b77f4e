"""A tiny Gemini stand-in whose every error echoes the calling key, as Google's messages sometimes do.

Model calls answer a 400 INVALID_ARGUMENT quoting the key (a client error: no retry, no key blamed), except
``streamGenerateContent`` on a model whose name starts with ``midstream``: a 200 stream with one event and
then an error event quoting the key, in SSE or JSON-array framing. Runs in a thread on loopback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = {"candidates": [{"content": {"role": "model", "parts": [{"text": "partial "}]}, "index": 0}]}


def echo_error(key: str) -> dict[str, object]:
    return {
        "error": {
            "code": 400,
            "status": "INVALID_ARGUMENT",
            "message": f"Consumer 'api_key:{key}' cannot do this; API key {key} was used. "
            f"See https://example.test/v1beta/models?key={key}&x=1",
        }
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # models.get / models.list: the prober and the catalog
        self._send(200, json.dumps({"name": "models/x", "models": []}).encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        key = self.headers.get("x-goog-api-key", "")
        path, _, query = self.path.partition("?")
        error = json.dumps(echo_error(key)).encode()
        if ":streamGenerateContent" in path and "/models/midstream" in path:
            sse = "alt=sse" in query
            first = json.dumps(CHUNK).encode()
            if sse:
                body = b"data: " + first + b"\r\n\r\n" + b"data: " + error + b"\r\n\r\n"
                content_type = "text/event-stream"
            else:
                body = b"[" + first + b",\r\n" + error + b"]"
                content_type = "application/json"
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("connection", "close")
            self.end_headers()
            half = len(body) // 2 + 7  # two writes: the key may straddle them
            self.wfile.write(body[:half])
            self.wfile.flush()
            self.wfile.write(body[half:])
            self.close_connection = True
            return
        self._send(400, error)


@contextmanager
def echo_upstream() -> Iterator[str]:
    """The ``/v1beta`` base URL of a running echo upstream."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1beta"
    finally:
        server.shutdown()
        server.server_close()
