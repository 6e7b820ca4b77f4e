"""Script calls issued in one turn of the event loop go to Redis together, as one pipeline (auto-pipelining).

Why: redis-py spends ~85-125 µs of CPU on one command (with and without hiredis: connection checkout, packing
each argument, a task for the write timeout, reply parsing, its observability hooks), almost all of it per
command, not per byte. Under load the sessions API issues many scripts at once (each send_message is one
``begin`` and one save), so the ones issued in the same loop turn are packed here in one buffer and written on
one pooled connection, and their replies read in order (docs/benchmarks.md, "Chat sessions in Redis mode").
Nothing waits to fill a batch: a call alone is sent at the next turn of the loop, which costs it no
measurable latency.

Each script still runs atomically on its own (a pipeline without MULTI only shares the round trip), replies
come back in order, and a failure of the batch (connection lost, timeout) is raised to every caller of the
batch as redis-py raises it, so callers handle errors exactly as before; the client's retry policy applies
as it does to one command (redis-py's: reconnect and send again once, for a pooled connection Redis closed).
A script Redis does not know yet (``NOSCRIPT``: a restarted or flushed server) is sent again as ``EVAL``,
which also caches it. A call whose caller gave up (cancelled) before its batch left is not sent.

The connection is used through redis-py's public connection API (pool checkout and release, packed send,
``read_response``), so connecting, AUTH, SELECT, TLS and socket timeouts stay redis-py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

__all__ = ["ScriptBatcher"]

Arg = str | int | float | bytes


@dataclass(slots=True)
class _Call:
    script: AsyncScript | None  # None: a plain command, ``args`` is the whole of it
    keys: Sequence[str]
    args: Sequence[Arg]
    result: asyncio.Future[Any]


def _pack(calls: list[_Call], cached: bool) -> bytes:
    """The batch as RESP: per call ``EVALSHA sha numkeys keys... args...`` (``EVAL`` and the script text when
    not ``cached``), or the plain command; one join for the whole batch."""
    out: list[bytes] = []
    for call in calls:
        if call.script is None:
            items: Sequence[Arg] = call.args
        else:
            head: tuple[Arg, Arg] = (b"EVALSHA", call.script.sha) if cached else (b"EVAL", call.script.script)
            items = (*head, len(call.keys), *call.keys, *call.args)
        out.append(b"*%d\r\n" % len(items))
        for item in items:
            if type(item) is str:
                data = item.encode()
            elif type(item) is bytes:
                data = item
            elif type(item) is int:
                data = b"%d" % item
            elif isinstance(item, bytes):
                data = bytes(item)
            elif isinstance(item, str):
                data = str(item).encode()
            elif isinstance(item, int):
                data = b"%d" % item
            else:  # a float: its repr is what redis-py sends too
                data = repr(item).encode()
            out.append(b"$%d\r\n" % len(data))
            out.append(data)
            out.append(b"\r\n")
    return b"".join(out)


class ScriptBatcher:
    """``await batcher.run(script, keys, args)`` is ``await script(keys=keys, args=args)``, batched."""

    def __init__(self, client: aioredis.Redis, *, max_batch: int = 128) -> None:
        self._client = client
        self._max = max_batch
        self._pending: list[_Call] = []
        self._scheduled = False
        self._senders: set[asyncio.Task[None]] = set()
        self.batches = 0  # pipelines sent (tests and benches read it)

    def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Arg]) -> asyncio.Future[Any]:
        return self._queue(_Call(script, keys, args, asyncio.get_running_loop().create_future()))

    def script(self, text: str) -> Callable[..., Awaitable[Any]]:
        """``text`` registered on the batcher's client and called like a redis-py script (``keys=``,
        ``args=``), through the batch."""
        registered = self._client.register_script(text)

        def call(*, keys: Sequence[str], args: Sequence[Arg]) -> Awaitable[Any]:
            return self.run(registered, keys, args)
        return call

    def command(self, *args: Arg) -> asyncio.Future[Any]:
        """A plain command (``LRANGE key 0 -1``), in the same batch as the calls queued before it."""
        return self._queue(_Call(None, (), args, asyncio.get_running_loop().create_future()))

    def _queue(self, call: _Call) -> asyncio.Future[Any]:
        self._pending.append(call)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return call.result

    def _flush(self) -> None:
        self._scheduled = False
        calls = [c for c in self._pending if not c.result.done()]  # done = cancelled by its caller: not sent
        self._pending = []
        for start in range(0, len(calls), self._max):
            sender = asyncio.get_running_loop().create_task(self._send(calls[start:start + self._max]),
                                                            name="redis-script-batch")
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)

    async def _send(self, calls: list[_Call]) -> None:
        try:
            replies = await self._pipeline(calls, cached=True)
            unknown = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if unknown:
                again = await self._pipeline([calls[i] for i in unknown], cached=False)
                for i, reply in zip(unknown, again, strict=True):
                    replies[i] = reply
        except BaseException as exc:  # every caller of the batch gets the failure, as redis-py raised it
            for call in calls:
                if not call.result.done():
                    if isinstance(exc, asyncio.CancelledError):
                        call.result.cancel()
                    else:
                        call.result.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for call, reply in zip(calls, replies, strict=True):
            if call.result.done():
                continue
            if isinstance(reply, Exception):
                call.result.set_exception(reply)
            else:
                call.result.set_result(reply)

    async def _pipeline(self, calls: list[_Call], *, cached: bool) -> list[Any]:
        self.batches += 1
        packed = _pack(calls, cached)
        pool = self._client.connection_pool
        conn = await pool.get_connection()

        async def exchange() -> list[Any]:
            await conn.send_packed_command(packed)
            replies: list[Any] = []
            for _ in calls:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:  # this script's own error: the connection is still in step
                    replies.append(exc)
            return replies

        async def reset(_error: BaseException) -> None:
            await conn.disconnect()

        try:
            return await conn.retry.call_with_retry(exchange, reset)
        finally:
            await pool.release(conn)

    async def close(self) -> None:
        """Cancel batches still in flight (their callers get ``CancelledError``)."""
        for sender in list(self._senders):
            sender.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
