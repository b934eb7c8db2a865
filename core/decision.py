"""Decision fusion: from the latest signal of an instrument to a target position.

A stance (long, short or flat) changes only when the signal crosses the entry threshold
and stays until it falls back past the lower exit threshold: the gap between the two is
the hysteresis that keeps noise around one level from flipping the position. A minimum
holding time adds a second guard, and a flip always passes through a full reversal, not
through flat and back.
"""

from typing import Annotated, Literal

import msgspec

_Prob = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]

Stance = Literal["LONG", "SHORT", "FLAT"]
Action = Literal["BUY", "SELL", "HOLD", "FLATTEN"]


class DecisionPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds on the ensemble's probabilities, and the size of a position."""

    enter: _Prob = 0.6
    """Enter long when p_up reaches this (short: p_down)."""
    exit: _Prob = 0.5
    """Leave a long when p_up falls below this (short: p_down); below ``enter``."""
    min_edge: _Prob = 0.1
    """p_up - p_down (or the reverse) must be at least this to enter."""
    min_confidence: _Prob = 0.5
    min_hold_ns: Annotated[int, msgspec.Meta(ge=0)] = 0
    position_size: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0

    def __post_init__(self) -> None:
        if self.exit >= self.enter:
            raise ValueError(f"exit ({self.exit}) must be below enter ({self.enter}): hysteresis")


class SignalView(msgspec.Struct, frozen=True, kw_only=True):
    """The part of a signal a decision uses."""

    p_up: float
    p_down: float
    confidence: float
    ts_ns: int


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome for one signal: the action, the target and why."""

    action: Action
    stance: Stance
    target_position: float
    reasons: list[str]


class DecisionState(msgspec.Struct, kw_only=True):
    """Per-instrument memory: current stance and when it was taken."""

    stance: Stance = "FLAT"
    since_ns: int = 0


def _wanted(policy: DecisionPolicy, s: SignalView) -> tuple[Stance | None, list[str]]:
    """The stance a fresh entry would take, or None, with the reasons."""
    if s.confidence < policy.min_confidence:
        return None, [f"confidence {s.confidence:.3f} < {policy.min_confidence}"]
    if s.p_up >= policy.enter and s.p_up - s.p_down >= policy.min_edge:
        return "LONG", [
            f"p_up {s.p_up:.3f} >= enter {policy.enter}",
            f"edge {s.p_up - s.p_down:.3f} >= {policy.min_edge}",
        ]
    if s.p_down >= policy.enter and s.p_down - s.p_up >= policy.min_edge:
        return "SHORT", [
            f"p_down {s.p_down:.3f} >= enter {policy.enter}",
            f"edge {s.p_down - s.p_up:.3f} >= {policy.min_edge}",
        ]
    return None, []


def decide(policy: DecisionPolicy, state: DecisionState, s: SignalView) -> Decision:
    """Fuse one signal into a decision and update ``state`` in place."""
    wanted, reasons = _wanted(policy, s)
    held_ns = s.ts_ns - state.since_ns
    if state.stance != "FLAT" and held_ns < policy.min_hold_ns:
        return _hold(state, policy, [f"held {held_ns} ns < min_hold {policy.min_hold_ns} ns"])

    if state.stance == "FLAT":
        if wanted is None:
            return _hold(state, policy, reasons or ["no entry signal"])
        return _move(state, policy, wanted, s.ts_ns, reasons)

    opposite: Stance = "SHORT" if state.stance == "LONG" else "LONG"
    if wanted == opposite:
        return _move(state, policy, opposite, s.ts_ns, ["reversal", *reasons])
    p_own = s.p_up if state.stance == "LONG" else s.p_down
    if p_own < policy.exit:
        side = "p_up" if state.stance == "LONG" else "p_down"
        return _move(state, policy, "FLAT", s.ts_ns, [f"{side} {p_own:.3f} < exit {policy.exit}"])
    return _hold(state, policy, [f"{state.stance.lower()} stance holds above exit {policy.exit}"])


def _target(policy: DecisionPolicy, stance: Stance) -> float:
    return {"LONG": policy.position_size, "SHORT": -policy.position_size, "FLAT": 0.0}[stance]


def _hold(state: DecisionState, policy: DecisionPolicy, reasons: list[str]) -> Decision:
    return Decision(
        action="HOLD",
        stance=state.stance,
        target_position=_target(policy, state.stance),
        reasons=reasons,
    )


def _move(
    state: DecisionState, policy: DecisionPolicy, to: Stance, ts_ns: int, reasons: list[str]
) -> Decision:
    action: Action = "FLATTEN" if to == "FLAT" else ("BUY" if to == "LONG" else "SELL")
    state.stance, state.since_ns = to, ts_ns
    return Decision(action=action, stance=to, target_position=_target(policy, to), reasons=reasons)
