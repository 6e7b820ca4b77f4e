"""What the pipeline needs from an exporter, and the one error it understands.

An exporter only knows how to ship a batch; queueing, concurrency, counting and shutdown belong to
:mod:`app.observability.worker`, so that every exporter gets the same isolation guarantees for free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.observability.events import Interaction


class ExportError(Exception):
    """A batch could not be delivered. The message is safe to log: no keys, no message text, no URL."""


class Exporter(Protocol):
    name: str
    wants_bodies: bool   # needs request/response JSON (see EventSink.wants_bodies)
    concurrency: int     # consumer tasks pulling from this exporter's queue
    batch_size: int      # most events handed to one export() call

    def accepts(self, event: Interaction) -> bool:
        """Cheap filter run in publish(): events refused here are counted as skipped, never queued."""
        ...

    async def open(self) -> None: ...

    async def export(self, batch: Sequence[Interaction]) -> int:
        """Ship the batch; return how many events of it were unusable (counted failed), raise ExportError
        when the whole batch failed."""
        ...

    async def close(self) -> None: ...
