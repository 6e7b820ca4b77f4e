"""JSON lines from interaction events: the per-interaction log line and the full analytics record.

Both flavours read the same :class:`Interaction` the Reconify exporter reads, so the sessions API's log line,
the analytics file and the collector can never disagree about a call. Encoding and writing happen on one
dedicated thread per exporter: the event loop never waits on a disk or a full pipe, and one thread keeps the
lines in order.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from app.observability.events import Interaction
from app.observability.exporter import ExportError
from app.observability.reconify import bare_model, build_payload

STDOUT = "stdout"

Formatter = Callable[[Interaction], dict[str, Any]]


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def interaction_log_line(event: Interaction, *, log_messages: bool) -> dict[str, Any]:
    """The one-line record of issue 7: who, what (unless LOG_MESSAGES is off), how long, how it ended."""
    return {
        "timestamp": iso_utc(event.finished),
        "user_id": event.user_id,
        "message": event.message if log_messages else None,
        "output_length": len(event.output_text or ""),
        "chat_id": event.session_id,
        "model": bare_model(event.model),
        "latency_ms": event.latency_ms,
        "status": event.status,
        "surface": event.surface,
    }


def analytics_record(event: Interaction, *, session_timeout: int, redact: bool) -> dict[str, Any]:
    """The Reconify payload without its keys, plus what the gateway knows that Reconify has no field for."""
    record = build_payload(event, session_timeout=session_timeout, redact=redact, with_keys=False)
    record["gateway"] = {"surface": event.surface, "status": event.status, "stream": event.stream,
                         "latency_ms": event.latency_ms, "key_id": event.key_id, "error": event.error}
    return record


def _fallback(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError


class LineSink:
    """A path (appended to, created with its folders) or standard output. Only ever touched from one thread."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._file: IO[bytes] | None = None

    def _open(self) -> IO[bytes]:
        if self._file is None:
            if self._target == STDOUT:
                stream = sys.stdout
                if stream is None:
                    raise ExportError("standard output is closed")
                self._file = stream.buffer
            else:
                path = Path(self._target)
                path.parent.mkdir(parents=True, exist_ok=True)
                # Unbuffered O_APPEND: one write() per batch, so lines of several workers sharing the file
                # do not interleave mid-line.
                self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - kept open for the process
        return self._file

    def write(self, data: bytes) -> None:
        try:
            out = self._open()
            view = memoryview(data)
            while view:
                written = out.write(view)
                if not written:
                    raise ExportError("the output accepted no bytes")
                view = view[written:]
            out.flush()
        except OSError as exc:
            raise ExportError(f"cannot write {type(exc).__name__}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._file is not None and self._target != STDOUT:
            try:
                self._file.close()
            except OSError:
                pass
        self._file = None


class JsonLinesExporter:
    """One JSON object per event and per line, written in batches by a dedicated thread."""

    wants_bodies: bool
    concurrency = 1  # one writer keeps the lines in order

    def __init__(self, name: str, target: str, formatter: Formatter, *, wants_bodies: bool,
                 batch_size: int) -> None:
        self.name = name
        self.wants_bodies = wants_bodies
        self.batch_size = batch_size
        self._format = formatter
        self._sink = LineSink(target)
        self._thread: ThreadPoolExecutor | None = None

    def accepts(self, event: Interaction) -> bool:
        return True

    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"analytics-{self.name}")

    async def export(self, batch: Sequence[Interaction]) -> int:
        if self._thread is None:
            raise ExportError("not started")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._write, list(batch))

    def _write(self, batch: list[Interaction]) -> int:
        lines: list[bytes] = []
        bad = 0
        for event in batch:
            try:
                lines.append(orjson.dumps(self._format(event), default=_fallback,
                                          option=orjson.OPT_APPEND_NEWLINE))
            except (TypeError, ValueError, orjson.JSONEncodeError):
                bad += 1
        if lines:
            self._sink.write(b"".join(lines))
        return bad

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        await asyncio.get_running_loop().run_in_executor(thread, self._sink.close)
        thread.shutdown(wait=False)
