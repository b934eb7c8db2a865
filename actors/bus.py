"""Domain events on the Nautilus message bus: one topic per category and type.

Every actor hands its domain events to :func:`publish_event`; the JournalActor and
the PublisherActor subscribe by pattern (``tapereader.events.*``), so no actor needs to
know who stores or forwards what it emits. The prefix keeps clear of Nautilus's own
``events.*`` topics (order, position and component-state events).
"""

from nautilus_trader.common.actor import Actor
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.core.events import DomainEvent, Source
from tapereader.core.ids import EventIds

EVENTS = "tapereader.events"


def event_topic(event: DomainEvent) -> str:
    """``tapereader.events.<category>.<EventType>``."""
    return f"{EVENTS}.{event.category}.{type(event).__name__}"


def publish_event(actor: Actor, event: DomainEvent) -> None:
    """Put one domain event on the bus (synchronously, to every subscriber)."""
    actor.msgbus.publish(event_topic(event), event)


def identity(component: str, run_id: str, reproducible: bool) -> tuple[Source, EventIds]:
    """The ``source`` of a component's events and the ids it hands out: reproducible ids
    (seeded by run and component) in backtests, random ones live."""
    if reproducible and not run_id:
        raise ValueError(f"{component}: reproducible event ids need a run_id")
    source = Source(component=component, run_id=run_id or "live")
    ids = EventIds.seeded(f"{run_id}/{component}") if reproducible else EventIds.random()
    return source, ids


def instrument_multipliers(actor: Actor, instrument_ids: list[str]) -> dict[str, float]:
    """Each instrument's contract multiplier from the actor's cache; an instrument missing
    from the cache stops the actor's start with its name."""
    out = {}
    for raw in instrument_ids:
        instrument = actor.cache.instrument(InstrumentId.from_str(raw))
        if instrument is None:
            raise RuntimeError(f"{actor.id}: instrument {raw} is not in the cache")
        out[raw] = instrument.multiplier.as_double()
    return out
