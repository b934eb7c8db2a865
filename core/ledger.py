"""Portfolio ledger: net positions, average cost, P&L, drawdown and per-decision round trips.

Accounting mirrors NautilusTrader's ``Position`` for linear instruments under a NETTING
OMS: one net position per instrument; adding to it moves the average open price; reducing
it realizes ``(fill_px - avg_open) * closed_qty * multiplier`` (sign flipped for shorts);
a fill that goes through zero closes the old position at the fill price and opens the
remainder at the same price, its commission split pro rata between the two. Commissions
are realized when paid, so :attr:`Ledger.realized_pnl` is net of them, as in Nautilus when
the commission currency is the settlement currency. Everything is in one account
currency: the ledger does not convert.

Round trips are attributed to decisions through lots: the units a decision's fills open
form one lot, reductions close lots first in, first out, and a lot that is fully closed
becomes a :class:`ClosedTrade` carrying its own entry price and its share of entry and exit
commissions. Over a position's life from flat to flat the round trips add up to exactly
what the average-cost books realized; in between, the two may differ, because a partial
close realizes against the average while the lot it closes keeps its own entry price.

The same ledger runs live (TradeMonitorActor, RiskActor's :class:`PortfolioView`), in
what-if replays, and offline: :func:`ledger_from_events` rebuilds it from stored events.
"""

import collections
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from tapereader.core.events import (
    DecisionMade,
    DomainEvent,
    Finite,
    Nanos,
    OrderFilled,
    OrderSubmitted,
    PnlSnapshot,
    Positive,
    RiskVerdict,
    SignalGenerated,
)
from tapereader.core.risk import PortfolioView

_NS_PER_DAY = 86_400 * 1_000_000_000

# Quantities are floats: 0.1 + 0.2 units bought are 0.30000000000000004, and selling 0.3
# must leave the position flat, not short 5e-17. Two quantities closer than this, relative
# to the larger, are the same quantity.
QTY_TOLERANCE = 1e-9


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One execution, in the ledger's terms; the decision fields are for attribution only."""

    instrument_id: str
    side: Literal["BUY", "SELL"]
    quantity: Positive
    price: Positive
    commission: Finite
    """In the account currency; positive is a cost, negative a rebate."""
    ts_ns: Nanos
    decision_id: uuid.UUID | None = None
    signal_id: uuid.UUID | None = None
    model_version: str = ""
    reference_price: Positive | None = None
    """The decision's price, against which slippage is measured."""
    decision_ts_ns: Nanos | None = None


class ClosedTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One decision's round trip: the units it opened, from entry until fully closed."""

    instrument_id: str
    decision_id: uuid.UUID | None
    signal_id: uuid.UUID | None
    model_version: str
    side: Literal["LONG", "SHORT"]
    quantity: float
    entry_px: float
    """Quantity-weighted price of the opening fills."""
    exit_px: float
    """Quantity-weighted price of the closing fills."""
    realized_pnl: float
    """Net of the entry and exit commissions allocated to these units."""
    commission: float
    opened_ns: int
    closed_ns: int
    entry_slippage_bps: float | None
    """Quantity-weighted over the opening fills that had a reference price."""
    exit_decision_id: uuid.UUID | None = None
    """The decision whose fill completed the close (None when unknown)."""

    @property
    def holding_ns(self) -> int:
        """Time from the first opening fill to the fill that completed the close."""
        return self.closed_ns - self.opened_ns


class LedgerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The ledger's account state at one moment (``ts_ns`` is None before any fill or mark)."""

    ts_ns: int | None
    realized_pnl: float
    unrealized_pnl: float
    commissions: float
    equity: float
    peak_equity: float
    exposure: float
    drawdown: float
    max_drawdown: float
    pnl_today: float
    positions: dict[str, float]
    avg_px: dict[str, float]
    marks: dict[str, float]


def slippage_bps(fill: Fill) -> float | None:
    """Signed slippage against the reference price, in bps; positive is worse (a buy above
    or a sell below the reference). None when the fill has no reference price."""
    ref = fill.reference_price
    if ref is None:
        return None
    diff = fill.price - ref if fill.side == "BUY" else ref - fill.price
    return diff / ref * 1e4


class _Lot(msgspec.Struct, kw_only=True):
    """Units opened by one decision and not yet all closed."""

    direction: int  # +1 long, -1 short
    decision_id: uuid.UUID | None
    signal_id: uuid.UUID | None
    model_version: str
    opened_ns: int
    qty: float = 0.0  # opened
    cost: float = 0.0  # sum of price * qty over the opening fills
    entry_commission: float = 0.0
    slip_sum: float = 0.0  # sum of slippage_bps * qty over opening fills with a reference
    slip_qty: float = 0.0
    remaining: float = 0.0
    closed_qty: float = 0.0
    exit_value: float = 0.0  # sum of price * qty over the closing fills
    gross: float = 0.0
    exit_commission: float = 0.0
    closed_ns: int = 0
    exit_decision_id: uuid.UUID | None = None

    @property
    def entry_px(self) -> float:
        return self.cost / self.qty


class _Book(msgspec.Struct, kw_only=True):
    """The net position of one instrument and the lots that make it up."""

    multiplier: float
    qty: float = 0.0  # signed
    avg_px: float = 0.0  # meaningful only while qty != 0
    lots: collections.deque[_Lot] = msgspec.field(default_factory=collections.deque)


def _is_real(value: object) -> bool:
    if type(value) is float:  # the hot path: one per quote side
        return math.isfinite(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_nanos(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _same_qty(a: float, b: float) -> bool:
    return abs(a - b) <= QTY_TOLERANCE * max(abs(a), abs(b))


def validate_fill(fill: Fill) -> None:
    """Raise ValueError naming the first field of ``fill`` that cannot be booked.

    Struct constructors do not check types or bounds (msgspec checks them on decode
    only), so a fill built in code is checked here before it touches any state.
    """
    if not isinstance(fill, Fill):
        raise ValueError(f"fill must be a Fill, got {type(fill).__name__}")
    if not isinstance(fill.instrument_id, str) or not fill.instrument_id:
        raise ValueError(
            f"fill.instrument_id must be a non-empty string, got {fill.instrument_id!r}"
        )
    if fill.side not in ("BUY", "SELL"):
        raise ValueError(f"fill.side must be 'BUY' or 'SELL', got {fill.side!r}")
    for name in ("quantity", "price"):
        value = getattr(fill, name)
        if not _is_real(value) or value <= 0:
            raise ValueError(f"fill.{name} must be a finite number > 0, got {value!r}")
    if not _is_real(fill.commission):
        raise ValueError(f"fill.commission must be a finite number, got {fill.commission!r}")
    if not _is_nanos(fill.ts_ns):
        raise ValueError(f"fill.ts_ns must be an integer >= 0, got {fill.ts_ns!r}")
    ref = fill.reference_price
    if ref is not None and (not _is_real(ref) or ref <= 0):
        raise ValueError(f"fill.reference_price must be None or a finite number > 0, got {ref!r}")
    if fill.decision_ts_ns is not None and not _is_nanos(fill.decision_ts_ns):
        raise ValueError(
            f"fill.decision_ts_ns must be None or an integer >= 0, got {fill.decision_ts_ns!r}"
        )
    for name in ("decision_id", "signal_id"):
        value = getattr(fill, name)
        if value is not None and not isinstance(value, uuid.UUID):
            raise ValueError(f"fill.{name} must be None or a UUID, got {value!r}")
    if not isinstance(fill.model_version, str):
        raise ValueError(f"fill.model_version must be a string, got {fill.model_version!r}")


class Ledger:
    """Net positions, average cost, realized and marked P&L, drawdown, and round trips.

    ``multipliers`` maps instrument ids to contract multipliers; ``"*"`` is the default,
    as in ``risk.toml``. Without a mapping every instrument has multiplier 1; with one,
    a fill for an instrument it does not cover (and no ``"*"``) is rejected.
    """

    def __init__(
        self, *, multipliers: Mapping[str, float] | None = None, starting_equity: float = 0.0
    ) -> None:
        if multipliers is not None:
            for key, value in multipliers.items():
                if not _is_real(value) or value <= 0:
                    raise ValueError(f"multipliers[{key!r}] must be a finite number > 0")
        if not _is_real(starting_equity):
            raise ValueError(f"starting_equity must be a finite number, got {starting_equity!r}")
        self._multipliers = None if multipliers is None else dict(multipliers)
        self._starting_equity = float(starting_equity)
        self._books: dict[str, _Book] = {}
        self._open: dict[str, _Book] = {}  # the books with a position: marks loop over these
        self._marks: dict[str, float] = {}
        # ts of the quote behind each mark; -1 while an instrument is marked at its last fill
        self._mark_ts: dict[str, int] = {}
        self._realized = 0.0
        self._commissions = 0.0
        self._peak = self._starting_equity
        self._max_drawdown = 0.0
        self._ts_ns: int | None = None
        self._day: int | None = None
        self._pnl_at_day_open = 0.0
        self._closed: list[ClosedTrade] = []
        self._by_model: dict[str, float] = {}
        self._by_signal: dict[uuid.UUID, float] = {}

    # --- input ----------------------------------------------------------------------------

    def apply_fill(self, fill: Fill) -> list[ClosedTrade]:
        """Book one fill; returns the round trips it completed (oldest first).

        Raises ValueError naming the field when the fill is invalid; the ledger is then
        unchanged.
        """
        validate_fill(fill)
        multiplier = self._multiplier(fill.instrument_id)
        self.advance(fill.ts_ns)
        book = self._books.get(fill.instrument_id)
        if book is None:
            book = self._books[fill.instrument_id] = _Book(multiplier=multiplier)

        direction = 1 if fill.side == "BUY" else -1
        qty, px = float(fill.quantity), float(fill.price)
        held = abs(book.qty)
        if book.qty == 0.0 or (book.qty > 0) == (direction > 0):
            closing, opening = 0.0, qty
        elif _same_qty(qty, held):
            closing, opening = held, 0.0
        elif qty < held:
            closing, opening = qty, 0.0
        else:
            closing, opening = held, qty - held
        # Pro rata by quantity, as Nautilus splits a flip's commission between positions.
        if not opening:
            close_commission = fill.commission
        elif not closing:
            close_commission = 0.0
        else:
            close_commission = fill.commission * closing / qty
        open_commission = fill.commission - close_commission

        trades: list[ClosedTrade] = []
        if closing:
            gross = (px - book.avg_px) * closing * multiplier * (-direction)
            self._realized += gross
            flat = closing == held
            trades = self._close_lots(book, fill, closing, close_commission, flat)
            book.qty = 0.0 if flat else book.qty + direction * closing
        if opening:
            if book.qty == 0.0:
                book.avg_px = px
            else:
                held = abs(book.qty)
                book.avg_px = (book.avg_px * held + px * opening) / (held + opening)
            book.qty += direction * opening
            self._open_lot(book, fill, direction, opening, open_commission)
        self._realized -= fill.commission
        self._commissions += fill.commission
        if book.qty:
            self._open[fill.instrument_id] = book
        else:
            self._open.pop(fill.instrument_id, None)

        # The last fill price is the best mark there is until a quote arrives.
        if self._mark_ts.get(fill.instrument_id, -1) < 0:
            self._marks[fill.instrument_id] = px
            self._mark_ts[fill.instrument_id] = -1
        for trade in trades:
            self._record(trade)
        self._update_peak()
        return trades

    def mark(self, instrument_id: str, bid: float, ask: float, ts_ns: int) -> bool:
        """Mark an instrument at the mid of a quote; returns whether the quote was used.

        Crossed and locked quotes are used: their mid is still the best price estimate,
        and skipping them would leave a stale mark (FXCM data has many). A quote with a
        missing, non-positive or non-finite side, a bad timestamp, an instrument outside
        ``multipliers``, or older than the quote behind the current mark is ignored: a
        feed's bad tick must not stop the actor or put NaN into the books.
        """
        if not (_is_real(bid) and _is_real(ask) and bid > 0 and ask > 0):
            return False
        return self.mark_price(instrument_id, 0.5 * bid + 0.5 * ask, ts_ns)

    def mark_price(self, instrument_id: str, price: float, ts_ns: int) -> bool:
        """Mark an instrument at one price (a last trade, a stored mark); as :meth:`mark`."""
        if not (_is_real(price) and price > 0 and _is_nanos(ts_ns)):
            return False
        if not isinstance(instrument_id, str) or not self._covers(instrument_id):
            return False
        if ts_ns < self._mark_ts.get(instrument_id, -1):
            return False
        self.advance(ts_ns)
        self._marks[instrument_id] = float(price)
        self._mark_ts[instrument_id] = ts_ns
        self._update_peak()
        return True

    def advance(self, ts_ns: int) -> None:
        """Move the ledger's clock forward (never back); a new UTC day resets ``pnl_today``.

        Fills and marks call this; an actor calls it from a timer so that the daily P&L
        resets at midnight even when no tick arrives.
        """
        if not _is_nanos(ts_ns):
            raise ValueError(f"ts_ns must be an integer >= 0, got {ts_ns!r}")
        if self._ts_ns is not None and ts_ns <= self._ts_ns:
            return
        self._ts_ns = ts_ns
        day = ts_ns // _NS_PER_DAY
        if self._day is None or day > self._day:
            self._day = day
            self._pnl_at_day_open = self._total_pnl()

    # --- positions ------------------------------------------------------------------------

    def position(self, instrument_id: str) -> float:
        """Signed units held (0.0 when flat or never traded)."""
        book = self._books.get(instrument_id)
        return 0.0 if book is None else book.qty

    def avg_px(self, instrument_id: str) -> float | None:
        """Average open price of the current position; None when flat."""
        book = self._books.get(instrument_id)
        return None if book is None or book.qty == 0.0 else book.avg_px

    @property
    def positions(self) -> dict[str, float]:
        """Open positions, signed units by instrument."""
        return {i: b.qty for i, b in self._open.items()}

    @property
    def marks(self) -> dict[str, float]:
        """The latest mark of every instrument seen (a mid, or the last fill price until
        the first quote)."""
        return dict(self._marks)

    def multiplier(self, instrument_id: str) -> float:
        """The contract multiplier of an instrument; ValueError when it is not covered."""
        return self._multiplier(instrument_id)

    # --- P&L ------------------------------------------------------------------------------

    @property
    def realized_pnl(self) -> float:
        """Realized P&L since the start, net of all commissions paid."""
        return self._realized

    @property
    def unrealized_pnl(self) -> float:
        """Open positions marked to their latest marks."""
        marks = self._marks
        total = 0.0
        for i, b in self._open.items():
            total += (marks[i] - b.avg_px) * b.qty * b.multiplier
        return total

    @property
    def commissions(self) -> float:
        """Total commissions paid (rebates negative)."""
        return self._commissions

    @property
    def equity(self) -> float:
        """Starting equity plus realized and unrealized P&L."""
        return self._starting_equity + self._total_pnl()

    @property
    def peak_equity(self) -> float:
        """The highest equity seen after any fill or mark (starting equity at first)."""
        return self._peak

    @property
    def drawdown(self) -> float:
        """How far equity is below its peak."""
        return self._peak - self.equity

    @property
    def max_drawdown(self) -> float:
        """The largest drawdown seen after any fill or mark."""
        return self._max_drawdown

    @property
    def exposure(self) -> float:
        """Gross notional: the sum of ``|qty| * mark * multiplier`` over open positions."""
        return sum(abs(b.qty) * self._marks[i] * b.multiplier for i, b in self._open.items())

    @property
    def pnl_today(self) -> float:
        """Total (realized + unrealized) P&L since the UTC day of the latest timestamp began.

        The day's opening P&L is the state just before the first fill, mark or
        :meth:`advance` of that day.
        """
        return self._total_pnl() - self._pnl_at_day_open

    @property
    def ts_ns(self) -> int | None:
        """The latest timestamp seen; None before any fill, mark or advance."""
        return self._ts_ns

    # --- attribution ----------------------------------------------------------------------

    @property
    def closed_trades(self) -> list[ClosedTrade]:
        """Every round trip completed so far, in the order they completed."""
        return list(self._closed)

    def pnl_by_model(self) -> dict[str, float]:
        """Realized net P&L of closed round trips by model version ("" when unknown)."""
        return dict(self._by_model)

    def pnl_by_signal(self) -> dict[uuid.UUID, float]:
        """Realized net P&L of closed round trips by signal id (trades with none left out)."""
        return dict(self._by_signal)

    slippage_bps = staticmethod(slippage_bps)

    # --- views ----------------------------------------------------------------------------

    def view(self) -> PortfolioView:
        """What the risk rules need."""
        return PortfolioView(
            positions=self.positions,
            marks=self.marks,
            pnl_today=self.pnl_today,
            equity=self.equity,
            peak_equity=self._peak,
        )

    def snapshot(self) -> LedgerSnapshot:
        """The whole account state at the latest timestamp."""
        return LedgerSnapshot(
            ts_ns=self._ts_ns,
            realized_pnl=self._realized,
            unrealized_pnl=self.unrealized_pnl,
            commissions=self._commissions,
            equity=self.equity,
            peak_equity=self._peak,
            exposure=self.exposure,
            drawdown=self.drawdown,
            max_drawdown=self._max_drawdown,
            pnl_today=self.pnl_today,
            positions=self.positions,
            avg_px={i: b.avg_px for i, b in self._open.items()},
            marks=self.marks,
        )

    # --- internals ------------------------------------------------------------------------

    def _covers(self, instrument_id: str) -> bool:
        m = self._multipliers
        return m is None or instrument_id in m or "*" in m

    def _multiplier(self, instrument_id: str) -> float:
        m = self._multipliers
        if m is None:
            return 1.0
        if instrument_id in m:
            return float(m[instrument_id])
        if "*" in m:
            return float(m["*"])
        raise ValueError(
            f"fill.instrument_id {instrument_id!r} is unknown: not in multipliers and no '*'"
        )

    def _total_pnl(self) -> float:
        return self._realized + self.unrealized_pnl

    def _update_peak(self) -> None:
        equity = self._starting_equity + self._realized + self.unrealized_pnl
        if equity > self._peak:
            self._peak = equity
        elif self._peak - equity > self._max_drawdown:
            self._max_drawdown = self._peak - equity

    def _open_lot(
        self, book: _Book, fill: Fill, direction: int, qty: float, commission: float
    ) -> None:
        tail = book.lots[-1] if book.lots else None
        # Partial fills of one decision's order make one lot, unless units of that lot
        # were already closed (its round trip would then mix two entries).
        if (
            tail is not None
            and fill.decision_id is not None
            and tail.decision_id == fill.decision_id
            and tail.closed_qty == 0.0
        ):
            lot = tail
        else:
            lot = _Lot(
                direction=direction,
                decision_id=fill.decision_id,
                signal_id=fill.signal_id,
                model_version=fill.model_version,
                opened_ns=fill.ts_ns,
            )
            book.lots.append(lot)
        lot.qty += qty
        lot.remaining += qty
        lot.cost += fill.price * qty
        lot.entry_commission += commission
        slip = slippage_bps(fill)
        if slip is not None:
            lot.slip_sum += slip * qty
            lot.slip_qty += qty

    def _close_lots(
        self, book: _Book, fill: Fill, closing: float, commission: float, flat: bool
    ) -> list[ClosedTrade]:
        """Close ``closing`` units first in, first out; ``flat`` closes every lot."""
        takes: list[tuple[_Lot, float]] = []
        left = closing
        for lot in book.lots:
            if flat or _same_qty(lot.remaining, left) or lot.remaining < left:
                take = lot.remaining
            elif left > QTY_TOLERANCE * closing:
                take = left
            else:
                break
            takes.append((lot, take))
            left -= take
        total = sum(take for _, take in takes)
        trades: list[ClosedTrade] = []
        allocated = 0.0
        for k, (lot, take) in enumerate(takes):
            # The last lot takes the rest, so the shares add up to the commission exactly.
            share = commission - allocated if k == len(takes) - 1 else commission * take / total
            allocated += share
            done = take == lot.remaining
            lot.remaining = 0.0 if done else lot.remaining - take
            lot.closed_qty += take
            lot.exit_value += fill.price * take
            lot.gross += (fill.price - lot.entry_px) * take * book.multiplier * lot.direction
            lot.exit_commission += share
            lot.closed_ns = fill.ts_ns
            lot.exit_decision_id = fill.decision_id
            if done:
                book.lots.popleft()
                trades.append(_closed_trade(lot, fill.instrument_id))
        return trades

    def _record(self, trade: ClosedTrade) -> None:
        self._closed.append(trade)
        model = trade.model_version
        self._by_model[model] = self._by_model.get(model, 0.0) + trade.realized_pnl
        if trade.signal_id is not None:
            sid = trade.signal_id
            self._by_signal[sid] = self._by_signal.get(sid, 0.0) + trade.realized_pnl


def _closed_trade(lot: _Lot, instrument_id: str) -> ClosedTrade:
    commission = lot.entry_commission + lot.exit_commission
    return ClosedTrade(
        instrument_id=instrument_id,
        decision_id=lot.decision_id,
        signal_id=lot.signal_id,
        model_version=lot.model_version,
        side="LONG" if lot.direction > 0 else "SHORT",
        quantity=lot.qty,
        entry_px=lot.entry_px,
        exit_px=lot.exit_value / lot.closed_qty,
        realized_pnl=lot.gross - commission,
        commission=commission,
        opened_ns=lot.opened_ns,
        closed_ns=lot.closed_ns,
        entry_slippage_bps=lot.slip_sum / lot.slip_qty if lot.slip_qty else None,
        exit_decision_id=lot.exit_decision_id,
    )


# --- rebuilding from stored events ----------------------------------------------------------


def fill_from_event(
    filled: OrderFilled,
    submitted: OrderSubmitted | None = None,
    decision: DecisionMade | None = None,
) -> Fill:
    """A ledger fill from a stored ``OrderFilled``, attributed through its order and decision.

    The reference price is the order's, else the decision's. The commission is taken as
    being in the account currency whatever ``commission_currency`` says.
    """
    reference = submitted.reference_price if submitted is not None else None
    if reference is None and decision is not None:
        reference = decision.reference_price
    decision_id = submitted.decision_id if submitted is not None else None
    if decision_id is None and decision is not None:
        decision_id = decision.event_id
    return Fill(
        instrument_id=filled.instrument_id,
        side=filled.side,
        quantity=filled.last_qty,
        price=filled.last_px,
        commission=filled.commission,
        ts_ns=filled.ts_event,
        decision_id=decision_id,
        signal_id=decision.causation_id if decision is not None else None,
        model_version=decision.model_version if decision is not None else "",
        reference_price=reference,
        decision_ts_ns=decision.ts_event if decision is not None else None,
    )


def ledger_from_events(
    events: Iterable[DomainEvent],
    *,
    multipliers: Mapping[str, float] | None = None,
    starting_equity: float = 0.0,
) -> Ledger:
    """Rebuild a ledger from stored events, in the order given (the store's order).

    - ``OrderFilled`` is booked; its order is its ``causation_id`` (the ``OrderSubmitted``
      event id), else the last ``OrderSubmitted`` with its ``client_order_id``. The order's
      ``decision_id`` (or, without one, the ``RiskVerdict`` that caused it) names the
      ``DecisionMade``, whose ``causation_id`` is the signal and which gives the model
      version. A fill whose order or decision is missing is still booked, unattributed.
    - A fill stored twice is booked once: same event id, or same order, trade id, side,
      quantity and price (the key Nautilus uses to reject a duplicate trade).
    - Marks: ``PnlSnapshot.marks``, and the bid/ask that ``SignalGenerated`` and
      ``DecisionMade`` saw.
    """
    ledger = Ledger(multipliers=multipliers, starting_equity=starting_equity)
    decisions: dict[uuid.UUID, DecisionMade] = {}
    verdicts: dict[uuid.UUID, uuid.UUID] = {}  # risk verdict event id -> decision id
    orders: dict[uuid.UUID, OrderSubmitted] = {}
    orders_by_client_id: dict[str, OrderSubmitted] = {}
    seen_ids: set[uuid.UUID] = set()
    seen_trades: set[tuple[str, str, str, str, float, float]] = set()

    for event in events:
        if isinstance(event, OrderFilled):
            trade_key = (
                event.instrument_id,
                event.client_order_id,
                event.trade_id,
                event.side,
                event.last_qty,
                event.last_px,
            )
            if event.event_id in seen_ids or trade_key in seen_trades:
                continue
            seen_ids.add(event.event_id)
            seen_trades.add(trade_key)
            order = orders.get(event.causation_id) if event.causation_id else None
            if order is None:
                order = orders_by_client_id.get(event.client_order_id)
            decision = None
            if order is not None:
                decision_id = order.decision_id
                if decision_id is None and order.causation_id is not None:
                    decision_id = verdicts.get(order.causation_id)
                decision = decisions.get(decision_id) if decision_id else None
            ledger.apply_fill(fill_from_event(event, order, decision))
        elif isinstance(event, OrderSubmitted):
            orders[event.event_id] = event
            orders_by_client_id[event.client_order_id] = event
        elif isinstance(event, DecisionMade):
            decisions[event.event_id] = event
            if event.bid is not None and event.ask is not None:
                ledger.mark(event.instrument_id, event.bid, event.ask, event.ts_event)
        elif isinstance(event, RiskVerdict):
            verdicts[event.event_id] = event.decision_id
        elif isinstance(event, SignalGenerated):
            if event.bid is not None and event.ask is not None:
                ledger.mark(event.instrument_id, event.bid, event.ask, event.ts_event)
        elif isinstance(event, PnlSnapshot):
            for instrument_id, price in event.marks.items():
                ledger.mark_price(instrument_id, price, event.ts_event)
    return ledger
