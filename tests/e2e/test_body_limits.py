"""Issue 12, item 2: a chunked body is counted while it arrives and refused (413) once past MAX_REQUEST_BODY,
on every route, so memory stays bounded; a stalled body gets 408 after BODY_TIMEOUT."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.gateway import TOKEN, GatewayHandle, start_gateway

LIMIT = 1024 * 1024
CHUNK = b"x" * 65536
ROUTES = [("/start_chat", {}), ("/v1/chat/completions", {"Authorization": f"Bearer {TOKEN}"}),
          ("/v1beta/models/gemini-2.5-flash:generateContent", {"x-goog-api-key": TOKEN})]


@pytest.fixture(scope="module")
def gw(fake_server) -> Iterator[GatewayHandle]:
    with start_gateway(fake_server.base_url, api_keys=["ok-body-1"], max_request_body=LIMIT,
                       body_timeout=1) as handle:
        yield handle


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_chunked(gw: GatewayHandle, path: str, headers: dict[str, str]) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "Transfer-Encoding: chunked\r\n\r\n"
    sock.sendall(head.encode())
    return sock


def status_of(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    return int(data.split(b" ")[1])


@pytest.mark.parametrize(("path", "headers"), ROUTES)
def test_413_before_the_upload_ends(gw, path: str, headers: dict[str, str]) -> None:
    # Twice the limit is sent and the upload left unfinished: the answer must come anyway.
    with open_chunked(gw, path, headers) as sock:
        for _ in range(2 * LIMIT // len(CHUNK)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
        assert status_of(sock) == 413


@pytest.mark.parametrize(("path", "headers"), ROUTES[:2])
def test_stalled_body_gets_408(gw, path: str, headers: dict[str, str]) -> None:
    with open_chunked(gw, path, headers) as sock:
        sock.sendall(b"5\r\n{\"a\":\r\n")   # then silence, longer than BODY_TIMEOUT (1 s)
        assert status_of(sock) == 408


def test_many_large_chunked_uploads_keep_memory_bounded(gw) -> None:
    """Eight concurrent 24 MB chunked uploads (192 MB) over two routes: each refused, the RSS barely moves."""
    size = 24 * 1024 * 1024
    statuses: list[int | str] = []

    def upload(path: str, headers: dict[str, str]) -> None:
        def body() -> Iterator[bytes]:
            for _ in range(size // len(CHUNK)):
                yield CHUNK
        try:
            resp = requests.post(gw.url + path, data=body(), headers=headers, timeout=60)
            statuses.append(resp.status_code)
        except requests.RequestException as exc:  # the server may close once it has answered
            statuses.append(type(exc).__name__)

    before = rss_kib(gw.process.pid)
    threads = [threading.Thread(target=upload, args=ROUTES[i % 2]) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    grown_mib = (rss_kib(gw.process.pid) - before) / 1024
    assert statuses == [413] * 8
    assert grown_mib < 48, f"the gateway grew by {grown_mib:.0f} MiB"   # ~180 MiB per 96 MB before the fix
    print(f"RSS growth over 8 x 24 MB chunked uploads: {grown_mib:.1f} MiB")
