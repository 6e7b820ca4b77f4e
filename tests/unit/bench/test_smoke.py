"""The bench harness in a tiny mode: its fake upstreams, the gateway behind them, the stream client, and the
report. Correctness only (status, bodies, counts): no assertion here is about time, so a busy machine cannot
fail it. The real figures come from ``make bench``."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import profile, report
from bench.payloads import (
    CHAT_PATH,
    CHAT_REQUEST,
    CHAT_STREAM_REQUEST,
    GEMINI_REQUEST,
    GENERATE_PATH,
    STREAM_PATH,
    TOKEN,
    StreamShape,
)
from bench.procs import Processes, processes
from bench.run import _run, _trend
from bench.streams import StreamRequest, percentile, stream_load
from bench.targets import nginx_binary, start_gateway, start_nginx, start_stream_upstream

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Processes]:
    with processes(tmp_path / "logs") as started:
        yield started


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, resp.read()


def test_upstream_sends_recorded_events_with_crlf_framing(group: Processes) -> None:
    upstream = start_stream_upstream(group, "upstream", StreamShape(5, 0.0))
    status, body = _post(upstream.url + STREAM_PATH, GEMINI_REQUEST, {"Content-Type": "application/json"})
    assert status == 200
    events = [e for e in body.split(b"\r\n\r\n") if e]
    assert len(events) == 5 and all(e.startswith(b"data: {") for e in events)
    assert b'"finishReason": "STOP"' in events[-1]
    status, body = _post(upstream.url + GENERATE_PATH, GEMINI_REQUEST, {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["candidates"][0]["finishReason"] == "STOP"


def test_gateway_behind_the_fast_upstream_answers_chat_and_streams(group: Processes) -> None:
    upstream = start_stream_upstream(group, "upstream", StreamShape(4, 0.0))
    gateway = start_gateway(group, "gateway", upstream)
    for _ in range(5):
        status, body = _post(gateway.url + CHAT_PATH, CHAT_REQUEST, AUTH)
        assert status == 200
        assert json.loads(body)["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
    request = StreamRequest(gateway.url + CHAT_PATH, CHAT_STREAM_REQUEST, AUTH, b"[DONE]")
    stats = _run(stream_load(request, concurrency=2, seconds=0.3, warmup=0))
    assert stats.streams >= 1 and stats.errors == 0 and stats.incomplete == 0
    assert len(stats.ttft) == stats.streams


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (the bench installs it as root)")
def test_nginx_upstream_serves_the_recorded_body(group: Processes, tmp_path: Path) -> None:
    nginx = start_nginx(group, tmp_path)
    status, body = _post(nginx.url + GENERATE_PATH, GEMINI_REQUEST, {"Content-Type": "application/json"})
    assert status == 200 and b"How can I help you today?" in body


def test_profile_summary_reads_collapsed_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text("main (app/__main__.py:27);call (app/upstream.py:10);_request (aiohttp/client.py:5) 30\n"
                   "main (app/__main__.py:27);feed (app/framing.py:20) 10\n")
    summary = profile.summarize(raw, seconds=1, rate=100)
    assert summary["busy_pct_of_core"] == 40.0
    assert summary["top_self"][0] == {"function": "_request (aiohttp/client.py)", "pct": 30.0}
    assert {"component": "app/framing", "pct": 10.0} in summary["by_component"]


def test_report_renders_targets_from_results() -> None:
    wrk = {"rps": 100.0, "p50_ms": 0.1, "p99_ms": 0.2, "cpu_us_per_req": 50.0}
    results: dict[str, Any] = {
        "meta": {"nproc": 2}, "mode": "quick", "elapsed_s": 1.0,
        "nonstream": {"chat_c1": {"direct": wrk, "relay": wrk, "gateway": {**wrk, "p50_ms": 0.5}},
                      "chat_c64": {"direct": wrk, "relay": wrk, "gateway": {**wrk, "rps": 1600.0}}},
    }
    results["targets"] = report.targets(results)
    by_name = {t["target"]: t for t in results["targets"]}
    assert by_name["added latency p50, chat c=1"]["met"] is True
    assert by_name["chat c=64 throughput"]["met"] is True
    assert by_name["native c=64 vs relay"]["met"] is None  # not measured is not "met"
    assert "| target |" in report.render(results, markdown=True)


def test_percentile_and_trend_helpers() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    flat = [{"t": float(t), "rss_mb": 100.0} for t in range(9)]
    assert _trend(flat) == {"drift_mb": 0.0, "slope_mb_per_min": 0.0}
    growing = [{"t": float(t), "rss_mb": 100.0 + t} for t in range(9)]
    assert _trend(growing)["slope_mb_per_min"] == 60.0
