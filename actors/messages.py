"""Messages the chain's actors pass each other on the Nautilus bus (not stored as such).

A :class:`Signal` is custom data wrapping its ``SignalGenerated`` event, so a strategy or
actor outside the chain subscribes to signals the Nautilus way
(``subscribe_data(signal_data_type(iid))``). An :class:`ApprovedDecision` goes from the
RiskActor to the ExecutionStrategy on :data:`APPROVED_TOPIC`; the events inside both are
the ones the journal stores, so ids and causation stay one chain.
"""

from nautilus_trader.core.data import Data
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.core.events import DecisionMade, RiskVerdict, SignalGenerated

APPROVED_TOPIC = "tapereader.approved"


class Signal(Data):
    """The ensemble's view of one instrument after one feature row."""

    __slots__ = ("event", "instrument_id")

    def __init__(self, instrument_id: InstrumentId, event: SignalGenerated) -> None:
        self.instrument_id = instrument_id
        self.event = event

    @property
    def ts_event(self) -> int:
        return self.event.ts_event

    @property
    def ts_init(self) -> int:
        return self.event.ts_init

    def __repr__(self) -> str:
        e = self.event
        return f"Signal({e.instrument_id}, p_up={e.p_up:.3f}, p_down={e.p_down:.3f})"


def signal_data_type(instrument_id: InstrumentId | str) -> DataType:
    """The data type the SignalActor publishes an instrument's signals under."""
    return DataType(Signal, metadata={"instrument_id": str(instrument_id)})


class ApprovedDecision:
    """A decision the RiskActor approved, with its verdict (the order's causes)."""

    __slots__ = ("decision", "verdict")

    def __init__(self, decision: DecisionMade, verdict: RiskVerdict) -> None:
        self.decision = decision
        self.verdict = verdict
