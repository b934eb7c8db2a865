"""Batched appends off the hot path: a bounded queue drained by one writer thread.

Producers (actors on the engine thread) hand events to :meth:`EventWriter.put`, which
only enqueues. The writer thread appends a batch when ``max_batch`` events are waiting
or when the oldest waiting event is ``max_delay_ms`` old, whichever comes first.

A full queue never drops anything: the producer blocks (``OverflowPolicy.BLOCK``), or
gets :class:`WriterFullError` at once and keeps its event (``OverflowPolicy.RAISE``).
If the store fails, the writer stops, keeps every event it could not write
(:meth:`EventWriter.unwritten`) and raises :class:`WriterFailedError` to producers.

:meth:`EventWriter.flush` puts a marker in the same FIFO queue: when the writer
thread reaches it, every event put before it has been appended. So ``put`` is one
queue operation and needs no shared counters.
"""

import enum
import queue
import threading
import time
from collections.abc import Iterable

import msgspec

from tapereader.core.events import DomainEvent
from tapereader.core.store import EventStore


class OverflowPolicy(enum.Enum):
    """What :meth:`EventWriter.put` does when the queue is full."""

    BLOCK = "block"
    RAISE = "raise"


class WriterConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the writer batches and how it treats a full queue."""

    max_batch: int = 2000
    max_delay_ms: float = 50.0
    capacity: int = 100_000
    overflow: OverflowPolicy = OverflowPolicy.BLOCK

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.capacity < 1 or self.max_delay_ms < 0:
            raise ValueError(f"invalid writer config: {self}")


DEFAULT_CONFIG = WriterConfig()


class WriterError(Exception):
    """Base of the writer's errors."""


class WriterFullError(WriterError):
    """The queue is full and the policy is RAISE; the event was not taken."""


class WriterFailedError(WriterError):
    """The store failed; the writer stopped and kept what it could not write."""


class WriterStats(msgspec.Struct, frozen=True):
    """Counters since the writer started."""

    written: int
    duplicates: int
    batches: int
    queued: int
    blocked_puts: int
    blocked_s: float


class _Flush:
    """A marker in the queue: set once every event queued before it is appended."""

    def __init__(self) -> None:
        self.reached = threading.Event()


_STOP = object()


class EventWriter:
    """Appends events to an :class:`EventStore` in batches from a background thread."""

    def __init__(self, store: EventStore, config: WriterConfig = DEFAULT_CONFIG) -> None:
        self._store = store
        self._config = config
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.capacity)
        self._lock = threading.Lock()  # guards the counters producers touch, and _unwritten
        self._written = 0
        self._duplicates = 0
        self._batches = 0
        self._blocked_puts = 0
        self._blocked_s = 0.0
        self._failure: BaseException | None = None
        self._unwritten: list[DomainEvent] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tapereader-writer", daemon=True)
        self._thread.start()

    # --- producer side -----------------------------------------------------------------

    def put(self, event: DomainEvent, *, timeout_s: float | None = None) -> None:
        """Queue one event; blocks or raises on a full queue as the policy says."""
        self._put(event, timeout_s)

    def put_many(self, events: Iterable[DomainEvent], *, timeout_s: float | None = None) -> None:
        """Queue several events, in order, as one queue item.

        One lock round trip for the lot instead of one per event: a producer that emits on
        every tick buffers its events and hands them over together. ``capacity`` counts
        queue items, so a chunk counts once.
        """
        chunk = list(events)
        if chunk:
            self._put(chunk, timeout_s)

    def _put(self, item: DomainEvent | list[DomainEvent], timeout_s: float | None) -> None:
        if self._closed:
            raise WriterError("event writer is closed")
        if self._failure is not None:
            self._raise_if_failed()
        try:
            self._queue.put_nowait(item)
            return
        except queue.Full:
            if self._config.overflow is OverflowPolicy.RAISE:
                raise WriterFullError(
                    f"event writer queue full ({self._config.capacity} items); nothing taken"
                ) from None
        started = time.perf_counter()
        try:
            self._queue.put(item, timeout=timeout_s)
        except queue.Full:
            raise WriterFullError(
                f"event writer queue stayed full for {timeout_s} s; nothing taken"
            ) from None
        finally:
            with self._lock:
                self._blocked_puts += 1
                self._blocked_s += time.perf_counter() - started

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every event put before this call is stored (or was already stored)."""
        if self._closed:
            raise WriterError("event writer is closed")
        marker = _Flush()
        self._queue.put(marker, timeout=timeout_s)
        if not marker.reached.wait(timeout_s):
            raise TimeoutError(
                f"flush: events still unwritten after {timeout_s} s ({self._queue.qsize()} queued)"
            )
        self._raise_if_failed()

    def close(self, timeout_s: float | None = None) -> None:
        """Write what is queued, then stop the thread; raises if the store failed."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)  # after the queued events: they are written first
        self._thread.join(timeout_s)
        self._raise_if_failed()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> WriterStats:
        """Counters since start."""
        with self._lock:
            return WriterStats(
                written=self._written,
                duplicates=self._duplicates,
                batches=self._batches,
                queued=self._queue.qsize(),
                blocked_puts=self._blocked_puts,
                blocked_s=self._blocked_s,
            )

    def unwritten(self) -> list[DomainEvent]:
        """After a failure: every event taken but not stored, in order, for a retry.

        Complete once :meth:`close` has returned (the thread drains the queue first).
        """
        with self._lock:
            return list(self._unwritten)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise WriterFailedError(
                f"event writer stopped: {self._failure}; {len(self._unwritten)} events kept "
                "unwritten (see unwritten())"
            ) from self._failure

    # --- writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch, marker, stopping = self._next_batch()
            step = self._config.max_batch  # a chunk may carry the batch past it: split
            for i in range(0, len(batch), step):
                self._write(batch[i : i + step])
            if marker is not None:
                marker.reached.set()
            if stopping:
                return

    def _next_batch(self) -> tuple[list[DomainEvent], _Flush | None, bool]:
        """Events up to ``max_batch`` or ``max_delay_ms`` after the first; stops at a marker."""
        batch: list[DomainEvent] = []
        item = self._queue.get()
        deadline = time.monotonic() + self._config.max_delay_ms / 1000
        while True:
            if item is _STOP:
                return batch, None, True
            if isinstance(item, _Flush):
                return batch, item, False
            if type(item) is list:
                batch.extend(item)
            else:
                batch.append(item)  # type: ignore[arg-type]
            if len(batch) >= self._config.max_batch:
                return batch, None, False
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return batch, None, False

    def _write(self, batch: list[DomainEvent]) -> None:
        if self._failure is not None:
            # Once failed, keep draining so blocked producers wake up, and keep
            # everything for the caller: nothing taken is ever dropped.
            with self._lock:
                self._unwritten.extend(batch)
            return
        try:
            result = self._store.append(batch)
        except BaseException as exc:  # kept, re-raised to producers
            with self._lock:
                self._unwritten.extend(batch)
                self._failure = exc
            return
        with self._lock:
            self._written += len(result.positions)
            self._duplicates += len(result.duplicates)
            self._batches += 1
