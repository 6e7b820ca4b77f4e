"""The durable store's cost on the hot path (issue 16): the gateway with no durable store against the gateway
with the SQLite store on, usage flushed every second, and the caller's token carrying limits (so every request
is checked and recorded by the limiter). Interleaved rounds, one aiohttp load generator, non-stream chat
completions against the fast raw-protocol upstream (bench/upstream.py).

    .venv/bin/python -m bench.durable_overhead [--seconds 5] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import requests

from bench.payloads import TOKEN, StreamShape
from bench.procs import Proc, processes
from bench.targets import start_gateway, start_stream_upstream

BODY = b'{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Say hello."}]}'


async def load(url: str, token: str, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    end = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                async with session.post(url, data=BODY, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}: {await resp.text()}")
                latencies.append(time.perf_counter() - t0)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(latencies) / (time.perf_counter() - start), latencies


def limited_token(gw: Proc) -> str:
    answer = requests.post(gw.url + "/admin/api/tokens", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10,
                           json={"name": "bench", "limits": {"rpm": 10**9, "rpd": 10**9, "tpm": 10**12,
                                                             "tpd": 10**12, "concurrent": 10**5}})
    answer.raise_for_status()
    return str(answer.json()["secret"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, processes(Path(tmp) / "logs") as group:
        upstream = start_stream_upstream(group, "upstream", StreamShape(8, 20.0))
        off = start_gateway(group, "gateway-off", upstream, extra={"DATA_DIR": ""})
        on = start_gateway(group, "gateway-on", upstream, extra={"DATA_DIR": str(Path(tmp) / "data"),
                                                                 "USAGE_FLUSH_INTERVAL": "1"})
        targets = {"durable off": (off, TOKEN), "durable on": (on, TOKEN),
                   "durable on + limits": (on, limited_token(on))}
        results: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}  # gateway CPU microseconds per request
        for name, (gw, token) in targets.items():  # warm-up
            asyncio.run(load(gw.url + "/v1/chat/completions", token, 1.0, args.concurrency))
        for _ in range(args.rounds):
            for name, (gw, token) in targets.items():
                before = gw.cpu_seconds()
                rps, lat = asyncio.run(load(gw.url + "/v1/chat/completions", token, args.seconds, args.concurrency))
                cpu[name].append((gw.cpu_seconds() - before) / len(lat) * 1e6)
                results[name].append((rps, lat))
    print(f"{'gateway':22} {'req/s (median)':>15} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    base = base_cpu = None
    for name, runs in results.items():
        rps = statistics.median(r for r, _ in runs)
        lat = sorted(x for _, xs in runs for x in xs)
        p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000
        us = statistics.median(cpu[name])
        base, base_cpu = base or rps, base_cpu or us
        print(f"{name:22} {rps:15.0f} {p50:8.2f} {p99:8.2f} {us:11.0f}   (req/s {rps / base:.1%}, "
              f"CPU/req {us / base_cpu:.1%} of off)")


if __name__ == "__main__":
    main()
