"""The backtest report a trader reads, computed from a run's domain events alone.

Everything here is derived from the events the run wrote (signals, decisions, risk
verdicts, orders, fills, P&L snapshots, alerts, decision outcomes), so the same report comes
out right after a run and later from the event store. The one input that is not an event is
in-process latency: wall-clock timings are measured by the process and handed in as
:class:`LatencyStats`, because putting them in events would make the event stream differ
from one replay to the next.

Events may arrive in any order and more than once (a store read back, a stream that wrote a
fill twice): they are de-duplicated by ``event_id`` and ordered by ``(ts_event, position)``.
Every number that cannot be computed (a win rate with no trades, a Sharpe ratio of one
trade) is ``None`` with the reason in ``Totals.undefined``, never NaN or a silent 0.
"""

import datetime as dt
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import msgspec
import numpy as np

from tapereader.core import events as ev

Z95 = 1.959963984540054  # two-sided 95% normal quantile, for the Wilson interval
_NO_MODEL = "(unversioned)"
_NO_SIGNAL = "(no signal)"

# --- latency ---------------------------------------------------------------------------


class HistogramBucket(msgspec.Struct, frozen=True):
    """Samples with ``low_us <= value < high_us``."""

    low_us: float
    high_us: float
    count: int


class LatencySummary(msgspec.Struct, frozen=True, kw_only=True):
    """One hop's latency distribution in microseconds; the quantiles are ``None`` with no
    samples."""

    count: int
    mean_us: float | None = None
    p50_us: float | None = None
    p90_us: float | None = None
    p99_us: float | None = None
    max_us: float | None = None
    buckets: list[HistogramBucket] = []


class LatencyStats(msgspec.Struct, frozen=True):
    """Latency summaries by hop name (``"features"``, ``"ensemble"``, ``"tick_to_order"``...),
    in the order the hops were given."""

    hops: dict[str, LatencySummary]


# The R10 preferred numbers: ten steps a decade, each about 26% wider than the last.
_R10 = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)


def _bucket_edges_us(max_us: float) -> list[float]:
    # A fixed logarithmic ladder rather than edges fitted to the data: histograms of two runs
    # (or two hops) then share edges and can be compared bar by bar.
    edges = [0.0]
    decade = 1.0
    while edges[-1] <= max_us:
        for m in _R10:
            edges.append(round(m * decade, 6))
            if edges[-1] > max_us:
                break
        decade *= 10.0
    return edges


def _summarize_ns(samples: Sequence[int] | np.ndarray) -> LatencySummary:
    ns = np.asarray(samples, dtype=np.int64).ravel()
    if ns.size == 0:
        return LatencySummary(count=0)
    us = ns / 1_000.0
    p50, p90, p99 = np.percentile(us, [50.0, 90.0, 99.0])
    lo, hi = float(us.min()), float(us.max())
    edges = _bucket_edges_us(hi)
    if lo < 0.0:  # exchange clocks can disagree; keep such samples visible, not dropped
        edges.insert(0, lo)
    counts = np.histogram(us, bins=np.asarray(edges))[0]
    # np.histogram closes its last bin; the ladder's last edge is always above the maximum,
    # so every bucket really is [low, high).
    first = int(np.flatnonzero(counts)[0])
    buckets = [
        HistogramBucket(edges[i], edges[i + 1], int(counts[i])) for i in range(first, len(counts))
    ]
    return LatencySummary(
        count=int(ns.size),
        mean_us=_r(float(us.mean())),
        p50_us=_r(float(p50)),
        p90_us=_r(float(p90)),
        p99_us=_r(float(p99)),
        max_us=_r(hi),
        buckets=buckets,
    )


def latency_stats(samples: Mapping[str, Sequence[int] | np.ndarray]) -> LatencyStats:
    """Summarize wall-clock latency samples (nanoseconds) per hop.

    A hop with no samples is kept with ``count=0`` so a report says it was measured and empty.
    """
    return LatencyStats(hops={str(hop): _summarize_ns(ns) for hop, ns in samples.items()})


def _r(x: float, digits: int = 3) -> float:
    # Rounded at the source so JSON and HTML do not carry float noise from the last bits.
    return round(x, digits)


# --- report data ------------------------------------------------------------------------


class Curve(msgspec.Struct, frozen=True):
    """A time series: parallel lists of exchange timestamps (ns) and values."""

    ts_ns: list[int]
    values: list[float]


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """One closed trade, from a ``DecisionOutcome``; ``realized_pnl`` is net of commissions."""

    decision_id: str
    signal_id: str | None
    model_version: str
    instrument_id: str
    side: str
    quantity: float
    entry_ns: int
    exit_ns: int
    entry_px: float
    exit_px: float
    realized_pnl: float
    commission: float
    holding_ns: int
    entry_slippage_bps: float | None
    return_frac: float  # realized_pnl / entry notional


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One fill with its slippage against the decision's reference price.

    ``slippage_bps`` is positive when the fill was worse than the reference (a buy above it,
    a sell below it); ``None`` when the order or its reference price is unknown.
    """

    ts_ns: int
    instrument_id: str
    client_order_id: str
    trade_id: str
    side: str
    quantity: float
    price: float
    reference_price: float | None
    slippage_bps: float | None
    commission: float
    commission_currency: str
    liquidity_side: str
    decision_id: str | None
    decision_to_fill_ns: int | None  # exchange time, fill.ts_event - decision.ts_event


class SlippageStats(msgspec.Struct, frozen=True, kw_only=True):
    """Slippage of the fills that have a reference price, in basis points."""

    count: int
    mean_bps: float
    notional_weighted_bps: float
    median_bps: float
    p90_bps: float
    worst_bps: float
    best_bps: float


class PnlGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Closed-trade P&L (net of commissions) of one group of trades."""

    key: str
    trades: int
    wins: int
    net_pnl: float
    commissions: float
    win_rate: float | None
    mean_pnl: float | None


class SignalPnl(PnlGroup, frozen=True, kw_only=True):
    """P&L of the trades one signal led to, with what the signal said when it is known."""

    instrument_id: str | None = None
    regime: str | None = None
    direction: str | None = None  # "up", "down" or "none" (flat or a tie)
    confidence: float | None = None


class HitRate(msgspec.Struct, frozen=True, kw_only=True):
    """Directional hit rate of the signals against the mid ``horizon`` signals later.

    A signal's call is its lean: up when p_up > p_down, down when below (a cost-aware model's
    p_flat is usually the largest; the lean is what decisions act on). Every signal lands in
    exactly one of: ``undirected`` (p_up == p_down), ``unresolved`` (fewer than ``horizon``
    later signals of its instrument), ``unpriced`` (no bid/ask on it or on the later
    signal), ``unchanged`` (the mid did not move; neither right nor wrong), or scored
    (``n``, of which ``hits`` right).
    """

    horizon: int
    n: int
    hits: int
    rate: float | None
    low: float | None  # 95% Wilson interval
    high: float | None
    undirected: int
    unresolved: int
    unpriced: int
    unchanged: int


class SignalStats(msgspec.Struct, frozen=True, kw_only=True):
    """What the ensemble said over the run."""

    count: int
    mean_confidence: float | None
    degraded: int
    by_model: dict[str, int]
    regimes: dict[str, int]
    hit_rate: HitRate


class RiskRejection(msgspec.Struct, frozen=True, kw_only=True):
    """Decisions the risk rules refused, by rule, with the first refusal as the example."""

    rule: str
    count: int
    instrument_id: str
    observed: float | None
    limit: float | None
    detail: str


class OrderRejection(msgspec.Struct, frozen=True, kw_only=True):
    """Orders the venue or engine rejected, by reason."""

    reason: str
    count: int
    instruments: list[str]


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """A trade-monitor alert."""

    ts_ns: int
    kind: str
    severity: str
    message: str
    instrument_id: str | None
    value: float | None
    threshold: float | None


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """Headline numbers over closed trades (``DecisionOutcome``), net of commissions.

    A ``None`` metric is undefined for this run; ``undefined`` says why.
    """

    trades: int
    wins: int
    losses: int
    net_pnl: float
    gross_pnl: float  # before commissions
    commissions: float
    win_rate: float | None
    profit_factor: float | None  # gross profit / gross loss
    sharpe_per_trade: float | None  # mean / std of per-trade returns; not annualised
    expectancy: float | None  # mean net P&L per trade
    avg_win: float | None
    avg_loss: float | None
    largest_win: float | None
    largest_loss: float | None
    mean_holding_ns: int | None
    fills: int
    fill_notional: float
    fill_commissions: dict[str, float]  # every fill's commission, by currency
    undefined: dict[str, str]


class RunReport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the report shows, as data (``write_json`` stores it as is)."""

    run_id: str
    kind: str | None
    status: str | None
    instruments: list[str]
    start_ns: int | None
    end_ns: int | None
    event_count: int
    events_by_type: dict[str, int]
    equity: Curve
    equity_source: str  # "equity", "realized+unrealized", "mixed" or "none"
    drawdown: Curve  # peak equity minus equity (>= 0)
    max_drawdown: float | None
    max_drawdown_pct: float | None  # only when the curve is account equity with a positive peak
    max_drawdown_ns: int | None  # when the deepest point was reached
    final_realized_pnl: float | None
    final_unrealized_pnl: float | None
    trades: list[Trade]
    fills: list[Fill]
    slippage: dict[str, SlippageStats]  # "all", "BUY", "SELL" (only those with fills)
    pnl_by_model: list[PnlGroup]
    pnl_by_instrument: list[PnlGroup]
    pnl_by_signal: list[SignalPnl]
    signals: SignalStats
    decisions_by_action: dict[str, int]
    risk_approved: int
    risk_rejected: int
    risk_rejections: list[RiskRejection]
    order_rejections: list[OrderRejection]
    alerts_by_kind: dict[str, int]
    alerts_by_severity: dict[str, int]
    alerts: list[Alert]
    decision_to_fill: LatencySummary  # exchange time, one sample per fill
    latency: LatencyStats | None  # in-process wall-clock, when the run measured it
    totals: Totals
    engine_summary: dict[str, float]
    notes: list[str]  # data problems found while joining events


# --- building ---------------------------------------------------------------------------


def _ordered(events: Iterable[ev.DomainEvent]) -> tuple[list[ev.DomainEvent], int]:
    # Keyed by the UUID's integer: hashing a UUID object runs Python code, per event.
    seen: set[int] = set()
    unique: list[ev.DomainEvent] = []
    duplicates = 0
    for e in events:
        key = e.event_id.int
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        unique.append(e)
    # sorted() is stable, so equal timestamps keep their arrival position.
    return sorted(unique, key=lambda e: e.ts_event), duplicates


def _direction(s: ev.SignalGenerated) -> int:
    # The lean, not the argmax: a cost-aware model says "flat" most of the time (most moves
    # stay inside the spread), and what a decision acts on is which side it favours.
    if s.p_up == s.p_down:
        return 0
    return 1 if s.p_up > s.p_down else -1


def _mid(s: ev.SignalGenerated) -> float | None:
    if s.bid is None or s.ask is None:
        return None
    return (s.bid + s.ask) / 2.0


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (sensible near 0 and 1, unlike p ± z·se)."""
    if n <= 0:
        raise ValueError("a proportion of zero trials has no interval")
    p = hits / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _hit_rate(signals: list[ev.SignalGenerated], horizon: int) -> HitRate:
    by_instrument: dict[str, list[ev.SignalGenerated]] = defaultdict(list)
    for s in signals:
        by_instrument[s.instrument_id].append(s)
    n = hits = undirected = unresolved = unpriced = unchanged = 0
    for seq in by_instrument.values():
        for i, s in enumerate(seq):
            d = _direction(s)
            if d == 0:
                undirected += 1
                continue
            if i + horizon >= len(seq):
                unresolved += 1
                continue
            m0, m1 = _mid(s), _mid(seq[i + horizon])
            if m0 is None or m1 is None:
                unpriced += 1
                continue
            if m1 == m0:
                unchanged += 1
                continue
            n += 1
            hits += (m1 > m0) == (d > 0)
    rate = low = high = None
    if n:
        rate = hits / n
        low, high = wilson_interval(hits, n)
    return HitRate(
        horizon=horizon,
        n=n,
        hits=hits,
        rate=rate,
        low=low,
        high=high,
        undirected=undirected,
        unresolved=unresolved,
        unpriced=unpriced,
        unchanged=unchanged,
    )


def _signal_stats(signals: list[ev.SignalGenerated], horizon: int) -> SignalStats:
    return SignalStats(
        count=len(signals),
        mean_confidence=(math.fsum(s.confidence for s in signals) / len(signals))
        if signals
        else None,
        degraded=sum(s.status == "degraded" for s in signals),
        by_model=dict(sorted(Counter(s.model_version for s in signals).items())),
        regimes=dict(sorted(Counter(s.regime or "(none)" for s in signals).items())),
        hit_rate=_hit_rate(signals, horizon),
    )


def _group(key: str, trades: list[Trade]) -> dict:
    wins = sum(t.realized_pnl > 0 for t in trades)
    net = math.fsum(t.realized_pnl for t in trades)
    return {
        "key": key,
        "trades": len(trades),
        "wins": wins,
        "net_pnl": net,
        "commissions": math.fsum(t.commission for t in trades),
        "win_rate": wins / len(trades) if trades else None,
        "mean_pnl": net / len(trades) if trades else None,
    }


def _groups(trades: list[Trade], key: Callable[[Trade], str]) -> list[PnlGroup]:
    grouped: dict[str, list[Trade]] = defaultdict(list)
    for t in trades:
        grouped[key(t)].append(t)
    rows = [PnlGroup(**_group(k, ts)) for k, ts in grouped.items()]
    # Best first, so the table answers "what made the money" at a glance.
    return sorted(rows, key=lambda g: (-g.net_pnl, g.key))


def _slippage(fills: list[Fill]) -> dict[str, SlippageStats]:
    out: dict[str, SlippageStats] = {}
    for name in ("all", "BUY", "SELL"):
        sel = [f for f in fills if f.slippage_bps is not None and name in ("all", f.side)]
        if not sel:
            continue
        bps = np.array([f.slippage_bps for f in sel])
        notional = np.array([f.price * f.quantity for f in sel])
        out[name] = SlippageStats(
            count=len(sel),
            mean_bps=_r(float(bps.mean()), 4),
            notional_weighted_bps=_r(float((bps * notional).sum() / notional.sum()), 4),
            median_bps=_r(float(np.median(bps)), 4),
            p90_bps=_r(float(np.percentile(bps, 90.0)), 4),
            worst_bps=_r(float(bps.max()), 4),
            best_bps=_r(float(bps.min()), 4),
        )
    return out


def _totals(trades: list[Trade], fills: list[Fill]) -> Totals:
    undefined: dict[str, str] = {}
    pnl = [t.realized_pnl for t in trades]
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p < 0]
    net = math.fsum(pnl)
    commissions = math.fsum(t.commission for t in trades)
    n = len(trades)
    gross_profit, gross_loss = math.fsum(wins), -math.fsum(losses)

    profit_factor = None
    if not n:
        undefined["profit_factor"] = "no trades"
    elif gross_loss == 0.0:
        undefined["profit_factor"] = "no losing trades, gross loss is 0"
    else:
        profit_factor = gross_profit / gross_loss

    sharpe = None
    if n < 2:
        undefined["sharpe_per_trade"] = f"needs at least 2 trades, {n} closed"
    else:
        returns = np.array([t.return_frac for t in trades])
        sd = float(returns.std(ddof=1))
        if sd == 0.0:
            undefined["sharpe_per_trade"] = "every trade returned the same, zero variance"
        else:
            sharpe = float(returns.mean()) / sd
    if not n:
        for name in ("win_rate", "expectancy", "mean_holding_ns"):
            undefined[name] = "no trades"
    if not wins:
        undefined["avg_win"] = "no winning trades"
    if not losses:
        undefined["avg_loss"] = "no losing trades"

    fill_commissions: dict[str, list[float]] = defaultdict(list)
    for f in fills:
        fill_commissions[f.commission_currency].append(f.commission)
    return Totals(
        trades=n,
        wins=len(wins),
        losses=len(losses),
        net_pnl=net,
        gross_pnl=net + commissions,
        commissions=commissions,
        win_rate=len(wins) / n if n else None,
        profit_factor=profit_factor,
        sharpe_per_trade=sharpe,
        expectancy=net / n if n else None,
        avg_win=gross_profit / len(wins) if wins else None,
        avg_loss=-gross_loss / len(losses) if losses else None,
        largest_win=max(wins) if wins else None,
        largest_loss=min(losses) if losses else None,
        mean_holding_ns=round(sum(t.holding_ns for t in trades) / n) if n else None,
        fills=len(fills),
        fill_notional=math.fsum(f.price * f.quantity for f in fills),
        fill_commissions={c: math.fsum(v) for c, v in sorted(fill_commissions.items())},
        undefined=undefined,
    )


def _equity(snapshots: list[ev.PnlSnapshot]) -> dict:
    ts = [s.ts_event for s in snapshots]
    values = [
        s.equity if s.equity is not None else s.realized_pnl + s.unrealized_pnl for s in snapshots
    ]
    with_equity = sum(s.equity is not None for s in snapshots)
    if not snapshots:
        source = "none"
    elif with_equity == len(snapshots):
        source = "equity"
    elif with_equity == 0:
        source = "realized+unrealized"
    else:
        source = "mixed"
    dd: list[float] = []
    peak = -math.inf
    max_dd, max_pct, max_ts = None, None, None
    for t, v in zip(ts, values, strict=True):
        peak = max(peak, v)
        d = peak - v
        dd.append(d)
        if max_dd is None or d > max_dd:
            max_dd, max_ts = d, t
        # A percentage of a P&L curve that starts at 0 means nothing; only of account equity.
        if source == "equity" and peak > 0:
            pct = d / peak
            max_pct = pct if max_pct is None else max(max_pct, pct)
    last = snapshots[-1] if snapshots else None
    return {
        "equity": Curve(ts, values),
        "equity_source": source,
        "drawdown": Curve(list(ts), dd),
        "max_drawdown": max_dd,
        "max_drawdown_pct": max_pct,
        "max_drawdown_ns": max_ts,
        "final_realized_pnl": last.realized_pnl if last else None,
        "final_unrealized_pnl": last.unrealized_pnl if last else None,
    }


class _RunEvents:
    """A run's events, de-duplicated, in time order, indexed for the joins the report makes."""

    def __init__(self, events: Iterable[ev.DomainEvent]) -> None:
        self.ordered, self.duplicates = _ordered(events)
        # Only what the causation walk from an order to its decision can pass through.
        self.upstream: dict[uuid.UUID, ev.DomainEvent] = {}
        self.signals: list[ev.SignalGenerated] = []
        self.decisions: dict[uuid.UUID, ev.DecisionMade] = {}
        self.verdicts: list[ev.RiskVerdict] = []
        self.submitted: dict[uuid.UUID, ev.OrderSubmitted] = {}
        self.submitted_by_coid: dict[str, ev.OrderSubmitted] = {}
        self.fills: list[ev.OrderFilled] = []
        self.order_rejects: list[ev.OrderRejected] = []
        self.snapshots: list[ev.PnlSnapshot] = []
        self.alerts: list[ev.TradeMonitorAlert] = []
        self.outcomes: list[ev.DecisionOutcome] = []
        self.starts: list[ev.RunStarted] = []
        self.completions: list[ev.RunCompleted] = []
        self.instruments: set[str] = set()
        for e in self.ordered:
            iid = getattr(e, "instrument_id", None)
            if isinstance(iid, str) and iid:
                self.instruments.add(iid)
            match e:
                case ev.SignalGenerated():
                    self.signals.append(e)
                case ev.DecisionMade():
                    self.decisions[e.event_id] = e
                    self.upstream[e.event_id] = e
                case ev.RiskVerdict():
                    self.verdicts.append(e)
                    self.upstream[e.event_id] = e
                case ev.OrderSubmitted():
                    self.submitted[e.event_id] = e
                    self.submitted_by_coid.setdefault(e.client_order_id, e)
                case ev.OrderFilled():
                    self.fills.append(e)
                case ev.OrderRejected():
                    self.order_rejects.append(e)
                case ev.PnlSnapshot():
                    self.snapshots.append(e)
                case ev.TradeMonitorAlert():
                    self.alerts.append(e)
                case ev.DecisionOutcome():
                    self.outcomes.append(e)
                case ev.RunStarted():
                    self.starts.append(e)
                case ev.RunCompleted():
                    self.completions.append(e)
        self.signals_by_id = {s.event_id: s for s in self.signals}

    def order_of(self, fill: ev.OrderFilled) -> ev.OrderSubmitted | None:
        """The submission a fill belongs to: by causation, else by client order id."""
        if fill.causation_id is not None and fill.causation_id in self.submitted:
            return self.submitted[fill.causation_id]
        return self.submitted_by_coid.get(fill.client_order_id)

    def decision_of(self, sub: ev.OrderSubmitted) -> ev.DecisionMade | None:
        """The decision an order carried out."""
        if sub.decision_id is not None and sub.decision_id in self.decisions:
            return self.decisions[sub.decision_id]
        # Writers that leave decision_id out still chain causation (order <- verdict <-
        # decision); the bound only guards against a cycle in corrupt data.
        cur: ev.DomainEvent | None = sub
        for _ in range(8):
            if cur is None or cur.causation_id is None:
                return None
            cur = self.upstream.get(cur.causation_id)
            if isinstance(cur, ev.DecisionMade):
                return cur
            if isinstance(cur, ev.RiskVerdict) and cur.decision_id in self.decisions:
                return self.decisions[cur.decision_id]
        return None

    def signal_of(self, o: ev.DecisionOutcome) -> ev.SignalGenerated | None:
        """The signal behind a trade: named by the outcome, else the decision's cause."""
        if o.signal_id is not None:
            return self.signals_by_id.get(o.signal_id)
        decision = self.decisions.get(o.decision_id)
        if decision is not None and decision.causation_id is not None:
            return self.signals_by_id.get(decision.causation_id)
        return None


def _fills(run: _RunEvents, notes: list[str]) -> list[Fill]:
    fills: list[Fill] = []
    unmatched = unreferenced = undecided = 0
    for f in run.fills:
        sub = run.order_of(f)
        decision = run.decision_of(sub) if sub is not None else None
        ref = sub.reference_price if sub is not None else None
        if ref is None and decision is not None:
            ref = decision.reference_price
        slip = None
        if sub is None:
            unmatched += 1
        else:
            undecided += decision is None
            if ref is None:
                unreferenced += 1
            else:
                sign = 1.0 if f.side == "BUY" else -1.0
                slip = _r(sign * (f.last_px - ref) / ref * 10_000.0, 6)
        fills.append(
            Fill(
                ts_ns=f.ts_event,
                instrument_id=f.instrument_id,
                client_order_id=f.client_order_id,
                trade_id=f.trade_id,
                side=f.side,
                quantity=f.last_qty,
                price=f.last_px,
                reference_price=ref,
                slippage_bps=slip,
                commission=f.commission,
                commission_currency=f.commission_currency,
                liquidity_side=f.liquidity_side,
                decision_id=str(decision.event_id) if decision is not None else None,
                decision_to_fill_ns=f.ts_event - decision.ts_event if decision else None,
            )
        )
    if unmatched:
        notes.append(f"{unmatched} fill(s) matched no OrderSubmitted: no slippage or latency")
    if unreferenced:
        notes.append(f"{unreferenced} fill(s) had no reference price: no slippage")
    if undecided:
        notes.append(f"{undecided} fill(s) traced back to no DecisionMade: no latency")
    return fills


def _trades(run: _RunEvents) -> list[tuple[Trade, ev.SignalGenerated | None]]:
    out = []
    for o in run.outcomes:
        decision = run.decisions.get(o.decision_id)
        signal = run.signal_of(o)
        signal_id = o.signal_id or (signal.event_id if signal is not None else None)
        model = o.model_version or (decision.model_version if decision else "")
        model = model or (signal.model_version if signal else "") or _NO_MODEL
        trade = Trade(
            decision_id=str(o.decision_id),
            signal_id=str(signal_id) if signal_id is not None else None,
            model_version=model,
            instrument_id=o.instrument_id,
            side=o.side,
            quantity=o.quantity,
            entry_ns=max(0, o.ts_event - o.holding_ns),
            exit_ns=o.ts_event,
            entry_px=o.entry_px,
            exit_px=o.exit_px,
            realized_pnl=o.realized_pnl,
            commission=o.commission,
            holding_ns=o.holding_ns,
            entry_slippage_bps=o.entry_slippage_bps,
            return_frac=o.realized_pnl / (o.entry_px * o.quantity),
        )
        out.append((trade, signal))
    return out


def _pnl_by_signal(trades: list[tuple[Trade, ev.SignalGenerated | None]]) -> list[SignalPnl]:
    grouped: dict[str, list[Trade]] = defaultdict(list)
    signal_of: dict[str, ev.SignalGenerated | None] = {}
    for t, s in trades:
        key = t.signal_id or _NO_SIGNAL
        grouped[key].append(t)
        signal_of[key] = s
    rows = []
    for key, ts in grouped.items():
        s = signal_of[key]
        d = _direction(s) if s is not None else None
        rows.append(
            SignalPnl(
                **_group(key, ts),
                instrument_id=s.instrument_id if s else None,
                regime=(s.regime or None) if s else None,
                direction=None if d is None else {1: "up", -1: "down", 0: "none"}[d],
                confidence=s.confidence if s else None,
            )
        )
    return sorted(rows, key=lambda g: (-g.net_pnl, g.key))


def _risk_rejections(verdicts: list[ev.RiskVerdict]) -> list[RiskRejection]:
    grouped: dict[str, list[ev.RiskVerdict]] = defaultdict(list)
    for v in verdicts:
        if not v.approved:
            grouped[v.rule or "(no rule named)"].append(v)
    rows = [
        RiskRejection(
            rule=rule,
            count=len(vs),
            instrument_id=vs[0].instrument_id,
            observed=vs[0].observed,
            limit=vs[0].limit,
            detail=vs[0].detail,
        )
        for rule, vs in grouped.items()
    ]
    return sorted(rows, key=lambda r: (-r.count, r.rule))


def _order_rejections(rejects: list[ev.OrderRejected]) -> list[OrderRejection]:
    grouped: dict[str, list[ev.OrderRejected]] = defaultdict(list)
    for r in rejects:
        grouped[r.reason].append(r)
    rows = [
        OrderRejection(
            reason=reason, count=len(rs), instruments=sorted({r.instrument_id for r in rs})
        )
        for reason, rs in grouped.items()
    ]
    return sorted(rows, key=lambda r: (-r.count, r.reason))


def _alert(a: ev.TradeMonitorAlert) -> Alert:
    return Alert(
        ts_ns=a.ts_event,
        kind=a.kind,
        severity=a.severity,
        message=a.message,
        instrument_id=a.instrument_id,
        value=a.value,
        threshold=a.threshold,
    )


def build_report(
    events: Iterable[ev.DomainEvent],
    *,
    latency: LatencyStats | None = None,
    horizon: int = 50,
    engine_summary: Mapping[str, float] | None = None,
) -> RunReport:
    """Compute the report of one run from its domain events.

    ``horizon`` is the number of later signals of the same instrument the directional hit
    rate is scored against. ``engine_summary`` (the engine's own statistics) is shown as
    given, over any ``RunCompleted.summary`` in the events.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 signal, got {horizon}")
    run = _RunEvents(events)
    notes: list[str] = []
    if run.duplicates:
        notes.append(f"{run.duplicates} duplicate event(s) (same event_id) counted once")
    if len({s.equity is None for s in run.snapshots}) == 2:
        notes.append(
            "some P&L snapshots lack equity: the curve mixes equity and realized+unrealized"
        )
    fills = _fills(run, notes)
    with_signals = _trades(run)
    trades = [t for t, _ in with_signals]

    # The run's own bookends may carry wall-clock time while everything else carries
    # exchange time, so the period comes from the other events when there are any.
    span = [e for e in run.ordered if not isinstance(e, ev.RunStarted | ev.RunCompleted)]
    span = span or run.ordered
    summary: dict[str, float] = {}
    for c in run.completions:
        summary.update(c.summary)
    summary.update({str(k): float(v) for k, v in (engine_summary or {}).items()})
    first = run.starts[0] if run.starts else None
    return RunReport(
        run_id=first.source.run_id
        if first
        else ", ".join(sorted({e.source.run_id for e in run.ordered})),
        kind=first.kind if first else None,
        status=run.completions[-1].status if run.completions else None,
        instruments=sorted(run.instruments),
        start_ns=span[0].ts_event if span else None,
        end_ns=span[-1].ts_event if span else None,
        event_count=len(run.ordered),
        events_by_type=dict(sorted(Counter(type(e).__name__ for e in run.ordered).items())),
        **_equity(run.snapshots),
        trades=trades,
        fills=fills,
        slippage=_slippage(fills),
        pnl_by_model=_groups(trades, lambda t: t.model_version),
        pnl_by_instrument=_groups(trades, lambda t: t.instrument_id),
        pnl_by_signal=_pnl_by_signal(with_signals),
        signals=_signal_stats(run.signals, horizon),
        decisions_by_action=dict(sorted(Counter(d.action for d in run.decisions.values()).items())),
        risk_approved=sum(v.approved for v in run.verdicts),
        risk_rejected=sum(not v.approved for v in run.verdicts),
        risk_rejections=_risk_rejections(run.verdicts),
        order_rejections=_order_rejections(run.order_rejects),
        alerts_by_kind=dict(sorted(Counter(a.kind for a in run.alerts).items())),
        alerts_by_severity=dict(sorted(Counter(a.severity for a in run.alerts).items())),
        alerts=[_alert(a) for a in run.alerts],
        decision_to_fill=_summarize_ns(
            [f.decision_to_fill_ns for f in fills if f.decision_to_fill_ns is not None]
        ),
        latency=latency,
        totals=_totals(trades, fills),
        engine_summary=summary,
        notes=notes,
    )


# --- formatting shared by the text and HTML renderings ----------------------------------


def fmt_ts(ns: int | None) -> str:
    """An exchange timestamp as UTC date and time to the millisecond."""
    if ns is None:
        return "n/a"
    sec, rem = divmod(ns, 1_000_000_000)
    t = dt.datetime.fromtimestamp(sec, tz=dt.UTC)
    return f"{t:%Y-%m-%d %H:%M:%S}.{rem // 1_000_000:03d}"


def fmt_duration(ns: int | None) -> str:
    """A duration in the unit a person would say it in."""
    if ns is None:
        return "n/a"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000:
        out = f"{ns} ns"
    elif ns < 1_000_000:
        out = f"{ns / 1e3:.1f} µs"
    elif ns < 1_000_000_000:
        out = f"{ns / 1e6:.1f} ms"
    elif ns < 60 * 10**9:
        out = f"{ns / 1e9:.2f} s"
    else:
        s = ns // 10**9
        if s < 3600:
            out = f"{s // 60}m {s % 60:02d}s"
        elif s < 86_400:
            out = f"{s // 3600}h {s % 3600 // 60:02d}m"
        else:
            out = f"{s // 86_400}d {s % 86_400 // 3600:02d}h"
    return sign + out


def fmt_us(us: float | None) -> str:
    """A latency given in microseconds, in a readable unit."""
    if us is None:
        return "n/a"
    if abs(us) < 1_000:
        return f"{us:.1f} µs"
    if abs(us) < 1_000_000:
        return f"{us / 1e3:.2f} ms"
    return f"{us / 1e6:.2f} s"


def fmt_num(x: float | None, digits: int = 2) -> str:
    """A number with thousands separators; ``n/a`` when undefined."""
    return "n/a" if x is None else f"{x:,.{digits}f}"


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage; ``n/a`` when undefined."""
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def hit_rate_text(h: HitRate) -> str:
    """The hit rate with its interval and n, or why there is none."""
    if h.rate is None:
        return f"n/a (no scored signals at horizon {h.horizon})"
    return f"{fmt_pct(h.rate)} [{fmt_pct(h.low)}, {fmt_pct(h.high)}] (n={h.n}, 95% Wilson)"


def headline(report: RunReport) -> list[tuple[str, str]]:
    """The totals as (label, value) pairs, undefined values with their reason."""
    t = report.totals

    def val(name: str, text: str) -> str:
        return f"n/a ({t.undefined[name]})" if name in t.undefined else text

    commissions = ", ".join(f"{fmt_num(v)} {c}" for c, v in t.fill_commissions.items())
    rows = [
        ("net P&L (closed trades, after commissions)", fmt_num(t.net_pnl)),
        ("gross P&L (before commissions)", fmt_num(t.gross_pnl)),
        ("commissions (closed trades)", fmt_num(t.commissions)),
        ("trades", f"{t.trades}" if t.trades else "0 (no trades)"),
        ("wins / losses", f"{t.wins} / {t.losses}"),
        ("win rate", val("win_rate", fmt_pct(t.win_rate))),
        ("profit factor", val("profit_factor", fmt_num(t.profit_factor))),
        (
            "Sharpe (per trade, not annualised)",
            val("sharpe_per_trade", fmt_num(t.sharpe_per_trade)),
        ),
        ("expectancy per trade", val("expectancy", fmt_num(t.expectancy))),
        (
            "average win / loss",
            f"{val('avg_win', fmt_num(t.avg_win))} / {val('avg_loss', fmt_num(t.avg_loss))}",
        ),
        ("mean holding time", val("mean_holding_ns", fmt_duration(t.mean_holding_ns))),
        (
            "max drawdown",
            fmt_num(report.max_drawdown)
            if report.max_drawdown is not None
            else "n/a (no P&L snapshots)",
        ),
        ("fills / notional", f"{t.fills} / {fmt_num(t.fill_notional)}"),
        ("fill commissions", commissions or "none"),
    ]
    if report.max_drawdown_pct is not None:
        rows.insert(12, ("max drawdown % of peak equity", fmt_pct(report.max_drawdown_pct, 2)))
    return rows


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _pnl_rows(groups: Sequence[PnlGroup]) -> list[list[str]]:
    return [
        [g.key, str(g.trades), fmt_pct(g.win_rate), fmt_num(g.net_pnl), fmt_num(g.commissions)]
        for g in groups
    ]


def summary_table(report: RunReport) -> str:
    """The report as plain text for a terminal: aligned columns, one section per topic."""
    r = report
    out = [
        f"Run {r.run_id or '(unknown)'}"
        + (f"  {r.kind}" if r.kind else "")
        + (f"  {r.status}" if r.status else ""),
        "Period       n/a (no events)"
        if r.start_ns is None or r.end_ns is None
        else f"Period       {fmt_ts(r.start_ns)} -> {fmt_ts(r.end_ns)} UTC"
        f" ({fmt_duration(r.end_ns - r.start_ns)})",
        f"Instruments  {', '.join(r.instruments) or 'none'}",
        f"Events       {r.event_count}",
        "",
    ]
    labels = headline(r)
    width = max(len(k) for k, _ in labels)
    out += ["Totals", *(f"  {k.ljust(width)}  {v}" for k, v in labels), ""]
    if not r.trades:
        out += ["No trades: the run closed no positions.", ""]
    else:
        pnl_head = ("model version", "trades", "win rate", "net P&L", "commissions")
        out += ["P&L by model", *_table(pnl_head, _pnl_rows(r.pnl_by_model), {1, 2, 3, 4}), ""]
        inst_head = ("instrument", *pnl_head[1:])
        out += [
            "P&L by instrument",
            *_table(inst_head, _pnl_rows(r.pnl_by_instrument), {1, 2, 3, 4}),
            "",
        ]
    if r.slippage:
        rows = [
            [
                name,
                str(s.count),
                fmt_num(s.mean_bps),
                fmt_num(s.notional_weighted_bps),
                fmt_num(s.median_bps),
                fmt_num(s.worst_bps),
            ]
            for name, s in r.slippage.items()
        ]
        head = ("fills", "n", "mean bps", "weighted bps", "median bps", "worst bps")
        out += ["Slippage (positive = worse than the decision price)"]
        out += [*_table(head, rows, {1, 2, 3, 4, 5}), ""]
    s = r.signals
    out += [
        "Signals",
        f"  count            {s.count}",
        f"  mean confidence  {fmt_num(s.mean_confidence, 3)}",
        f"  hit rate         {hit_rate_text(s.hit_rate)}",
        "",
    ]
    if r.decisions_by_action:
        actions = ", ".join(f"{a} {n}" for a, n in r.decisions_by_action.items())
        out += [f"Decisions    {actions}", ""]
    out += [f"Risk         {r.risk_approved} approved, {r.risk_rejected} rejected"]
    if r.risk_rejections:
        rows = [
            [x.rule, str(x.count), fmt_num(x.observed, 4), fmt_num(x.limit, 4)]
            for x in r.risk_rejections
        ]
        out += _table(("rule", "count", "e.g. observed", "limit"), rows, {1, 2, 3})
    if r.order_rejections:
        rows = [[x.reason, str(x.count)] for x in r.order_rejections]
        out += ["", *_table(("order rejected because", "count"), rows, {1})]
    out.append("")
    lat_rows = []
    if r.decision_to_fill.count:
        lat_rows.append(_lat_row("decision -> fill (exchange time)", r.decision_to_fill))
    if r.latency is not None:
        lat_rows += [_lat_row(hop, x) for hop, x in r.latency.hops.items()]
    if lat_rows:
        head = ("latency", "n", "p50", "p90", "p99", "max")
        out += [*_table(head, lat_rows, {1, 2, 3, 4, 5}), ""]
    if r.alerts_by_kind:
        out += ["Alerts       " + ", ".join(f"{k} {n}" for k, n in r.alerts_by_kind.items()), ""]
    out += [f"Note: {n}" for n in r.notes]
    return "\n".join(out).rstrip() + "\n"


def _lat_row(name: str, x: LatencySummary) -> list[str]:
    return [
        name,
        str(x.count),
        fmt_us(x.p50_us),
        fmt_us(x.p90_us),
        fmt_us(x.p99_us),
        fmt_us(x.max_us),
    ]


# --- files ------------------------------------------------------------------------------


def write_json(report: RunReport, path: Path) -> Path:
    """Store the report as indented JSON (decodes back with ``type=RunReport``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
    return path


def write_html(report: RunReport, path: Path) -> Path:
    """Write the report as one self-contained HTML page (inline SVG plots, no scripts)."""
    # Imported here: the HTML module uses this module's formatting helpers.
    from tapereader.replay.report_html import render_html

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
