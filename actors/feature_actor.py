"""FeatureActor: feeds each instrument's ticks to the feature kernel and publishes vectors.

All feature logic is in :mod:`tapereader.core.features`; this actor converts Nautilus
ticks to plain floats, calls the compiled kernel once per event (one state per
instrument), and publishes a :class:`FeatureVector` at the configured cadence:
every N events, or every T ms of exchange time.
"""

import time

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import DataType, OrderBookDeltas, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookAction, BookType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.core.features import kernel
from tapereader.core.features.depth import LevelBook
from tapereader.core.features.spec import SPEC
from tapereader.core.features.state import EntryPoints, entry_points, feature_row, new_state

_SIDE = {AggressorSide.BUYER: 1.0, AggressorSide.SELLER: -1.0, AggressorSide.NO_AGGRESSOR: 0.0}


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
    """Which instruments, whether to use the book, and the publishing cadence.

    ``every_ms > 0`` publishes at the first event at least that many milliseconds of
    exchange time after the last publication; otherwise every ``every_events`` events.
    ``spec_hash``, when given, must be the kernel's spec hash (the model's inputs).
    """

    instrument_ids: list[str]
    use_book: bool = False
    every_events: int = 1
    every_ms: int = 0
    publish_warming: bool = False
    spec_hash: str | None = None


class _Instrument:
    __slots__ = ("ask", "bid", "book", "data_type", "due", "id", "row", "seq", "since", "state")

    def __init__(self, instrument_id: InstrumentId) -> None:
        self.id = instrument_id
        self.state = new_state()
        self.row = feature_row(self.state)
        self.data_type = feature_data_type(instrument_id)
        self.since = 0  # events since the last publication
        self.due = 0  # exchange time of the next publication (time cadence)
        self.book = LevelBook()
        self.seq = 0  # accepted events
        self.bid = float("nan")
        self.ask = float("nan")


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
        self._ep: EntryPoints | None = None
        self._instruments: dict[InstrumentId, _Instrument] = {}
        self._source = ""
        self.warm_up_seconds: float = 0.0
        self.published: int = 0

    def on_start(self) -> None:
        """Compile/load the kernel before any tick arrives, then subscribe."""
        self._source = str(self.id)
        started = time.perf_counter()  # wall time: a backtest clock would not move here
        self._ep = entry_points()
        self.warm_up_seconds = time.perf_counter() - started
        self.log.info(f"feature kernel ready (spec {SPEC.hash}) in {self.warm_up_seconds:.2f} s")
        for raw in self._cfg.instrument_ids:
            iid = InstrumentId.from_str(raw)
            self._instruments[iid] = _Instrument(iid)
            self.subscribe_quote_ticks(iid)
            self.subscribe_trade_ticks(iid)
            if self._cfg.use_book:
                self.subscribe_order_book_deltas(iid, BookType.L2_MBP, managed=False)

    def state_of(self, instrument_id: InstrumentId) -> np.ndarray:
        """The kernel state of one instrument (for inspection and tests)."""
        return self._instruments[instrument_id].state

    def on_quote_tick(self, tick: QuoteTick) -> None:
        """Fold a quote (one period) into its instrument's state."""
        inst = self._instruments[tick.instrument_id]
        bid = tick.bid_price.as_double()
        ask = tick.ask_price.as_double()
        status = self._ep.on_quote(
            inst.state,
            tick.ts_event,
            bid,
            ask,
            tick.bid_size.as_double(),
            tick.ask_size.as_double(),
        )
        if status != kernel.STATUS_REJECTED:
            inst.bid, inst.ask = bid, ask
        self._after(inst, status, kernel.KIND_QUOTE, tick.ts_event, tick.ts_init)

    def on_trade_tick(self, tick: TradeTick) -> None:
        """Fold a trade (volume, flow, intensity) into its instrument's state."""
        inst = self._instruments[tick.instrument_id]
        status = self._ep.on_trade(
            inst.state,
            tick.ts_event,
            tick.price.as_double(),
            tick.size.as_double(),
            _SIDE[tick.aggressor_side],
        )
        self._after(inst, status, kernel.KIND_TRADE, tick.ts_event, tick.ts_init)

    def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
        """Apply an L2 batch to the instrument's level book, then fold its top as one event.

        The actor keeps its own price-level book: listing the engine's book levels on
        every update costs milliseconds on a deep book.
        """
        inst = self._instruments[deltas.instrument_id]
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
        status = self._ep.on_book(inst.state, deltas.ts_event, *top)
        if status != kernel.STATUS_REJECTED:
            inst.bid, inst.ask = top[0], top[1]
        self._after(inst, status, kernel.KIND_BOOK, deltas.ts_event, deltas.ts_init)

    def _after(
        self, inst: _Instrument, status: int, kind: int, ts_event: int, ts_init: int
    ) -> None:
        """Publish the row if the event was accepted, is ready (or allowed) and is due."""
        if status == kernel.STATUS_REJECTED:
            return
        inst.seq += 1
        ready = status == kernel.STATUS_READY
        if not ready and not self._publish_warming:
            return
        inst.since += 1
        if self._every_ns:
            if ts_event < inst.due:
                return
            inst.due = ts_event + self._every_ns
        elif inst.since < self._every_events:
            return
        inst.since = 0
        vector = FeatureVector(
            inst.id,
            inst.row.copy(),
            ready,
            SPEC.hash,
            self._source,
            ts_event,
            ts_init,
            kind,
            inst.seq,
            inst.bid,
            inst.ask,
        )
        self.publish_data(inst.data_type, vector)
        self.published += 1
