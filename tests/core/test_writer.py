"""The thread writer: the writer contract, and its batching and failures seen from inside
(a store double that holds or fails each append)."""

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tapereader.core.events import DomainEvent
from tapereader.core.store import AppendResult, EventStore, StoreLockedError
from tapereader.core.writer import (
    EventWriter,
    WriterConfig,
    WriterFailedError,
)

from .store_testcase import signals
from .writer_testcase import WriterContract


class TestEventWriter(WriterContract):
    def make(self, path: Path, config: WriterConfig) -> EventWriter:
        store = EventStore.open(path)
        writer = EventWriter(store, config)
        close = writer.close

        def close_both(timeout_s: float | None = None) -> None:
            try:
                close(timeout_s)
            finally:
                store.close()

        writer.close = close_both  # type: ignore[method-assign]
        return writer


class GatedStore:
    """A real store whose appends wait for a gate, and can be told to fail."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.gate = threading.Event()
        self.gate.set()
        self.fail_with: Exception | None = None
        self.batch_sizes: list[int] = []

    def append(self, events: Sequence[DomainEvent]) -> AppendResult:
        self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.batch_sizes.append(len(events))
        return self.store.append(events)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore.open(tmp_path / "events.db") as s:
        yield s


def test_batches_never_exceed_max_batch(store: EventStore) -> None:
    gated = GatedStore(store)
    gated.gate.clear()
    writer = EventWriter(gated, WriterConfig(max_batch=100, max_delay_ms=1000))  # type: ignore[arg-type]
    writer.put_many(signals(1000))
    gated.gate.set()
    writer.close()
    assert max(gated.batch_sizes) <= 100 and sum(gated.batch_sizes) == 1000
    assert store.count() == 1000


def test_a_chunk_is_one_queue_item_and_is_written_in_order(store: EventStore) -> None:
    gated = GatedStore(store)
    gated.gate.clear()
    writer = EventWriter(gated, WriterConfig(max_batch=100, max_delay_ms=1000, capacity=3))  # type: ignore[arg-type]
    chunks = [signals(250) for _ in range(3)]
    for chunk in chunks:
        writer.put_many(chunk)
    assert writer.stats().queued <= 3  # 750 events in at most three queue items
    writer.put_many([])  # nothing to queue: not an item
    gated.gate.set()
    writer.close()
    assert [r.event for r in store.read()] == [e for c in chunks for e in c]
    assert max(gated.batch_sizes) <= 100


def test_a_failing_store_stops_the_writer_and_keeps_every_event(store: EventStore) -> None:
    gated = GatedStore(store)
    events = signals(50)
    writer = EventWriter(gated, WriterConfig(max_batch=10, max_delay_ms=0))  # type: ignore[arg-type]
    writer.put_many(events[:10])
    writer.flush(timeout_s=10)
    gated.gate.clear()
    gated.fail_with = StoreLockedError("database stayed locked")
    writer.put_many(events[10:30])
    gated.gate.set()
    with pytest.raises(WriterFailedError, match="database stayed locked"):
        writer.flush(timeout_s=10)
    with pytest.raises(WriterFailedError):
        writer.put(events[30])
    with pytest.raises(WriterFailedError):
        writer.close()
    assert writer.unwritten() == events[10:30]
    assert [r.event for r in store.read()] == events[:10]
    # Nothing is lost: the caller can append what the writer kept.
    store.append(writer.unwritten())
    assert [r.event for r in store.read()] == events[:30]
