"""StreamBody, the lean streaming response: what it must keep while being cheaper than the stock ones
(bench/, docs/benchmarks.md): bytes in order, keep-alive pings during silence, and a client disconnect that
stops the producer at once (so the upstream read is dropped). Driven as a bare ASGI app; no timing asserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest

from app.routes import responses
from app.routes.responses import PING, StreamBody


class Client:
    """An ASGI peer: records what is sent; ``leave()`` makes the next receive() report a disconnect."""

    def __init__(self) -> None:
        self.sent: list[MutableMapping[str, Any]] = []
        self._gone = asyncio.Event()

    async def receive(self) -> MutableMapping[str, Any]:
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    def leave(self) -> None:
        self._gone.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


async def test_sends_every_chunk_in_order_then_ends() -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in (b"data: 1\n\n", b"data: 2\n\n"):
            yield chunk

    client = Client()
    await StreamBody(body(), media_type="text/event-stream", keepalive=15)({}, client.receive, client.send)
    assert client.sent[0]["type"] == "http.response.start" and client.sent[0]["status"] == 200
    assert client.bodies() == [b"data: 1\n\n", b"data: 2\n\n", b""]
    assert client.sent[-1]["more_body"] is False


async def test_pings_while_the_producer_is_silent() -> None:
    release = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await release.wait()  # a long thinking pause
        yield b"data: last\n\n"

    client = Client()
    task = asyncio.create_task(
        StreamBody(body(), media_type="text/event-stream", keepalive=0.02)({}, client.receive, client.send))
    await asyncio.wait_for(_until(lambda: PING in client.bodies()), 10)
    release.set()
    await asyncio.wait_for(task, 10)
    bodies = client.bodies()
    assert bodies[0] == b"data: first\n\n" and bodies[-2:] == [b"data: last\n\n", b""]


async def test_client_disconnect_stops_the_producer_and_runs_its_cleanup() -> None:
    cleaned = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"data: first\n\n"
            await asyncio.Event().wait()  # the upstream never sends again
            yield b"never"
        finally:
            cleaned.set()

    client = Client()
    task = asyncio.create_task(
        StreamBody(body(), media_type="text/event-stream", keepalive=None)({}, client.receive, client.send))
    await asyncio.wait_for(_until(lambda: client.bodies()), 10)
    client.leave()
    await asyncio.wait_for(task, 10)  # returns normally: the cancellation was its own
    assert cleaned.is_set()
    assert b"never" not in client.bodies()


def test_the_bench_stream_switch_lives_in_bench_and_rejects_unknown_values() -> None:
    from bench import variant
    with pytest.raises(ValueError, match="BENCH_STREAM_IMPL"):
        variant.install("fastest")
    assert not hasattr(responses, "STREAM_IMPL")


async def test_a_crash_after_the_commit_leaves_the_stream_unfinished_and_logs_no_text(caplog) -> None:
    secret = "user-message-" + "x" * 3

    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        raise ValueError(secret)

    client = Client()
    await StreamBody(body(), media_type="text/event-stream", keepalive=None)({}, client.receive, client.send)
    assert client.bodies() == [b"data: 1\n\n"]          # no clean end: the server drops the connection
    assert all(m.get("more_body", True) for m in client.sent if m["type"] == "http.response.body")
    assert "stream failed after the commit: ValueError" in caplog.text and secret not in caplog.text
