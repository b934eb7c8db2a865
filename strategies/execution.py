"""ExecutionStrategy: approved decisions become Nautilus orders, order events become domain events.

An approved decision names a target position; the order is the difference between the
target and the position plus what open orders will still add, rounded to the instrument's
size step. Every Nautilus order and position event is mapped to its domain event with the
causation chain kept: fill -> submitted order -> risk verdict -> decision -> signal ->
feature row (the tick). The correlation id of the whole chain is the feature row's id.
"""

import uuid

import msgspec
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model import events as nt
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import OrderSide, OrderType, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from tapereader.actors.bus import identity, publish_event
from tapereader.actors.messages import APPROVED_TOPIC, ApprovedDecision
from tapereader.core import events as ev
from tapereader.core.latency import LatencyRecorder


class ExecutionStrategyConfig(StrategyConfig, frozen=True):
    """Order type (``MARKET`` or ``LIMIT`` at the reference price moved by
    ``limit_offset_bps`` towards the market), time in force, and shutdown behaviour."""

    instrument_ids: list[str]
    order_type: str = "MARKET"
    time_in_force: str = "GTC"
    limit_offset_bps: float = 0.0
    flatten_on_stop: bool = False
    restore_positions: dict[str, float] = msgspec.field(default_factory=dict)  # recovered
    run_id: str = ""
    reproducible_ids: bool = False


class _Link:
    """What a client order id is known by in the domain: its submitted event and chain."""

    __slots__ = ("correlation_id", "decision_id", "submitted_id")

    def __init__(
        self,
        submitted_id: uuid.UUID,
        decision_id: uuid.UUID | None,
        correlation_id: uuid.UUID | None,
    ) -> None:
        self.submitted_id = submitted_id
        self.decision_id = decision_id
        self.correlation_id = correlation_id


class ExecutionStrategy(Strategy):
    """Trades approved decisions and journals every order and position event."""

    def __init__(self, config: ExecutionStrategyConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._order_type = OrderType[config.order_type]
        if self._order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise ValueError(f"order_type must be MARKET or LIMIT, not {config.order_type}")
        self._tif = TimeInForce[config.time_in_force]
        self._source, self._ids = identity(str(self.id), config.run_id, config.reproducible_ids)
        self._links: dict[str, _Link] = {}
        self._position_links: dict[str, uuid.UUID] = {}  # position id -> last fill event id
        self.latency: LatencyRecorder | None = None
        self.submitted = 0
        self.skipped = 0
        self._restore = {k: v for k, v in config.restore_positions.items() if v}
        self._working: dict[str, Order] = {}  # submitted by this strategy, not yet closed
        self._wound_down = False

    def on_start(self) -> None:
        for raw in self._cfg.instrument_ids:
            if self.cache.instrument(InstrumentId.from_str(raw)) is None:
                raise RuntimeError(f"execution: instrument {raw} is not in the cache")
        self.msgbus.subscribe(APPROVED_TOPIC, self._on_approved)
        for raw in self._restore:
            self.subscribe_quote_ticks(InstrumentId.from_str(raw))

    def on_quote_tick(self, tick: QuoteTick) -> None:
        """Restore a recovered position at the first quote (the venue needs a market).

        The order has no decision behind it: it re-establishes what decisions of the
        crashed run had built, which risk approved then.
        """
        raw = tick.instrument_id.value
        target = self._restore.pop(raw, None)
        self.unsubscribe_quote_ticks(tick.instrument_id)
        if target is None:
            return
        delta = target - self._committed(tick.instrument_id)
        qty = self.cache.instrument(tick.instrument_id).make_qty(abs(delta))
        if qty.as_double() <= 0.0:
            return
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        order = self.order_factory.market(tick.instrument_id, side, qty)
        self.log.warning(f"restoring the recovered position of {raw}: {side.name} {qty}")
        mid = (tick.bid_price.as_double() + tick.ask_price.as_double()) / 2
        self._submit(order, raw, side, None, None, mid, None, qty.as_double(), None)

    def on_stop(self) -> None:
        """Wind down if nobody did before stopping (the end of a backtest)."""
        self.wind_down()

    def wind_down(self) -> None:
        """Stop taking decisions, cancel open orders, and flatten when configured.

        A live node calls it while still running and waits for :attr:`settled`: orders sent
        from ``on_stop`` would meet a node that no longer processes their fills.
        """
        if self._wound_down:
            return
        self._wound_down = True
        self.msgbus.unsubscribe(APPROVED_TOPIC, self._on_approved)
        for raw in self._cfg.instrument_ids:
            iid = InstrumentId.from_str(raw)
            self.cancel_all_orders(iid)
            if self._cfg.flatten_on_stop:
                self.close_all_positions(iid)

    @property
    def settled(self) -> bool:
        """No unfinished order, and no open position when flattening was asked for."""
        cache = self.cache
        unfinished = (
            cache.orders_open(strategy_id=self.id)
            or cache.orders_inflight(strategy_id=self.id)
            or any(not o.is_closed for o in self._working.values())
        )
        flat = not self._cfg.flatten_on_stop or not cache.positions_open(strategy_id=self.id)
        return not unfinished and flat

    # --- decisions to orders ------------------------------------------------------------

    def _on_approved(self, msg: ApprovedDecision) -> None:
        decision = msg.decision
        iid = InstrumentId.from_str(decision.instrument_id)
        instrument = self.cache.instrument(iid)
        delta = decision.target_position - self._committed(iid)
        qty = instrument.make_qty(abs(delta))
        if qty.as_double() <= 0.0:
            self.skipped += 1  # already at (or within a size step of) the target
            return
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        if self._order_type == OrderType.MARKET:
            order = self.order_factory.market(iid, side, qty, time_in_force=self._tif)
            price = None
        else:
            move = self._cfg.limit_offset_bps / 1e4
            raw = decision.reference_price * (1 + move if side == OrderSide.BUY else 1 - move)
            order = self.order_factory.limit(
                iid, side, qty, instrument.make_price(raw), time_in_force=self._tif
            )
            price = order.price.as_double()
        self._submit(
            order,
            decision.instrument_id,
            side,
            msg.verdict.event_id,
            decision.correlation_id,
            decision.reference_price,
            decision.event_id,
            qty.as_double(),
            price,
        )
        if self.latency is not None:
            self.latency.hop("order")

    def _submit(
        self,
        order: Order,
        instrument_id: str,
        side: OrderSide,
        cause: uuid.UUID | None,
        correlation: uuid.UUID | None,
        reference: float,
        decision_id: uuid.UUID | None,
        quantity: float,
        price: float | None,
    ) -> None:
        now = self.clock.timestamp_ns()
        submitted = ev.OrderSubmitted(
            event_id=self._ids.next(now),
            ts_event=now,
            ts_init=now,
            source=self._source,
            causation_id=cause,
            correlation_id=correlation,
            instrument_id=instrument_id,
            client_order_id=order.client_order_id.value,
            side="BUY" if side == OrderSide.BUY else "SELL",
            order_type=order.order_type.name,
            quantity=quantity,
            price=price,
            time_in_force=order.time_in_force.name,
            reference_price=reference,
            decision_id=decision_id,
        )
        self._links[submitted.client_order_id] = _Link(submitted.event_id, decision_id, correlation)
        publish_event(self, submitted)
        self._working[submitted.client_order_id] = order
        self.submit_order(order)
        self.submitted += 1

    def _committed(self, iid: InstrumentId) -> float:
        """The strategy's open position plus what its unfinished orders would still add.

        Unfinished includes orders not yet handed to the venue: a live node queues
        submissions, so a burst of decisions can come before the first order leaves.
        """
        position = sum(
            p.signed_qty for p in self.cache.positions_open(instrument_id=iid, strategy_id=self.id)
        )
        for coid, order in list(self._working.items()):
            if order.is_closed:
                del self._working[coid]
            elif order.instrument_id == iid:
                left = order.leaves_qty.as_double()
                position += left if order.side == OrderSide.BUY else -left
        return position

    # --- Nautilus order and position events to domain events ---------------------------

    def _envelope(self, client_order_id: str, ts_event: int) -> dict[str, object]:
        link = self._links.get(client_order_id)
        return {
            "event_id": self._ids.next(ts_event),
            "ts_event": ts_event,
            "ts_init": self.clock.timestamp_ns(),
            "source": self._source,
            "causation_id": link.submitted_id if link else None,
            "correlation_id": link.correlation_id if link else None,
        }

    def on_order_accepted(self, event: nt.OrderAccepted) -> None:
        coid = event.client_order_id.value
        publish_event(
            self,
            ev.OrderAccepted(
                **self._envelope(coid, event.ts_event),  # type: ignore[arg-type]
                instrument_id=event.instrument_id.value,
                client_order_id=coid,
                venue_order_id=event.venue_order_id.value,
            ),
        )

    def on_order_rejected(self, event: nt.OrderRejected) -> None:
        coid = event.client_order_id.value
        self.log.warning(f"order {coid} rejected: {event.reason}")
        publish_event(
            self,
            ev.OrderRejected(
                **self._envelope(coid, event.ts_event),  # type: ignore[arg-type]
                instrument_id=event.instrument_id.value,
                client_order_id=coid,
                reason=event.reason or "rejected",
            ),
        )

    def on_order_canceled(self, event: nt.OrderCanceled) -> None:
        self._cancelled(event.client_order_id.value, event.instrument_id.value, event.ts_event, "")

    def on_order_expired(self, event: nt.OrderExpired) -> None:
        coid = event.client_order_id.value
        self._cancelled(coid, event.instrument_id.value, event.ts_event, "expired")

    def _cancelled(self, coid: str, instrument_id: str, ts_event: int, reason: str) -> None:
        publish_event(
            self,
            ev.OrderCancelled(
                **self._envelope(coid, ts_event),  # type: ignore[arg-type]
                instrument_id=instrument_id,
                client_order_id=coid,
                reason=reason,
            ),
        )

    def on_order_filled(self, event: nt.OrderFilled) -> None:
        coid = event.client_order_id.value
        filled = ev.OrderFilled(
            **self._envelope(coid, event.ts_event),  # type: ignore[arg-type]
            instrument_id=event.instrument_id.value,
            client_order_id=coid,
            venue_order_id=event.venue_order_id.value,
            trade_id=event.trade_id.value,
            side="BUY" if event.order_side == OrderSide.BUY else "SELL",
            last_qty=event.last_qty.as_double(),
            last_px=event.last_px.as_double(),
            commission=event.commission.as_double(),
            commission_currency=event.commission.currency.code,
            liquidity_side=event.liquidity_side.name,
        )
        if event.position_id is not None:
            self._position_links[event.position_id.value] = filled.event_id
        publish_event(self, filled)

    def on_position_opened(self, event: nt.PositionOpened) -> None:
        publish_event(
            self,
            ev.PositionOpened(
                **self._position_envelope(event),  # type: ignore[arg-type]
                side=event.side.name,
                quantity=event.quantity.as_double(),
                avg_px_open=event.avg_px_open,
            ),
        )

    def on_position_changed(self, event: nt.PositionChanged) -> None:
        publish_event(
            self,
            ev.PositionChanged(
                **self._position_envelope(event),  # type: ignore[arg-type]
                side=event.side.name,
                quantity=event.quantity.as_double(),
                avg_px_open=event.avg_px_open,
                realized_pnl=event.realized_pnl.as_double(),
                unrealized_pnl=event.unrealized_pnl.as_double(),
            ),
        )

    def on_position_closed(self, event: nt.PositionClosed) -> None:
        publish_event(
            self,
            ev.PositionClosed(
                **self._position_envelope(event),  # type: ignore[arg-type]
                realized_pnl=event.realized_pnl.as_double(),
                avg_px_open=event.avg_px_open,
                avg_px_close=event.avg_px_close,
                duration_ns=event.duration_ns,
            ),
        )

    def _position_envelope(self, event: nt.PositionOpened) -> dict[str, object]:
        pid = event.position_id.value
        return {
            "event_id": self._ids.next(event.ts_event),
            "ts_event": event.ts_event,
            "ts_init": self.clock.timestamp_ns(),
            "source": self._source,
            "causation_id": self._position_links.get(pid),
            "instrument_id": event.instrument_id.value,
            "position_id": pid,
        }
