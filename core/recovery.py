"""What a restarted node takes over from its previous run: read from the event store alone.

After a crash (SIGKILL, power loss) the store holds every event the journal wrote before
the end. :func:`recover` folds one run's events into the state the chain needs to go on
as if it had not stopped: each instrument's position and P&L (the same ledger the trade
monitor keeps), each instrument's decision stance and since when, whether the kill switch
was tripped, and how far the run got. Events the journal had not yet written are gone with
the process, and so is everything they would have changed: the venue's orders died too.
"""

import uuid
from collections.abc import Iterable, Mapping

import msgspec

from tapereader.core.decision import DecisionState
from tapereader.core.events import (
    DecisionMade,
    DomainEvent,
    RunCompleted,
    RunStarted,
    SignalGenerated,
    TradeMonitorAlert,
)
from tapereader.core.ledger import Ledger, ledger_from_events


class Recovered(msgspec.Struct, kw_only=True):
    """The state of one earlier run, as its stored events tell it."""

    run_id: str
    completed: bool  # RunCompleted was written: a clean stop, not a crash
    events: int
    positions: dict[str, float]
    avg_px: dict[str, float]
    realized_pnl: float
    stances: dict[str, DecisionState]
    kill_switch_tripped: bool
    last_signal: dict[str, uuid.UUID]
    last_ts_event: int

    def describe(self) -> str:
        """One line for the log and the new run's parameters."""
        held = ", ".join(f"{k} {v:+g}" for k, v in self.positions.items() if v) or "flat"
        stances = ", ".join(f"{k} {s.stance}" for k, s in self.stances.items()) or "none"
        how = "stopped cleanly" if self.completed else "crashed"
        return (
            f"run {self.run_id} ({how}, {self.events} events): positions {held}; realized "
            f"{self.realized_pnl:.2f}; stances {stances}; kill switch "
            f"{'TRIPPED' if self.kill_switch_tripped else 'not tripped'}"
        )


def last_run(events: Iterable[DomainEvent], *, kinds: tuple[str, ...]) -> str | None:
    """The run id of the latest ``RunStarted`` of one of ``kinds`` (store order)."""
    found = None
    for e in events:
        if isinstance(e, RunStarted) and e.kind in kinds:
            found = e.source.run_id
    return found


def recover(
    events: Iterable[DomainEvent],
    run_id: str,
    *,
    multipliers: Mapping[str, float] | None = None,
    starting_equity: float = 0.0,
) -> Recovered:
    """Fold the stored events of ``run_id`` into what the next run takes over."""
    mine = [e for e in events if e.source.run_id == run_id]
    ledger: Ledger = ledger_from_events(
        mine, multipliers=multipliers, starting_equity=starting_equity
    )
    stances: dict[str, DecisionState] = {}
    last_signal: dict[str, uuid.UUID] = {}
    tripped = False
    for e in mine:
        if isinstance(e, DecisionMade) and e.action != "HOLD":
            stances[e.instrument_id] = DecisionState(stance=e.stance, since_ns=e.ts_event)
        elif isinstance(e, SignalGenerated):
            last_signal[e.instrument_id] = e.event_id
        elif isinstance(e, TradeMonitorAlert) and e.kind == "kill_switch":
            tripped = True
    instruments = set(ledger.positions) | set(stances)
    return Recovered(
        run_id=run_id,
        completed=any(isinstance(e, RunCompleted) for e in mine),
        events=len(mine),
        positions={k: ledger.position(k) for k in sorted(instruments)},
        avg_px={k: v for k in sorted(instruments) if (v := ledger.avg_px(k)) is not None},
        realized_pnl=ledger.realized_pnl,
        stances=stances,
        kill_switch_tripped=tripped,
        last_signal=last_signal,
        last_ts_event=max((e.ts_event for e in mine), default=0),
    )
