"""Two gateway workers against one, side by side in one run, in memory mode and in Redis mode.

Why: issue 17 asks what ``WORKERS=2`` buys on this 2-core machine, where the load generator and the upstream
share the cores with the gateway. Each row starts a gateway (``python -m app``, 20 healthy keys, its own
durable store: more than one worker needs one) with 1 and then 2 workers, and runs non-stream chat at
``--concurrency`` connections with wrk (C, one thread: the cheapest client at hand) for ``--seconds``,
``--rounds`` times alternating. The upstream is ``bench/upstream.py`` (answers from memory). Reported: requests
per second, the 2/1 ratio, and the CPU each party used over the measured run, in % of one core (from
/proc: the gateway's master and every worker; wrk; the upstream).

Run: ``.venv/bin/python -m bench.workers_scale [--seconds 8] [--rounds 2]`` (also run by ``make bench``).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis
import requests

from bench.env import cpu_ticks, others_pct_of_core
from bench.procs import _cpu_of, children_of
from bench.upstream import spawn as spawn_upstream
from bench.wrk import run_wrk, wrk_binary, write_script
from tests.support.gateway import TOKEN, free_port, gateway_env

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"
BODY = orjson.dumps({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hello there"}]})


@dataclass
class Run:
    rps: float = 0.0
    errors: int = 0
    gateway_cpu: float = 0.0   # % of one core, master + workers
    client_cpu: float = 0.0    # wrk
    upstream_cpu: float = 0.0
    redis_cpu: float = 0.0     # the Redis server (shared; Redis mode's own cost counts here)
    others_cpu: float = 0.0    # processes outside this run (other jobs on a shared machine)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and every descendant alive now."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += _cpu_of(p)
        todo += children_of(p)
    return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Gateway:
    def __init__(self, upstream: str, workers: int, use_redis: bool) -> None:
        tag = uuid.uuid4().hex[:10]  # fresh key names: Redis state of an earlier run never applies
        self.data = tempfile.mkdtemp(prefix="bench-workers-")
        self.port = free_port()
        env = gateway_env(upstream, api_keys=[f"ok-{tag}-{i}" for i in range(20)], workers=workers,
                          redis_url=REDIS_URL if use_redis else None, log_level="WARNING", data_dir=self.data)
        env["PORT"] = str(self.port)
        self.log = tempfile.NamedTemporaryFile(prefix="bench-workers-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready(workers)

    def _ready(self, workers: int) -> None:
        pids: set[int] = set()
        for _ in range(2000):  # until every worker has answered /health once
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: see {self.log.name}")
            try:
                pids.add(requests.get(self.url + "/health", timeout=2).json()["worker"]["pid"])
            except requests.RequestException:
                time.sleep(0.05)
            if len(pids) == workers:
                return
        raise RuntimeError("not every worker became ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
        shutil.rmtree(self.data, ignore_errors=True)


def _redis_pid() -> int:
    return int(redis.Redis.from_url(REDIS_URL).info("server")["process_id"])


def measure(upstream: str, upstream_pid: int, workers: int, use_redis: bool, args: argparse.Namespace,
            script: Path) -> Run:
    gw = Gateway(upstream, workers, use_redis)
    try:
        url = gw.url + "/v1/chat/completions"
        run_wrk(url, script, connections=args.concurrency, seconds=1)  # warm-up, discarded
        redis_pid = _redis_pid()
        before = (_tree_cpu(gw.proc.pid), _children_cpu(), _cpu_of(upstream_pid), _cpu_of(redis_pid))
        ticks, start = cpu_ticks(), time.monotonic()
        result = run_wrk(url, script, connections=args.concurrency, seconds=args.seconds)
        wall = time.monotonic() - start
        ours = [_tree_cpu(gw.proc.pid) - before[0], _children_cpu() - before[1],
                _cpu_of(upstream_pid) - before[2], _cpu_of(redis_pid) - before[3]]
        return Run(rps=result.rps, errors=result.errors, gateway_cpu=100 * ours[0] / wall,
                   client_cpu=100 * ours[1] / wall, upstream_cpu=100 * ours[2] / wall,
                   redis_cpu=100 * ours[3] / wall,
                   others_cpu=others_pct_of_core(ticks, cpu_ticks(), sum(ours), wall))
    finally:
        gw.stop()


def _mean(runs: list[Run]) -> Run:
    n = len(runs)
    return Run(*(sum(getattr(r, f) for r in runs) / n for f in ("rps", "errors", "gateway_cpu", "client_cpu",
                                                                  "upstream_cpu", "redis_cpu", "others_cpu")))


def run_all(args: argparse.Namespace) -> dict[str, dict[int, Run]]:
    if wrk_binary() is None:
        raise SystemExit("wrk is required: apt-get install wrk (python -m bench installs it)")
    script = write_script(Path(tempfile.mkdtemp(prefix="bench-workers-")), "chat", BODY,
                          {"Authorization": f"Bearer {TOKEN}"})
    upstream, base_url = spawn_upstream()
    results: dict[str, dict[int, Run]] = {}
    try:
        for mode in ("memory", "redis"):
            runs: dict[int, list[Run]] = {1: [], 2: []}
            for _ in range(args.rounds):  # alternate so drift hits both alike
                for workers in (1, 2):
                    runs[workers].append(measure(base_url, upstream.pid, workers, mode == "redis", args, script))
            results[mode] = {w: _mean(r) for w, r in runs.items()}
    finally:
        upstream.terminate()
        upstream.wait(10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    results = run_all(args)
    print("| mode | 1 worker | 2 workers | 2 / 1 | gateway CPU (1 → 2) | wrk CPU (1 → 2) | upstream CPU (1 → 2) "
          "| Redis CPU (1 → 2) | other processes (1 → 2) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode, by in results.items():
        one, two = by[1], by[2]
        print(f"| {mode} | {one.rps:,.0f} req/s | {two.rps:,.0f} req/s | {two.rps / one.rps:.2f} x "
              f"| {one.gateway_cpu:.0f} % → {two.gateway_cpu:.0f} % | {one.client_cpu:.0f} % → "
              f"{two.client_cpu:.0f} % | {one.upstream_cpu:.0f} % → {two.upstream_cpu:.0f} % "
              f"| {one.redis_cpu:.0f} % → {two.redis_cpu:.0f} % | {one.others_cpu:.0f} % → {two.others_cpu:.0f} % |")
        if one.errors or two.errors:
            print(f"  warning: {mode}: wrk counted errors (1 worker {one.errors:.0f}, 2 workers {two.errors:.0f})",
                  file=sys.stderr)
    print("CPU in % of one core over the measured run; the machine has 2 cores.")


if __name__ == "__main__":
    main()
