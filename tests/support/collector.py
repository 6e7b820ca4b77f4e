"""A real HTTP analytics collector on loopback, scriptable from a test (Reconify stand-in).

It runs an aiohttp server on its own event loop in a background thread, so that both async unit tests (in
the same process) and sync end-to-end tests (the gateway posting from a subprocess) talk to it over real TCP.
A test can queue statuses to answer (``answer(500, 200)``), make it hang until released (``hang()`` /
``release()``), and wait for payloads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web


class Collector:
    def __init__(self) -> None:
        self.url = ""
        self.attempts: list[dict[str, Any]] = []    # every body received, whatever was answered
        self.payloads: list[dict[str, Any]] = []    # bodies answered with a 2xx
        self.statuses: list[int] = []               # what was answered, in order
        self.hanging = 0                            # requests currently held by hang()
        self._script: deque[int] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._release: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="collector", daemon=True)

    # -- scripting, from any thread ----------------------------------------------------------------------
    def answer(self, *statuses: int) -> None:
        """The next requests get these statuses, in order; afterwards 200."""
        with self._lock:
            self._script.extend(statuses)

    def hang(self) -> None:
        """Hold every request from now on until :meth:`release`."""
        self._call(self._new_release_gate)

    def release(self) -> None:
        self._call(self._open_release_gate)

    def wait_for(self, count: int, timeout: float = 10.0, *, what: str = "payloads") -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                items = list(getattr(self, what))
            if len(items) >= count:
                return items
            time.sleep(0.01)
        raise AssertionError(f"collector got {len(getattr(self, what))} {what}, expected {count}")

    def wait_hanging(self, count: int = 1, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.hanging >= count:
                return
            time.sleep(0.01)
        raise AssertionError(f"collector holds {self.hanging} requests, expected {count}")

    async def await_for(self, count: int, timeout: float = 10.0, *,
                        what: str = "payloads") -> list[dict[str, Any]]:
        """The same as :meth:`wait_for`, for a test running on an event loop."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                items = list(getattr(self, what))
            if len(items) >= count:
                return items
            await asyncio.sleep(0.01)
        raise AssertionError(f"collector got {len(getattr(self, what))} {what}, expected {count}")

    async def await_hanging(self, count: int = 1, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.hanging >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"collector holds {self.hanging} requests, expected {count}")

    # -- server side, on the collector's loop ---------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {"_unparsable": raw.decode(errors="replace")}
        with self._lock:
            self.attempts.append(body)
        gate = self._release
        if gate is not None and not gate.is_set():
            self.hanging += 1
            try:
                await gate.wait()
            finally:
                self.hanging -= 1
        with self._lock:
            status = self._script.popleft() if self._script else 200
            self.statuses.append(status)
            if 200 <= status < 300:
                self.payloads.append(body)
        return web.json_response({"status": "ok" if status < 300 else "error"}, status=status)

    def _new_release_gate(self) -> None:
        self._release = asyncio.Event()

    def _open_release_gate(self) -> None:
        if self._release is not None:
            self._release.set()

    def _call(self, fn: Any) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/track"

    async def _stop(self) -> None:
        self._open_release_gate()
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> Collector:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()


@contextmanager
def running_collector() -> Iterator[Collector]:
    collector = Collector().start()
    try:
        yield collector
    finally:
        collector.stop()
