"""FeatureActor: feeds each instrument's ticks to the feature kernel and publishes vectors.

All feature logic is in :mod:`tapereader.core.features`; this actor converts Nautilus
ticks to plain floats, calls the compiled kernel once per event (one state per
instrument), and publishes a :class:`FeatureVector` at the configured cadence:
every N events, or every T ms of exchange time, optionally for some event kinds only.

The per-event path is written for speed (see docs/FEATURES.md, "FeatureActor"): vectors go
straight to the subscribed handlers (:class:`Subscribers`), the work after the kernel call
is a method of a ``__slots__`` object, and ticks skip the base Actor's indicator lookup.
"""

import time
from collections.abc import Callable
from functools import partial

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import LiveClock, MessageBus, is_matching_py
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.indicators.base import Indicator
from nautilus_trader.model.data import DataType, OrderBookDeltas, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookAction, BookType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.core.features import kernel
from tapereader.core.features.depth import LevelBook
from tapereader.core.features.spec import SPEC
from tapereader.core.features.state import EntryPoints, entry_points, feature_row, new_state

_SIDE = {AggressorSide.BUYER: 1.0, AggressorSide.SELLER: -1.0, AggressorSide.NO_AGGRESSOR: 0.0}
# Module constants: a global lookup per event instead of an attribute lookup on `kernel`.
_REJECTED = kernel.STATUS_REJECTED
_READY = kernel.STATUS_READY
_TRADE = kernel.KIND_TRADE
_QUOTE = kernel.KIND_QUOTE
_BOOK = kernel.KIND_BOOK
KINDS = {"trade": _TRADE, "quote": _QUOTE, "book": _BOOK}
"""``publish_kinds`` names and the ``FeatureVector.kind`` each stands for."""


class FeatureVector(Data):
    """One instrument's feature row after one event (columns: ``SPEC.names``)."""

    __slots__ = (
        "_ts_event",
        "_ts_init",
        "ask",
        "bid",
        "instrument_id",
        "kind",
        "ready",
        "seq",
        "source",
        "spec_hash",
        "values",
    )

    def __init__(
        self,
        instrument_id: InstrumentId,
        values: np.ndarray,
        ready: bool,
        spec_hash: str,
        source: str,
        ts_event: int,
        ts_init: int,
        kind: int = kernel.KIND_QUOTE,
        seq: int = 0,
        bid: float = float("nan"),
        ask: float = float("nan"),
    ) -> None:
        self.instrument_id = instrument_id
        self.values = values
        self.ready = ready
        self.spec_hash = spec_hash
        self.source = source  # the publishing actor's id
        self._ts_event = ts_event
        self._ts_init = ts_init
        # The event that produced the row: a trade (kernel.KIND_TRADE) only updates the open
        # period; quotes and book tops close one, and models are trained on those rows.
        self.kind = kind
        # Accepted events of this instrument so far: with the instrument and ts_event it
        # names the tick behind the row (see core.ids.feature_row_id).
        self.seq = seq
        self.bid = bid  # the top of book after the event (NaN before the first quote)
        self.ask = ask

    @property
    def ts_event(self) -> int:
        return self._ts_event

    @property
    def ts_init(self) -> int:
        return self._ts_init

    def __repr__(self) -> str:
        return f"FeatureVector({self.instrument_id}, ready={self.ready}, ts_event={self.ts_event})"


_new_vector = FeatureVector.__new__


def feature_data_type(instrument_id: InstrumentId | str) -> DataType:
    """The data type FeatureActor publishes an instrument's vectors under."""
    return DataType(FeatureVector, metadata={"instrument_id": str(instrument_id)})


class FeatureActorConfig(ActorConfig, frozen=True):
    """Which instruments, whether to use the book, and what to publish when.

    ``every_ms > 0`` publishes at the first event at least that many milliseconds of
    exchange time after the last publication; otherwise every ``every_events`` events.
    ``publish_kinds`` (names from ``KINDS``; ``None``: all) limits publication to rows of
    those events, for example ``["quote", "book"]`` for the period-closing rows only; the
    cadence counts those events only.
    ``spec_hash``, when given, must be the kernel's spec hash (the model's inputs).
    ``direct_publish`` hands each vector to the handlers subscribed to its topic (see
    ``Subscribers``) instead of going through ``MessageBus.publish``, except in a live
    node, where every tick is a bus command and would make it resolve them every time.
    """

    instrument_ids: list[str]
    use_book: bool = False
    every_events: int = 1
    every_ms: int = 0
    publish_warming: bool = False
    spec_hash: str | None = None
    publish_kinds: list[str] | None = None
    direct_publish: bool = True


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


def _kinds(names: list[str] | None) -> tuple[bool, bool, bool]:
    """``publish_kinds`` as a flag per kind number (``KIND_TRADE``, ``QUOTE``, ``BOOK``)."""
    if names is None:
        return (True, True, True)
    unknown = sorted(set(names) - KINDS.keys())
    if unknown or not names:
        raise ValueError(
            f"FeatureActorConfig: publish_kinds must name some of {sorted(KINDS)}, got {names}"
        )
    wanted = {KINDS[name] for name in names}
    return tuple(kind in wanted for kind in (_TRADE, _QUOTE, _BOOK))  # type: ignore[return-value]


class _Instrument:
    """One instrument's kernel state, book, cadence and subscribers, and the per-event path.

    The per-event work after the kernel call is a method of this class rather than of the
    actor, with what it needs copied here: CPython does not specialise attribute access on
    instances of a Nautilus Actor subclass (their ``__dict__`` is Cython's), and in a
    running engine each ``self.x`` there costs 0.1-0.5 µs; on this ``__slots__`` class it
    costs nanoseconds.
    """

    __slots__ = (
        "ask",
        "bid",
        "book",
        "data_type",
        "due",
        "every_events",
        "every_ns",
        "gated",
        "id",
        "on_book",
        "on_quote",
        "on_trade",
        "published",
        "publishes",
        "row",
        "seq",
        "since",
        "source",
        "spec_hash",
        "state",
        "subscribers",
        "warming",
    )

    def __init__(
        self,
        instrument_id: InstrumentId,
        config: FeatureActorConfig,
        ep: EntryPoints,
        source: str,
        bus: MessageBus,
        direct: bool,
    ) -> None:
        self.id = instrument_id
        self.state = new_state()
        self.row = feature_row(self.state)
        self.data_type = feature_data_type(instrument_id)
        self.subscribers = Subscribers(bus, f"data.{self.data_type.topic}", direct=direct)
        self.on_trade, self.on_quote, self.on_book = ep.on_trade, ep.on_quote, ep.on_book
        self.book = LevelBook()
        self.seq = 0  # accepted events
        self.bid = float("nan")
        self.ask = float("nan")
        self.published = 0
        self.source = source
        self.spec_hash = SPEC.hash
        self.warming = config.publish_warming
        self.every_ns = config.every_ms * 1_000_000
        self.every_events = config.every_events
        self.publishes = _kinds(config.publish_kinds)
        # Whether an event can be skipped other than for readiness: see due().
        self.gated = self.every_ns > 0 or self.every_events > 1 or not all(self.publishes)
        self.since = 0  # publishable events since the last publication
        self.due = 0  # exchange time of the next publication (time cadence)

    def after(self, status: int, kind: int, ts_event: int, ts_init: int) -> None:
        """Count an accepted event; publish its row if ready (or allowed) and due."""
        self.seq += 1
        if status != _READY and not self.warming:
            return
        if self.gated and not self.is_due(kind, ts_event):
            return
        # FeatureVector(...) without type.__call__ and __init__ (0.2 µs less per event);
        # tests check that every field is set, as __init__ sets it.
        vector = _new_vector(FeatureVector)
        vector.instrument_id = self.id
        vector.values = self.row.copy()
        vector.ready = status == _READY
        vector.spec_hash = self.spec_hash
        vector.source = self.source
        vector._ts_event = ts_event
        vector._ts_init = ts_init
        vector.kind = kind
        vector.seq = self.seq
        vector.bid = self.bid
        vector.ask = self.ask
        # Subscribers.publish, inlined: a method call costs ~0.2 µs per event here.
        subs = self.subscribers
        if subs.left <= 0 or subs.sent != subs.bus.sent_count:
            subs.resolve()
        subs.left -= 1
        for handler in subs.handlers:
            handler(vector)
        self.published += 1

    def is_due(self, kind: int, ts_event: int) -> bool:
        """Whether the cadence and ``publish_kinds`` publish this event's row."""
        if not self.publishes[kind]:
            return False
        if self.every_ns:
            if ts_event < self.due:
                return False
            self.due = ts_event + self.every_ns
            return True
        self.since += 1
        if self.since < self.every_events:
            return False
        self.since = 0
        return True


class FeatureActor(Actor):
    """Keeps one kernel state per instrument and publishes FeatureVectors."""

    def __init__(self, config: FeatureActorConfig) -> None:
        super().__init__(config)
        if config.every_events < 1 or config.every_ms < 0:
            raise ValueError(
                "FeatureActorConfig: every_events must be >= 1 and every_ms >= 0, got "
                f"every_events={config.every_events}, every_ms={config.every_ms}"
            )
        if config.spec_hash is not None:
            SPEC.check(config.spec_hash)
        _kinds(config.publish_kinds)  # checked here, used per instrument
        self._cfg = config
        self._instruments: dict[InstrumentId, _Instrument] = {}
        # The instrument, when there is one: comparing a tick's InstrumentId with it is
        # cheaper than hashing it (which formats it as a string, ~0.4 µs).
        self._only: _Instrument | None = None
        self._published_before = 0  # by the instruments of earlier starts
        self._indicators_registered = False  # see handle_quote_tick
        self.warm_up_seconds: float = 0.0

    @property
    def published(self) -> int:
        """Vectors published so far."""
        return self._published_before + sum(i.published for i in self._instruments.values())

    def on_start(self) -> None:
        """Compile/load the kernel before any tick arrives, then subscribe."""
        started = time.perf_counter()  # wall time: a backtest clock would not move here
        ep = entry_points()
        self.warm_up_seconds = time.perf_counter() - started
        self.log.info(f"feature kernel ready (spec {SPEC.hash}) in {self.warm_up_seconds:.2f} s")
        self._published_before = self.published
        self._instruments = {}
        # Live, every tick reaches the data engine as a bus command, so Subscribers would
        # resolve the handlers (7-36 us) at every vector: the bus's own check costs less.
        direct = self._cfg.direct_publish and not isinstance(self.clock, LiveClock)
        for raw in self._cfg.instrument_ids:
            iid = InstrumentId.from_str(raw)
            self._instruments[iid] = _Instrument(
                iid, self._cfg, ep, str(self.id), self.msgbus, direct
            )
            self.subscribe_quote_ticks(iid)
            self.subscribe_trade_ticks(iid)
            if self._cfg.use_book:
                self.subscribe_order_book_deltas(iid, BookType.L2_MBP, managed=False)
        self._only = next(iter(self._instruments.values())) if len(self._instruments) == 1 else None

    def state_of(self, instrument_id: InstrumentId) -> np.ndarray:
        """The kernel state of one instrument (for inspection and tests)."""
        return self._instruments[instrument_id].state

    # Ticks reach on_quote_tick/on_trade_tick through these two: the bus calls the handler
    # the base class subscribed, ``self.handle_*``, so these overrides are used.
    # The base versions first look up the indicators registered for the tick's instrument,
    # which hashes its InstrumentId (formatting it as a string): about 1 µs per tick in a
    # running engine, for indicators this actor does not have. With indicators registered,
    # or for historical data, the base versions run.

    def handle_quote_tick(self, tick: QuoteTick, historical: bool = False) -> None:
        if historical or self._indicators_registered:
            super().handle_quote_tick(tick, historical)
        elif self.is_running:
            try:
                self.on_quote_tick(tick)
            except Exception as e:
                self.log.exception(f"Error on handling {tick!r}", e)
                raise

    def handle_trade_tick(self, tick: TradeTick, historical: bool = False) -> None:
        if historical or self._indicators_registered:
            super().handle_trade_tick(tick, historical)
        elif self.is_running:
            try:
                self.on_trade_tick(tick)
            except Exception as e:
                self.log.exception(f"Error on handling {tick!r}", e)
                raise

    def register_indicator_for_quote_ticks(
        self, instrument_id: InstrumentId, indicator: Indicator
    ) -> None:
        self._indicators_registered = True
        super().register_indicator_for_quote_ticks(instrument_id, indicator)

    def register_indicator_for_trade_ticks(
        self, instrument_id: InstrumentId, indicator: Indicator
    ) -> None:
        self._indicators_registered = True
        super().register_indicator_for_trade_ticks(instrument_id, indicator)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        """Fold a quote (one period) into its instrument's state."""
        inst, iid = self._only, tick.instrument_id
        if inst is None or iid != inst.id:
            inst = self._instruments[iid]
        bid = tick.bid_price.as_double()
        ask = tick.ask_price.as_double()
        ts_event = tick.ts_event
        status = inst.on_quote(
            inst.state, ts_event, bid, ask, tick.bid_size.as_double(), tick.ask_size.as_double()
        )
        if status != _REJECTED:
            inst.bid = bid
            inst.ask = ask
            inst.after(status, _QUOTE, ts_event, tick.ts_init)

    def on_trade_tick(self, tick: TradeTick) -> None:
        """Fold a trade (volume, flow, intensity) into its instrument's state."""
        inst, iid = self._only, tick.instrument_id
        if inst is None or iid != inst.id:
            inst = self._instruments[iid]
        ts_event = tick.ts_event
        status = inst.on_trade(
            inst.state,
            ts_event,
            tick.price.as_double(),
            tick.size.as_double(),
            _SIDE[tick.aggressor_side],
        )
        if status != _REJECTED:
            inst.after(status, _TRADE, ts_event, tick.ts_init)

    def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
        """Apply an L2 batch to the instrument's level book, then fold its top as one event.

        The actor keeps its own price-level book: listing the engine's book levels on
        every update costs milliseconds on a deep book.
        """
        inst, iid = self._only, deltas.instrument_id
        if inst is None or iid != inst.id:
            inst = self._instruments[iid]
        book = inst.book
        for delta in deltas.deltas:
            action = delta.action
            if action == BookAction.CLEAR:
                book.clear()
                continue
            order = delta.order
            size = 0.0 if action == BookAction.DELETE else order.size.as_double()
            book.set_level(order.side == OrderSide.BUY, order.price.as_double(), size)
        top = book.top()
        if top is None:
            return  # a side is empty: no top of book yet
        ts_event = deltas.ts_event
        status = inst.on_book(inst.state, ts_event, *top)
        if status != _REJECTED:
            inst.bid = top[0]
            inst.ask = top[1]
            inst.after(status, _BOOK, ts_event, deltas.ts_init)
