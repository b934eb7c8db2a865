"""DecisionActor: the latest signal of an instrument becomes a decision, with hysteresis.

The rule is :func:`tapereader.core.decision.decide`; this actor keeps one
:class:`~tapereader.core.decision.DecisionState` per instrument and turns each signal into a
``DecisionMade`` event caused by it. The decision carries the market the signal saw, and a
reference price: the ask to buy, the bid to sell, the mid to hold.
"""

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.actors.bus import identity, publish_event
from tapereader.actors.messages import Signal, signal_data_type
from tapereader.core.decision import (
    Decision,
    DecisionPolicy,
    DecisionState,
    SignalView,
    decide,
)
from tapereader.core.events import DecisionMade, SignalGenerated
from tapereader.core.latency import LatencyRecorder


class DecisionActorConfig(ActorConfig, frozen=True):
    """Instruments, the policy (``policies`` overrides it per instrument: position sizes
    differ between a BTC perpetual and EUR/USD), and whether HOLDs are journaled."""

    instrument_ids: list[str]
    policy: DecisionPolicy = DecisionPolicy()
    policies: dict[str, DecisionPolicy] = msgspec.field(default_factory=dict)
    emit_holds: bool = True
    stances: dict[str, DecisionState] = msgspec.field(default_factory=dict)  # recovered
    run_id: str = ""
    reproducible_ids: bool = False


def reference_price(action: str, stance_before: str, bid: float, ask: float) -> float:
    """The price a decision expects to trade at: buying pays the ask, selling gets the bid."""
    if action == "BUY" or (action == "FLATTEN" and stance_before == "SHORT"):
        return ask
    if action == "SELL" or action == "FLATTEN":
        return bid
    return (bid + ask) / 2.0


def decide_on(
    signal: SignalGenerated, policy: DecisionPolicy, state: DecisionState
) -> tuple[Decision, str] | None:
    """Decide on one signal (updating ``state``): the decision and the stance before it;
    None when the signal has no market to trade at."""
    if signal.bid is None or signal.ask is None:
        return None
    before = state.stance
    view = SignalView(
        p_up=signal.p_up, p_down=signal.p_down, confidence=signal.confidence, ts_ns=signal.ts_event
    )
    return decide(policy, state, view), before


def decision_event(
    signal: SignalGenerated,
    decision: Decision,
    before: str,
    policy: DecisionPolicy,
    **envelope: object,
) -> DecisionMade:
    """The ``DecisionMade`` event of ``decision``, caused by ``signal``."""
    assert signal.bid is not None and signal.ask is not None  # decide_on checked
    return DecisionMade(
        ts_event=signal.ts_event,
        causation_id=signal.event_id,
        correlation_id=signal.correlation_id,
        instrument_id=signal.instrument_id,
        action=decision.action,
        target_position=decision.target_position,
        reference_price=reference_price(decision.action, before, signal.bid, signal.ask),
        reasons=decision.reasons,
        thresholds={
            "enter": policy.enter,
            "exit": policy.exit,
            "min_edge": policy.min_edge,
            "min_confidence": policy.min_confidence,
        },
        stance=decision.stance,
        confidence=signal.confidence,
        model_version=signal.model_version,
        bid=signal.bid,
        ask=signal.ask,
        **envelope,  # type: ignore[arg-type]
    )


class DecisionActor(Actor):
    """Fuses each instrument's signals into decisions."""

    def __init__(self, config: DecisionActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._source, self._ids = identity(str(self.id), config.run_id, config.reproducible_ids)
        self._states: dict[str, DecisionState] = {}
        self._policies = {i: config.policies.get(i, config.policy) for i in config.instrument_ids}
        self.latency: LatencyRecorder | None = None
        self.decisions = 0

    def on_start(self) -> None:
        for raw in self._cfg.instrument_ids:
            known = self._cfg.stances.get(raw)
            self._states[raw] = (
                DecisionState(stance=known.stance, since_ns=known.since_ns)
                if known
                else DecisionState()
            )
            iid = InstrumentId.from_str(raw)
            self.subscribe_data(signal_data_type(iid), instrument_id=iid)

    def on_stop(self) -> None:
        """Nothing to release: the engine drops the actor's subscriptions itself."""

    def state_of(self, instrument_id: str) -> DecisionState:
        return self._states[instrument_id]

    def on_data(self, data: Signal) -> None:
        """One signal: decide, and publish the decision (HOLDs only when configured)."""
        signal = data.event
        policy = self._policies[signal.instrument_id]
        outcome = decide_on(signal, policy, self._states[signal.instrument_id])
        if outcome is None:
            self.log.warning(f"{signal.instrument_id}: signal without a market, no decision")
            return
        decision, before = outcome
        self.decisions += 1
        if self.latency is not None:
            self.latency.hop("decision")
        if decision.action == "HOLD" and not self._cfg.emit_holds:
            return
        event = decision_event(
            signal,
            decision,
            before,
            policy,
            event_id=self._ids.next(signal.ts_event),
            ts_init=self.clock.timestamp_ns(),
            source=self._source,
        )
        publish_event(self, event)
