"""FeatureActor: feeds each instrument's ticks to the feature kernel and publishes vectors.

All feature logic is in :mod:`tapereader.core.features`; this actor converts Nautilus
ticks to plain floats, calls the compiled kernel once per event (one state per
instrument), and publishes a :class:`FeatureVector` at the configured cadence:
every N events, or every T ms of exchange time, optionally for some event kinds only.

The per-event path is written for speed (see docs/FEATURES.md, "FeatureActor"): the bus
hands ticks straight to a per-instrument ``__slots__`` object (:class:`Routes`), the
kernel writes each row into a block the vector points into, and vectors go straight to
the subscribed handlers (:class:`Subscribers`).
"""

import time

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.indicators.base import Indicator
from nautilus_trader.model.data import DataType, OrderBookDeltas, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookAction, BookType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.actors.direct_bus import Routes, Subscribers
from tapereader.core.features import kernel
from tapereader.core.features.depth import LevelBook
from tapereader.core.features.spec import SPEC
from tapereader.core.features.state import (
    ROW_BLOCK,
    EntryPoints,
    entry_points,
    new_rows,
    new_state,
)

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
    """One instrument's feature row after one event (columns: ``SPEC.names``).

    The FeatureActor keeps the row in a block of rows the kernel wrote it into, and
    ``values`` is made (a view of that row, never written again) when first read.
    """

    __slots__ = (
        "_rows",
        "_slot",
        "_ts_event",
        "_ts_init",
        "_values",
        "ask",
        "bid",
        "instrument_id",
        "kind",
        "ready",
        "seq",
        "source",
        "spec_hash",
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
        self._values = values
        self._rows = None
        self._slot = 0
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
    def values(self) -> np.ndarray:
        """The feature row (float64, ``SPEC.names`` order)."""
        values = self._values
        if values is None:
            values = self._values = self._rows[self._slot]
        return values

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
    """One instrument's kernel state, book, cadence and subscribers, and its tick handlers.

    The bus calls this object's ``on_quote_tick``/``on_trade_tick``/``on_order_book_deltas``
    directly while the actor runs (see ``FeatureActor.on_start``): CPython does not
    specialise attribute access on instances of a Nautilus Actor subclass (their
    ``__dict__`` is Cython's), and in a running engine each ``self.x`` there costs
    0.1-0.5 µs; on this ``__slots__`` class it costs nanoseconds.
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
        "k_book",
        "k_quote",
        "k_trade",
        "log",
        "published",
        "publishes",
        "rows",
        "seq",
        "since",
        "slot",
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
        actor: Actor,
        direct: bool,
    ) -> None:
        self.id = instrument_id
        self.state = new_state()
        self.rows = new_rows()  # the kernel writes each row here, at ``slot``
        self.slot = 0
        self.data_type = feature_data_type(instrument_id)
        self.subscribers = Subscribers(actor.msgbus, f"data.{self.data_type.topic}", direct=direct)
        self.k_trade, self.k_quote, self.k_book = (
            ep.on_trade_into,
            ep.on_quote_into,
            ep.on_book_into,
        )
        self.log = actor.log
        self.book = LevelBook()
        self.seq = 0  # accepted events
        self.bid = float("nan")
        self.ask = float("nan")
        self.published = 0
        self.source = str(actor.id)
        self.spec_hash = SPEC.hash
        self.warming = config.publish_warming
        self.every_ns = config.every_ms * 1_000_000
        self.every_events = config.every_events
        self.publishes = _kinds(config.publish_kinds)
        # Whether an event can be skipped other than for readiness: see due().
        self.gated = self.every_ns > 0 or self.every_events > 1 or not all(self.publishes)
        self.since = 0  # publishable events since the last publication
        self.due = 0  # exchange time of the next publication (time cadence)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        """Fold a quote (one period) into the state."""
        try:
            bid = tick.bid_price.as_double()
            ask = tick.ask_price.as_double()
            ts_event = tick.ts_event
            status = self.k_quote(
                self.state,
                self.rows,
                self.slot,
                ts_event,
                bid,
                ask,
                tick.bid_size.as_double(),
                tick.ask_size.as_double(),
            )
            if status != _REJECTED:
                self.bid = bid
                self.ask = ask
                self.after(status, _QUOTE, ts_event, tick.ts_init)
        except Exception as e:
            self.failed(tick, e)
            raise

    def on_trade_tick(self, tick: TradeTick) -> None:
        """Fold a trade (volume, flow, intensity) into the state."""
        try:
            ts_event = tick.ts_event
            status = self.k_trade(
                self.state,
                self.rows,
                self.slot,
                ts_event,
                tick.price.as_double(),
                tick.size.as_double(),
                _SIDE[tick.aggressor_side],
            )
            if status != _REJECTED:
                self.after(status, _TRADE, ts_event, tick.ts_init)
        except Exception as e:
            self.failed(tick, e)
            raise

    def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
        """Apply an L2 batch to the level book, then fold its top as one event.

        The actor keeps its own price-level book: listing the engine's book levels on
        every update costs milliseconds on a deep book.
        """
        try:
            book = self.book
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
            status = self.k_book(self.state, self.rows, self.slot, ts_event, *top)
            if status != _REJECTED:
                self.bid = top[0]
                self.ask = top[1]
                self.after(status, _BOOK, ts_event, deltas.ts_init)
        except Exception as e:
            self.failed(deltas, e)
            raise

    def failed(self, data: Data, e: Exception) -> None:
        """Log as ``Actor.handle_*`` does before the exception goes on to the engine."""
        self.log.exception(f"Error on handling {data!r}", e)

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
        # The row is in rows[slot]: the slot is this vector's from now on.
        slot = self.slot
        vector._rows = self.rows
        vector._slot = slot
        vector._values = None
        slot += 1
        if slot == ROW_BLOCK:
            self.rows = new_rows()
            slot = 0
        self.slot = slot
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
        self._routes: Routes | None = None  # while running: see on_start
        self._published_before = 0  # by the instruments of earlier starts
        self._indicators_registered = False
        self.warm_up_seconds: float = 0.0

    @property
    def published(self) -> int:
        """Vectors published so far."""
        return self._published_before + sum(i.published for i in self._instruments.values())

    def on_start(self) -> None:
        """Compile/load the kernel before any tick arrives, subscribe, and route the ticks.

        Each tick subscription made here is handed from the actor's ``handle_*`` method
        to its instrument's handler of the same name (``Routes``), in the same place
        among the topic's handlers; ``on_stop`` hands them back, ``on_resume`` takes
        them again. Ticks so delivered skip ``Actor.handle_quote_tick`` (and its trade
        and book siblings), whose only work for this actor would be the running check
        (the routes exist only while it runs) and a lookup of indicators registered for
        the tick's instrument, which hashes its InstrumentId by formatting it (about 1 µs
        per tick). An actor with registered indicators keeps the base handlers.
        """
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
            self._instruments[iid] = _Instrument(iid, self._cfg, ep, self, direct)
            self.subscribe_quote_ticks(iid)
            self.subscribe_trade_ticks(iid)
            if self._cfg.use_book:
                self.subscribe_order_book_deltas(iid, BookType.L2_MBP, managed=False)
        self._take_routes()

    def on_resume(self) -> None:
        self._take_routes()

    def on_stop(self) -> None:
        """Hand the tick subscriptions back to the actor's own (running-only) handlers."""
        self._give_back_routes()

    def _take_routes(self) -> None:
        """Hand each instrument's tick subscriptions to its handlers (none with indicators).

        Nautilus's tick topics end with ``.<venue>.<symbol>``, which tells the instrument.
        """
        if self._indicators_registered or self._routes is not None:
            return
        routes = Routes(self.msgbus)
        for iid, inst in self._instruments.items():
            suffix = f".{iid.venue}.{iid.symbol}"
            routes.take(self.handle_quote_tick, inst.on_quote_tick, suffix)
            routes.take(self.handle_trade_tick, inst.on_trade_tick, suffix)
            routes.take(self.handle_order_book_deltas, inst.on_order_book_deltas, suffix)
        self._routes = routes

    def _give_back_routes(self) -> None:
        if self._routes is not None:
            self._routes.give_back()
            self._routes = None

    def state_of(self, instrument_id: InstrumentId) -> np.ndarray:
        """The kernel state of one instrument (for inspection and tests)."""
        return self._instruments[instrument_id].state

    def register_indicator_for_quote_ticks(
        self, instrument_id: InstrumentId, indicator: Indicator
    ) -> None:
        self._with_indicators()
        super().register_indicator_for_quote_ticks(instrument_id, indicator)

    def register_indicator_for_trade_ticks(
        self, instrument_id: InstrumentId, indicator: Indicator
    ) -> None:
        self._with_indicators()
        super().register_indicator_for_trade_ticks(instrument_id, indicator)

    def _with_indicators(self) -> None:
        """Indicators are fed by the base handlers: route every tick through them."""
        self._indicators_registered = True
        self._give_back_routes()

    # The base handlers call these: with indicators registered, and for ticks handed to
    # the actor's handle_* methods by anything but the routes.

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self._instruments[tick.instrument_id].on_quote_tick(tick)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self._instruments[tick.instrument_id].on_trade_tick(tick)

    def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
        self._instruments[deltas.instrument_id].on_order_book_deltas(deltas)
