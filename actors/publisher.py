"""PublisherActor: chosen domain events fanned out on a ZeroMQ PUB socket.

The wire is :mod:`tapereader.core.wire` (documented in ``docs/WIRE.md``). Sending never
blocks the engine: a subscriber that cannot keep up loses messages at its high-water
mark and sees the loss in the sequence numbers.
"""

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig

from tapereader.actors.bus import EVENTS
from tapereader.core.events import DomainEvent
from tapereader.core.wire import WirePublisher


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

    def on_start(self) -> None:
        """Bind the socket and subscribe to the events on the bus."""
        self._publisher = WirePublisher(
            self._cfg.endpoint, name=self._cfg.name, sndhwm=self._cfg.sndhwm
        )
        self.msgbus.subscribe(f"{EVENTS}.*", self._on_event)
        self.log.info(f"publishing {sorted(self._types)} on {self._publisher.endpoint}")

    def on_stop(self) -> None:
        """Unsubscribe and close the socket, reporting what was sent."""
        self.msgbus.unsubscribe(f"{EVENTS}.*", self._on_event)
        if self._publisher is not None:
            p = self._publisher
            self.log.info(f"published {p.published} events, {p.not_sent} refused by the socket")
            p.close()

    @property
    def published(self) -> int:
        """Events sent so far (0 before start)."""
        return self._publisher.published if self._publisher else 0

    def _on_event(self, event: DomainEvent) -> None:
        if type(event).__name__ in self._types:
            self._publisher.publish(event)  # type: ignore[union-attr]  # set in on_start
