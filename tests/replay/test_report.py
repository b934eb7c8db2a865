"""The run report, checked on event chains built the way the actors write them."""

import json
import math
import random
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import msgspec
import numpy as np
import pytest

from tapereader.core import events as ev
from tapereader.replay import report_html
from tapereader.replay.report import (
    LatencyStats,
    RunReport,
    build_report,
    latency_stats,
    summary_table,
    wilson_interval,
    write_html,
    write_json,
)

T0 = 1_723_161_255_000_000_000
SRC = ev.Source(component="tests", run_id="bt-7")
BTC = "BTCUSDT-PERP.BINANCE"
SEC = 1_000_000_000


def trade_chain(
    ts: int,
    *,
    side: str,
    ref: float,
    fill_px: float,
    exit_px: float,
    qty: float = 1.0,
    model: str = "m1",
    commission: float = 0.1,
    decision_to_fill_ns: int = 250_000,
    instrument: str = BTC,
    hold_ns: int = 10 * SEC,
) -> list[ev.DomainEvent]:
    """signal -> decision -> verdict -> order -> fill -> outcome, ids chained as the actors do."""
    corr = uuid.uuid4()
    common = {"source": SRC, "correlation_id": corr, "instrument_id": instrument}
    up = side == "BUY"
    sig = ev.SignalGenerated(
        ts_event=ts,
        ts_init=ts,
        model_version=model,
        feature_spec_hash="f1",
        horizon="50 events",
        p_up=0.6 if up else 0.1,
        p_down=0.1 if up else 0.6,
        p_flat=0.3,
        confidence=0.7,
        regime="trend",
        bid=ref - 0.01,
        ask=ref + 0.01,
        **common,
    )
    dec = ev.DecisionMade(
        ts_event=ts + 1_000,
        ts_init=ts + 1_000,
        causation_id=sig.event_id,
        action=side,
        target_position=qty if up else -qty,
        reference_price=ref,
        model_version=model,
        **common,
    )
    verdict = ev.RiskVerdict(
        ts_event=ts + 2_000,
        ts_init=ts + 2_000,
        causation_id=dec.event_id,
        decision_id=dec.event_id,
        approved=True,
        **common,
    )
    coid = f"O-{ts}"
    sub = ev.OrderSubmitted(
        ts_event=ts + 3_000,
        ts_init=ts + 3_000,
        causation_id=verdict.event_id,
        client_order_id=coid,
        side=side,
        order_type="MARKET",
        quantity=qty,
        reference_price=ref,
        decision_id=dec.event_id,
        **common,
    )
    fill = ev.OrderFilled(
        ts_event=dec.ts_event + decision_to_fill_ns,
        ts_init=dec.ts_event + decision_to_fill_ns,
        causation_id=sub.event_id,
        client_order_id=coid,
        venue_order_id=f"V-{ts}",
        trade_id=f"T-{ts}",
        side=side,
        last_qty=qty,
        last_px=fill_px,
        commission=commission,
        commission_currency="USDT",
        **common,
    )
    direction = 1.0 if up else -1.0
    out = ev.DecisionOutcome(
        ts_event=fill.ts_event + hold_ns,
        ts_init=fill.ts_event + hold_ns,
        decision_id=dec.event_id,
        signal_id=sig.event_id,
        model_version=model,
        side="LONG" if up else "SHORT",
        quantity=qty,
        entry_px=fill_px,
        exit_px=exit_px,
        realized_pnl=direction * (exit_px - fill_px) * qty - commission,
        commission=commission,
        holding_ns=hold_ns,
        **common,
    )
    return [sig, dec, verdict, sub, fill, out]


def snapshot(ts: int, *, equity: float | None = None, realized: float = 0.0, unreal: float = 0.0):
    return ev.PnlSnapshot(
        ts_event=ts,
        ts_init=ts,
        source=SRC,
        realized_pnl=realized,
        unrealized_pnl=unreal,
        exposure=0.0,
        drawdown=0.0,
        equity=equity,
    )


def refusal(ts: int, rule: str, observed: float, limit: float) -> ev.RiskVerdict:
    return ev.RiskVerdict(
        ts_event=ts,
        ts_init=ts,
        source=SRC,
        instrument_id=BTC,
        decision_id=uuid.uuid4(),
        approved=False,
        rule=rule,
        observed=observed,
        limit=limit,
        detail=f"{rule}: {observed} > {limit}",
    )


def order_rejected(ts: int, reason: str, instrument: str = BTC) -> ev.OrderRejected:
    return ev.OrderRejected(
        ts_event=ts,
        ts_init=ts,
        source=SRC,
        instrument_id=instrument,
        client_order_id=f"R-{ts}",
        reason=reason,
    )


def run_events(instrument: str = BTC) -> list[ev.DomainEvent]:
    """A small backtest: three trades (one a loss), refusals, order rejections, an alert."""
    out: list[ev.DomainEvent] = [
        ev.RunStarted(ts_event=T0 - 5, ts_init=T0 - 5, source=SRC, kind="backtest", config_hash="c")
    ]
    # BUY 5 bps above the reference (worse); SELL 2 bps below (worse); SELL 2 bps above (better).
    out += trade_chain(
        T0, side="BUY", ref=100.0, fill_px=100.05, exit_px=101.0, decision_to_fill_ns=250_000
    )
    out += trade_chain(
        T0 + 60 * SEC,
        side="SELL",
        ref=200.0,
        fill_px=199.96,
        exit_px=201.0,
        model="m2",
        decision_to_fill_ns=1_000_000,
        instrument=instrument,
    )
    out += trade_chain(
        T0 + 120 * SEC,
        side="SELL",
        ref=50.0,
        fill_px=50.01,
        exit_px=49.0,
        qty=2.0,
        decision_to_fill_ns=4_000_000,
    )
    out += [
        snapshot(T0 + 5 * SEC, equity=10_000.0),
        snapshot(T0 + 30 * SEC, equity=10_001.0),
        snapshot(T0 + 90 * SEC, equity=10_000.2),
        snapshot(T0 + 150 * SEC, equity=10_002.0),
        snapshot(T0 + 170 * SEC, equity=10_001.63),
        refusal(T0 + 20 * SEC, "max_position", 3.0, 2.0),
        refusal(T0 + 25 * SEC, "max_position", 4.0, 2.0),
        refusal(T0 + 26 * SEC, "max_drawdown", 0.06, 0.05),
        order_rejected(T0 + 40 * SEC, "insufficient margin"),
        order_rejected(T0 + 41 * SEC, "insufficient margin", instrument),
        order_rejected(T0 + 42 * SEC, "price out of band"),
        ev.TradeMonitorAlert(
            ts_event=T0 + 61 * SEC,
            ts_init=T0 + 61 * SEC,
            source=SRC,
            kind="slippage",
            severity="warning",
            message="fill 5.0 bps worse than reference <check>",
            instrument_id=instrument,
            value=5.0,
            threshold=2.0,
        ),
        ev.RunCompleted(
            ts_event=T0 + 200 * SEC,
            ts_init=T0 + 200 * SEC,
            source=SRC,
            status="succeeded",
            summary={"PnL (total)": 1.63},
        ),
    ]
    return out


@pytest.fixture
def report() -> RunReport:
    events = run_events()
    random.Random(3).shuffle(events)  # arrival order must not matter
    return build_report(events)


# --- fills, slippage, latency ------------------------------------------------------------


def test_slippage_sign_and_size_for_buys_and_sells(report: RunReport) -> None:
    by_price = {f.reference_price: f for f in report.fills}
    assert by_price[100.0].side == "BUY"
    assert by_price[100.0].slippage_bps == pytest.approx(5.0)  # paid 100.05 for 100: worse
    assert by_price[200.0].slippage_bps == pytest.approx(2.0)  # sold 199.96 for 200: worse
    assert by_price[50.0].slippage_bps == pytest.approx(-2.0)  # sold 50.01 for 50: better
    assert report.slippage["BUY"].count == 1
    assert report.slippage["SELL"].mean_bps == pytest.approx(0.0)
    assert report.slippage["all"].worst_bps == pytest.approx(5.0)
    assert report.slippage["all"].best_bps == pytest.approx(-2.0)
    notional = np.array([100.05, 199.96, 2 * 50.01])
    weighted = (notional * [5.0, 2.0, -2.0]).sum() / notional.sum()
    assert report.slippage["all"].notional_weighted_bps == pytest.approx(weighted, abs=1e-4)


def test_decision_to_fill_latency_follows_the_causation_chain(report: RunReport) -> None:
    assert sorted(f.decision_to_fill_ns for f in report.fills) == [250_000, 1_000_000, 4_000_000]
    d2f = report.decision_to_fill
    assert d2f.count == 3
    assert d2f.p50_us == pytest.approx(1_000.0)
    assert d2f.max_us == pytest.approx(4_000.0)
    assert sum(b.count for b in d2f.buckets) == 3


def test_fill_joins_without_decision_id_or_causation() -> None:
    events = trade_chain(T0, side="BUY", ref=100.0, fill_px=100.1, exit_px=101.0)
    sig, dec, verdict, sub, fill, out = events
    # An order written without decision_id, and a fill without causation_id: the verdict's
    # decision_id and the client order id still join them.
    sub = msgspec.structs.replace(sub, decision_id=None, reference_price=None)
    fill = msgspec.structs.replace(fill, causation_id=None)
    r = build_report([sig, dec, verdict, sub, fill, out])
    (f,) = r.fills
    assert f.decision_id == str(dec.event_id)
    assert f.decision_to_fill_ns == 250_000
    assert f.reference_price == 100.0  # fell back to the decision's price
    assert f.slippage_bps == pytest.approx(10.0)


def test_unmatched_fill_is_reported_not_guessed() -> None:
    fill = trade_chain(T0, side="BUY", ref=100.0, fill_px=100.1, exit_px=101.0)[4]
    r = build_report([fill, fill])  # also written twice
    (f,) = r.fills
    assert f.slippage_bps is None and f.decision_to_fill_ns is None
    assert r.decision_to_fill.count == 0 and r.decision_to_fill.p50_us is None
    assert any("duplicate" in n for n in r.notes)
    assert any("matched no OrderSubmitted" in n for n in r.notes)


# --- P&L -------------------------------------------------------------------------------


def test_totals_and_pnl_by_model_sum_to_total(report: RunReport) -> None:
    t = report.totals
    pnls = [0.95 - 0.1, -1.04 - 0.1, 2 * 1.01 - 0.1]
    assert t.trades == 3 and t.wins == 2 and t.losses == 1
    assert t.net_pnl == pytest.approx(sum(pnls))
    assert t.commissions == pytest.approx(0.3)
    assert t.gross_pnl == pytest.approx(sum(pnls) + 0.3)
    assert t.win_rate == pytest.approx(2 / 3)
    assert t.profit_factor == pytest.approx((pnls[0] + pnls[2]) / -pnls[1])
    assert t.fill_commissions == {"USDT": pytest.approx(0.3)}
    returns = np.array([pnls[0] / 100.05, pnls[1] / 199.96, pnls[2] / (2 * 50.01)])
    assert t.sharpe_per_trade == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert not t.undefined

    by_model = {g.key: g for g in report.pnl_by_model}
    assert set(by_model) == {"m1", "m2"}
    assert by_model["m1"].trades == 2 and by_model["m2"].trades == 1
    assert by_model["m2"].net_pnl == pytest.approx(pnls[1])
    assert math.fsum(g.net_pnl for g in report.pnl_by_model) == pytest.approx(t.net_pnl)
    assert [g.key for g in report.pnl_by_model] == ["m1", "m2"]  # best first
    assert math.fsum(g.net_pnl for g in report.pnl_by_signal) == pytest.approx(t.net_pnl)
    assert math.fsum(g.net_pnl for g in report.pnl_by_instrument) == pytest.approx(t.net_pnl)
    assert {g.direction for g in report.pnl_by_signal} == {"up", "down"}
    assert {g.regime for g in report.pnl_by_signal} == {"trend"}


def test_trades_are_in_exit_order_with_entry_time(report: RunReport) -> None:
    assert [t.entry_px for t in report.trades] == [100.05, 199.96, 50.01]
    first = report.trades[0]
    assert first.exit_ns - first.entry_ns == first.holding_ns == 10 * SEC
    assert first.side == "LONG" and first.model_version == "m1"


def test_equity_and_drawdown_from_snapshots(report: RunReport) -> None:
    assert report.equity_source == "equity"
    assert report.equity.values == [10_000.0, 10_001.0, 10_000.2, 10_002.0, 10_001.63]
    assert report.equity.ts_ns == sorted(report.equity.ts_ns)
    assert report.drawdown.values == pytest.approx([0.0, 0.0, 0.8, 0.0, 0.37])
    assert report.max_drawdown == pytest.approx(0.8)
    assert report.max_drawdown_ns == T0 + 90 * SEC
    assert report.max_drawdown_pct == pytest.approx(0.8 / 10_001.0)


def test_equity_falls_back_to_realized_plus_unrealized() -> None:
    r = build_report(
        [
            snapshot(T0 + 2, realized=1.0, unreal=-3.0),
            snapshot(T0, realized=0.0, unreal=0.5),
            snapshot(T0 + 1, realized=1.0, unreal=1.0),
        ]
    )
    assert r.equity_source == "realized+unrealized"
    assert r.equity.values == [0.5, 2.0, -2.0]
    assert r.max_drawdown == pytest.approx(4.0)
    assert r.max_drawdown_pct is None  # a percentage of a P&L curve starting at 0 is meaningless


def test_undefined_metrics_say_why() -> None:
    events = trade_chain(T0, side="BUY", ref=100.0, fill_px=100.0, exit_px=101.0)
    t = build_report(events).totals
    assert t.trades == 1
    assert t.sharpe_per_trade is None and "at least 2 trades" in t.undefined["sharpe_per_trade"]
    assert t.profit_factor is None and "no losing trades" in t.undefined["profit_factor"]
    assert t.win_rate == 1.0


# --- signals, decisions, rejections -----------------------------------------------------


def signal(ts: int, instrument: str, call: str, mid: float | None) -> ev.SignalGenerated:
    p = {"up": (0.6, 0.1, 0.3), "down": (0.1, 0.6, 0.3), "flat": (0.2, 0.2, 0.6)}[call]
    return ev.SignalGenerated(
        ts_event=ts,
        ts_init=ts,
        source=SRC,
        instrument_id=instrument,
        model_version="m1",
        feature_spec_hash="f1",
        horizon="2 signals",
        p_up=p[0],
        p_down=p[1],
        p_flat=p[2],
        confidence=0.5,
        bid=None if mid is None else mid - 0.5,
        ask=None if mid is None else mid + 0.5,
    )


def test_directional_hit_rate_on_a_crafted_sequence() -> None:
    x = [  # (call, mid); horizon 2
        ("up", 100.0),  # -> 102: hit
        ("up", 101.0),  # -> 101: unchanged
        ("down", 102.0),  # -> 103: miss
        ("flat", 101.0),  # no call
        ("up", 103.0),  # -> 104: hit
        ("up", 103.0),  # no signal 2 later: unresolved
        ("down", 104.0),  # unresolved
    ]
    y = [("down", 10.0), ("up", None), ("up", 9.0), ("up", 9.5)]  # hit, unpriced, 2 unresolved
    events = [signal(T0 + 10 * i, "X", c, m) for i, (c, m) in enumerate(x)]
    # Interleaved in time with X: the horizon counts signals of the same instrument only.
    events += [signal(T0 + 10 * i + 5, "Y", c, m) for i, (c, m) in enumerate(y)]
    random.Random(1).shuffle(events)
    h = build_report(events, horizon=2).signals.hit_rate
    assert (h.n, h.hits) == (4, 3)
    assert h.rate == pytest.approx(0.75)
    assert (h.low, h.high) == pytest.approx((0.3006, 0.9544), abs=1e-4)
    assert (h.undirected, h.unchanged, h.unpriced, h.unresolved) == (1, 1, 1, 4)
    assert h.n + h.undirected + h.unchanged + h.unpriced + h.unresolved == len(events)


def test_tied_up_and_down_is_no_call() -> None:
    s = msgspec.structs.replace(signal(T0, "X", "up", 1.0), p_up=0.45, p_down=0.45, p_flat=0.1)
    h = build_report([s, signal(T0 + 1, "X", "up", 2.0)], horizon=1).signals.hit_rate
    assert h.undirected == 1 and h.n == 0 and h.rate is None


def test_wilson_interval_matches_the_formula_at_the_edges() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_signal_stats_and_decisions(report: RunReport) -> None:
    s = report.signals
    assert s.count == 3
    assert s.mean_confidence == pytest.approx(0.7)
    assert s.regimes == {"trend": 3}
    assert s.by_model == {"m1": 2, "m2": 1}
    assert report.decisions_by_action == {"BUY": 1, "SELL": 2}


def test_rejection_reasons_counted(report: RunReport) -> None:
    assert report.risk_approved == 3 and report.risk_rejected == 3
    rules = {r.rule: r for r in report.risk_rejections}
    assert rules["max_position"].count == 2
    assert (rules["max_position"].observed, rules["max_position"].limit) == (3.0, 2.0)  # first
    assert rules["max_drawdown"].count == 1
    assert [r.rule for r in report.risk_rejections] == ["max_position", "max_drawdown"]
    reasons = {r.reason: r for r in report.order_rejections}
    assert reasons["insufficient margin"].count == 2
    assert reasons["price out of band"].count == 1
    assert report.alerts_by_kind == {"slippage": 1}


def test_run_metadata(report: RunReport) -> None:
    assert report.run_id == "bt-7"
    assert (report.kind, report.status) == ("backtest", "succeeded")
    assert report.instruments == [BTC]
    assert report.start_ns == T0  # the run's own bookends do not stretch the period
    assert report.engine_summary == {"PnL (total)": 1.63}
    overridden = build_report(run_events(), engine_summary={"PnL (total)": 2.0, "trades": 3})
    assert overridden.engine_summary == {"PnL (total)": 2.0, "trades": 3.0}


# --- latency stats ---------------------------------------------------------------------


def test_latency_stats_summary_and_histogram() -> None:
    ns = np.arange(1, 1001, dtype=np.int64) * 1_000  # 1 µs .. 1000 µs
    stats = latency_stats({"ensemble": ns, "features": [500, 700], "idle": []})
    assert list(stats.hops) == ["ensemble", "features", "idle"]
    e = stats.hops["ensemble"]
    assert e.count == 1000
    assert e.p50_us == pytest.approx(np.percentile(ns / 1e3, 50))
    assert e.p99_us == pytest.approx(np.percentile(ns / 1e3, 99))
    assert e.max_us == 1000.0
    assert sum(b.count for b in e.buckets) == 1000
    assert all(a.high_us == b.low_us for a, b in zip(e.buckets, e.buckets[1:], strict=False))
    assert e.buckets[-1].low_us <= 1000.0 < e.buckets[-1].high_us
    # R10 ladder (1, 1.25, 1.6, 2, ...): [1, 1.25) µs holds exactly the 1 µs sample.
    assert (e.buckets[0].low_us, e.buckets[0].high_us, e.buckets[0].count) == (1.0, 1.25, 1)
    assert [b.low_us for b in e.buckets[10:13]] == [10.0, 12.5, 16.0]
    assert stats.hops["features"].buckets[0].count == 2  # both under 1 µs
    assert stats.hops["idle"].count == 0 and stats.hops["idle"].p50_us is None


def test_in_process_latency_reaches_the_report(tmp_path: Path) -> None:
    lat = latency_stats({"tick_to_signal": [40_000, 50_000, 60_000]})
    r = build_report(run_events(), latency=lat)
    assert isinstance(r.latency, LatencyStats)
    assert "tick_to_signal" in summary_table(r)
    html = write_html(r, tmp_path / "r.html").read_text()
    assert "tick_to_signal latency histogram" in html


# --- empty run and rendering ------------------------------------------------------------


def test_empty_run_renders_with_no_trades_text(tmp_path: Path) -> None:
    for events in ([], [run_events()[0]]):
        r = build_report(events)
        assert r.trades == [] and r.totals.net_pnl == 0.0
        assert r.totals.win_rate is None and r.totals.profit_factor is None
        assert r.max_drawdown is None
        text = summary_table(r)
        assert "no trades" in text.lower() and "nan" not in text.lower()
        html = write_html(r, tmp_path / "empty.html").read_text()
        assert "No trades" in html and "NaN" not in html
        raw = write_json(r, tmp_path / "empty.json").read_text()
        assert "NaN" not in raw and "Infinity" not in raw
        json.loads(raw)


def test_html_has_plots_tables_and_escapes(tmp_path: Path) -> None:
    odd = "EUR<USD>&co"
    r = build_report(run_events(instrument=odd))
    path = write_html(r, tmp_path / "out" / "report.html")
    html = path.read_text(encoding="utf-8")
    assert "EUR&lt;USD&gt;&amp;co" in html and odd not in html
    assert "reference &lt;check&gt;" in html
    assert "<script" not in html
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    labels = {ET.fromstring(s).get("aria-label") for s in svgs}  # each plot is well-formed XML
    assert {"equity curve", "drawdown curve"} <= labels
    assert any("latency histogram" in (x or "") for x in labels)
    for section in ("P&amp;L attribution", "Trades", "Fills and slippage", "Rejections", "Alerts"):
        assert f"<h2>{section}</h2>" in html
    assert "max_position" in html and "insufficient margin" in html


def test_html_caps_long_tables_and_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(report_html, "TRADES_CAP", 2)
    html = write_html(build_report(run_events()), tmp_path / "r.html").read_text()
    assert "Showing the first 2 of 3 trades; 1 not shown" in html


def test_summary_table_contains_the_totals(report: RunReport) -> None:
    text = summary_table(report)
    assert f"{report.totals.net_pnl:,.2f}" in text
    assert "66.7%" in text  # win rate
    assert "bt-7" in text and "max_position" in text
    net_line = next(line for line in text.splitlines() if line.strip().startswith("net P&L"))
    win_line = next(line for line in text.splitlines() if line.strip().startswith("win rate"))
    assert net_line.index("1.63") == win_line.index("66.7%")  # values share a column


def test_same_events_give_byte_identical_files(tmp_path: Path) -> None:
    events = run_events(instrument="EUR<USD>")
    shuffled = list(events)
    random.Random(11).shuffle(shuffled)
    a = write_html(build_report(events), tmp_path / "a.html").read_bytes()
    b = write_html(build_report(shuffled), tmp_path / "b.html").read_bytes()
    assert a == b
    ja = write_json(build_report(events), tmp_path / "a.json").read_bytes()
    jb = write_json(build_report(shuffled), tmp_path / "b.json").read_bytes()
    assert ja == jb


def test_json_round_trips(tmp_path: Path, report: RunReport) -> None:
    path = write_json(report, tmp_path / "r.json")
    assert msgspec.json.decode(path.read_bytes(), type=RunReport) == report


def test_long_equity_curve_is_downsampled_keeping_extremes() -> None:
    n = 10_000
    snaps = [snapshot(T0 + i, equity=1_000.0 + (i % 7)) for i in range(n)]
    snaps[5_001] = snapshot(T0 + 5_001, equity=900.0)  # one deep spike
    r = build_report(snaps)
    assert len(r.equity.values) == n  # the data keeps every point; only the plot thins
    svg = report_html.line_chart(r.equity.ts_ns, r.equity.values, label="e", color="#000")
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    assert len(points) <= report_html.MAX_PLOT_POINTS
    ys = [float(p.split(",")[1]) for p in points]
    assert max(ys) == pytest.approx(240 - 30, abs=1.0)  # the spike reaches the bottom axis


def test_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon"):
        build_report([], horizon=0)
