"""Direct calls between the message bus and an actor's per-event handlers.

The bus's general paths cost microseconds per message that a per-tick actor feels:
``MessageBus.publish`` checks every message against the ~75 externally publishable types,
and the handler an ``Actor`` subscribes for its ticks is a method of the actor, whose
attribute lookups CPython does not specialise. :class:`Subscribers` publishes to one topic
by calling its handlers itself; :class:`Routes` hands a subscription to another handler
(for example a method of a ``__slots__`` object) and back.
"""

from collections.abc import Callable
from functools import partial

from nautilus_trader.common.component import MessageBus, is_matching_py

Handler = Callable[[object], None]


class Subscribers:
    """Publishes to one topic of a MessageBus by calling its subscribed handlers directly.

    ``MessageBus.publish`` calls the handlers subscribed to a topic, then checks with
    ``isinstance`` whether the message is one of the ~75 types it may publish externally;
    for a type that is not one, such as ``FeatureVector``, that check walks the whole tuple
    and costs 3-7 µs per message here, more than everything else the FeatureActor does
    per event. This class calls the same handlers in the same order (highest priority
    first, then in order of subscription), resolved from ``MessageBus.subscriptions()``
    with the bus's own topic matching, and skips the check.

    The handlers are resolved again before a publication when the bus has sent a command
    since the last resolution (``Actor.subscribe_data`` and ``unsubscribe_data`` send one;
    in a live node every tick arrives as one, so there it resolves at every publication),
    and at least every ``refresh`` publications (a subscription made directly on the bus
    in a backtest is seen within that many). Vectors so delivered are not counted in the
    bus's ``pub_count``, and skip its external publication, which only takes the types
    registered with ``register_serializable_type`` (FeatureVector is not); on a bus with a
    database backing every message goes through ``MessageBus.publish`` all the same.
    """

    __slots__ = ("bus", "direct", "handlers", "left", "refresh", "sent", "topic")

    def __init__(self, bus: MessageBus, topic: str, direct: bool = True, refresh: int = 1000):
        if refresh < 1:
            raise ValueError(f"refresh must be >= 1, got {refresh}")
        self.bus = bus
        self.topic = topic
        self.direct = direct and not bus.has_backing
        self.refresh = refresh
        self.handlers: tuple[Callable[[object], None], ...] = ()  # in calling order
        self.left = 0  # publications until the next resolution
        self.sent = -1  # the bus's sent_count at the last resolution

    def resolve(self) -> tuple[Callable[[object], None], ...]:
        """The handlers ``MessageBus.publish`` would call for the topic now, in its order.

        Not direct: one handler, ``MessageBus.publish`` itself.
        """
        bus, topic = self.bus, self.topic
        self.sent = bus.sent_count
        self.left = self.refresh
        if self.direct:
            subs = [s for s in bus.subscriptions() if is_matching_py(topic, s.topic)]
            subs.sort(reverse=True)  # by priority, stable: what the bus does
            self.handlers = tuple(s.handler for s in subs)
        else:
            self.handlers = (partial(bus.publish, topic),)
        return self.handlers

    def publish(self, message: object) -> None:
        """Hand ``message`` to the handlers (the FeatureActor inlines this)."""
        if self.left <= 0 or self.sent != self.bus.sent_count:
            self.resolve()
        self.left -= 1
        for handler in self.handlers:
            handler(message)


class Routes:
    """Subscriptions moved from one handler to another on a bus, and how to move them back.

    :meth:`take` finds the subscriptions of ``handler`` (for example the
    ``handle_quote_tick`` an ``Actor.subscribe_quote_ticks`` call subscribed) and
    subscribes ``direct`` in their place, on the same topic with the same priority. The bus
    calls handlers of equal priority in order of subscription, so ``direct`` comes after
    the others of its priority: taken right after subscribing, a route keeps its place.
    :meth:`give_back` restores every moved subscription. An actor takes its routes when it
    starts or resumes and gives them back when it stops, so the base handler (which drops
    messages unless the actor is running) is subscribed whenever the actor is not running.
    """

    __slots__ = ("bus", "moved")

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.moved: list[tuple[str, Handler, Handler, int]] = []  # topic, base, direct, priority

    def take(self, handler: Handler, direct: Handler, topic_suffix: str = "") -> int:
        """Move the subscriptions of ``handler`` whose topic ends with ``topic_suffix`` to
        ``direct``; returns how many moved."""
        bus = self.bus
        subs = [
            s
            for s in bus.subscriptions()
            if s.handler == handler and s.topic.endswith(topic_suffix)
        ]
        for sub in subs:
            bus.unsubscribe(sub.topic, handler)
            bus.subscribe(sub.topic, direct, sub.priority)
            self.moved.append((sub.topic, handler, direct, sub.priority))
        return len(subs)

    def give_back(self) -> None:
        """Subscribe the original handlers again in place of the direct ones."""
        bus = self.bus
        for topic, handler, direct, priority in reversed(self.moved):
            bus.unsubscribe(topic, direct)
            bus.subscribe(topic, handler, priority)
        self.moved.clear()
