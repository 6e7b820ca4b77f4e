"""A redis-server of a test's own on a free loopback port (never the shared one on 6379): killed, stalled and
restarted on the same port and data directory by tests of Redis outages."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest
import redis

from tests.support.gateway import free_port


class OwnRedis:
    """A redis-server of this test's own, restartable on the same port and data directory."""

    def __init__(self, folder: Path, *, durable: bool = True) -> None:
        self.port = free_port()
        self.durable = durable  # an AOF fsynced at every write, so what was answered survives a kill
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required for the Redis outage tests")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes" if self.durable else "no", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        end = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > end or self.process.poll() is not None:
                    pytest.fail("the test's own redis-server did not start")
                time.sleep(0.05)
            finally:
                client.close()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)  # a stall: connections stay open, nothing is answered

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown save; what survives is the AOF
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def history(self, chat_id: str) -> list[str]:
        with redis.Redis(port=self.port, decode_responses=True) as client:
            turns = client.lrange(f"gg:sess:h:{chat_id}", 0, -1)  # one JSON text per turn
        return [orjson.loads(turn)["parts"][0]["text"] for turn in turns]
