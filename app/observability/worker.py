"""One exporter behind its own queue and consumer tasks, with plain-int counters.

Each exporter gets a private drop-oldest queue so that a slow or dead one (a hanging collector) only ever
loses its *own* oldest events: it cannot block the request path, grow memory past its queue, or starve the
interaction log of its lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app.observability.channel import DropOldestChannel
from app.observability.events import Interaction
from app.observability.exporter import ExportError, Exporter

log = logging.getLogger("gateway.analytics")

WARN_EVERY = 60.0  # seconds between two failure warnings of one exporter


class ExporterWorker:
    def __init__(self, exporter: Exporter, queue_size: int, queue_bytes: int = 0) -> None:
        self.exporter = exporter
        self.channel: DropOldestChannel[Interaction] = DropOldestChannel(queue_size, queue_bytes)
        self.sent = 0
        self.failed = 0
        self.skipped = 0
        self.lost_at_shutdown = 0
        self._in_flight = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._unreported = 0
        self._last_warning = 0.0

    @property
    def name(self) -> str:
        return self.exporter.name

    def offer(self, event: Interaction) -> None:
        """Hot path: a filter call and a deque append."""
        if self.exporter.accepts(event):
            self.channel.put(event, event.size_hint)
        else:
            self.skipped += 1

    async def start(self) -> None:
        await self.exporter.open()
        for i in range(max(1, self.exporter.concurrency)):
            self._tasks.append(asyncio.create_task(self._consume(), name=f"analytics-{self.name}-{i}"))

    async def drain(self) -> None:
        """Return once everything queued has been handed to the exporter and has come back."""
        while (len(self.channel) or self._in_flight) and self._tasks:
            await asyncio.sleep(0.02)

    async def halt(self) -> None:
        """Stop consuming now; whatever is still queued or in flight is counted lost."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.lost_at_shutdown += len(self.channel.take_all())

    async def close(self) -> None:
        await self.exporter.close()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                               "queued": len(self.channel), "queued_bytes": self.channel.queued_bytes,
                               "skipped": self.skipped}
        extra = getattr(self.exporter, "extra_stats", None)
        if extra is not None:
            out.update(extra())
        return out

    @property
    def dropped(self) -> int:
        return self.channel.dropped + self.lost_at_shutdown

    async def _consume(self) -> None:
        while True:
            batch = await self.channel.get_batch(self.exporter.batch_size)
            size = len(batch)
            self._in_flight += size
            try:
                bad = await self.exporter.export(batch)
            except asyncio.CancelledError:
                self.lost_at_shutdown += size
                raise
            except ExportError as exc:
                self._record_failure(size, str(exc))
            except Exception as exc:  # an exporter bug must not kill its consumer
                self._record_failure(size, f"unexpected {type(exc).__name__}")
            else:
                self.sent += size - bad
                if bad:
                    self._record_failure(bad, "unserialisable event")
            finally:
                self._in_flight -= size

    def _record_failure(self, count: int, reason: str) -> None:
        self.failed += count
        self._unreported += count
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            log.warning("analytics exporter %s: %d event(s) not delivered (last: %s)", self.name,
                        self._unreported, reason)
            self._unreported = 0
            self._last_warning = now
