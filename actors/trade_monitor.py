"""TradeMonitorActor: marks the book to market on every tick and says what trading realized.

It keeps its own :class:`~tapereader.core.ledger.Ledger` from the chain's fills (joined to
their orders, decisions and signals through the events' ids) and the quotes. It emits:
``PnlSnapshot`` every ``snapshot_every_ms`` of exchange time and at stop; one
``DecisionOutcome`` per closed round trip (the realized result of the decision that opened
it: what learning and P&L attribution use); and alerts for drawdown, slippage, rejected
orders and stale data. Decision-to-fill latency (exchange time) is kept per fill.
"""

import datetime as dt
import uuid
from dataclasses import dataclass

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.actors.bus import EVENTS, identity, instrument_multipliers, publish_event
from tapereader.actors.timers import set_engine_timer
from tapereader.core import events as ev
from tapereader.core.ledger import ClosedTrade, Fill, Ledger


class TradeMonitorActorConfig(ActorConfig, frozen=True):
    """Instruments, starting equity, snapshot cadence and alert thresholds."""

    instrument_ids: list[str]
    starting_equity: float = 100_000.0
    snapshot_every_ms: int = 60_000
    drawdown_alert: float = 1_000.0  # account currency below peak equity
    slippage_alert_bps: float = 5.0
    stale_after_ms: float = 5_000.0  # no quote for this long (clock time): stale-data alert
    stale_check_ms: int = 1_000
    run_id: str = ""
    reproducible_ids: bool = False


@dataclass(frozen=True)
class _DecisionInfo:
    ts_ns: int
    signal_id: uuid.UUID | None
    model_version: str
    correlation_id: uuid.UUID | None


class TradeMonitorActor(Actor):
    """P&L, exposure, drawdown, slippage, outcomes and alerts for the chain's trading."""

    def __init__(self, config: TradeMonitorActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._source, self._ids = identity(str(self.id), config.run_id, config.reproducible_ids)
        self.ledger = Ledger(starting_equity=config.starting_equity)
        self._decisions: dict[uuid.UUID, _DecisionInfo] = {}
        self._orders: dict[str, ev.OrderSubmitted] = {}
        self._last_quote: dict[str, int] = {}
        self._stale: set[str] = set()
        self._next_snapshot = 0
        self._in_drawdown = False
        self.decision_to_fill_ns: list[int] = []
        self.outcomes = 0
        self.alerts = 0

    # --- lifecycle ----------------------------------------------------------------------

    def on_start(self) -> None:
        multipliers = instrument_multipliers(self, self._cfg.instrument_ids)
        for raw in self._cfg.instrument_ids:
            self.subscribe_quote_ticks(InstrumentId.from_str(raw))
        self.ledger = Ledger(multipliers=multipliers, starting_equity=self._cfg.starting_equity)
        for topic, handler in self._topics():
            self.msgbus.subscribe(topic, handler)
        if self._cfg.stale_check_ms > 0:
            set_engine_timer(
                self,
                "stale-data",
                dt.timedelta(milliseconds=self._cfg.stale_check_ms),
                self._check_stale,
            )

    def on_stop(self) -> None:
        for topic, handler in self._topics():
            self.msgbus.unsubscribe(topic, handler)
        if "stale-data" in self.clock.timer_names:
            self.clock.cancel_timer("stale-data")
        self._snapshot(self.clock.timestamp_ns())

    def _topics(self) -> list[tuple[str, object]]:
        return [
            (f"{EVENTS}.decisions.DecisionMade", self._on_decision),
            (f"{EVENTS}.orders.OrderSubmitted", self._on_submitted),
            (f"{EVENTS}.orders.OrderFilled", self._on_fill),
            (f"{EVENTS}.orders.OrderRejected", self._on_rejected),
        ]

    # --- market -------------------------------------------------------------------------

    def on_quote_tick(self, tick: QuoteTick) -> None:
        raw = tick.instrument_id.value
        self.ledger.mark(raw, tick.bid_price.as_double(), tick.ask_price.as_double(), tick.ts_event)
        # Receipt time: a replayed feed carries old exchange times, and "no tick for T
        # seconds" is about what reached the node.
        self._last_quote[raw] = tick.ts_init
        self._stale.discard(raw)
        if tick.ts_event >= self._next_snapshot:
            every = self._cfg.snapshot_every_ms * 1_000_000
            if self._next_snapshot:
                self._snapshot(tick.ts_event)
            self._next_snapshot = tick.ts_event + every
        self._check_drawdown(tick.ts_event)

    # --- the chain's events -------------------------------------------------------------

    def _on_decision(self, d: ev.DecisionMade) -> None:
        if d.action != "HOLD":
            self._decisions[d.event_id] = _DecisionInfo(
                d.ts_event, d.causation_id, d.model_version, d.correlation_id
            )

    def _on_submitted(self, o: ev.OrderSubmitted) -> None:
        self._orders[o.client_order_id] = o

    def _on_fill(self, f: ev.OrderFilled) -> None:
        order = self._orders.get(f.client_order_id)
        info = self._decisions.get(order.decision_id) if order and order.decision_id else None
        fill = Fill(
            instrument_id=f.instrument_id,
            side=f.side,
            quantity=f.last_qty,
            price=f.last_px,
            commission=f.commission,
            ts_ns=f.ts_event,
            decision_id=order.decision_id if order else None,
            signal_id=info.signal_id if info else None,
            model_version=info.model_version if info else "",
            reference_price=order.reference_price if order else None,
            decision_ts_ns=info.ts_ns if info else None,
        )
        for trade in self.ledger.apply_fill(fill):
            self._outcome(trade, f)
        if info is not None:
            self.decision_to_fill_ns.append(f.ts_event - info.ts_ns)
        slippage = self.ledger.slippage_bps(fill)
        if slippage is not None and slippage > self._cfg.slippage_alert_bps:
            self._alert(
                "slippage",
                "warning",
                f"fill {f.client_order_id} {slippage:.2f} bps worse than the decision's price",
                f.ts_event,
                f.instrument_id,
                slippage,
                self._cfg.slippage_alert_bps,
                f.event_id,
            )
        self._check_drawdown(f.ts_event)

    def _on_rejected(self, r: ev.OrderRejected) -> None:
        self._alert(
            "rejected_order",
            "warning",
            f"order {r.client_order_id} rejected: {r.reason}",
            r.ts_event,
            r.instrument_id,
            causation=r.event_id,
        )

    # --- what the monitor emits ---------------------------------------------------------

    def _outcome(self, t: ClosedTrade, fill: ev.OrderFilled) -> None:
        if t.decision_id is None:
            return  # not a chain decision (manual or external order): nothing to attribute
        info = self._decisions.get(t.decision_id)
        self.outcomes += 1
        publish_event(
            self,
            ev.DecisionOutcome(
                event_id=self._ids.next(fill.ts_event),
                ts_event=fill.ts_event,
                ts_init=self.clock.timestamp_ns(),
                source=self._source,
                causation_id=fill.event_id,
                correlation_id=info.correlation_id if info else None,
                instrument_id=t.instrument_id,
                decision_id=t.decision_id,
                signal_id=t.signal_id,
                model_version=t.model_version,
                side=t.side,
                quantity=t.quantity,
                entry_px=t.entry_px,
                exit_px=t.exit_px,
                realized_pnl=t.realized_pnl,
                commission=t.commission,
                holding_ns=max(0, t.closed_ns - t.opened_ns),
                entry_slippage_bps=t.entry_slippage_bps,
            ),
        )

    def _snapshot(self, ts_ns: int) -> None:
        s = self.ledger.snapshot()
        publish_event(
            self,
            ev.PnlSnapshot(
                event_id=self._ids.next(ts_ns),
                ts_event=ts_ns,
                ts_init=self.clock.timestamp_ns(),
                source=self._source,
                realized_pnl=s.realized_pnl,
                unrealized_pnl=s.unrealized_pnl,
                exposure=s.exposure,
                drawdown=max(0.0, s.drawdown),
                equity=s.equity,
                positions=dict(s.positions),
                marks=dict(s.marks),
            ),
        )

    def _check_drawdown(self, ts_ns: int) -> None:
        drawdown = self.ledger.drawdown
        over = drawdown >= self._cfg.drawdown_alert
        if over and not self._in_drawdown:
            self._alert(
                "drawdown",
                "critical",
                f"drawdown {drawdown:.2f} from peak equity {self.ledger.peak_equity:.2f}",
                ts_ns,
                None,
                drawdown,
                self._cfg.drawdown_alert,
            )
        self._in_drawdown = over

    def _check_stale(self, event: TimeEvent) -> None:
        now = event.ts_event
        limit_ns = self._cfg.stale_after_ms * 1e6
        for raw in self._cfg.instrument_ids:
            last = self._last_quote.get(raw)
            if last is None or raw in self._stale or now - last <= limit_ns:
                continue
            self._stale.add(raw)  # one alert per stall; the next quote re-arms it
            age_ms = (now - last) / 1e6
            self._alert(
                "stale_data",
                "warning",
                f"no quote for {raw} in {age_ms:.0f} ms",
                now,
                raw,
                age_ms,
                self._cfg.stale_after_ms,
            )

    def _alert(
        self,
        kind: str,
        severity: str,
        message: str,
        ts_ns: int,
        instrument_id: str | None,
        value: float | None = None,
        threshold: float | None = None,
        causation: uuid.UUID | None = None,
    ) -> None:
        self.alerts += 1
        self.log.warning(f"alert {kind}: {message}")
        publish_event(
            self,
            ev.TradeMonitorAlert(
                event_id=self._ids.next(ts_ns),
                ts_event=ts_ns,
                ts_init=self.clock.timestamp_ns(),
                source=self._source,
                causation_id=causation,
                kind=kind,  # type: ignore[arg-type]
                severity=severity,  # type: ignore[arg-type]
                message=message,
                instrument_id=instrument_id,
                value=value,
                threshold=threshold,
            ),
        )
