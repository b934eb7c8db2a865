"""JournalActor: every domain event on the bus goes to the event store, off the hot path.

The handler only enqueues (one queue operation); :class:`~tapereader.core.writer.EventWriter`
appends in batches from its own thread. On stop, everything queued is written before the
store closes. If the store fails, the writer keeps every event it could not write: the
actor logs it and holds them in :attr:`JournalActor.unwritten` so nothing is lost silently.
"""

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig

from tapereader.actors.bus import EVENTS
from tapereader.core.events import DomainEvent
from tapereader.core.store import EventStore
from tapereader.core.writer import EventWriter, OverflowPolicy, WriterConfig, WriterFailedError


class JournalActorConfig(ActorConfig, frozen=True):
    """The store (SQLite path or PostgreSQL URL), which events, and the batching."""

    store: str
    topic: str = f"{EVENTS}.*"
    max_batch: int = 2_000
    max_delay_ms: float = 50.0
    capacity: int = 100_000
    overflow: str = "block"  # "block" the engine thread, or "raise" (the event is kept)


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
        self._writer: EventWriter | None = None
        self.unwritten: list[DomainEvent] = []
        self.journaled = 0

    def on_start(self) -> None:
        """Open the store, start the writer, subscribe to the events."""
        self._store = EventStore.open(self._cfg.store)
        self._writer = EventWriter(self._store, self._writer_config)
        self.msgbus.subscribe(self._cfg.topic, self._on_event)
        self.log.info(f"journaling {self._cfg.topic} into {self._store.description}")

    def on_stop(self) -> None:
        """Write everything queued, then close the store."""
        self.msgbus.unsubscribe(self._cfg.topic, self._on_event)
        if self._writer is not None:
            try:
                self._writer.close()
            except WriterFailedError as exc:
                self._failed(exc)
            stats = self._writer.stats()
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
        try:
            self._writer.put(event)
            self.journaled += 1
        except WriterFailedError as exc:
            self.unwritten.append(event)
            self._failed(exc)

    def _failed(self, exc: WriterFailedError) -> None:
        # The writer stopped: take over what it kept, once, and keep collecting.
        if self._writer is not None:
            self.unwritten[:0] = self._writer.unwritten()
            self._writer = None
        self.log.error(f"journal stopped: {exc}; {len(self.unwritten)} events held unwritten")
