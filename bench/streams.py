"""Stream load with an asyncio client (aiohttp on uvloop): time to first token, total time, and long holds.

wrk cannot tell when the first event of a response arrived, so streams get their own client. Each worker
keeps one stream open at a time and opens the next as soon as one ends (closed loop, fixed concurrency).
"Time to first token" is the time from sending the request to the first body bytes holding a ``data:``
event: for the gateway that is the first translated OpenAI chunk, for direct and relay the first Gemini event.
"""

from __future__ import annotations

import asyncio
import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

_TAIL = 2048
_ERROR_PAUSE = 0.1


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values (a failed scenario shows as zero, with its errors)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass
class StreamStats:
    """What a stream scenario measured; times in milliseconds."""

    streams: int = 0
    errors: int = 0
    incomplete: int = 0
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    first_error: str | None = None

    def merge(self, other: StreamStats) -> None:
        """Pool another run of the same scenario into this one (interleaved rounds)."""
        self.streams += other.streams
        self.errors += other.errors
        self.incomplete += other.incomplete
        self.seconds += other.seconds
        self.client_cpu_s += other.client_cpu_s
        self.ttft += other.ttft
        self.total += other.total
        self.first_error = self.first_error or other.first_error

    def summary(self) -> dict[str, Any]:
        return {
            "streams": self.streams, "errors": self.errors, "incomplete": self.incomplete,
            "streams_per_s": round(self.streams / self.seconds, 1) if self.seconds else 0.0,
            "ttft_p50_ms": round(percentile(self.ttft, 50), 3), "ttft_p90_ms": round(percentile(self.ttft, 90), 3),
            "ttft_p99_ms": round(percentile(self.ttft, 99), 3),
            "total_p50_ms": round(percentile(self.total, 50), 3),
            "total_p99_ms": round(percentile(self.total, 99), 3),
            "client_cpu_pct": round(100 * self.client_cpu_s / self.seconds, 1) if self.seconds else 0.0,
            "first_error": self.first_error,
        }


@dataclass(frozen=True, slots=True)
class StreamRequest:
    url: str
    body: bytes
    headers: dict[str, str]
    done_marker: bytes  # a correct stream's last bytes contain it ("[DONE]", or Gemini's finishReason)


def _session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",))


async def _one(session: aiohttp.ClientSession, req: StreamRequest, stats: StreamStats | None,
               on_first: Callable[[], None] | None = None) -> bool:
    """One stream, start to end; False when it failed (the caller pauses, so a failing target is not
    hammered in a tight loop and the error count stays meaningful)."""
    started = time.perf_counter()
    first: float | None = None
    try:
        async with session.post(req.url, data=req.body, headers=req.headers) as resp:
            if resp.status != 200:
                body = await resp.read()
                raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
            tail = b""
            async for chunk in resp.content.iter_any():
                if first is None and b"data:" in chunk:
                    first = time.perf_counter()
                    if on_first is not None:
                        on_first()
                tail = (tail + chunk)[-_TAIL:]
    except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
        if stats is not None:
            stats.errors += 1
            stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"[:300]
        return False
    if stats is None:
        return True
    ended = time.perf_counter()
    if first is None or req.done_marker not in tail:
        stats.incomplete += 1
        return False
    stats.streams += 1
    stats.ttft.append((first - started) * 1000)
    stats.total.append((ended - started) * 1000)
    return True


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def stream_load(req: StreamRequest, *, concurrency: int, seconds: float, warmup: float) -> StreamStats:
    """``concurrency`` workers opening streams back to back for ``warmup`` (discarded) then ``seconds``."""
    stats = StreamStats()
    async with _session(concurrency) as session:
        async def worker(deadline: float, record: StreamStats | None) -> None:
            while time.monotonic() < deadline:
                if not await _one(session, req, record):
                    await asyncio.sleep(_ERROR_PAUSE)

        if warmup > 0:
            end = time.monotonic() + warmup
            await asyncio.gather(*(worker(end, None) for _ in range(concurrency)))
        cpu0, t0 = _cpu(), time.monotonic()
        end = t0 + seconds
        await asyncio.gather(*(worker(end, stats) for _ in range(concurrency)))
        stats.seconds = time.monotonic() - t0
        stats.client_cpu_s = _cpu() - cpu0
    return stats


@dataclass
class HoldResult:
    """RSS (MB) and open files of the server across a long hold of many slow streams."""

    target_streams: int
    ramp_s: float = 0.0
    reached: int = 0
    rss_before: float = 0.0
    rss_open: float = 0.0
    rss_after: float = 0.0
    fds_before: int = 0
    fds_open: int = 0
    fds_after: int = 0
    samples: list[dict[str, float]] = field(default_factory=list)
    stats: StreamStats = field(default_factory=StreamStats)


async def hold_streams(req: StreamRequest, *, streams: int, soak: float, rss: Callable[[], float],
                       fds: Callable[[], int], interval: float, settle: float = 3.0) -> HoldResult:
    """Open ``streams`` slow streams, keep that many open for ``soak`` seconds (a stream that ends is
    replaced at once, so the soak also churns), sample the server's RSS, then drop every client connection
    mid-stream (the gateway must cancel the upstream reads) and measure what is left after ``settle``."""
    result = HoldResult(target_streams=streams, rss_before=rss(), fds_before=fds())
    stop = asyncio.Event()
    with_first = 0

    def seen_first() -> None:
        nonlocal with_first
        with_first += 1

    async with _session(streams) as session:
        async def worker() -> None:
            while not stop.is_set():
                if not await _one(session, req, result.stats, seen_first):
                    await asyncio.sleep(_ERROR_PAUSE)

        started = time.monotonic()
        tasks = []
        for i in range(streams):  # open in batches so the listen backlog never overflows
            tasks.append(asyncio.create_task(worker()))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        ramp_deadline = started + 60
        while with_first < streams and time.monotonic() < ramp_deadline:
            await asyncio.sleep(0.05)
        result.ramp_s = time.monotonic() - started
        result.reached = with_first
        result.rss_open, result.fds_open = rss(), fds()
        soak_start = time.monotonic()
        while (elapsed := time.monotonic() - soak_start) < soak:
            result.samples.append({"t": round(elapsed, 2), "rss_mb": round(rss(), 2), "fds": fds()})
            await asyncio.sleep(min(interval, max(0.0, soak - elapsed)))
        result.samples.append({"t": round(time.monotonic() - soak_start, 2), "rss_mb": round(rss(), 2),
                               "fds": fds()})
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(settle)
    result.rss_after, result.fds_after = rss(), fds()
    return result


def raise_fd_limit(wanted: int) -> None:
    """Thousands of streams need thousands of sockets, in this process and in the servers it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))  # inherited by every child started later
