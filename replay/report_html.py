"""The run report as one self-contained HTML page: inline CSS and SVG, no scripts.

The page is a pure function of the :class:`~tapereader.replay.report.RunReport` (no
generation time, fixed number formats, deterministic down-sampling), so the same events
always give a byte-identical file that can be diffed or checked into an experiment log.
Long tables are capped; the page says how many rows it left out (the JSON report has all).
"""

import math
from collections.abc import Sequence
from html import escape

from tapereader.replay.report import (
    HistogramBucket,
    LatencySummary,
    PnlGroup,
    RunReport,
    fmt_duration,
    fmt_num,
    fmt_pct,
    fmt_ts,
    fmt_us,
    headline,
    hit_rate_text,
)

TRADES_CAP = 500
FILLS_CAP = 500
SIGNALS_CAP = 100
ALERTS_CAP = 200
MAX_PLOT_POINTS = 2_000

_W, _H = 900, 240
_ML, _MR, _MT, _MB = 86, 18, 14, 30  # room for y labels on the left, x labels below

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:1100px;padding:0 16px;color:#1d2733;background:#fff}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.15em;margin-top:32px;
border-bottom:1px solid #d7dde4;padding-bottom:4px}h3{font-size:1em;margin-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{padding:3px 10px;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:top}
th{background:#f4f6f8;font-weight:600}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}.pos{color:#1a7f37}.neg{color:#c62828}
.muted{color:#66717d}.empty{color:#66717d;font-style:italic}
svg.chart{width:100%;height:auto;max-width:900px;display:block}
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#4a5561}
.sev-critical{color:#c62828;font-weight:600}.sev-warning{color:#b26a00}
code{font-size:.92em}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _sign_class(x: float | None) -> str:
    if x is None or x == 0:
        return ""
    return "pos" if x > 0 else "neg"


class _Cell:
    """A table cell: text (escaped on output), numeric alignment, an extra class."""

    __slots__ = ("cls", "num", "text")

    def __init__(self, text: str, *, num: bool = False, cls: str = "") -> None:
        self.text, self.num, self.cls = text, num, cls

    def html(self) -> str:
        classes = " ".join(c for c in ("num" if self.num else "", self.cls) if c)
        attr = f' class="{classes}"' if classes else ""
        return f"<td{attr}>{_e(self.text)}</td>"


def _n(text: str, cls: str = "") -> _Cell:
    return _Cell(text, num=True, cls=cls)


def _money(x: float | None) -> _Cell:
    return _n(fmt_num(x), _sign_class(x))


def _rows(rows: Sequence[Sequence[_Cell | str]]) -> str:
    return "".join(
        "<tr>" + "".join((c if isinstance(c, _Cell) else _Cell(c)).html() for c in row) + "</tr>"
        for row in rows
    )


def _table(headers: Sequence[tuple[str, bool]], rows: Sequence[Sequence[_Cell | str]]) -> str:
    head = "".join(f"<th{' class=num' if num else ''}>{_e(h)}</th>" for h, num in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{_rows(rows)}</tbody></table>"


def _kv_table(rows: Sequence[Sequence[_Cell | str]]) -> str:
    return f"<table><tbody>{_rows(rows)}</tbody></table>"


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _capped(shown: int, total: int, what: str) -> str:
    if total <= shown:
        return ""
    return (
        f'<p class="muted">Showing the first {shown:,} of {total:,} {_e(what)}; '
        f"{total - shown:,} not shown (all are in the JSON report).</p>"
    )


# --- SVG --------------------------------------------------------------------------------


def _f(x: float) -> str:
    # Two decimals is sub-pixel at this size and keeps the file small and stable.
    s = f"{x:.2f}"
    return "0.00" if s == "-0.00" else s


def _nice_step(span: float, target: int) -> float:
    raw = span / target
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw * (1 - 1e-12))


def _decimals(step: float) -> int:
    d = 0
    while d < 10 and abs(round(step, d) - step) > step * 1e-9:
        d += 1
    return d


def _downsample(ts: list[int], vs: list[float]) -> tuple[list[int], list[float]]:
    n = len(ts)
    if n <= MAX_PLOT_POINTS:
        return ts, vs
    # Keep each slice's lowest and highest point, in time order: a drawdown spike stays
    # visible however long the run, which plain striding would lose.
    buckets = MAX_PLOT_POINTS // 2
    out_t: list[int] = []
    out_v: list[float] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        seg = vs[lo:hi]
        i_min = lo + min(range(len(seg)), key=seg.__getitem__)
        i_max = lo + max(range(len(seg)), key=seg.__getitem__)
        for i in sorted({i_min, i_max}):
            out_t.append(ts[i])
            out_v.append(vs[i])
    return out_t, out_v


def _time_label(ns: int, span_ns: int) -> str:
    full = fmt_ts(ns)  # "YYYY-MM-DD HH:MM:SS.mmm"
    if span_ns < 60 * 10**9:
        return full[11:]
    if span_ns < 86_400 * 10**9:
        return full[11:19]
    return full[:16]


def line_chart(
    ts: list[int], values: list[float], *, label: str, color: str, area: bool = False
) -> str:
    """An SVG line chart of a time series; ``area`` fills down (or up) to zero."""
    ts, values = _downsample(ts, values)
    lo, hi = min(values), max(values)
    if area:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        pad = abs(lo) * 0.01 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, 4)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    t0, t1 = ts[0], ts[-1]
    span = max(t1 - t0, 1)
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def x(t: int) -> float:
        return _ML + (t - t0) / span * pw

    def y(v: float) -> float:
        return _MT + (hi - v) / (hi - lo) * ph

    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'
    ]
    digits = _decimals(step)
    for k in range(round((hi - lo) / step) + 1):
        v = lo + k * step
        yy = _f(y(v))
        zero = abs(v) < step * 1e-9
        stroke = "#9aa5b1" if zero else "#e6eaee"
        parts.append(f'<line x1="{_ML}" x2="{_W - _MR}" y1="{yy}" y2="{yy}" stroke="{stroke}"/>')
        text = f"{0.0 if zero else v:,.{digits}f}"
        parts.append(f'<text x="{_ML - 6}" y="{yy}" text-anchor="end" dy="4">{text}</text>')
    for k in range(5):
        t = t0 + (t1 - t0) * k // 4
        anchor = ("start", "middle", "middle", "middle", "end")[k]
        parts.append(
            f'<text x="{_f(x(t))}" y="{_H - 10}" text-anchor="{anchor}">'
            f"{_e(_time_label(t, t1 - t0))}</text>"
        )
        if t1 == t0:
            break
    pts = " ".join(f"{_f(x(t))},{_f(y(v))}" for t, v in zip(ts, values, strict=True))
    if len(ts) == 1:
        parts.append(f'<circle cx="{_f(x(ts[0]))}" cy="{_f(y(values[0]))}" r="3" fill="{color}"/>')
    elif area:
        base = _f(y(0.0))
        parts.append(
            f'<polygon points="{_f(x(ts[0]))},{base} {pts} {_f(x(ts[-1]))},{base}" '
            f'fill="{color}" fill-opacity="0.25" stroke="{color}" stroke-width="1"/>'
        )
    else:
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5" '
            'stroke-linejoin="round"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _edge_label(us: float) -> str:
    if abs(us) < 1_000:
        return f"{us:g}µs"
    if abs(us) < 1_000_000:
        return f"{us / 1e3:g}ms"
    return f"{us / 1e6:g}s"


def histogram_chart(buckets: Sequence[HistogramBucket], *, label: str) -> str:
    """An SVG bar chart of latency buckets, the count over each bar."""
    w, h, ml, mb, mt = _W, 200, 36, 34, 18
    pw, ph = w - 2 * ml, h - mt - mb
    top = max(b.count for b in buckets) or 1
    bw = pw / len(buckets)
    label_every = math.ceil(len(buckets) / 14)  # edge labels about 60 px apart at most
    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'
    ]
    for i, b in enumerate(buckets):
        bh = b.count / top * ph
        x0 = ml + i * bw
        parts.append(
            f'<rect x="{_f(x0 + 1)}" y="{_f(mt + ph - bh)}" width="{_f(bw - 2)}" '
            f'height="{_f(bh)}" fill="#3b6ea8"/>'
        )
        if b.count:
            parts.append(
                f'<text x="{_f(x0 + bw / 2)}" y="{_f(mt + ph - bh - 3)}" '
                f'text-anchor="middle">{b.count:,}</text>'
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{_f(x0)}" y="{h - 18}" text-anchor="middle">'
                f"{_e(_edge_label(b.low_us))}</text>"
            )
    if len(buckets) % label_every == 0:
        parts.append(
            f'<text x="{_f(ml + pw)}" y="{h - 18}" text-anchor="middle">'
            f"{_e(_edge_label(buckets[-1].high_us))}</text>"
        )
    parts.append(
        f'<line x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}" stroke="#9aa5b1"/></svg>'
    )
    return "".join(parts)


# --- sections ---------------------------------------------------------------------------


def _header(r: RunReport) -> str:
    period = "n/a (no events)"
    if r.start_ns is not None and r.end_ns is not None:
        period = (
            f"{fmt_ts(r.start_ns)} → {fmt_ts(r.end_ns)} UTC ({fmt_duration(r.end_ns - r.start_ns)})"
        )
    rows = [
        ("run", r.run_id or "(unknown)"),
        ("kind / status", f"{r.kind or 'n/a'} / {r.status or 'n/a'}"),
        ("period (exchange time)", period),
        ("instruments", ", ".join(r.instruments) or "none"),
        ("events", f"{r.event_count:,}"),
    ]
    types = _table(
        [("event type", False), ("count", True)],
        [[k, _n(f"{v:,}")] for k, v in r.events_by_type.items()],
    )
    return (
        f"<h1>Run report: {_e(r.run_id or '(unknown run)')}</h1>"
        + _kv_table(rows)
        + (f"<details><summary>events by type</summary>{types}</details>" if r.event_count else "")
    )


def _totals(r: RunReport) -> str:
    html = "<h2>Totals</h2>"
    if not r.trades:
        html += _empty("No trades: the run closed no positions.")
    rows = []
    for k, v in headline(r):
        cls = ""
        if k.startswith("net P&L"):
            cls = _sign_class(r.totals.net_pnl)
        rows.append([k, _n(v, cls)])
    return html + _kv_table(rows)


def _curves(r: RunReport) -> str:
    html = "<h2>Equity and drawdown</h2>"
    if not r.equity.ts_ns:
        return html + _empty("No P&L snapshots: no equity curve.")
    source = {
        "equity": "account equity",
        "realized+unrealized": "realized + unrealized P&L",
        "mixed": "account equity where recorded, else realized + unrealized P&L",
    }[r.equity_source]
    dd_text = f"max drawdown {fmt_num(r.max_drawdown)}"
    if r.max_drawdown_pct is not None:
        dd_text += f" ({fmt_pct(r.max_drawdown_pct, 2)} of peak)"
    if r.max_drawdown_ns is not None and r.max_drawdown:
        dd_text += f", deepest at {fmt_ts(r.max_drawdown_ns)} UTC"
    neg_dd = [-d for d in r.drawdown.values]
    return (
        html
        + f"<h3>Equity ({_e(source)}, {len(r.equity.ts_ns):,} snapshots)</h3>"
        + line_chart(r.equity.ts_ns, r.equity.values, label="equity curve", color="#1f5fa8")
        + f"<h3>Drawdown from peak ({_e(dd_text)})</h3>"
        + line_chart(r.drawdown.ts_ns, neg_dd, label="drawdown curve", color="#c62828", area=True)
    )


_PNL_HEAD = [("trades", True), ("wins", True), ("win rate", True), ("net P&L", True)]
_PNL_HEAD += [("mean P&L", True), ("commissions", True)]


def _pnl_cells(g: PnlGroup) -> list[_Cell]:
    return [
        _n(f"{g.trades:,}"),
        _n(f"{g.wins:,}"),
        _n(fmt_pct(g.win_rate)),
        _money(g.net_pnl),
        _money(g.mean_pnl),
        _n(fmt_num(g.commissions)),
    ]


def _pnl(r: RunReport) -> str:
    html = "<h2>P&amp;L attribution</h2>"
    if not r.trades:
        return html + _empty("No trades: nothing to attribute.")
    html += "<h3>By model version</h3>" + _table(
        [("model version", False), *_PNL_HEAD], [[g.key, *_pnl_cells(g)] for g in r.pnl_by_model]
    )
    html += "<h3>By instrument</h3>" + _table(
        [("instrument", False), *_PNL_HEAD], [[g.key, *_pnl_cells(g)] for g in r.pnl_by_instrument]
    )
    shown = r.pnl_by_signal[:SIGNALS_CAP]
    rows = [
        [
            g.key,
            g.instrument_id or "",
            g.regime or "",
            g.direction or "",
            _n(fmt_num(g.confidence, 3)),
            *_pnl_cells(g),
        ]
        for g in shown
    ]
    head = [("signal", False), ("instrument", False), ("regime", False), ("call", False)]
    head += [("confidence", True), *_PNL_HEAD]
    html += "<h3>By signal (best first)</h3>" + _table(head, rows)
    return html + _capped(len(shown), len(r.pnl_by_signal), "signals")


def _trades(r: RunReport) -> str:
    html = "<h2>Trades</h2>"
    if not r.trades:
        return html + _empty("No trades.")
    shown = r.trades[:TRADES_CAP]
    rows = [
        [
            fmt_ts(t.entry_ns),
            fmt_ts(t.exit_ns),
            t.instrument_id,
            t.side,
            _n(f"{t.quantity:g}"),
            _n(f"{t.entry_px:,.6g}"),
            _n(f"{t.exit_px:,.6g}"),
            _money(t.realized_pnl),
            _n(fmt_num(t.commission)),
            _n(fmt_pct(t.return_frac, 3), _sign_class(t.return_frac)),
            _n(fmt_duration(t.holding_ns)),
            _n(fmt_num(t.entry_slippage_bps)),
            t.model_version,
        ]
        for t in shown
    ]
    head = [("entry (UTC)", False), ("exit (UTC)", False), ("instrument", False)]
    head += [("side", False), ("qty", True), ("entry", True), ("exit", True)]
    head += [("net P&L", True), ("commission", True), ("return", True), ("held", True)]
    head += [("entry slip bps", True), ("model", False)]
    return html + _table(head, rows) + _capped(len(shown), len(r.trades), "trades")


def _fills(r: RunReport) -> str:
    html = "<h2>Fills and slippage</h2>"
    if not r.fills:
        return html + _empty("No fills.")
    html += '<p class="muted">Slippage in basis points against the decision\'s reference '
    html += "price; positive is worse (a buy above it, a sell below it).</p>"
    if r.slippage:
        rows = [
            [
                name,
                _n(f"{s.count:,}"),
                _n(fmt_num(s.mean_bps)),
                _n(fmt_num(s.notional_weighted_bps)),
                _n(fmt_num(s.median_bps)),
                _n(fmt_num(s.p90_bps)),
                _n(fmt_num(s.worst_bps)),
                _n(fmt_num(s.best_bps)),
            ]
            for name, s in r.slippage.items()
        ]
        head = [("fills", False), ("n", True), ("mean", True), ("notional-weighted", True)]
        head += [("median", True), ("p90", True), ("worst", True), ("best", True)]
        html += _table(head, rows)
    shown = r.fills[:FILLS_CAP]
    rows = [
        [
            fmt_ts(f.ts_ns),
            f.instrument_id,
            f.client_order_id,
            f.side,
            _n(f"{f.quantity:g}"),
            _n(f"{f.price:,.6g}"),
            _n("n/a" if f.reference_price is None else f"{f.reference_price:,.6g}"),
            _n(fmt_num(f.slippage_bps), _sign_class(-f.slippage_bps if f.slippage_bps else None)),
            _n(f"{fmt_num(f.commission, 4)} {f.commission_currency}"),
            f.liquidity_side,
            _n(fmt_duration(f.decision_to_fill_ns)),
        ]
        for f in shown
    ]
    head = [("time (UTC)", False), ("instrument", False), ("order", False), ("side", False)]
    head += [("qty", True), ("price", True), ("reference", True), ("slippage bps", True)]
    head += [("commission", True), ("liquidity", False), ("decision → fill", True)]
    return html + _table(head, rows) + _capped(len(shown), len(r.fills), "fills")


def _signals(r: RunReport) -> str:
    s, h = r.signals, r.signals.hit_rate
    html = "<h2>Signals and decisions</h2>"
    if not s.count:
        html += _empty("No signals.")
    else:
        rows = [
            ["signals", _n(f"{s.count:,}")],
            ["mean confidence", _n(fmt_num(s.mean_confidence, 3))],
            ["degraded", _n(f"{s.degraded:,}")],
            [f"directional hit rate, {h.horizon} signals ahead", _n(hit_rate_text(h))],
            ["  scored (up/down call, mid moved)", _n(f"{h.n:,}")],
            ["  no call (flat or tie)", _n(f"{h.undirected:,}")],
            ["  mid unchanged", _n(f"{h.unchanged:,}")],
            ["  no bid/ask", _n(f"{h.unpriced:,}")],
            ["  too close to the end", _n(f"{h.unresolved:,}")],
        ]
        html += _kv_table(rows)
        html += "<h3>Signals by model and regime</h3>" + _table(
            [("model version", False), ("signals", True)],
            [[k, _n(f"{v:,}")] for k, v in s.by_model.items()],
        )
        html += _table(
            [("regime", False), ("signals", True)],
            [[k, _n(f"{v:,}")] for k, v in s.regimes.items()],
        )
    html += "<h3>Decisions by action</h3>"
    if r.decisions_by_action:
        html += _table(
            [("action", False), ("decisions", True)],
            [[k, _n(f"{v:,}")] for k, v in r.decisions_by_action.items()],
        )
    else:
        html += _empty("No decisions.")
    return html


def _rejections(r: RunReport) -> str:
    html = "<h2>Rejections</h2>"
    html += f"<p>Risk verdicts: {r.risk_approved:,} approved, {r.risk_rejected:,} rejected.</p>"
    if r.risk_rejections:
        rows = [
            [
                x.rule,
                _n(f"{x.count:,}"),
                x.instrument_id,
                _n(fmt_num(x.observed, 4)),
                _n(fmt_num(x.limit, 4)),
                x.detail,
            ]
            for x in r.risk_rejections
        ]
        head = [("rule", False), ("decisions refused", True), ("e.g. instrument", False)]
        head += [("observed", True), ("limit", True), ("detail", False)]
        html += "<h3>Decisions refused by risk rules</h3>" + _table(head, rows)
    else:
        html += _empty("No decision was refused by a risk rule.")
    if r.order_rejections:
        rows = [
            [x.reason, _n(f"{x.count:,}"), ", ".join(x.instruments)] for x in r.order_rejections
        ]
        head = [("reason", False), ("orders", True), ("instruments", False)]
        html += "<h3>Orders rejected</h3>" + _table(head, rows)
    else:
        html += _empty("No order was rejected.")
    return html


def _latency_block(name: str, x: LatencySummary) -> str:
    if not x.count:
        return f"<h3>{_e(name)}</h3>" + _empty("No samples.")
    stats = (
        f"n={x.count:,} · mean {fmt_us(x.mean_us)} · p50 {fmt_us(x.p50_us)} · "
        f"p90 {fmt_us(x.p90_us)} · p99 {fmt_us(x.p99_us)} · max {fmt_us(x.max_us)}"
    )
    return f"<h3>{_e(name)}</h3><p>{_e(stats)}</p>" + histogram_chart(
        x.buckets, label=f"{name} latency histogram"
    )


def _latency(r: RunReport) -> str:
    html = "<h2>Latency</h2>"
    html += _latency_block("Decision to fill (exchange time, per fill)", r.decision_to_fill)
    if r.latency is None or not r.latency.hops:
        return html + _empty("No in-process latency was measured for this run.")
    rows = [
        [
            hop,
            _n(f"{x.count:,}"),
            _n(fmt_us(x.p50_us)),
            _n(fmt_us(x.p90_us)),
            _n(fmt_us(x.p99_us)),
            _n(fmt_us(x.max_us)),
        ]
        for hop, x in r.latency.hops.items()
    ]
    head = [("hop (in-process, wall clock)", False), ("n", True), ("p50", True)]
    head += [("p90", True), ("p99", True), ("max", True)]
    html += "<h3>In-process hops</h3>" + _table(head, rows)
    return html + "".join(_latency_block(hop, x) for hop, x in r.latency.hops.items())


def _alerts(r: RunReport) -> str:
    html = "<h2>Alerts</h2>"
    if not r.alerts:
        return html + _empty("No alerts.")
    html += _table(
        [("kind", False), ("alerts", True)],
        [[k, _n(f"{v:,}")] for k, v in r.alerts_by_kind.items()],
    )
    shown = r.alerts[:ALERTS_CAP]
    rows = [
        [
            fmt_ts(a.ts_ns),
            _Cell(a.severity, cls=f"sev-{a.severity}"),
            a.kind,
            a.instrument_id or "",
            a.message,
            _n(fmt_num(a.value, 4)),
            _n(fmt_num(a.threshold, 4)),
        ]
        for a in shown
    ]
    head = [("time (UTC)", False), ("severity", False), ("kind", False)]
    head += [("instrument", False), ("message", False), ("value", True), ("threshold", True)]
    return html + _table(head, rows) + _capped(len(shown), len(r.alerts), "alerts")


def _footer(r: RunReport) -> str:
    html = ""
    if r.engine_summary:
        html += "<h2>Engine summary</h2>" + _table(
            [("statistic", False), ("value", True)],
            [[k, _n(f"{v:,.6g}")] for k, v in r.engine_summary.items()],
        )
    if r.notes:
        html += "<h2>Data notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in r.notes)
        html += "</ul>"
    return html


def render_html(report: RunReport) -> str:
    """The whole page as a string."""
    body = "".join(
        section(report)
        for section in (
            _header,
            _totals,
            _curves,
            _pnl,
            _trades,
            _fills,
            _signals,
            _rejections,
            _latency,
            _alerts,
            _footer,
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Run report {_e(report.run_id)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )
