"""Domain events: one immutable, tagged msgspec Struct per domain fact.

Every event carries the same envelope (``event_id``, ``ts_event``, ``ts_init``,
``source``, ``causation_id``, ``correlation_id``, ``schema_version``) and a ``type``
tag, so any stored or received event decodes from bytes through :data:`AnyEvent`
without knowing its class beforehand.

Evolving a schema: add the new field *with a default* and raise the class's
``schema_version`` default. Old events keep decoding (the field takes its default)
and still say which version they were written with. Removing or retyping a field
is a new event class, never an edit.
"""

import datetime as dt
import functools
import os
import time
import uuid
from typing import Annotated, ClassVar, Literal, Union

import msgspec

# Bounds reject NaN and infinities when an event is validated (decoded): every number
# in an event is finite, which is also what lets JSON carry it exactly.
_MAX = 1.7976931348623157e308
Finite = Annotated[float, msgspec.Meta(ge=-_MAX, le=_MAX)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Nanos = Annotated[int, msgspec.Meta(ge=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0, le=_MAX)]
Positive = Annotated[float, msgspec.Meta(gt=0.0, le=_MAX)]
Side = Literal["BUY", "SELL"]
PositionSide = Literal["LONG", "SHORT", "FLAT"]
Severity = Literal["info", "warning", "critical"]


def new_event_id() -> uuid.UUID:
    """A time-ordered UUID (version 7, RFC 9562).

    Ids that grow with time keep the store's primary-key index append-mostly, which
    makes batched appends several times cheaper than random (version 4) ids.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 64 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """Who wrote an event: the component and the run it belongs to."""

    component: str
    run_id: str


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """The envelope shared by every domain event.

    Subclasses repeat ``kw_only=True``: msgspec applies it per class, not by inheritance.
    """

    # Stream category: events land in the stream ``<category>/<key>/<UTC day>``.
    category: ClassVar[str] = "misc"

    ts_event: Nanos
    ts_init: Nanos
    source: Source
    event_id: uuid.UUID = msgspec.field(default_factory=new_event_id)
    causation_id: uuid.UUID | None = None
    correlation_id: uuid.UUID | None = None
    schema_version: int = 1

    def stream_key(self) -> str:
        """The part of the stream name that partitions a category (an instrument, a model...)."""
        return "all"

    @property
    def stream(self) -> str:
        """The append-only log this event belongs to: category, key and UTC day."""
        return stream_name(self.category, self.stream_key(), self.ts_event)


def stream_name(category: str, key: str, ts_ns: int) -> str:
    """Build the stream name for ``category``/``key`` on the UTC day of ``ts_ns``."""
    return f"{category}/{key}/{_utc_day(ts_ns // _NS_PER_DAY)}"


_NS_PER_DAY = 86_400 * 1_000_000_000


@functools.lru_cache(maxsize=4096)
def _utc_day(day_index: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day_index)).isoformat()


class _InstrumentEvent(DomainEvent, kw_only=True):
    instrument_id: str

    def stream_key(self) -> str:
        return self.instrument_id


# --- signals, decisions, risk ---------------------------------------------------------


class SignalGenerated(_InstrumentEvent, kw_only=True):
    """The ensemble's view of an instrument's next move after one tick."""

    category: ClassVar[str] = "signals"

    model_version: str
    feature_spec_hash: str
    horizon: str
    p_up: Probability
    p_down: Probability
    p_flat: Probability
    confidence: Probability
    members: dict[str, Probability] = {}
    provider: str = "CPUExecutionProvider"
    regime: str = ""
    status: Literal["ready", "degraded"] = "ready"
    bid: Positive | None = None  # the market the signal saw (what-if runs need it)
    ask: Positive | None = None
    window: int = 0  # feature rows the LSTM saw


class DecisionMade(_InstrumentEvent, kw_only=True):
    """The decision fused from the latest signals, with its reasons."""

    category: ClassVar[str] = "decisions"

    action: Literal["BUY", "SELL", "HOLD", "FLATTEN"]
    target_position: Finite
    reference_price: Positive
    reasons: list[str] = []
    thresholds: dict[str, Finite] = {}
    stance: PositionSide = "FLAT"
    confidence: Probability | None = None
    model_version: str = ""
    bid: Positive | None = None
    ask: Positive | None = None


class RiskVerdict(_InstrumentEvent, kw_only=True):
    """Whether a decision may become an order; a rejection names the rule and numbers."""

    category: ClassVar[str] = "risk"

    decision_id: uuid.UUID
    approved: bool
    rule: str | None = None
    observed: Finite | None = None
    limit: Finite | None = None
    detail: str = ""


# --- orders and positions -------------------------------------------------------------


class _OrderEvent(_InstrumentEvent, kw_only=True):
    category: ClassVar[str] = "orders"

    client_order_id: str


class OrderSubmitted(_OrderEvent, kw_only=True):
    """An order left the strategy for the venue."""

    side: Side
    order_type: Literal["MARKET", "LIMIT"]
    quantity: Positive
    price: Positive | None = None
    time_in_force: str = "GTC"
    reference_price: Positive | None = None  # the decision's price, for slippage
    decision_id: uuid.UUID | None = None


class OrderAccepted(_OrderEvent, kw_only=True):
    """The venue accepted an order."""

    venue_order_id: str


class OrderRejected(_OrderEvent, kw_only=True):
    """The venue or the engine rejected an order."""

    reason: str


class OrderFilled(_OrderEvent, kw_only=True):
    """An order was filled, fully or partly."""

    venue_order_id: str
    trade_id: str
    side: Side
    last_qty: Positive
    last_px: Positive
    commission: Finite
    commission_currency: str
    liquidity_side: Literal["MAKER", "TAKER", "NO_LIQUIDITY_SIDE"] = "TAKER"


class OrderCancelled(_OrderEvent, kw_only=True):
    """An order was cancelled before it was fully filled."""

    reason: str = ""


class _PositionEvent(_InstrumentEvent, kw_only=True):
    category: ClassVar[str] = "positions"

    position_id: str


class PositionOpened(_PositionEvent, kw_only=True):
    """A position went from flat to long or short."""

    side: PositionSide
    quantity: NonNegative
    avg_px_open: Positive


class PositionChanged(_PositionEvent, kw_only=True):
    """An open position changed size."""

    side: PositionSide
    quantity: NonNegative
    avg_px_open: Positive
    realized_pnl: Finite
    unrealized_pnl: Finite


class PositionClosed(_PositionEvent, kw_only=True):
    """A position returned to flat."""

    realized_pnl: Finite
    avg_px_open: Positive
    avg_px_close: Positive
    duration_ns: Nanos


class PnlSnapshot(DomainEvent, kw_only=True):
    """Marked-to-market account state at one moment."""

    category: ClassVar[str] = "pnl"

    realized_pnl: Finite
    unrealized_pnl: Finite
    exposure: Finite
    drawdown: NonNegative
    currency: str = "USD"
    equity: Finite | None = None
    positions: dict[str, Finite] = {}  # signed units per instrument
    marks: dict[str, Finite] = {}  # the mid each position was marked at


class TradeMonitorAlert(DomainEvent, kw_only=True):
    """Something a trader must look at: drawdown, slippage, rejections, stale data."""

    category: ClassVar[str] = "alerts"

    kind: Literal[
        "drawdown",
        "slippage",
        "rejected_order",
        "stale_data",
        "kill_switch",
        "feed",
        "model",
        "other",
    ]
    severity: Severity
    message: str
    instrument_id: str | None = None
    value: Finite | None = None
    threshold: Finite | None = None


class DecisionOutcome(_InstrumentEvent, kw_only=True):
    """What one position-changing decision realized once its position was closed or
    reversed: the P&L learning and attribution use (net of commissions)."""

    category: ClassVar[str] = "outcomes"

    decision_id: uuid.UUID
    signal_id: uuid.UUID | None = None
    model_version: str = ""
    side: Literal["LONG", "SHORT"]
    quantity: Positive
    entry_px: Positive
    exit_px: Positive
    realized_pnl: Finite
    commission: Finite
    holding_ns: Nanos
    entry_slippage_bps: Finite | None = None


# --- models ---------------------------------------------------------------------------


class _ModelEvent(DomainEvent, kw_only=True):
    category: ClassVar[str] = "models"

    model_version: str

    def stream_key(self) -> str:
        return "registry"


class ModelTrained(_ModelEvent, kw_only=True):
    """A model bundle was trained and stored in the registry."""

    feature_spec_hash: str
    data_start_ns: Nanos
    data_end_ns: Nanos
    label_definition: str
    metrics: dict[str, Finite]
    sha256: str
    artifact: str


class ModelPromoted(_ModelEvent, kw_only=True):
    """A candidate beat the incumbent on the same held-out data and became active."""

    previous_version: str | None
    metric: str
    candidate_score: Finite
    incumbent_score: Finite | None


class ModelRejected(_ModelEvent, kw_only=True):
    """A candidate did not beat the incumbent and stays inactive."""

    incumbent_version: str | None
    metric: str
    candidate_score: Finite
    incumbent_score: Finite | None
    reason: str


class ModelRolledBack(_ModelEvent, kw_only=True):
    """The active model was replaced by an earlier one (``model_version`` is the restored one)."""

    from_version: str
    reason: str


class EnsembleWeightsAdapted(_ModelEvent, kw_only=True):
    """One bounded online step of the ensemble's member weights from realized outcomes."""

    regime: str
    outcomes: int
    losses: list[Finite]
    before: list[Probability]
    after: list[Probability]
    clipped: bool


class DriftDetected(_ModelEvent, kw_only=True):
    """Live inputs or outputs moved away from what the model was trained on."""

    statistic: str
    subject: str
    value: Finite
    threshold: Finite
    window: int


# --- runs and data --------------------------------------------------------------------


class _RunEvent(DomainEvent, kw_only=True):
    category: ClassVar[str] = "runs"

    def stream_key(self) -> str:
        return self.source.run_id


class RunStarted(_RunEvent, kw_only=True):
    """A backtest, live session, replay or training run began."""

    kind: Literal["backtest", "live", "paper", "replay", "training", "ingest", "scan"]
    config_hash: str
    parameters: dict[str, str] = {}


class RunCompleted(_RunEvent, kw_only=True):
    """A run ended; ``status`` says how."""

    status: Literal["succeeded", "failed", "interrupted"]
    summary: dict[str, Finite] = {}
    error: str | None = None


class DataIngested(DomainEvent, kw_only=True):
    """A source file was loaded into the tick catalog, whole."""

    category: ClassVar[str] = "ingest"

    path: str
    data_format: str
    sha256: str
    instrument_ids: list[str]
    rows_read: dict[str, int]
    rows_written: dict[str, int]
    rows_rejected: dict[str, int] = {}
    start_ns: Nanos | None = None
    end_ns: Nanos | None = None


# --- scanner analysis -----------------------------------------------------------------


class _ScannerEvent(DomainEvent, kw_only=True):
    category: ClassVar[str] = "scanners"

    file_sha256: str

    def stream_key(self) -> str:
        return self.file_sha256[:16]


class ScannerFileSubmitted(_ScannerEvent, kw_only=True):
    """A multi-scanner source file was handed in for splitting."""

    path: str
    size_bytes: int
    line_count: int


class ScannerBoundary(msgspec.Struct, frozen=True, kw_only=True):
    """Where one scanner lives in its source file, and how sure the detectors are."""

    name: str
    kind: str
    start_line: int
    end_line: int
    confidence: Probability | None = None  # schema 2; None in schema-1 events
    needs_review: bool = False  # schema 2


class ScannerBoundariesDetected(_ScannerEvent, kw_only=True):
    """The scanners found in a file and where each one starts and ends."""

    scanners: list[ScannerBoundary]
    schema_version: int = 2  # 2: boundaries carry confidence and needs_review


class ScannerFileRejected(_ScannerEvent, kw_only=True):
    """A submitted file could not be analysed (not Python, not UTF-8, a syntax error...)."""

    path: str
    message: str
    line: int | None = None


class ScannerParametersIsolated(_ScannerEvent, kw_only=True):
    """One scanner's own parameters, with values as source text (secrets redacted)."""

    scanner: str
    parameters: dict[str, str]


class ScannerContaminationFound(_ScannerEvent, kw_only=True):
    """A scanner reads a name whose value belongs to another scanner."""

    scanner: str
    name: str
    owner: str
    line: int
    detail: str


class ScannerSecurityFinding(_ScannerEvent, kw_only=True):
    """Dangerous code found before anything runs."""

    rule: str
    severity: Severity
    line: int
    column: int
    message: str
    scanner: str | None = None


class ScannerGenerated(_ScannerEvent, kw_only=True):
    """A standalone scanner module was written."""

    scanner: str
    output_path: str
    output_sha256: str


class ScannerIsolationProven(_ScannerEvent, kw_only=True):
    """The runtime proof of one isolated scanner: its bound values and outputs checked."""

    scanner: str
    status: Literal["proven", "differs", "skipped", "error"]
    values_checked: int
    reason: str = ""
    values_mismatched: list[str] = []


EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    SignalGenerated,
    DecisionMade,
    RiskVerdict,
    OrderSubmitted,
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCancelled,
    PositionOpened,
    PositionChanged,
    PositionClosed,
    PnlSnapshot,
    TradeMonitorAlert,
    DecisionOutcome,
    ModelTrained,
    ModelPromoted,
    ModelRejected,
    ModelRolledBack,
    EnsembleWeightsAdapted,
    DriftDetected,
    RunStarted,
    RunCompleted,
    DataIngested,
    ScannerFileSubmitted,
    ScannerBoundariesDetected,
    ScannerParametersIsolated,
    ScannerContaminationFound,
    ScannerSecurityFinding,
    ScannerGenerated,
    ScannerFileRejected,
    ScannerIsolationProven,
)

AnyEvent = Union[EVENT_TYPES]  # noqa: UP007 - a runtime union built from the tuple
"""Every concrete event; decode with ``type=AnyEvent`` to get the right class back."""
