"""The Reconify exporter and the pipeline against a real HTTP collector on 127.0.0.1.

Delivery, the retry policy (5xx/timeouts retried, 4xx not), isolation from a hanging collector (publish
returns at once, the queue stays bounded, the JSON-lines exporter keeps writing), and a final flush that is
bounded in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from app.config import Settings
from app.observability.events import Interaction, NullSink
from app.observability.exporter import ExportError
from app.observability.jsonl import JsonLinesExporter, interaction_log_line
from app.observability.pipeline import AnalyticsPipeline, build_event_sink
from app.slices import analytics
from app.observability.reconify_export import ReconifyExporter
from tests.support.collector import Collector, running_collector


def event(n: int = 0, **over) -> Interaction:
    base = dict(surface="openai", model="gemini-2.5-flash",
                request={"contents": [{"role": "user", "parts": [{"text": f"hello {n}"}]}]},
                response={"candidates": [{"content": {"role": "model", "parts": [{"text": f"echo {n}"}]},
                                          "finishReason": "STOP"}],
                          "usageMetadata": {"totalTokenCount": 3}},
                started=1700000000.0, finished=1700000000.5, status=200, user_id="u1", session_id="s-1")
    base.update(over)
    return Interaction(**base)


def reconify(url: str, **over) -> ReconifyExporter:
    opts = dict(app_key="APPKEY", api_key="APIKEY", session_timeout=10, redact=False, timeout=5.0,
                max_attempts=3, backoff=0.0, backoff_max=0.0, concurrency=2)
    opts.update(over)
    return ReconifyExporter(url, **opts)


@pytest.fixture()
def collector() -> Iterator[Collector]:
    with running_collector() as c:
        yield c


async def test_delivers_the_payload(collector: Collector) -> None:
    exp = reconify(collector.url)
    await exp.open()
    try:
        assert await exp.export([event(1)]) == 0
    finally:
        await exp.close()
    (got,) = collector.payloads
    assert got["reconify"]["appKey"] == "APPKEY" and got["reconify"]["apiKey"] == "APIKEY"
    assert got["request"]["contents"][0]["parts"][0]["text"] == "hello 1"
    assert got["session"] == "s1"


async def test_500_then_200_is_delivered_after_a_retry(collector: Collector) -> None:
    collector.answer(500)
    exp = reconify(collector.url)
    await exp.open()
    try:
        await exp.export([event()])
    finally:
        await exp.close()
    assert collector.statuses == [500, 200]
    assert len(collector.payloads) == 1
    assert exp.retries == 1


async def test_400_is_not_retried(collector: Collector) -> None:
    collector.answer(400)
    exp = reconify(collector.url)
    await exp.open()
    try:
        with pytest.raises(ExportError, match="400"):
            await exp.export([event()])
    finally:
        await exp.close()
    assert collector.statuses == [400]
    assert exp.retries == 0


async def test_gives_up_after_max_attempts(collector: Collector) -> None:
    collector.answer(503, 503, 503, 503)
    exp = reconify(collector.url, max_attempts=3)
    await exp.open()
    try:
        with pytest.raises(ExportError, match="503"):
            await exp.export([event()])
    finally:
        await exp.close()
    assert collector.statuses == [503, 503, 503]


async def test_timeout_is_retried(collector: Collector) -> None:
    collector.hang()
    exp = reconify(collector.url, timeout=0.2, max_attempts=2)
    await exp.open()
    try:
        with pytest.raises(ExportError, match="timed out"):
            await exp.export([event()])
    finally:
        await exp.close()
        collector.release()
    assert len(collector.attempts) == 2


async def test_connection_refused_is_an_export_error() -> None:
    exp = reconify("http://127.0.0.1:9/track", max_attempts=2)
    await exp.open()
    try:
        with pytest.raises(ExportError, match="connection error"):
            await exp.export([event()])
    finally:
        await exp.close()
    assert exp.retries == 1


async def test_pipeline_counts_sent_and_failed(collector: Collector) -> None:
    collector.answer(400)
    pipe = AnalyticsPipeline([reconify(collector.url, concurrency=1)], queue_size=100, flush_timeout=5)
    await pipe.start()
    for i in range(3):
        pipe.publish(event(i))
    pipe.publish(event(9, response=None, status=502))  # failed call: nothing to show Reconify
    await collector.await_for(2)
    await pipe.stop()
    stats = pipe.stats()
    assert stats["published"] == 4
    rec = stats["exporters"]["reconify"]
    assert (rec["sent"], rec["failed"], rec["skipped"], rec["dropped"], rec["queued"]) == (2, 1, 1, 0, 0)


async def test_hanging_collector_never_blocks_publish_and_the_queue_stays_bounded(
        collector: Collector, tmp_path: Path) -> None:
    collector.hang()
    log_file = tmp_path / "interactions.jsonl"
    lines = JsonLinesExporter("interaction_log", str(log_file), wants_bodies=False, batch_size=64,
                              formatter=lambda e: interaction_log_line(e, log_messages=True))
    pipe = AnalyticsPipeline([reconify(collector.url, concurrency=1, timeout=60), lines], queue_size=5,
                             flush_timeout=0.2)
    await pipe.start()
    pipe.publish(event(0))
    await collector.await_hanging(1)
    for i in range(1, 101):
        pipe.publish(event(i))  # synchronous: if it returns, it did not wait for the collector
    rec = pipe.stats()["exporters"]["reconify"]
    assert rec["queued"] == 5
    assert rec["dropped"] == 95
    # The other exporter is not starved by the hanging one (its own queue is bounded too).
    for _ in range(200):
        if log_file.exists() and log_file.read_bytes().count(b"\n") >= 6:
            break
        await asyncio.sleep(0.01)
    assert log_file.read_bytes().count(b"\n") >= 6
    # Shutdown is bounded even though a POST is stuck: it returns, and what was left counts as dropped.
    await asyncio.wait_for(pipe.stop(), 10)
    stats = pipe.stats()
    assert stats["exporters"]["reconify"]["sent"] == 0
    assert stats["exporters"]["reconify"]["dropped"] == 101
    assert stats["dropped"] >= 101
    collector.release()


async def test_final_flush_delivers_what_is_queued(collector: Collector) -> None:
    pipe = AnalyticsPipeline([reconify(collector.url)], queue_size=100, flush_timeout=10)
    await pipe.start()
    for i in range(5):
        pipe.publish(event(i))
    await pipe.stop()  # nothing awaited before: the flush is what delivers them
    assert len(collector.payloads) == 5
    assert pipe.stats()["exporters"]["reconify"]["sent"] == 5
    pipe.publish(event(99))  # after stop: ignored, counted
    assert pipe.stats()["dropped"] == 1


async def test_publish_never_raises() -> None:
    class Broken:
        name = "broken"
        wants_bodies = False
        concurrency = 1
        batch_size = 1

        def accepts(self, event: Interaction) -> bool:
            raise RuntimeError("boom")

    pipe = AnalyticsPipeline([Broken()], queue_size=10, flush_timeout=1)  # type: ignore[list-item]
    pipe.publish(event())
    assert pipe.stats()["publish_errors"] == 1


async def test_jsonl_file_exporter_writes_lines(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "analytics.jsonl"
    settings = Settings(_env_file=None, interaction_log="", analytics_jsonl=str(target))
    sink = build_event_sink(analytics(settings))
    assert sink.enabled and sink.wants_bodies
    await sink.start()
    sink.publish(event(1))
    sink.publish(event(2))
    await sink.stop()
    records = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert [r["request"]["contents"][0]["parts"][0]["text"] for r in records] == ["hello 1", "hello 2"]
    assert "appKey" not in records[0]["reconify"]
    assert sink.stats()["exporters"]["analytics_jsonl"]["sent"] == 2


def test_build_event_sink_choices() -> None:
    none = build_event_sink(analytics(Settings(_env_file=None, interaction_log="")))
    assert isinstance(none, NullSink) and not none.wants_bodies
    log_only = build_event_sink(analytics(Settings(_env_file=None)))  # INTERACTION_LOG defaults to stdout
    assert log_only.enabled and not log_only.wants_bodies
    no_keys = build_event_sink(analytics(Settings(_env_file=None, interaction_log="",
                                                  reconify_endpoint="http://x")))
    assert isinstance(no_keys, NullSink)
    full = build_event_sink(analytics(Settings(_env_file=None, interaction_log="", reconify_endpoint="http://x",
                                               reconify_app_key="a", reconify_api_key="b")))
    assert full.wants_bodies and set(full.stats()["exporters"]) == {"reconify"}
