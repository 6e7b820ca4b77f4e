"""Redis mode against memory mode, side by side in one run, for a small and a large mostly-cooling pool.

Why: issue 17. Redis mode used to pick inside Redis (one round trip plus a scan of the whole pool per
request); this measures whether it now keeps up with memory mode whatever the pool's size. The upstream is
``bench/upstream.py`` (answers from memory; a key named ``rpd*`` gets a 429 per-day quota answer); each row
starts a gateway per mode (one worker), cools the pool's ``rpd-*`` keys by sending one
request per key (each meets a 429 per-day quota and is cooled until Pacific midnight), and then runs the
same non-stream chat load (``--concurrency`` requests in flight, aiohttp) for ``--seconds``.

Key names carry a fresh tag per run, so Redis state left by an earlier run never applies. ``--root`` runs
the gateway from another source tree (e.g. ``git archive base | tar -x -C /tmp/base``) for before/after.

Run: ``.venv/bin/python -m bench.redis_scale [--seconds 8] [--markdown]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from functools import partial
from pathlib import Path

import aiohttp

from bench.gateway_process import GatewayProcess, alternate
from bench.upstream import spawn as spawn_upstream
from tests.support.gateway import TOKEN, gateway_env

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"
BODY = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hello there"}]}


def _pool(size: int, cooling: int) -> list[str]:
    tag = uuid.uuid4().hex[:10]
    return [f"rpd-{tag}-{i}" for i in range(cooling)] + [f"ok-{tag}-{i}" for i in range(size - cooling)]


class Gateway(GatewayProcess):
    """A gateway over ``keys``, durable store off, in memory or Redis mode."""

    def __init__(self, root: Path, upstream: str, keys: list[str], redis: bool) -> None:
        super().__init__(root, gateway_env(upstream, api_keys=keys, redis_url=REDIS_URL if redis else None,
                                           log_level="WARNING", data_dir=""))


async def _load(session: aiohttp.ClientSession, url: str, concurrency: int, seconds: float) -> tuple[int, int]:
    """``concurrency`` loops posting chat requests until ``seconds`` pass: (answered 200, other)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    end = time.monotonic() + seconds
    ok = bad = 0

    async def worker() -> None:
        nonlocal ok, bad
        while time.monotonic() < end:
            async with session.post(url + "/v1/chat/completions", json=BODY, headers=headers) as resp:
                await resp.read()
                if resp.status == 200:
                    ok += 1
                else:
                    bad += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, bad


async def measure(root: Path, upstream: str, size: int, cooling: int, redis: bool, concurrency: int,
                  seconds: float) -> float:
    keys = _pool(size, cooling)
    gw = Gateway(root, upstream, keys, redis)
    try:
        connector = aiohttp.TCPConnector(limit=concurrency + 4)
        async with aiohttp.ClientSession(connector=connector) as session:
            await gw.ready(session)
            # Warm-up: long enough for the round-robin to meet (and cool) every rpd key once.
            await _load(session, gw.url, 8, max(2.0, cooling / 500))
            ok, bad = await _load(session, gw.url, concurrency, seconds)
            if bad:
                print(f"  warning: {bad} non-200 answers", file=sys.stderr)
            return ok / seconds
    finally:
        gw.stop()


async def main_async(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    rows = [("20 keys, all healthy", 20, 0), ("2,000 keys, 1,950 out of daily quota", 2000, 1950)]
    results: list[tuple[str, float, float]] = []
    upstream, base_url = spawn_upstream()
    try:
        for label, size, cooling in rows:
            memory, redis = await alternate(
                args.rounds,
                partial(measure, args.root, base_url, size, cooling, False, args.concurrency, args.seconds),
                partial(measure, args.root, base_url, size, cooling, True, args.concurrency, args.seconds))
            results.append((label, memory, redis))
    finally:
        upstream.terminate()
        upstream.wait(10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree whose app/ the gateway runs")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print("| pool | memory mode | with `REDIS_URL` |")
    print("|---|---|---|")
    for label, memory, redis in results:
        print(f"| {label} | {memory:,.0f} req/s | {redis:,.0f} req/s ({redis / memory:.2f} x memory) |")


if __name__ == "__main__":
    main()
