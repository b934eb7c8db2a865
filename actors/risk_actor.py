"""RiskActor: every decision that would trade is checked against the limits first.

The rules are :mod:`tapereader.core.risk`; the portfolio they look at is a
:class:`~tapereader.core.ledger.Ledger` this actor keeps from the chain's own fills, marked
at each decision's market (the same ledger what-if replays use). Each checked decision gets a
``RiskVerdict`` event; an approved one also goes to the ExecutionStrategy as an
:class:`~tapereader.actors.messages.ApprovedDecision`. The kill switch, once tripped, is an
alert and stays tripped (only risk-reducing orders pass) until reset.
"""

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig

from tapereader.actors.bus import EVENTS, identity, instrument_multipliers, publish_event
from tapereader.actors.messages import APPROVED_TOPIC, ApprovedDecision
from tapereader.core.events import DecisionMade, OrderFilled, RiskVerdict, TradeMonitorAlert
from tapereader.core.latency import LatencyRecorder
from tapereader.core.ledger import Fill, Ledger
from tapereader.core.risk import MarketView, OrderIntent, RiskEngine, load_limits


class RiskActorConfig(ActorConfig, frozen=True):
    """Instruments, the limits file, and the account's starting equity."""

    instrument_ids: list[str]
    limits_path: str = "config/risk.toml"
    starting_equity: float = 100_000.0
    kill_switch_tripped: bool = False  # recovered from an earlier run: stays tripped
    run_id: str = ""
    reproducible_ids: bool = False


class RiskActor(Actor):
    """Approves or rejects decisions before any order exists."""

    def __init__(self, config: RiskActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._source, self._ids = identity(str(self.id), config.run_id, config.reproducible_ids)
        self.engine = RiskEngine(load_limits(config.limits_path))
        self.engine.kill_switch_tripped = config.kill_switch_tripped
        self.ledger = Ledger(starting_equity=config.starting_equity)
        self._markets: dict[str, MarketView] = {}
        self.latency: LatencyRecorder | None = None
        self.approved = 0
        self.rejected = 0

    def on_start(self) -> None:
        multipliers = instrument_multipliers(self, self._cfg.instrument_ids)
        self.ledger = Ledger(multipliers=multipliers, starting_equity=self._cfg.starting_equity)
        self.msgbus.subscribe(f"{EVENTS}.decisions.DecisionMade", self._on_decision)
        self.msgbus.subscribe(f"{EVENTS}.orders.OrderFilled", self._on_fill)
        if self.engine.kill_switch_tripped:
            # Said again in this run's events, so a later restart still finds it tripped.
            now = self.clock.timestamp_ns()
            self.log.error("kill switch still tripped (recovered): only risk-reducing orders")
            publish_event(
                self,
                TradeMonitorAlert(
                    event_id=self._ids.next(now),
                    ts_event=now,
                    ts_init=now,
                    source=self._source,
                    kind="kill_switch",
                    severity="critical",
                    message="kill switch still tripped (recovered from the previous run)",
                ),
            )

    def on_stop(self) -> None:
        self.msgbus.unsubscribe(f"{EVENTS}.decisions.DecisionMade", self._on_decision)
        self.msgbus.unsubscribe(f"{EVENTS}.orders.OrderFilled", self._on_fill)

    def _market(self, decision: DecisionMade) -> MarketView:
        """The market the decision saw, which is also where the ledger is marked.

        A decision comes from the tick that just arrived, so no quote subscription is
        needed (it would cost a handler call and a mark per tick); the stale-data rule then
        measures how long the tick took to become this decision (clock now minus its time).
        """
        raw = decision.instrument_id
        known = self._markets.get(raw)
        if known is not None and known.ts_last_ns >= decision.ts_init:
            return known
        if decision.bid is None or decision.ask is None:
            return known or MarketView(bid=0.0, ask=0.0, ts_last_ns=decision.ts_init)
        self.ledger.mark(raw, decision.bid, decision.ask, decision.ts_event)
        # ts_init: when the chain made the decision from its tick, on this node's clock (a
        # replayed feed's exchange times are years old); the stale rule measures from it.
        market = MarketView(bid=decision.bid, ask=decision.ask, ts_last_ns=decision.ts_init)
        self._markets[raw] = market
        return market

    def reset_kill_switch(self) -> None:
        """A trader reviewed the drawdown: allow new risk again."""
        self.engine.reset_kill_switch()
        self.log.warning("kill switch reset")

    def _on_fill(self, event: OrderFilled) -> None:
        self.ledger.apply_fill(
            Fill(
                instrument_id=event.instrument_id,
                side=event.side,
                quantity=event.last_qty,
                price=event.last_px,
                commission=event.commission,
                ts_ns=event.ts_event,
            )
        )

    def _on_decision(self, decision: DecisionMade) -> None:
        if decision.action == "HOLD":
            return
        now = self.clock.timestamp_ns()
        market = self._market(decision)
        intent = OrderIntent(
            instrument_id=decision.instrument_id,
            action=decision.action,
            target=decision.target_position,
            reference_price=decision.reference_price,
            confidence=decision.confidence if decision.confidence is not None else 0.0,
            ts_ns=now,
        )
        was_tripped = self.engine.kill_switch_tripped
        v = self.engine.check(intent, market, self.ledger.view())
        verdict = RiskVerdict(
            event_id=self._ids.next(decision.ts_event),
            ts_event=decision.ts_event,
            ts_init=now,
            source=self._source,
            causation_id=decision.event_id,
            correlation_id=decision.correlation_id,
            instrument_id=decision.instrument_id,
            decision_id=decision.event_id,
            approved=v.approved,
            rule=v.rule,
            observed=v.observed,
            limit=v.limit,
            detail=v.detail,
        )
        publish_event(self, verdict)
        if self.latency is not None:
            self.latency.hop("risk")
        if self.engine.kill_switch_tripped and not was_tripped:
            self._kill_switch_alert(verdict)
        if v.approved:
            self.approved += 1
            self.msgbus.publish(APPROVED_TOPIC, ApprovedDecision(decision, verdict))
        else:
            self.rejected += 1

    def _kill_switch_alert(self, verdict: RiskVerdict) -> None:
        self.log.error(f"kill switch tripped: drawdown {verdict.observed} >= {verdict.limit}")
        publish_event(
            self,
            TradeMonitorAlert(
                event_id=self._ids.next(verdict.ts_event),
                ts_event=verdict.ts_event,
                ts_init=verdict.ts_init,
                source=self._source,
                causation_id=verdict.event_id,
                kind="kill_switch",
                severity="critical",
                message="drawdown kill switch tripped: only risk-reducing orders until reset",
                instrument_id=verdict.instrument_id,
                value=verdict.observed,
                threshold=verdict.limit,
            ),
        )
