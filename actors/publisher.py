"""PublisherActor: chosen domain events fanned out on a ZeroMQ PUB socket.

The wire is :mod:`tapereader.core.wire` (documented in ``docs/WIRE.md``). Sending never
blocks the engine: a subscriber that cannot keep up loses messages at its high-water
mark and sees the loss in the sequence numbers. The publisher cannot see those drops (a
PUB socket discards silently); it counts what it published per topic and what the socket
refused, and reports both at stop.
"""

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig

from tapereader.actors.bus import EVENTS
from tapereader.core.events import DomainEvent
from tapereader.core.wire import WirePublisher

_TOPICS_LOGGED = 20


class PublisherActorConfig(ActorConfig, frozen=True):
    """Where to bind, which event types to send, and the send high-water mark."""

    endpoint: str = "tcp://127.0.0.1:5556"
    event_types: tuple[str, ...] = ("SignalGenerated", "DecisionMade")
    name: str = "tapereader"
    sndhwm: int = 100_000


class PublisherActor(Actor):
    """Publishes domain events of the configured types on ZeroMQ."""

    def __init__(self, config: PublisherActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._types = frozenset(config.event_types)
        self._publisher: WirePublisher | None = None
        self._published = 0
        self._not_sent = 0
        self._sequences: dict[str, int] = {}

    def on_start(self) -> None:
        """Bind the socket and subscribe to the events on the bus."""
        self._publisher = WirePublisher(
            self._cfg.endpoint, name=self._cfg.name, sndhwm=self._cfg.sndhwm
        )
        self.msgbus.subscribe(f"{EVENTS}.*", self._on_event)
        self.log.info(f"publishing {sorted(self._types)} on {self._publisher.endpoint}")

    def on_stop(self) -> None:
        """Unsubscribe and close the socket, reporting what was sent and refused."""
        self.msgbus.unsubscribe(f"{EVENTS}.*", self._on_event)
        if self._publisher is None:
            return
        self._keep_counts(self._publisher)
        self._publisher.close()
        self._publisher = None
        self.log.info(self.report())

    def report(self) -> str:
        """Published and refused counts, and the last ``seq`` per topic for subscribers."""
        seqs = self.sequences
        shown = ", ".join(f"{t}={s}" for t, s in sorted(seqs.items())[:_TOPICS_LOGGED])
        more = f" (+{len(seqs) - _TOPICS_LOGGED} topics)" if len(seqs) > _TOPICS_LOGGED else ""
        return (
            f"published {self.published} events on {len(seqs)} topics, "
            f"{self.not_sent} refused by the socket; a slow subscriber's drops are counted "
            f"by the subscriber from sequence gaps; last seq per topic: {shown}{more}"
        )

    @property
    def published(self) -> int:
        """Events handed to the socket so far, across starts."""
        p = self._publisher
        return self._published + (p.published if p else 0)

    @property
    def not_sent(self) -> int:
        """Events the socket refused (EAGAIN); 0 for a PUB socket, which drops silently."""
        p = self._publisher
        return self._not_sent + (p.not_sent if p else 0)

    @property
    def sequences(self) -> dict[str, int]:
        """The last ``seq`` sent on each topic in the current (or last) run of the socket."""
        return self._publisher.sequences if self._publisher else dict(self._sequences)

    def _keep_counts(self, p: WirePublisher) -> None:
        self._published += p.published
        self._not_sent += p.not_sent
        self._sequences = p.sequences

    def _on_event(self, event: DomainEvent) -> None:
        if type(event).__name__ in self._types:
            self._publisher.publish(event)  # type: ignore[union-attr]  # set in on_start
