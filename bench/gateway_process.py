"""``python -m app`` as a child process for the side-by-side benches (Redis vs memory, paths).

One place for how a bench starts a gateway from a source tree, waits for it and stops it; each bench only
says which settings it runs with.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from tests.support.gateway import free_port

__all__ = ["GatewayProcess", "alternate"]


class GatewayProcess:
    """The gateway of ``root`` (its ``app/``) with ``env`` on a free port; logs go to a temp file."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        env = dict(env, PORT=str(self.port))
        # root first; an outer PYTHONPATH (e.g. a package tried without installing it) still applies after it
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gw-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=root, env=env, stdout=self.log,
                                     stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> None:
        """Return once /health answers 200 (raise if the process exits or 20 s pass)."""
        for _ in range(400):
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: see {self.log.name}")
            try:
                async with session.get(self.url + "/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("gateway did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        os.unlink(self.log.name)


async def alternate(rounds: int, *runs: Callable[[], Awaitable[float]]) -> list[float]:
    """Each run once per round, in turn, so that a burst of outside work on a shared machine hits them alike;
    returns each run's mean."""
    totals = [0.0] * len(runs)
    for _ in range(rounds):
        for i, run in enumerate(runs):
            totals[i] += await run()
    return [total / rounds for total in totals]
