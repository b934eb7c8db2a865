"""FeatureActor: feeds each instrument's ticks to the feature kernel and publishes vectors.

All feature logic is in :mod:`tapereader.core.features`; this actor converts Nautilus
ticks to plain floats, calls the compiled kernel once per event (one state per
instrument), and publishes a :class:`FeatureVector` at the configured cadence:
every N events, or every T ms of exchange time.
"""

import time
from collections.abc import Callable
from functools import partial

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import MessageBus, is_matching_py
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import DataType, OrderBookDeltas, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookAction, BookType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.core.features import kernel
from tapereader.core.features.depth import LevelBook
from tapereader.core.features.spec import SPEC
from tapereader.core.features.state import entry_points, feature_row, new_state

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
    ``Subscribers``) instead of going through ``MessageBus.publish``.
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
    in a backtest is seen within that many). It does not count in the bus's
    ``pub_count``. A bus with a database backing (external publication) is always
    published to through ``MessageBus.publish``.
    """

    __slots__ = ("bus", "direct", "handlers", "left", "refresh", "sent", "topic")

    def __init__(self, bus: MessageBus, topic: str, direct: bool = True, refresh: int = 256):
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


class _Instrument:
    __slots__ = (
        "ask",
        "bid",
        "book",
        "data_type",
        "due",
        "id",
        "row",
        "seq",
        "since",
        "state",
        "subscribers",
    )

    def __init__(self, instrument_id: InstrumentId) -> None:
        self.id = instrument_id
        self.state = new_state()
        self.row = feature_row(self.state)
        self.data_type = feature_data_type(instrument_id)
        self.subscribers: Subscribers | None = None  # set when the actor starts
        self.since = 0  # publishable events since the last publication
        self.due = 0  # exchange time of the next publication (time cadence)
        self.book = LevelBook()
        self.seq = 0  # accepted events
        self.bid = float("nan")
        self.ask = float("nan")


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
        self._cfg = config
        self._every_ns = config.every_ms * 1_000_000
        self._every_events = config.every_events
        self._publish_warming = config.publish_warming
        self._publishes = _kinds(config.publish_kinds)
        # Whether any event can be skipped other than for readiness: see _due.
        self._gated = self._every_ns > 0 or self._every_events > 1 or not all(self._publishes)
        self._spec_hash = SPEC.hash
        self._instruments: dict[InstrumentId, _Instrument] = {}
        # The instrument, when there is one: comparing a tick's InstrumentId with it is
        # cheaper than hashing it (which formats it as a string, ~0.4 µs).
        self._only: _Instrument | None = None
        self._source = ""
        self._on_trade = self._on_quote = self._on_book = None
        self.warm_up_seconds: float = 0.0
        self.published: int = 0

    def on_start(self) -> None:
        """Compile/load the kernel before any tick arrives, then subscribe."""
        self._source = str(self.id)
        started = time.perf_counter()  # wall time: a backtest clock would not move here
        ep = entry_points()
        self.warm_up_seconds = time.perf_counter() - started
        self._on_trade, self._on_quote, self._on_book = ep.on_trade, ep.on_quote, ep.on_book
        self.log.info(f"feature kernel ready (spec {SPEC.hash}) in {self.warm_up_seconds:.2f} s")
        for raw in self._cfg.instrument_ids:
            iid = InstrumentId.from_str(raw)
            inst = _Instrument(iid)
            inst.subscribers = Subscribers(
                self.msgbus, f"data.{inst.data_type.topic}", direct=self._cfg.direct_publish
            )
            self._instruments[iid] = inst
            self.subscribe_quote_ticks(iid)
            self.subscribe_trade_ticks(iid)
            if self._cfg.use_book:
                self.subscribe_order_book_deltas(iid, BookType.L2_MBP, managed=False)
        self._only = next(iter(self._instruments.values())) if len(self._instruments) == 1 else None

    def state_of(self, instrument_id: InstrumentId) -> np.ndarray:
        """The kernel state of one instrument (for inspection and tests)."""
        return self._instruments[instrument_id].state

    def on_quote_tick(self, tick: QuoteTick) -> None:
        """Fold a quote (one period) into its instrument's state."""
        inst, iid = self._only, tick.instrument_id
        if inst is None or iid != inst.id:
            inst = self._instruments[iid]
        bid = tick.bid_price.as_double()
        ask = tick.ask_price.as_double()
        ts_event = tick.ts_event
        status = self._on_quote(
            inst.state, ts_event, bid, ask, tick.bid_size.as_double(), tick.ask_size.as_double()
        )
        if status == _REJECTED:
            return
        inst.bid = bid
        inst.ask = ask
        self._after(inst, status, _QUOTE, ts_event, tick.ts_init)

    def on_trade_tick(self, tick: TradeTick) -> None:
        """Fold a trade (volume, flow, intensity) into its instrument's state."""
        inst, iid = self._only, tick.instrument_id
        if inst is None or iid != inst.id:
            inst = self._instruments[iid]
        ts_event = tick.ts_event
        status = self._on_trade(
            inst.state,
            ts_event,
            tick.price.as_double(),
            tick.size.as_double(),
            _SIDE[tick.aggressor_side],
        )
        if status != _REJECTED:
            self._after(inst, status, _TRADE, ts_event, tick.ts_init)

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
        status = self._on_book(inst.state, ts_event, *top)
        if status == _REJECTED:
            return
        inst.bid = top[0]
        inst.ask = top[1]
        self._after(inst, status, _BOOK, ts_event, deltas.ts_init)

    def _after(
        self, inst: _Instrument, status: int, kind: int, ts_event: int, ts_init: int
    ) -> None:
        """Count the accepted event; publish its row if ready (or allowed) and due."""
        inst.seq += 1
        if status != _READY and not self._publish_warming:
            return
        if self._gated and not self._due(inst, kind, ts_event):
            return
        vector = FeatureVector(
            inst.id,
            inst.row.copy(),
            status == _READY,
            self._spec_hash,
            self._source,
            ts_event,
            ts_init,
            kind,
            inst.seq,
            inst.bid,
            inst.ask,
        )
        # Subscribers.publish, inlined: a method call costs ~0.2 µs per event here.
        subs = inst.subscribers
        if subs.left <= 0 or subs.sent != subs.bus.sent_count:
            subs.resolve()
        subs.left -= 1
        for handler in subs.handlers:
            handler(vector)
        self.published += 1

    def _due(self, inst: _Instrument, kind: int, ts_event: int) -> bool:
        """Whether the cadence and ``publish_kinds`` publish this event's row."""
        if not self._publishes[kind]:
            return False
        if self._every_ns:
            if ts_event < inst.due:
                return False
            inst.due = ts_event + self._every_ns
            return True
        inst.since += 1
        if inst.since < self._every_events:
            return False
        inst.since = 0
        return True
