"""What every batched event writer must do, run against each writer (thread and process).

The store is a real SQLite file; a second connection holding its write lock stands in for a
slow or stuck store, and an event breaking its schema for a store that refuses a batch.
"""

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import msgspec
import pytest

from tapereader.core.events import DomainEvent
from tapereader.core.store import EventStore
from tapereader.core.writer import (
    OverflowPolicy,
    WriterConfig,
    WriterError,
    WriterFailedError,
    WriterFullError,
    WriterStats,
)

from .store_testcase import T0, signals


class Writer(Protocol):
    def put(self, event: DomainEvent, *, timeout_s: float | None = None) -> None: ...
    def put_many(self, events: list[DomainEvent], *, timeout_s: float | None = None) -> None: ...
    def flush(self, timeout_s: float | None = None) -> None: ...
    def close(self, timeout_s: float | None = None) -> None: ...
    def stats(self) -> WriterStats: ...
    def unwritten(self) -> list[DomainEvent]: ...


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Another connection holds the database's write lock: appends wait for it."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        yield
    finally:
        con.execute("ROLLBACK")
        con.close()


def stored(path: Path) -> list[DomainEvent]:
    with EventStore.open(path) as s:
        return [r.event for r in s.read()]


class WriterContract:
    """Subclasses say how to make the writer under test."""

    def make(self, path: Path, config: WriterConfig) -> Writer:
        raise NotImplementedError

    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        path = tmp_path / "events.db"
        EventStore.open(path).close()  # created, so another connection can lock it
        return path

    def test_a_lone_event_is_written_after_the_delay_without_a_flush(self, path: Path) -> None:
        writer = self.make(path, WriterConfig(max_batch=1000, max_delay_ms=30))
        try:
            writer.put(signals(1)[0])
            deadline = time.monotonic() + 10
            # A batch is counted after the store's append returns: wait for both.
            while writer.stats().batches == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(stored(path)) == 1 and writer.stats().written == 1
        finally:
            writer.close()

    def test_close_writes_everything_queued_in_order_in_bounded_batches(self, path: Path) -> None:
        events = signals(3000)
        writer = self.make(path, WriterConfig(max_batch=500, max_delay_ms=5000))
        for i in range(0, len(events), 256):
            writer.put_many(events[i : i + 256])
        writer.close()
        assert stored(path) == events
        stats = writer.stats()
        assert stats.written == 3000 and stats.batches >= 6 and stats.queued == 0

    def test_a_full_queue_blocks_the_producer_until_there_is_room(self, path: Path) -> None:
        writer = self.make(path, WriterConfig(max_batch=10, max_delay_ms=0, capacity=5))
        events = signals(100)
        with write_locked(path):
            producer = threading.Thread(target=lambda: [writer.put(e) for e in events])
            producer.start()
            time.sleep(0.5)
            assert producer.is_alive(), "the producer should be blocked on the full queue"
        producer.join(timeout=30)
        writer.close()
        assert not producer.is_alive()
        assert writer.stats().blocked_puts > 0
        assert stored(path) == events

    def test_a_full_queue_with_raise_refuses_the_event_and_keeps_the_rest(self, path: Path) -> None:
        raise_when_full = OverflowPolicy.RAISE
        config = WriterConfig(max_batch=5, max_delay_ms=0, capacity=5, overflow=raise_when_full)
        writer = self.make(path, config)
        events = signals(200)
        taken = []
        with write_locked(path), pytest.raises(WriterFullError, match="queue full"):
            for e in events:
                writer.put(e)
                taken.append(e)
                time.sleep(0.001)  # give the writer time to take what it can
        assert 5 <= len(taken) < 200
        writer.flush(timeout_s=30)
        writer.close()
        assert stored(path) == taken

    def test_a_blocked_put_with_a_timeout_gives_up_clearly(self, path: Path) -> None:
        writer = self.make(path, WriterConfig(max_batch=1, max_delay_ms=0, capacity=1))
        with write_locked(path), pytest.raises(WriterFullError, match="stayed full"):
            for event in signals(50):
                writer.put(event, timeout_s=0.2)
        writer.close()
        assert writer.stats().written >= 1

    def test_a_refused_batch_stops_the_writer_and_keeps_every_event(self, path: Path) -> None:
        events = signals(50)
        bad = msgspec.structs.replace(events[15], p_up=1.5)  # breaks its schema
        events[15] = bad
        writer = self.make(path, WriterConfig(max_batch=10, max_delay_ms=0))
        writer.put_many(events[:10])
        writer.flush(timeout_s=30)
        writer.put_many(events[10:30])
        with pytest.raises(WriterFailedError, match="p_up"):
            writer.flush(timeout_s=30)
        with pytest.raises(WriterFailedError):
            writer.put(events[30])
        with pytest.raises(WriterFailedError):
            writer.close()
        assert stored(path) == events[:10]
        # The refused batch and everything after it, in order: nothing is lost.
        assert writer.unwritten() == events[10:30]

    def test_a_closed_writer_takes_nothing(self, path: Path) -> None:
        writer = self.make(path, WriterConfig())
        writer.close()
        writer.close()  # twice is fine
        with pytest.raises(WriterError, match="closed"):
            writer.put(signals(1, ts=T0)[0])
        with pytest.raises(WriterError, match="closed"):
            writer.flush()

    def test_an_invalid_config_is_refused(self, path: Path) -> None:
        with pytest.raises(ValueError, match="invalid writer config"):
            self.make(path, WriterConfig(max_batch=0))
