"""Redis commands per request, per surface and per store, read from ``MONITOR`` on a private redis-server.

Why: issue 17 asks for the round trips each request makes in Redis mode. A private ``redis-server`` on a free
port (never the shared 6379: ``MONITOR`` there would count other people's traffic) serves one gateway; for
each request shape of ``bench/redis_paths.py`` this sends ``--requests`` requests one after another (after
two warm-ups) and counts the commands Redis received meanwhile, by the store their keys belong to; then the
same under ``LOAD_CONCURRENCY`` concurrent requests for ``LOAD_SECONDS`` (where batched writes coalesce). A script
(``EVALSHA``) is one command and one round trip; commands of one pipeline arrive together but count one each.
The pool's periodic work (the version poll ``GET gg:ver`` and the once-a-second counter flush) is not per
request and is left out. ``--root`` runs another source tree (before/after).

Run: ``.venv/bin/python -m bench.redis_round_trips [--requests 20] [--root DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from bench.redis_paths import PATHS, ROOT, Gateway, _load, prepared
from bench.upstream import spawn as spawn_upstream
from tests.support.gateway import free_port

#: Key prefix -> store, first match wins.
STORES = (("gw:lim:", "token limits"), ("gg:sess:", "sessions"), ("gg:rl:", "rate limit"),
          ("gg:aff:", "affinity"), ("gg:own:", "owners"), ("gg:resp:", "responses"), ("gg:", "pool"))
LOAD_CONCURRENCY, LOAD_SECONDS = 16, 2.0
#: The pool's periodic commands: the version poll and the batched success flush.
PERIODIC = ("GET gg:ver", "HINCRBY gg:cnt", "HDEL gg:fail", "HDEL gg:sfail")


def _store(command: str) -> str | None:
    upper = command.split(" ", 1)[0].upper()
    if upper in ("PING", "SUBSCRIBE", "SCRIPT", "MONITOR", "CLIENT", "INFO", "HELLO", "SELECT"):
        return None
    if command.startswith(PERIODIC):
        return None
    for prefix, store in STORES:
        if prefix in command:
            return store
    return "other"


async def count(gw: Gateway, session: aiohttp.ClientSession, monitor_url: str, requests: int
                ) -> list[tuple[str, Counter[str]]]:
    ctx = await prepared(gw, session)
    seen: list[str] = []
    client = aioredis.from_url(monitor_url, decode_responses=True)
    out: list[tuple[str, Counter[str]]] = []
    async with client.monitor() as monitor:
        async def listen() -> None:
            async for event in monitor.listen():
                if event.get("client_type") != "lua":  # commands a script ran are part of its one call
                    seen.append(str(event.get("command", "")))

        listener = asyncio.create_task(listen())
        try:
            for path in PATHS:
                send = await path.make(gw, session, 0, ctx)
                for _ in range(2):
                    await send(session)
                await asyncio.sleep(1.5)  # let the warm-ups' deferred writes land before counting
                start = len(seen)
                codes = [await send(session) for _ in range(requests)]
                await asyncio.sleep(1.5)  # deferred writes (settlements, bindings) belong to these requests
                if codes != [200] * requests:
                    raise RuntimeError(f"{path.label}: answers {sorted(set(codes))}")
                tally: Counter[str] = Counter()
                for command in seen[start:]:
                    store = _store(command)
                    if store is not None:
                        tally[store] += 1
                # The same under concurrent load, where batched writes coalesce.
                senders = [await path.make(gw, session, i + 1, ctx) for i in range(LOAD_CONCURRENCY)]
                await asyncio.sleep(1.5)
                start = len(seen)
                ok, _ = await _load(session, senders, LOAD_SECONDS)
                await asyncio.sleep(1.5)
                tally["(under load)"] = round(sum(_store(c) is not None for c in seen[start:]) / max(ok, 1)
                                              * requests, 3)
                out.append((path.label, tally))
        finally:
            listener.cancel()
    await client.aclose()
    return out


async def main_async(args: argparse.Namespace) -> list[tuple[str, Counter[str]]]:
    port = free_port()
    work = tempfile.mkdtemp(prefix="bench-redis-")
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
    upstream, base_url = spawn_upstream("--delay-ms", "0")
    url = f"redis://127.0.0.1:{port}/0"
    gw = Gateway(args.root, base_url, url, user_rate_limit=1_000_000)
    try:
        async with aiohttp.ClientSession() as session:
            return await count(gw, session, url, args.requests)
    finally:
        gw.stop()
        upstream.terminate()
        upstream.wait(10)
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree whose app/ the gateway runs")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    stores = [s for _, s in STORES] + ["other"]
    used = [s for s in stores if any(t[s] for _, t in results)]
    print("| request | Redis commands per request, one at a time | " + " | ".join(used)
          + f" | per request at {LOAD_CONCURRENCY} concurrent |")
    print("|---|---|" + "---|" * len(used) + "---|")
    for label, tally in results:
        under_load = tally.pop("(under load)") / args.requests
        total = sum(tally.values()) / args.requests
        cells = " | ".join(f"{tally[s] / args.requests:g}" for s in used)
        print(f"| {label} | {total:g} | {cells} | {under_load:.2f} |")


if __name__ == "__main__":
    main()
