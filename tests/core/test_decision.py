"""Decision fusion: entries, exits, reversals, hysteresis and the minimum hold."""

import msgspec
import pytest

from tapereader.core.decision import Decision, DecisionPolicy, DecisionState, SignalView, decide

POLICY = DecisionPolicy(enter=0.6, exit=0.5, min_edge=0.1, min_confidence=0.5, position_size=2.0)


def sig(p_up: float, p_down: float, confidence: float = 0.8, ts: int = 0) -> SignalView:
    return SignalView(p_up=p_up, p_down=p_down, confidence=confidence, ts_ns=ts)


def run(signals: list[SignalView], policy: DecisionPolicy = POLICY) -> list[Decision]:
    state = DecisionState()
    return [decide(policy, state, s) for s in signals]


def test_enter_long_and_short() -> None:
    (long,) = run([sig(0.65, 0.2)])
    assert (long.action, long.target_position) == ("BUY", 2.0)
    assert any("p_up 0.650" in r for r in long.reasons)
    (short,) = run([sig(0.2, 0.7)])
    assert (short.action, short.target_position) == ("SELL", -2.0)


@pytest.mark.parametrize(
    ("signal", "reason"),
    [
        (sig(0.59, 0.1), "no entry signal"),
        (sig(0.65, 0.6), "no entry signal"),
        (sig(0.9, 0.0, confidence=0.4), "confidence 0.400 < 0.5"),
    ],
)
def test_no_entry_below_threshold_edge_or_confidence(signal: SignalView, reason: str) -> None:
    (hold,) = run([signal])
    assert hold.action == "HOLD" and hold.target_position == 0.0 and hold.reasons == [reason]


def test_hysteresis_keeps_a_long_between_exit_and_enter() -> None:
    noisy = [sig(0.62, 0.2), sig(0.58, 0.3), sig(0.61, 0.3), sig(0.52, 0.4), sig(0.59, 0.3)]
    actions = [d.action for d in run(noisy)]
    assert actions == ["BUY", "HOLD", "HOLD", "HOLD", "HOLD"]


def test_exit_below_the_exit_threshold() -> None:
    out = run([sig(0.62, 0.2), sig(0.49, 0.3)])
    assert out[1].action == "FLATTEN" and out[1].target_position == 0.0
    assert out[1].reasons == ["p_up 0.490 < exit 0.5"]


def test_a_strong_opposite_signal_reverses_in_one_step() -> None:
    out = run([sig(0.62, 0.2), sig(0.1, 0.75)])
    assert out[1].action == "SELL" and out[1].target_position == -2.0
    assert out[1].reasons[0] == "reversal"


def test_minimum_hold_time() -> None:
    policy = msgspec.structs.replace(POLICY, min_hold_ns=1_000)
    out = run([sig(0.62, 0.2, ts=0), sig(0.1, 0.8, ts=999), sig(0.1, 0.8, ts=1_000)], policy)
    assert [d.action for d in out] == ["BUY", "HOLD", "SELL"]
    assert out[1].target_position == 2.0


def test_flat_and_short_symmetry() -> None:
    out = run([sig(0.2, 0.65), sig(0.3, 0.55), sig(0.3, 0.45)])
    assert [d.action for d in out] == ["SELL", "HOLD", "FLATTEN"]


def test_a_policy_without_hysteresis_is_refused() -> None:
    with pytest.raises(ValueError, match="hysteresis"):
        DecisionPolicy(enter=0.5, exit=0.5)
    with pytest.raises(msgspec.ValidationError, match="hysteresis"):
        msgspec.convert({"enter": 0.55, "exit": 0.6}, DecisionPolicy)
    with pytest.raises(msgspec.ValidationError, match="entr"):
        msgspec.convert({"entr": 0.55}, DecisionPolicy)
