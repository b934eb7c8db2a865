"""What-if: decision and risk re-run over a run's recorded signals with other settings.

No features and no model are recomputed: each stored ``SignalGenerated`` already says what
the ensemble saw and where the market was (its bid and ask). The same decision rule and
risk engine the actors use run over them with the new policy and limits; an approved
decision is filled as a market order at the touch (the ask to buy, the bid to sell) with
the instrument's taker fee, into the same :class:`~tapereader.core.ledger.Ledger` the
TradeMonitorActor keeps. Run with the recorded settings, it shows how far that simple
fill model is from the engine's fills; run with others, it answers "what if".
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tapereader.actors.decision_actor import decide_on, decision_event
from tapereader.core.decision import DecisionPolicy, DecisionState
from tapereader.core.events import DecisionMade, DomainEvent, SignalGenerated, Source
from tapereader.core.ledger import Fill, Ledger
from tapereader.core.risk import MarketView, OrderIntent, RiskEngine, RiskLimits

_SOURCE = Source(component="tapereader.whatif", run_id="whatif")


@dataclass(frozen=True)
class InstrumentTerms:
    """What filling needs to know of an instrument: its fee and contract multiplier."""

    taker_fee: float = 0.0  # fraction of the notional
    multiplier: float = 1.0
    size_step: float = 0.0  # orders are rounded down to it (0: no rounding)


@dataclass
class WhatIfResult:
    """What the settings would have done with the same signals."""

    signals: int = 0
    decisions: Counter = field(default_factory=Counter)
    rejections: Counter = field(default_factory=Counter)
    fills: int = 0
    ledger: Ledger = field(default_factory=Ledger)

    def summary(self) -> dict[str, float]:
        led = self.ledger
        trades = led.closed_trades
        return {
            "signals": float(self.signals),
            "orders": float(self.fills),
            "rejected": float(sum(self.rejections.values())),
            "round_trips": float(len(trades)),
            "wins": float(sum(1 for t in trades if t.realized_pnl > 0)),
            "realized_pnl": led.realized_pnl,
            "unrealized_pnl": led.unrealized_pnl,
            "commissions": led.commissions,
            "max_drawdown": led.max_drawdown,
        }


def what_if(
    events: Iterable[DomainEvent],
    *,
    policies: Mapping[str, DecisionPolicy],
    limits: RiskLimits,
    terms: Mapping[str, InstrumentTerms],
    starting_equity: float,
) -> WhatIfResult:
    """Replay the ``SignalGenerated`` events among ``events`` through decide and risk."""
    signals = sorted(
        (e for e in events if isinstance(e, SignalGenerated)), key=lambda s: s.ts_event
    )
    multipliers = {k: t.multiplier for k, t in terms.items()}
    result = WhatIfResult(ledger=Ledger(multipliers=multipliers, starting_equity=starting_equity))
    risk = RiskEngine(limits)
    states: dict[str, DecisionState] = {}
    for s in signals:
        if s.instrument_id not in policies or s.bid is None or s.ask is None:
            continue
        result.signals += 1
        led = result.ledger
        led.mark(s.instrument_id, s.bid, s.ask, s.ts_event)
        state = states.setdefault(s.instrument_id, DecisionState())
        policy = policies[s.instrument_id]
        decided = decide_on(s, policy, state)
        if decided is None:
            continue
        result.decisions[decided[0].action] += 1
        if decided[0].action == "HOLD":
            continue
        d = decision_event(s, *decided, policy, ts_init=s.ts_event, source=_SOURCE)
        intent = OrderIntent(
            instrument_id=s.instrument_id,
            action=d.action,
            target=d.target_position,
            reference_price=d.reference_price,
            confidence=s.confidence,
            ts_ns=s.ts_event,
        )
        market = MarketView(bid=s.bid, ask=s.ask, ts_last_ns=s.ts_event)
        verdict = risk.check(intent, market, led.view())
        if not verdict.approved:
            result.rejections[verdict.rule or "unknown"] += 1
            continue
        _fill(result, d, s, terms[s.instrument_id])
    return result


def _fill(
    result: WhatIfResult, d: DecisionMade, s: SignalGenerated, terms: InstrumentTerms
) -> None:
    led = result.ledger
    delta = d.target_position - led.position(s.instrument_id)
    qty = abs(delta)
    if terms.size_step > 0:
        qty = (qty // terms.size_step) * terms.size_step
    if qty <= 0:
        return
    side = "BUY" if delta > 0 else "SELL"
    price = s.ask if side == "BUY" else s.bid
    assert price is not None  # checked by the caller
    led.apply_fill(
        Fill(
            instrument_id=s.instrument_id,
            side=side,
            quantity=qty,
            price=price,
            commission=terms.taker_fee * qty * price * terms.multiplier,
            ts_ns=s.ts_event,
            decision_id=d.event_id,
            signal_id=s.event_id,
            model_version=s.model_version,
            reference_price=d.reference_price,
            decision_ts_ns=s.ts_event,
        )
    )
    result.fills += 1
