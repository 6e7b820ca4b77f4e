"""``WorkerBus``: a log the workers of one ``python -m app`` share through a file, checked in ~100 ns.

Why: without Redis each worker keeps its own key pool, yet a key one worker found invalid must never be
picked by another (docs/architecture.md, "Workers"). The master process makes the file before it spawns the
workers (``create``), names it in ``GATEWAY_WORKER_BUS`` and removes it when it exits, so every run starts
empty and a worker restarted by uvicorn replays what its siblings learned.

Layout: a 24-byte header (generation, end offset, end after the last compaction; little-endian u64s), mapped
with mmap, then records, one JSON array per line. A writer appends under an exclusive ``flock`` and then moves
``end``. A reader compares the mapped header with the one it saw last (one 24-byte slice: the check each pick
pays) and reads the new lines only when it moved, under a shared ``flock``, so it never sees half a record.
Past ``limit`` bytes, and past twice what the last compaction kept, the writer compacts the log with the
owner's ``compact`` (records that still matter) and bumps the generation; readers then replay it from the
start.

A write that fails (a full disk, a file-size limit: ``pwrite`` may write part of a record and stop) raises
``OSError`` without moving the header, so no reader ever sees the torn part; the next record overwrites it.
Compaction first points the header at an empty log of the new generation, so a writer killed half-way leaves
an empty log, never a mix of old and new lines. A line that still cannot be decoded is skipped and counted.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger(__name__)

__all__ = ["ENV", "Changes", "WorkerBus"]

#: The environment variable naming the bus file (set by the master for its workers; not a setting).
ENV = "GATEWAY_WORKER_BUS"
_HEADER = struct.Struct("<QQQ")  # generation, end, end right after the last compaction
_START = _HEADER.size
_LIMIT = 1 << 20

Record = list[Any]


@dataclass(frozen=True, slots=True)
class Changes:
    """What a reader has not seen yet: ``reset`` when the log was compacted (replay ``records`` from scratch)."""

    reset: bool
    records: list[Record]


class WorkerBus:
    __slots__ = ("path", "_fd", "_map", "_seen", "_gen", "_offset", "_compact", "_limit", "stats")

    def __init__(self, path: str, *, compact: Callable[[list[Record]], list[Record]] | None = None,
                 limit: int = _LIMIT) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, _START)
        self._seen = b""
        self._gen = -1
        self._offset = _START
        self._compact = compact
        self._limit = limit
        self.stats = {"published": 0, "applied": 0, "compactions": 0, "torn": 0}

    @staticmethod
    def create(directory: str | None = None) -> str:
        """A fresh, empty bus file (the master, before the workers start); returns its path."""
        if directory:
            os.makedirs(directory, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="workers-", suffix=".bus", dir=directory or None)
        try:
            _write_all(fd, _HEADER.pack(1, _START, _START), 0)
        except OSError:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
        return path

    @classmethod
    def from_environment(cls, **kwargs: Any) -> WorkerBus | None:
        """The bus this worker's master made, or None (one worker, or not started by ``python -m app``)."""
        path = os.environ.get(ENV)
        return cls(path, **kwargs) if path else None

    def moved(self) -> bool:
        """Whether some worker published since this one last read (the hot-path check)."""
        return self._map[:_START] != self._seen

    def publish(self, record: Record) -> None:
        """Append one record; every worker (this one included) sees it at its next ``changes``."""
        line = orjson.dumps(record) + b"\n"
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            gen, end, base = _HEADER.unpack(self._map[:_START])
            _write_all(self._fd, line, end)  # raises before the header moves: nobody reads a torn record
            end += len(line)
            # Past the limit, and past twice what the last compaction kept: a log of records that all still
            # matter (thousands of keys out of daily quota) is not rewritten, and replayed by every worker,
            # at each new record, only each time it doubles.
            if end - _START > max(self._limit, 2 * (base - _START)) and self._compact is not None:
                gen, end = gen + 1, self._rewrite(gen + 1, self._compact(self._read(_START, end)))
                base = end
                self.stats["compactions"] += 1
            self._map[:_START] = _HEADER.pack(gen, end, base)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self.stats["published"] += 1

    def changes(self) -> Changes | None:
        """The records published since the last call (None if none): all of them after a compaction."""
        if not self.moved():
            return None
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        try:
            header = self._map[:_START]
            gen, end, _ = _HEADER.unpack(header)
            reset = gen != self._gen
            start = _START if reset else self._offset
            records = self._read(start, end)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._seen, self._gen, self._offset = header, gen, end
        self.stats["applied"] += len(records)
        return Changes(reset, records)

    def _read(self, start: int, end: int) -> list[Record]:
        data = os.pread(self._fd, end - start, start) if end > start else b""
        records: list[Record] = []
        for line in data.splitlines():
            if not line:
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:  # a writer killed mid-compaction: skip it, never fail a pick
                self.stats["torn"] += 1
                log.warning("workers' bus %s: skipped an unreadable record", os.path.basename(self.path))
        return records

    def _rewrite(self, gen: int, records: list[Record]) -> int:
        """Replace the log with ``records`` as generation ``gen``; returns its end."""
        body = b"".join(orjson.dumps(r) + b"\n" for r in records)
        self._map[:_START] = _HEADER.pack(gen, _START, _START)  # killed from here on: an empty log, not a mix
        _write_all(self._fd, body, _START)
        os.ftruncate(self._fd, _START + len(body))
        return _START + len(body)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    """``pwrite`` all of ``data`` or raise ``OSError`` (a short write is retried; it then fails with the
    reason: ENOSPC, EFBIG)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(f"short write to the workers' bus ({written} bytes)")
        view, offset = view[written:], offset + written
