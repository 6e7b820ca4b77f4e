"""The workers' bus file: what one process publishes, every other process reads, whole and in order."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from app.state.worker_bus import WorkerBus


def _bus(path: str, **kwargs: object) -> WorkerBus:
    return WorkerBus(path, **kwargs)  # type: ignore[arg-type]


def test_a_record_published_by_one_reader_reaches_the_other_once(tmp_path: Path) -> None:
    path = WorkerBus.create(str(tmp_path))
    a, b = _bus(path), _bus(path)
    assert b.changes() is not None and not b.moved()  # the first look reads the (empty) log
    a.publish(["d", "k1", "why", 1.0])
    assert b.moved()
    changes = b.changes()
    assert changes is not None and changes.records == [["d", "k1", "why", 1.0]]
    assert not changes.reset  # same generation: only the new record
    assert b.changes() is None and not b.moved()
    a.publish(["e", "k1"])
    again = b.changes()
    assert again is not None and not again.reset and again.records == [["e", "k1"]]


def test_compaction_makes_readers_replay_the_compacted_log(tmp_path: Path) -> None:
    path = WorkerBus.create(str(tmp_path))
    writer = _bus(path, compact=lambda records: records[-1:], limit=64)
    reader = _bus(path)
    reader.changes()
    writer.publish(["x", "first"])
    assert reader.changes().records == [["x", "first"]]  # type: ignore[union-attr]
    writer.publish(["x", "second" * 20])  # past the limit: the log becomes its last record only
    assert writer.stats["compactions"] == 1
    changes = reader.changes()
    assert changes is not None and changes.reset and changes.records == [["x", "second" * 20]]
    assert Path(path).stat().st_size < 16 + 64 + 200


def _publisher(path: str, name: str, count: int) -> None:
    bus = WorkerBus(path)
    for i in range(count):
        bus.publish([name, i, "y" * (i % 97)])
    bus.close()


def test_concurrent_publishers_in_other_processes_lose_and_tear_nothing(tmp_path: Path) -> None:
    path = WorkerBus.create(str(tmp_path))
    reader = _bus(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_publisher, args=(path, name, 300)) for name in ("p", "q")]
    seen: list[list[object]] = []
    for proc in procs:
        proc.start()
    while any(proc.is_alive() for proc in procs):  # read while they write: never half a record
        changes = reader.changes()
        if changes is not None:
            seen += changes.records
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    changes = reader.changes()
    seen += changes.records if changes is not None else []
    for name in ("p", "q"):
        assert [r[1] for r in seen if r[0] == name] == list(range(300))


def test_an_unreadable_record_is_skipped_not_raised(tmp_path: Path) -> None:
    # A writer killed at the wrong moment can leave bytes that are no record: a pick must never fail on them.
    path = WorkerBus.create(str(tmp_path))
    writer, reader = _bus(path), _bus(path)
    writer.publish(["d", "k1", "why", 1.0])
    with open(path, "r+b") as f:  # a torn line, then the header moved over it as a broken writer would
        f.seek(0, 2)
        f.write(b'["d", "k2", "ha\n')
        end = f.tell()
        f.seek(8)
        f.write(end.to_bytes(8, "little"))
    writer.publish(["e", "k1"])
    changes = reader.changes()
    assert changes is not None and changes.records == [["d", "k1", "why", 1.0], ["e", "k1"]]
    assert reader.stats["torn"] == 1


def test_a_log_whose_records_all_still_matter_is_compacted_only_each_time_it_doubles(tmp_path: Path) -> None:
    # Thousands of keys out of daily quota: compaction keeps every record. Compacting (and making every
    # worker replay the whole log) at each new record would cost each worker a full replay per record.
    path = WorkerBus.create(str(tmp_path))
    writer, reader = _bus(path, compact=lambda records: records, limit=1024), _bus(path)
    resets = 0
    for i in range(2000):
        writer.publish(["c", f"key-{i}", "y" * 20])
        changes = reader.changes()
        resets += bool(changes is not None and changes.reset)
    assert writer.stats["compactions"] <= 8 and resets <= 8
    changes = _bus(path).changes()
    assert changes is not None and [r[1] for r in changes.records] == [f"key-{i}" for i in range(2000)]
