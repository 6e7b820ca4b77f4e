"""Issue 12, item 12: slow or idle connections are closed by the server (HEADER_TIMEOUT, KEEPALIVE_TIMEOUT).

Three dozen sockets: silent after connecting, stuck mid-headers, and trickling a header byte at a time. Each
must be answered 408 or closed by the gateway within a bounded wait, and the gateway must keep serving.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.gateway import GatewayHandle, start_gateway

PER_KIND = 12


@pytest.fixture(scope="module")
def gw(fake_server) -> Iterator[GatewayHandle]:
    with start_gateway(fake_server.base_url, api_keys=["ok-slow-1"], header_timeout=1,
                       keepalive_timeout=1) as h:
        yield h


def connect(gw: GatewayHandle) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed; socket.timeout (a failure) if it keeps the line open."""
    data = b""
    while True:
        piece = sock.recv(4096)
        if not piece:
            return data
        data += piece


def trickle(sock: socket.socket, stop: threading.Event) -> None:
    for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
        if stop.wait(0.2):
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return


def test_slow_and_idle_connections_are_closed(gw) -> None:
    silent = [connect(gw) for _ in range(PER_KIND)]
    partial = [connect(gw) for _ in range(PER_KIND)]
    for sock in partial:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: applic")
    trickling = [connect(gw) for _ in range(PER_KIND)]
    stop = threading.Event()
    threads = [threading.Thread(target=trickle, args=(s, stop), daemon=True) for s in trickling]
    for t in threads:
        t.start()
    try:
        answers = [closed_by_server(s) for s in silent + partial + trickling]
    finally:
        stop.set()
        for sock in silent + partial + trickling:
            sock.close()
    for answer in answers:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")
    assert sum(a.startswith(b"HTTP/1.1 408 ") for a in answers) == 3 * PER_KIND
    assert requests.get(gw.url + "/health", timeout=5).status_code == 200


def test_idle_keep_alive_connection_is_closed(gw) -> None:
    with connect(gw) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = closed_by_server(sock)   # the answer, then the close after KEEPALIVE_TIMEOUT
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_headers_in_time_are_served(gw) -> None:
    with connect(gw) as sock:
        for piece in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(0.1)
        assert closed_by_server(sock).startswith(b"HTTP/1.1 200 ")
