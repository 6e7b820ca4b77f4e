"""Start the real gateway (``python -m app`` under uvicorn) on loopback for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sk-test-token"
#: The admin surface's own token (a client token never opens it).
ADMIN_TOKEN = "sk-test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class GatewayHandle:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    token: str = TOKEN

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def health(self) -> dict:
        return requests.get(self.url + "/health", timeout=5).json()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def gateway_env(upstream: str | None, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "REDIS_", "RECONIFY_"))}
    env = {k: v for k, v in env.items() if k not in ("DATA_DIR", "DATABASE_URL", "ENCRYPTION_KEY")}
    # Each gateway gets its own durable store unless a test shares one on purpose (data_dir=...).
    env.update({"GATEWAY_ENV_FILE": "", "HOST": "127.0.0.1", "ALLOWED_TOKENS": TOKEN, "AUTH_TOKEN": ADMIN_TOKEN,
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1", "INTERACTION_LOG": "", "DATA_DIR": tempfile.mkdtemp(prefix="gw-data-")})
    if upstream:
        env["BASE_URL"] = upstream
    for name, value in settings.items():
        if value is None:
            env.pop(name.upper(), None)
        elif isinstance(value, (list, tuple)):
            env[name.upper()] = ",".join(str(v) for v in value)
        else:
            env[name.upper()] = str(value)
    return env


@contextmanager
def start_gateway(upstream: str | None, *, wait: bool = True, **settings: object) -> Iterator[GatewayHandle]:
    """``upstream`` is the fake's ``/v1beta`` URL; settings are passed as environment variables."""
    port = free_port()
    env = gateway_env(upstream, **settings)
    env["PORT"] = str(port)
    log = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=log)
    handle = GatewayHandle(f"http://127.0.0.1:{port}", proc, Path(log.name))
    try:
        if wait:
            _wait_ready(handle)
        yield handle
    finally:
        handle.stop()
        log.close()
        if "data_dir" not in settings:
            shutil.rmtree(env["DATA_DIR"], ignore_errors=True)


def _wait_ready(handle: GatewayHandle, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if handle.process.poll() is not None:
            raise RuntimeError(f"gateway exited with {handle.process.returncode}:\n{handle.logs()}")
        try:
            if requests.get(handle.url + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"gateway did not become ready:\n{handle.logs()}")
