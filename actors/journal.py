"""JournalActor: every domain event on the bus goes to the event store, off the hot path.

The handler only appends to a local list; every ``chunk`` events the list goes to the writer
as one queue item (one queue operation per event made the engine thread and the writer fight
over the queue's lock and the GIL on every tick). The writer appends in batches: by default
:class:`~tapereader.core.process_writer.ProcessEventWriter`, from a child process, so the
store's work per event stays off the engine's GIL; ``writer = "thread"`` keeps
:class:`~tapereader.core.writer.EventWriter`, a thread of this process. Live nodes also set
``flush_every_ms``, a wall-clock timer (run on the engine's thread), so a quiet market never
leaves events waiting in the list; a backtest needs none (exchange time runs far ahead of the
wall clock there, and a hand-over whenever the held events spanned some exchange time came at
nearly every event, costing a fifth of the chain's throughput). On stop, everything held or
queued is written before the store closes. If the store fails, the writer keeps every event
it could not write: the actor logs it and holds them in :attr:`JournalActor.unwritten` so
nothing is lost silently.
"""

import datetime as dt

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig

from tapereader.actors.bus import EVENTS
from tapereader.actors.timers import set_engine_timer
from tapereader.core.events import DomainEvent
from tapereader.core.process_writer import ProcessEventWriter
from tapereader.core.store import EventStore
from tapereader.core.writer import (
    EventWriter,
    OverflowPolicy,
    WriterConfig,
    WriterFailedError,
    WriterFullError,
)


class JournalActorConfig(ActorConfig, frozen=True):
    """The store (SQLite path or PostgreSQL URL), which events, and the batching."""

    store: str
    topic: str = f"{EVENTS}.*"
    max_batch: int = 2_000
    max_delay_ms: float = 50.0
    capacity: int = 10_000  # queue items: events or chunks
    chunk: int = 256
    flush_every_ms: int = 0  # > 0: a clock timer hands the held events over this often
    overflow: str = "block"  # "block" the engine thread, or "raise" (the event is kept)
    writer: str = "process"  # "process": a child process appends; "thread": a thread here


class JournalActor(Actor):
    """Journals domain events into the event store in batches."""

    def __init__(self, config: JournalActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._writer_config = WriterConfig(
            max_batch=config.max_batch,
            max_delay_ms=config.max_delay_ms,
            capacity=config.capacity,
            overflow=OverflowPolicy(config.overflow),
        )
        self._store: EventStore | None = None
        if config.writer not in ("process", "thread"):
            raise ValueError(
                f"JournalActorConfig.writer: 'process' or 'thread', got {config.writer!r}"
            )
        self._writer: EventWriter | ProcessEventWriter | None = None
        self._held: list[DomainEvent] = []
        self._chunk = config.chunk
        self.unwritten: list[DomainEvent] = []
        self.journaled = 0

    def on_start(self) -> None:
        """Open the store, start the writer, subscribe to the events."""
        if self._cfg.writer == "process":
            self._writer = ProcessEventWriter(self._cfg.store, self._writer_config)
            description = self._writer.description
        else:
            self._store = EventStore.open(self._cfg.store)
            self._writer = EventWriter(self._store, self._writer_config)
            description = self._store.description
        self.msgbus.subscribe(self._cfg.topic, self._on_event)
        if self._cfg.flush_every_ms > 0:
            set_engine_timer(
                self,
                "journal-flush",
                dt.timedelta(milliseconds=self._cfg.flush_every_ms),
                lambda _: self._hand_over(),
            )
        self.log.info(f"journaling {self._cfg.topic} into {description} ({self._cfg.writer})")

    def on_stop(self) -> None:
        """Write everything queued, then close the store."""
        self.msgbus.unsubscribe(self._cfg.topic, self._on_event)
        if "journal-flush" in self.clock.timer_names:
            self.clock.cancel_timer("journal-flush")
        self._hand_over()
        writer = self._writer
        if writer is not None:
            try:
                writer.close()
            except WriterFailedError as exc:
                self._failed(exc)
            stats = writer.stats()
            self.log.info(
                f"journal: {stats.written} written, {stats.duplicates} already stored, "
                f"{stats.batches} batches, producer blocked {stats.blocked_s:.3f} s"
            )
            self._writer = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def _on_event(self, event: DomainEvent) -> None:
        if not isinstance(event, DomainEvent):
            self.log.error(f"journal: not a domain event on {self._cfg.topic}: {event!r}")
            return
        if self._writer is None:
            self.unwritten.append(event)
            return
        held = self._held
        held.append(event)
        self.journaled += 1
        if len(held) >= self._chunk:
            self._hand_over()

    def flush(self) -> None:
        """Hand the held events over and wait until they are stored."""
        self._hand_over()
        if self._writer is not None:
            self._writer.flush()

    def _hand_over(self) -> None:
        if not self._held:
            return
        chunk, self._held = self._held, []
        if self._writer is None:
            self.unwritten.extend(chunk)
            return
        try:
            self._writer.put_many(chunk)
        except (WriterFailedError, WriterFullError) as exc:
            self.unwritten.extend(chunk)
            if isinstance(exc, WriterFailedError):
                self._failed(exc)
            else:
                self.log.error(f"journal: {exc}; {len(chunk)} events held unwritten")

    def _failed(self, exc: WriterFailedError) -> None:
        # The writer stopped: take over what it kept, once, and keep collecting.
        if self._writer is not None:
            self.unwritten[:0] = self._writer.unwritten()
            self._writer = None
        self.log.error(f"journal stopped: {exc}; {len(self.unwritten)} events held unwritten")
