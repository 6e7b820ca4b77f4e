"""One bench run: three phases, each measuring direct vs relay vs gateway side by side on the same upstream.

1. non-stream (upstream: nginx with the recorded body): chat at concurrency 1 (latency) and 64 (throughput),
   the native passthrough at 64; the gateway is profiled in an extra run so the profiler never skews a figure.
2. streams (upstream: the paced SSE fake): 32 concurrent streams, time to first token and total; the gateway
   once per stream response implementation (lean, starlette, sse_starlette), so they are compared in one run.
3. memory: a fresh gateway holding 1,000 slow streams, RSS sampled across a soak, then every client dropped.

Within a phase every target is started first and the measured runs are interleaved round by round, so a
burst of outside work spreads over all targets instead of landing on one. Every server's CPU time is read
around every run: CPU per request is the figure least disturbed by other work on the machine, and it shows
where a throughput limit comes from.
"""

from __future__ import annotations

import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import profile
from bench.payloads import (
    CHAT_PATH,
    CHAT_REQUEST,
    CHAT_STREAM_REQUEST,
    GEMINI_REQUEST,
    GENERATE_PATH,
    STREAM_PATH,
    TOKEN,
    StreamShape,
    expected_text,
)
from bench.procs import Proc, Processes
from bench.streams import StreamRequest, StreamStats, hold_streams, percentile, stream_load
from bench.targets import start_gateway, start_nginx, start_relay, start_stream_upstream
from bench.upstream import run_fast
from bench.wrk import WrkResult, run_wrk, write_script

from bench.variant import STREAM_IMPLS
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NATIVE_AUTH = {"x-goog-api-key": TOKEN}
JSON = {"Content-Type": "application/json"}


@dataclass
class Options:
    """Every knob of a run; ``quick()`` and the defaults are the two documented profiles."""

    seconds: float = 5.0  # one measured run; every target runs once per round
    rounds: int = 2
    warmup: float = 2.0  # before a target's first round only
    stream_concurrency: int = 32
    stream_shape: StreamShape = field(default_factory=lambda: StreamShape(8, 20.0))
    slow_streams: int = 1000
    slow_shape: StreamShape = field(default_factory=lambda: StreamShape(20, 500.0))
    soak: float = 30.0
    profile: bool = True
    profile_seconds: float = 8.0
    impls: tuple[str, ...] = STREAM_IMPLS
    phases: tuple[str, ...] = ("nonstream", "streams", "memory")

    @classmethod
    def quick(cls) -> Options:
        return cls(seconds=2.0, rounds=1, warmup=1.0, soak=10.0, profile=False)


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def smoke(url: str, body: bytes, headers: dict[str, str], expect: bytes) -> None:
    """One request before any load: a figure for a target that answers wrongly would be meaningless."""
    request = urllib.request.Request(url, data=body, headers={**JSON, **headers}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, data = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, data = exc.code, exc.read()
    if status != 200 or expect not in data:
        raise RuntimeError(f"smoke check failed for {url}: HTTP {status}: {data[:300]!r}")


@dataclass
class WrkSample:
    """The rounds of one wrk target, pooled: requests and CPU add up, percentiles are averaged over rounds."""

    results: list[WrkResult] = field(default_factory=list)
    server_cpu: float = 0.0
    upstream_cpu: float = 0.0

    def add(self, server: Proc, upstream: Proc, url: str, script: Path, *, connections: int, seconds: float,
            warmup: float) -> None:
        if warmup > 0:
            run_wrk(url, script, connections=connections, seconds=warmup)
        s0, u0 = server.cpu_seconds(), upstream.cpu_seconds()
        self.results.append(run_wrk(url, script, connections=connections, seconds=seconds))
        self.server_cpu += server.cpu_seconds() - s0
        self.upstream_cpu += upstream.cpu_seconds() - u0 if upstream is not server else 0.0

    def entry(self) -> dict[str, Any]:
        runs = self.results
        requests = sum(r.requests for r in runs)
        seconds = sum(r.seconds for r in runs)

        def mean(metric: str) -> float:
            return round(statistics.fmean(getattr(r, metric) for r in runs), 3)

        return {
            "rps": round(requests / seconds, 1) if seconds else 0.0, "requests": requests,
            "errors": sum(r.errors for r in runs), "rounds": len(runs),
            "rounds_rps": [round(r.rps, 1) for r in runs],
            "p50_ms": mean("p50_ms"), "p90_ms": mean("p90_ms"), "p99_ms": mean("p99_ms"),
            "p999_ms": mean("p999_ms"), "mean_ms": mean("mean_ms"), "max_ms": max(r.max_ms for r in runs),
            "server_cpu_pct": round(100 * self.server_cpu / seconds, 1) if seconds else 0.0,
            "cpu_us_per_req": round(1e6 * self.server_cpu / requests, 1) if requests else None,
            "upstream_cpu_pct": round(100 * (self.upstream_cpu or self.server_cpu) / seconds, 1) if seconds else 0.0,
        }


@dataclass
class StreamSample:
    """Pooled stream runs of one target: the client's figures and the CPU the servers spent meanwhile."""

    stats: StreamStats = field(default_factory=StreamStats)
    server_cpu: float = 0.0
    upstream_cpu: float = 0.0
    upstream_measured: bool = False

    def add(self, server: Proc, upstream: Proc, req: StreamRequest, opts: Options, *, warmup: float) -> None:
        s0, u0 = server.cpu_seconds(), upstream.cpu_seconds()
        stats: StreamStats = _run(stream_load(req, concurrency=opts.stream_concurrency, seconds=opts.seconds,
                                              warmup=warmup))
        self.server_cpu += server.cpu_seconds() - s0
        if upstream is not server:
            self.upstream_cpu += upstream.cpu_seconds() - u0
            self.upstream_measured = True
        self.stats.merge(stats)

    def entry(self) -> dict[str, Any]:
        stats = self.stats
        out = stats.summary()
        out["server_cpu_pct"] = round(100 * self.server_cpu / stats.seconds, 1) if stats.seconds else 0.0
        out["cpu_ms_per_stream"] = round(1e3 * self.server_cpu / stats.streams, 3) if stats.streams else None
        if self.upstream_measured and stats.seconds:
            out["upstream_cpu_pct"] = round(100 * self.upstream_cpu / stats.seconds, 1)
        return out


def _run(coro: Any) -> Any:
    box: list[Any] = []

    async def main() -> None:
        box.append(await coro)

    run_fast(main())
    return box[0]


def _profiled(pyspy: str | None, proc: Proc, out: Path, seconds: float, load: Callable[[], object]) -> dict[str, Any]:
    """Run ``load()`` while py-spy samples ``proc``; the load's own figures are discarded."""
    if pyspy is None:
        return {"error": "py-spy is not available"}
    recorder = profile.start(pyspy, proc.pid, out, seconds)
    time.sleep(0.3)  # py-spy attaches before the load starts
    load()
    error = profile.finish(recorder)
    if error is not None or not out.exists():
        return {"error": error or "py-spy wrote nothing"}
    return profile.summarize(out, seconds=seconds)


# -- phase 1 ------------------------------------------------------------------------------------------------

def phase_nonstream(group: Processes, work: Path, tools: dict[str, str | None], opts: Options,
                    pyspy: str | None) -> dict[str, Any]:
    if tools.get("nginx"):
        upstream = start_nginx(group, work)
        kind = "nginx, 1 worker, the recorded body from memory (return 200)"
    else:
        upstream = start_stream_upstream(group, "upstream-static", StreamShape(3, 0.0))
        kind = "bench.upstream raw asyncio protocol on uvloop (nginx unavailable), recorded body from memory"
    relay = start_relay(group, "relay", upstream)
    gateway = start_gateway(group, "gateway", upstream)
    scripts = {
        "gemini": write_script(work / "wrk", "gemini", GEMINI_REQUEST, {}),
        "chat": write_script(work / "wrk", "chat", CHAT_REQUEST, AUTH),
        "native": write_script(work / "wrk", "native", GEMINI_REQUEST, NATIVE_AUTH),
    }
    smoke(upstream.url + GENERATE_PATH, GEMINI_REQUEST, {}, expected_text("generate"))
    smoke(relay.url + GENERATE_PATH, GEMINI_REQUEST, {}, expected_text("generate"))
    smoke(gateway.url + CHAT_PATH, CHAT_REQUEST, AUTH, expected_text("chat"))
    smoke(gateway.url + GENERATE_PATH, GEMINI_REQUEST, NATIVE_AUTH, expected_text("generate"))

    # (scenario, target) -> what wrk hits; direct and relay speak Gemini, so for the native scenario they send
    # the very same request as for chat and their chat_c64 runs serve both.
    runs: dict[tuple[str, str], tuple[Proc, str, Path, int]] = {}
    for key, connections in (("chat_c1", 1), ("chat_c64", 64)):
        runs[(key, "direct")] = (upstream, upstream.url + GENERATE_PATH, scripts["gemini"], connections)
        runs[(key, "relay")] = (relay, relay.url + GENERATE_PATH, scripts["gemini"], connections)
        runs[(key, "gateway")] = (gateway, gateway.url + CHAT_PATH, scripts["chat"], connections)
    runs[("native_c64", "gateway")] = (gateway, gateway.url + GENERATE_PATH, scripts["native"], 64)
    samples = {run: WrkSample() for run in runs}
    for round_no in range(1, opts.rounds + 1):
        for (key, name), (proc, url, script, connections) in runs.items():
            _say(f"non-stream {key}, round {round_no}/{opts.rounds}: {name}")
            samples[(key, name)].add(proc, upstream, url, script, connections=connections, seconds=opts.seconds,
                                     warmup=opts.warmup if round_no == 1 else 0.0)
    out: dict[str, Any] = {"upstream": kind, "rounds": opts.rounds, "seconds_per_round": opts.seconds}
    for (key, name), sample in samples.items():
        out.setdefault(key, {})[name] = sample.entry()
    out["native_c64"].update(direct=out["chat_c64"]["direct"], relay=out["chat_c64"]["relay"],
                             note="direct and relay: the chat_c64 runs (identical requests)")
    if opts.profile:
        _say("profiling the gateway: non-stream chat, concurrency 64")
        out["profile_chat_c64"] = _profiled(
            pyspy, gateway, work / "profile-chat-c64.txt", opts.profile_seconds,
            lambda: run_wrk(gateway.url + CHAT_PATH, scripts["chat"], connections=64,
                            seconds=opts.profile_seconds))
        _say("profiling the gateway: native generateContent, concurrency 64")
        out["profile_native_c64"] = _profiled(
            pyspy, gateway, work / "profile-native-c64.txt", opts.profile_seconds,
            lambda: run_wrk(gateway.url + GENERATE_PATH, scripts["native"], connections=64,
                            seconds=opts.profile_seconds))
    out["gateway_rss_mb"] = round(gateway.rss_mb(), 1)
    for proc in (gateway, relay, upstream):
        group.stop(proc)
    return out


# -- phase 2 ------------------------------------------------------------------------------------------------

def phase_streams(group: Processes, work: Path, opts: Options, pyspy: str | None) -> dict[str, Any]:
    """Every target is started first and the runs are interleaved round by round, so a burst of other work
    on the machine spreads over all targets instead of landing on one of them."""
    shape = opts.stream_shape
    upstream = start_stream_upstream(group, "upstream-sse", shape)
    relay = start_relay(group, "relay-sse", upstream)
    targets: dict[str, tuple[Proc, StreamRequest]] = {
        "direct": (upstream, StreamRequest(upstream.url + STREAM_PATH, GEMINI_REQUEST, JSON, b'"finishReason"')),
        "relay": (relay, StreamRequest(relay.url + STREAM_PATH, GEMINI_REQUEST, JSON, b'"finishReason"')),
    }
    for impl in opts.impls:
        gateway = start_gateway(group, f"gateway-{impl}", upstream, impl=impl)
        targets[impl] = (gateway, StreamRequest(gateway.url + CHAT_PATH, CHAT_STREAM_REQUEST, {**JSON, **AUTH},
                                                b"[DONE]"))
    lean = targets["lean"][0]
    targets["native"] = (lean, StreamRequest(lean.url + STREAM_PATH, GEMINI_REQUEST, {**JSON, **NATIVE_AUTH},
                                             b'"finishReason"'))
    for name, (_, req) in targets.items():
        smoke(req.url, req.body, {k: v for k, v in req.headers.items() if k != "Content-Type"},
              expected_text("chat_stream" if req.done_marker == b"[DONE]" else "stream"))
    samples = {name: StreamSample() for name in targets}
    for round_no in range(1, opts.rounds + 1):
        for name, (proc, req) in targets.items():
            _say(f"streams x{opts.stream_concurrency}, round {round_no}/{opts.rounds}: {name}")
            samples[name].add(proc, upstream, req, opts, warmup=opts.warmup if round_no == 1 else 0.0)
    out: dict[str, Any] = {
        "upstream": f"bench.upstream raw asyncio protocol on uvloop: {shape.chunks} recorded events per stream, "
                    f"{shape.delay_ms:g} ms apart, CRLF framing",
        "concurrency": opts.stream_concurrency, "rounds": opts.rounds, "seconds_per_round": opts.seconds,
        "chat_c32": {"direct": samples["direct"].entry(), "relay": samples["relay"].entry(),
                     "gateway": samples["lean"].entry()},
        "impls": {impl: samples[impl].entry() for impl in opts.impls},
    }
    out["native_c32"] = {"direct": out["chat_c32"]["direct"], "relay": out["chat_c32"]["relay"],
                         "gateway": samples["native"].entry()}
    if opts.profile:
        _say("profiling the gateway: chat streams")
        chat = targets["lean"][1]
        out["profile_chat_stream"] = _profiled(
            pyspy, lean, work / "profile-chat-stream.txt", opts.profile_seconds,
            lambda: _run(stream_load(chat, concurrency=opts.stream_concurrency, seconds=opts.profile_seconds,
                                     warmup=0)))
    for proc, _ in {id(p): (p, r) for p, r in targets.values()}.values():
        group.stop(proc)
    return out


# -- phase 3 ------------------------------------------------------------------------------------------------

def _trend(samples: list[dict[str, float]]) -> dict[str, float]:
    """How RSS moved once the process had settled: drift (mean of the last third of the soak minus the mean
    of the middle third) and the least-squares slope over the last two thirds, MB per minute.

    The first third is left out on purpose: right after 1,000 streams open, the first waves of streams
    ending and reopening raise the allocator's high-water mark once; a leak keeps rising after that."""
    if len(samples) < 3:
        return {"drift_mb": 0.0, "slope_mb_per_min": 0.0}
    third = len(samples) // 3
    settled = samples[third:]
    middle, last = samples[third:2 * third], samples[2 * third:]
    drift = statistics.fmean(s["rss_mb"] for s in last) - statistics.fmean(s["rss_mb"] for s in middle)
    xs = [s["t"] for s in settled]
    ys = [s["rss_mb"] for s in settled]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0
    return {"drift_mb": round(drift, 2), "slope_mb_per_min": round(slope * 60, 3)}


def phase_memory(group: Processes, opts: Options) -> dict[str, Any]:
    shape, streams = opts.slow_shape, opts.slow_streams
    upstream = start_stream_upstream(group, "upstream-slow", shape)
    # The pool must be able to hold one upstream connection per open stream (see docs/benchmarks.md).
    pool = max(256, streams + 64)
    gateway = start_gateway(group, "gateway-rss", upstream, extra={"UPSTREAM_CONNECTIONS": str(pool)})
    rss_started = gateway.rss_mb()
    for _ in range(50):  # warm the code paths once, so "before" is a serving process and not a cold one
        smoke(gateway.url + CHAT_PATH, CHAT_REQUEST, AUTH, expected_text("chat"))
    time.sleep(0.5)
    req = StreamRequest(gateway.url + CHAT_PATH, CHAT_STREAM_REQUEST, {**JSON, **AUTH}, b"[DONE]")
    interval = max(1.0, opts.soak / 60)
    _say(f"memory: {streams} slow streams ({shape.chunks} events, {shape.delay_ms:g} ms apart), "
         f"soak {opts.soak:g} s")
    cpu0 = gateway.cpu_seconds()
    hold = _run(hold_streams(req, streams=streams, soak=opts.soak, rss=gateway.rss_mb, fds=gateway.open_fds,
                             interval=interval))
    cpu = gateway.cpu_seconds() - cpu0
    rss_peak = max([hold.rss_open, *(s["rss_mb"] for s in hold.samples)])
    trend = _trend(hold.samples)
    out = {
        "upstream": f"bench.upstream: {shape.chunks} recorded events per stream, {shape.delay_ms:g} ms apart",
        "streams": streams, "upstream_connections": pool, "soak_s": opts.soak,
        "reached": hold.reached, "ramp_s": round(hold.ramp_s, 2),
        "rss_started_mb": round(rss_started, 1), "rss_before_mb": round(hold.rss_before, 1),
        "rss_open_mb": round(hold.rss_open, 1), "rss_peak_mb": round(rss_peak, 1),
        "rss_after_mb": round(hold.rss_after, 1),
        "fds_before": hold.fds_before, "fds_open": hold.fds_open, "fds_after": hold.fds_after,
        "completed_streams": hold.stats.streams, "errors": hold.stats.errors, "incomplete": hold.stats.incomplete,
        "first_error": hold.stats.first_error,
        "ttft_p50_ms": round(_pct(hold.stats.ttft, 50), 2), "ttft_p99_ms": round(_pct(hold.stats.ttft, 99), 2),
        "gateway_cpu_pct": round(100 * cpu / max(1e-9, hold.ramp_s + opts.soak), 1),
        **trend,
        "flat": abs(trend["drift_mb"]) <= max(2.0, 0.02 * hold.rss_open),
        "samples": hold.samples,
    }
    group.stop(gateway)
    group.stop(upstream)
    return out


def _pct(values: list[float], pct: float) -> float:
    return percentile(values, pct)
