"""A fast fake Gemini on a raw asyncio protocol (uvloop): paced SSE streams, and static answers as fallback.

Why not nginx for streams: nginx serves a static body in one write and cannot pause between events, and the
slow-stream scenario (1,000 streams open for seconds) needs pacing. Why not aiohttp.web (tests/fake_gemini):
its per-request cost would make the upstream, not the gateway, the thing measured. This server parses just
enough HTTP/1.1 (request line, ``content-length``, keep-alive), answers from bytes prepared at start-up, and
paces a stream with one ``loop.call_later`` timer per stream instead of a task, so 1,000 open streams cost it
almost nothing. It also answers ``:generateContent`` with the recorded static body: that is the fallback
upstream for non-stream scenarios when nginx cannot be installed.

Run: ``python -m bench.upstream --port 0 --chunks 8 --delay-ms 20`` prints ``LISTENING <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, cast

from bench.payloads import StreamShape, generate_body

_MODELS = b'{"models": [{"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"}]}'

_QUOTA = (b'{"error": {"code": 429, "message": "Quota exceeded (bench)", "status": "RESOURCE_EXHAUSTED", '
          b'"details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": '
          b'"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}')


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + content_type + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


class Answers:
    """Every byte the server sends, prepared once: a request only picks and writes."""

    def __init__(self, shape: StreamShape) -> None:
        self.delay = shape.delay_ms / 1000.0
        self.generate = _response("200 OK", b"application/json; charset=UTF-8", generate_body())
        self.quota = _response("429 Too Many Requests", b"application/json; charset=UTF-8", _QUOTA)
        self.models = _response("200 OK", b"application/json; charset=UTF-8", _MODELS)
        self.not_found = _response("404 Not Found", b"application/json; charset=UTF-8",
                                   b'{"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}')
        head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-disposition: attachment\r\n"
                b"transfer-encoding: chunked\r\n\r\n")
        # Chunked framing around each event, so a stream step is one write of ready bytes.
        frames = [f"{len(event):x}\r\n".encode() + event + b"\r\n" for event in shape.events()]
        frames[-1] += b"0\r\n\r\n"
        frames[0] = head + frames[0]
        self.stream_frames = frames


class _Connection(asyncio.Protocol):
    """One keep-alive client connection; requests are answered in order, a stream blocks the next one."""

    __slots__ = ("_answers", "_buf", "_frames", "_loop", "_next", "_timer", "_transport")

    def __init__(self, answers: Answers) -> None:
        self._answers = answers
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._frames: list[bytes] = []
        self._next = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._drain_requests()

    def _drain_requests(self) -> None:
        while self._timer is None and self._transport is not None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end])
            length = _content_length(head)
            total = end + 4 + length
            if len(self._buf) < total:
                return
            del self._buf[:total]
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        assert self._transport is not None
        line = head.split(b"\r\n", 1)[0]
        parts = line.split(b" ")
        method, target = (parts[0], parts[1]) if len(parts) >= 2 else (b"", b"")
        path = target.split(b"?", 1)[0]
        if path.endswith(b":streamGenerateContent"):
            self._start_stream()
        elif path.endswith(b":generateContent"):
            # A key named rpd* is out of its daily quota: the pool cools it until Pacific midnight.
            quota = b"\r\nx-goog-api-key: rpd" in head.lower()
            self._transport.write(self._answers.quota if quota else self._answers.generate)
        elif method == b"GET" and path.rstrip(b"/").endswith(b"/models"):
            self._transport.write(self._answers.models)
        else:
            self._transport.write(self._answers.not_found)

    def _start_stream(self) -> None:
        self._frames = self._answers.stream_frames
        self._next = 0
        if self._answers.delay <= 0:
            assert self._transport is not None
            self._transport.write(b"".join(self._frames))
            return
        self._step()

    def _step(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None:
            return
        transport.write(self._frames[self._next])
        self._next += 1
        if self._next < len(self._frames):
            self._timer = self._loop.call_later(self._answers.delay, self._step)
        elif self._buf:
            self._drain_requests()  # a request that arrived while streaming waits for the stream's end


def _content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = lower.find(b"\r\n", at + 2)
    value = lower[at + 17:end if end >= 0 else len(lower)]
    return int(value.strip() or 0)


async def serve(host: str, port: int, shape: StreamShape) -> None:
    """Serve until SIGTERM/SIGINT; announce the bound port on stdout for the parent process."""
    loop = asyncio.get_running_loop()
    answers = Answers(shape)
    server = await loop.create_server(lambda: _Connection(answers), host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def spawn(*args: str) -> tuple[subprocess.Popen[str], str]:
    """This server in a child process on a free port (``args``: more of its flags, e.g. ``--delay-ms 0``);
    returns the process and its ``/v1beta`` URL once it listens. The caller terminates it."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.upstream", "--port", "0", *args],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        raise RuntimeError(f"bench.upstream did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1beta"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=8, help="events per stream (at least 2)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="pause between two events of a stream")
    args = parser.parse_args(argv)
    run_fast(serve(args.host, args.port, StreamShape(args.chunks, args.delay_ms)))


def run_fast(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop (the gateway's own loop), falling back to asyncio where uvloop is missing."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency of the gateway
        asyncio.run(coro)
        return
    uvloop.run(coro)


if __name__ == "__main__":
    main()
