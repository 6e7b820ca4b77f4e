"""The analytics pipeline: publish() fans each event out to one queue per exporter, and nothing more.

Built once per process from its :class:`AnalyticsConfig` slice (:func:`build_event_sink`). The request path
pays for a counter and
one deque append per exporter; everything else (payload building, redaction, JSON, HTTP, disk) happens in the
exporters' own tasks. Shutdown gives the exporters ``ANALYTICS_FLUSH_TIMEOUT`` seconds to empty their queues,
then cancels them and counts what was left as dropped, so a dead collector cannot hold a deploy hostage.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from app.observability.events import EventSink, Interaction, NullSink
from app.observability.exporter import Exporter
from app.observability.jsonl import JsonLinesExporter, analytics_record, interaction_log_line
from app.observability.reconify_export import ReconifyExporter
from app.observability.worker import ExporterWorker

log = logging.getLogger("gateway.analytics")

CLOSE_TIMEOUT = 2.0  # seconds for an exporter to release its client or file after the flush


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """The settings the analytics pipeline and its exporters use (README, settings table)."""

    interaction_log: str | None = None
    log_messages: bool = True
    analytics_jsonl: str | None = None
    redact_content: bool = False
    batch_size: int = 256
    queue_size: int = 10000
    queue_bytes: int = 64 * 1024 * 1024
    flush_timeout: float = 5.0
    reconify_endpoint: str | None = None
    reconify_app_key: str | None = field(default=None, repr=False)
    reconify_api_key: str | None = field(default=None, repr=False)
    reconify_session_timeout: int = 10
    reconify_timeout: float = 10.0
    reconify_max_attempts: int = 4
    reconify_retry_backoff: float = 0.5
    reconify_retry_backoff_max: float = 30.0
    reconify_concurrency: int = 4


class AnalyticsPipeline:
    """An :class:`EventSink` over one or more exporters, each isolated behind its own bounded queue."""

    def __init__(self, exporters: list[Exporter], *, queue_size: int, flush_timeout: float,
                 queue_bytes: int = 0) -> None:
        self._workers = tuple(ExporterWorker(e, queue_size, queue_bytes) for e in exporters)
        self._flush_timeout = flush_timeout
        self.enabled = bool(self._workers)
        self.wants_bodies = any(e.wants_bodies for e in exporters)
        self.published = 0
        self.publish_errors = 0
        self.after_stop = 0
        self._running = False
        self._stopped = False

    def publish(self, event: Interaction) -> None:
        """O(1) per exporter, synchronous, never raises: the caller is answering a client."""
        try:
            self.published += 1
            if self._stopped:
                self.after_stop += 1
                return
            for worker in self._workers:
                worker.offer(event)
        except Exception:  # noqa: BLE001 - analytics must never break a request
            self.publish_errors += 1

    async def start(self) -> None:
        if self._running:
            return
        for worker in self._workers:
            await worker.start()
        self._running = True
        log.info("analytics exporters: %s", ", ".join(w.name for w in self._workers))

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if not self._running:
            return
        self._running = False
        try:
            await asyncio.wait_for(asyncio.gather(*(w.drain() for w in self._workers)), self._flush_timeout)
        except TimeoutError:
            log.warning("analytics flush did not finish within %.1fs; the rest is dropped", self._flush_timeout)
        for worker in self._workers:
            await worker.halt()
            try:
                await asyncio.wait_for(worker.close(), CLOSE_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - shutting down: report and go on
                log.warning("analytics exporter %s did not close cleanly: %s", worker.name, type(exc).__name__)
        lost = sum(w.lost_at_shutdown for w in self._workers)
        if lost:
            log.warning("analytics: %d event(s) still queued at shutdown were dropped", lost)

    def stats(self) -> dict[str, Any]:
        exporters = {w.name: w.stats() for w in self._workers}
        return {"enabled": self.enabled, "published": self.published,
                "dropped": sum(e["dropped"] for e in exporters.values()) + self.after_stop,
                "publish_errors": self.publish_errors, "exporters": exporters}


def build_exporters(config: AnalyticsConfig) -> list[Exporter]:
    exporters: list[Exporter] = []
    if config.interaction_log:
        log_messages = config.log_messages
        exporters.append(JsonLinesExporter(
            "interaction_log", config.interaction_log, wants_bodies=False, batch_size=config.batch_size,
            formatter=lambda e: interaction_log_line(e, log_messages=log_messages)))
    if config.analytics_jsonl:
        timeout, redact = config.reconify_session_timeout, config.redact_content
        exporters.append(JsonLinesExporter(
            "analytics_jsonl", config.analytics_jsonl, wants_bodies=True, batch_size=config.batch_size,
            formatter=lambda e: analytics_record(e, session_timeout=timeout, redact=redact)))
    if config.reconify_endpoint:
        if not (config.reconify_app_key and config.reconify_api_key):
            log.warning("RECONIFY_ENDPOINT is set but RECONIFY_APP_KEY or RECONIFY_API_KEY is not: "
                        "Reconify export is off")
        else:
            exporters.append(ReconifyExporter(
                config.reconify_endpoint, app_key=config.reconify_app_key,
                api_key=config.reconify_api_key, session_timeout=config.reconify_session_timeout,
                redact=config.redact_content, timeout=config.reconify_timeout,
                max_attempts=config.reconify_max_attempts, backoff=config.reconify_retry_backoff,
                backoff_max=config.reconify_retry_backoff_max, concurrency=config.reconify_concurrency))
    return exporters


def build_event_sink(config: AnalyticsConfig) -> EventSink:
    exporters = build_exporters(config)
    if not exporters:
        return NullSink()
    return AnalyticsPipeline(exporters, queue_size=config.queue_size, queue_bytes=config.queue_bytes,
                             flush_timeout=config.flush_timeout)
