"""Run the fake as a subprocess and drive its control API synchronously (for pytest fixtures and benches).

A subprocess rather than an in-process server keeps the fake off the test's event loop and off the gateway's,
so timings and cancellations in one cannot leak into the other::

    with start_fake(chunk_delay=0.01) as fake:
        fake.script("ok-1", "rpm", times=1, retry_delay="2s")
        fake.enqueue({"fixture": "native/generate__function-call__gemini-3-pro__vercel-ai.json"})
        ...  # point the gateway at fake.url
        assert fake.requests()[0]["api_key"] == "ok-1"
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 20.0
_FLAG_OPTIONS = ("chunk_delay", "slow_delay", "retry_delay", "words_per_chunk", "log_limit")


class FakeStartError(RuntimeError):
    """The fake exited or stayed silent instead of printing ``LISTENING <port>``."""


class FakeHandle:
    """A running fake: its URLs and the control helpers. Also a context manager that stops it on exit."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://{host}:{port}"
        self.base_url = f"{self.url}/v1beta"
        self._session = requests.Session()
        self._finalizer = weakref.finalize(self, _terminate, process)

    # -------------------------------------------------------------------------------------------- control

    def _control(
        self, method: str, name: str, payload: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        response = self._session.request(
            method, f"{self.url}/_control/{name}", json=payload, params=params, timeout=10
        )
        if response.status_code != 200:
            raise ValueError(f"/_control/{name} answered {response.status_code}: {response.text}")
        return response.json()

    def script(self, key: str, behaviour: str, **params: Any) -> dict[str, Any]:
        """Give ``key`` a behaviour (params: delay, retry_delay, times, chunk_delay, abort); ``"*"``: all."""
        return self._control("POST", "script", {"key": key, "behaviour": behaviour, **params})

    def project(self, key: str, project: str) -> dict[str, Any]:
        """Put ``key`` in Google Cloud project ``project`` (by default each key is its own project)."""
        return self._control("POST", "project", {"key": key, "project": project})

    def enqueue(self, *responses: dict[str, Any]) -> dict[str, Any]:
        """Queue canned answers (``{"status", "body"}``, ``{"stream": [...]}`` or ``{"fixture": path}``)."""
        return self._control("POST", "enqueue", {"responses": list(responses)})

    def requests(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every request received (optionally only those sent with ``key``), oldest first."""
        return self._control("GET", "requests", params={"key": key} if key is not None else None)

    def stats(self) -> dict[str, Any]:
        """Per-key request counts, disconnects, open streams, queue length, overrides."""
        return self._control("GET", "stats")

    def reset(self) -> None:
        """Forget requests, counters, overrides and queued answers."""
        self._control("POST", "reset")

    # ------------------------------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Terminate the process and wait for it (idempotent)."""
        self._session.close()
        self._finalizer()

    def __enter__(self) -> FakeHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


def start_fake(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    extra_models: list[str] | None = None,
    env: dict[str, str] | None = None,
    **options: Any,
) -> FakeHandle:
    """Launch ``python -m tests.fake_gemini`` from the repo root and wait until it listens.

    ``options`` become CLI flags: chunk_delay, slow_delay, retry_delay, words_per_chunk, log_limit.
    """
    unknown = set(options) - set(_FLAG_OPTIONS)
    if unknown:
        raise TypeError(f"unknown fake option(s): {', '.join(sorted(unknown))}")
    command = [sys.executable, "-m", "tests.fake_gemini", "--host", host, "--port", str(port)]
    for name, value in options.items():
        if value is not None:
            command += [f"--{name.replace('_', '-')}", str(value)]
    for model in extra_models or []:
        command += ["--extra-model", model]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        bound = _wait_listening(process)
    except BaseException:
        _terminate(process)
        raise
    return FakeHandle(process, host, bound)


def _wait_listening(process: subprocess.Popen[bytes]) -> int:
    """Read stdout until ``LISTENING <port>`` (or fail fast if the process dies)."""
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.1):
                if process.poll() is not None:
                    raise FakeStartError(f"fake exited with code {process.returncode} before listening")
                continue
            data = os.read(process.stdout.fileno(), 4096)
            if not data:
                process.wait(timeout=5)
                raise FakeStartError(f"fake exited with code {process.returncode} before listening")
            buffer += data
            if b"\n" in buffer:
                line = buffer.split(b"\n", 1)[0].decode().strip()
                if not line.startswith("LISTENING "):
                    raise FakeStartError(f"unexpected first line from the fake: {line!r}")
                return int(line.split()[1])
    finally:
        selector.close()
    raise FakeStartError(f"fake did not print LISTENING within {STARTUP_TIMEOUT}s")
