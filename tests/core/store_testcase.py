"""The event store's contract, proved the same way against every backend.

A backend's test module subclasses :class:`EventStoreContract` and provides a
``store_url`` fixture naming a fresh, empty store.
"""

import threading
import time
from collections.abc import Iterator

import msgspec
import pytest

from tapereader.core.events import DomainEvent, SignalGenerated
from tapereader.core.store import EventStore, InvalidEventError
from tapereader.core.writer import EventWriter, WriterConfig

from .samples import INSTR, RUN, T0, sample_events

DAY = 86_400 * 10**9


def signals(n: int, *, ts: int = T0, instrument_id: str = INSTR) -> list[SignalGenerated]:
    """``n`` signals one millisecond apart."""
    return [
        SignalGenerated(
            ts_event=ts + i * 10**6,
            ts_init=ts + i * 10**6 + 1,
            source=RUN,
            instrument_id=instrument_id,
            model_version="m1",
            feature_spec_hash="h",
            horizon="50 events",
            p_up=0.5,
            p_down=0.25,
            p_flat=0.25,
            confidence=(i % 100) / 100,
        )
        for i in range(n)
    ]


class EventStoreContract:
    """What every EventStore backend must do."""

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[EventStore]:
        with EventStore.open(store_url) as store:
            yield store

    # --- append and read ---------------------------------------------------------------

    def test_empty_store(self, store: EventStore) -> None:
        assert store.count() == 0
        assert store.last_position() == 0
        assert list(store.read()) == []
        assert store.append([]).positions == []

    def test_append_then_read_everything_in_order(self, store: EventStore) -> None:
        first, second = sample_events(), sample_events(T0 + DAY)
        r1 = store.append(first)
        r2 = store.append(second)
        assert len(r1.positions) == len(first) and r1.duplicates == []
        positions = r1.positions + r2.positions
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        records = list(store.read())
        assert [r.event for r in records] == first + second
        assert [r.position for r in records] == positions
        assert [r.stream for r in records] == [e.stream for e in first + second]
        assert store.count() == len(first) + len(second)
        assert store.last_position() == positions[-1]

    def test_read_from_a_position_and_up_to_a_stop(self, store: EventStore) -> None:
        batch = signals(50)
        positions = store.append(batch).positions
        tail = list(store.read(positions[20]))
        assert [r.event for r in tail] == batch[20:]
        window = list(store.read(positions[10], stop=positions[14]))
        assert [r.event for r in window] == batch[10:15]

    def test_read_pages_through_a_large_log(self, store: EventStore) -> None:
        batch = signals(5_000)
        store.append(batch)
        assert [r.event for r in store.read(page_size=333)] == batch

    def test_read_one_stream(self, store: EventStore) -> None:
        btc_day1 = signals(30)
        eth_day1 = signals(20, instrument_id="ETHUSDT-PERP.BINANCE")
        btc_day2 = signals(10, ts=T0 + DAY)
        padded = zip(btc_day1, eth_day1 + [None] * 10, btc_day2 + [None] * 20, strict=True)
        mixed = [e for trio in padded for e in trio if e is not None]
        store.append(mixed)
        stream = f"signals/{INSTR}/2024-08-08"
        got = list(store.read_stream(stream, page_size=7))
        assert [r.event for r in got] == btc_day1
        assert all(r.stream == stream for r in got)
        assert [r.event for r in store.read_stream(f"signals/{INSTR}/2024-08-09")] == btc_day2
        assert list(store.read_stream("signals/NOPE/2024-08-08")) == []
        assert dict(store.streams()) == {
            stream: 30,
            "signals/ETHUSDT-PERP.BINANCE/2024-08-08": 20,
            f"signals/{INSTR}/2024-08-09": 10,
        }

    # --- idempotence and atomicity -----------------------------------------------------

    def test_appending_a_stored_event_again_is_a_no_op(self, store: EventStore) -> None:
        batch = signals(10)
        store.append(batch)
        again = store.append(batch)
        assert again.positions == []
        assert sorted(again.duplicates) == sorted(e.event_id for e in batch)
        assert store.count() == 10

    def test_a_retried_batch_with_new_events_stores_only_the_new(self, store: EventStore) -> None:
        old, new = signals(10), signals(5, ts=T0 + 10**9)
        store.append(old[:6])
        result = store.append(old + new)
        assert len(result.positions) == 4 + 5
        assert sorted(result.duplicates) == sorted(e.event_id for e in old[:6])
        assert [r.event for r in store.read()] == old + new

    def test_a_repeated_event_inside_one_batch_is_stored_once(self, store: EventStore) -> None:
        batch = signals(3)
        result = store.append([batch[0], batch[1], batch[0], batch[2]])
        assert len(result.positions) == 3 and result.duplicates == [batch[0].event_id]
        assert store.count() == 3

    @pytest.mark.parametrize(
        ("field", "value"),
        [("p_up", 1.5), ("confidence", float("nan")), ("ts_event", -1)],
    )
    def test_an_invalid_event_refuses_the_whole_batch(
        self, store: EventStore, field: str, value: object
    ) -> None:
        store.append(signals(2))
        batch: list[DomainEvent] = signals(5, ts=T0 + 10**9)
        batch[3] = msgspec.structs.replace(batch[3], **{field: value})
        with pytest.raises(InvalidEventError, match=rf"\$\[3\]\.{field}"):
            store.append(batch)
        assert store.count() == 2

    # --- following -----------------------------------------------------------------------

    def test_follow_yields_history_then_new_events(self, store: EventStore) -> None:
        history, later = signals(5), signals(7, ts=T0 + 10**9)
        store.append(history)
        stop = threading.Event()
        seen: list[DomainEvent] = []

        def consume() -> None:
            for record in store.follow(0, poll_interval_s=0.01, stop=stop):
                seen.append(record.event)
                if len(seen) == len(history) + len(later):
                    stop.set()

        reader = threading.Thread(target=consume)
        reader.start()
        time.sleep(0.1)
        store.append(later[:3])
        store.append(later[3:])
        reader.join(timeout=10)
        assert not reader.is_alive()
        assert seen == history + later

    def test_follow_resumes_after_a_checkpoint(self, store: EventStore) -> None:
        batch = signals(10)
        positions = store.append(batch).positions
        stop = threading.Event()
        stop_after = iter(range(1, 100))
        got = []
        for record in store.follow(positions[5], poll_interval_s=0.01, stop=stop):
            got.append(record.event)
            if next(stop_after) == 4:
                stop.set()
        assert got == batch[6:]

    # --- the batched writer --------------------------------------------------------------

    def test_writer_batches_and_flushes_everything(self, store: EventStore) -> None:
        batch = signals(2_500)
        with EventWriter(store, WriterConfig(max_batch=1000, max_delay_ms=20)) as writer:
            writer.put_many(batch)
            writer.flush(timeout_s=30)
            assert store.count() == 2_500
            stats = writer.stats()
        assert stats.written == 2_500 and stats.batches >= 3
        assert [r.event for r in store.read()] == batch
