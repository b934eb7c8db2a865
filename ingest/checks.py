"""Validate one loaded frame, apply the explicit row policies, and report what was found.

Everything here is columnar (polars expressions); each rejected row is counted under the
first reason that applies, and nothing is changed without being counted.
"""

from dataclasses import dataclass, field

import polars as pl

from tapereader.ingest.frames import (
    DECIMAL,
    OTHER_COLUMNS,
    PRICE_COLUMNS,
    TIME_COLUMNS,
    VALUE_COLUMNS,
    LoadedFrame,
    parse_decimals,
    require_int,
)
from tapereader.ingest.instruments import InstrumentSpec
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.report import Gap, IngestError, KindReport

_NS = 1_000_000_000


@dataclass
class FrameState:
    """One data type of one file across its batches: the report and what the next batch
    must be compared with (order, repeats and gaps span batch boundaries)."""

    report: KindReport
    last_ts_init: int | None = None
    max_ts_event: int | None = None
    last_ts_event: int | None = None
    recent_trade_ids: set[str] = field(default_factory=set)


def check_frame(
    frame: LoadedFrame, spec: InstrumentSpec, opts: IngestOptions, state: FrameState
) -> pl.DataFrame:
    """Validate one batch of ``frame``; return its rows to write, sorted by ``ts_init``.

    Findings accumulate in ``state.report``.
    """
    df = frame.df
    report = state.report
    report.rows_read += len(df) + sum(frame.rejected.values())
    for reason, n in frame.rejected.items():
        report.rows_rejected[reason] = report.rows_rejected.get(reason, 0) + n
    df = _typed(df, frame)
    df = _precision(df, frame, spec, opts, report)
    df = _reject(df, frame.kind, opts, report)
    if not len(df):
        return df

    diffs = df.select(
        (pl.col("ts_event").diff() < 0).sum().alias("e"),
        (pl.col("ts_init").diff() < 0).sum().alias("i"),
        pl.col("ts_event").first().alias("e0"),
        pl.col("ts_init").first().alias("i0"),
    ).row(0, named=True)
    back_e = state.last_ts_event is not None and diffs["e0"] < state.last_ts_event
    back_i = state.last_ts_init is not None and diffs["i0"] < state.last_ts_init
    report.non_monotonic_ts_event += int(diffs["e"] or 0) + back_e
    report.non_monotonic_ts_init += int(diffs["i"] or 0) + back_i
    state.last_ts_event = int(df["ts_event"][-1])
    # The catalog needs ts_init order; a stable sort keeps same-time rows in file order.
    if diffs["i"]:
        df = df.sort("ts_init", maintain_order=True)
    if back_i and int(df["ts_init"][0]) < state.last_ts_init:
        i = int(df["line"][0])
        raise IngestError(
            frame.source,
            "ts_init goes back across a read batch (from the previous batch's last row); "
            "sorting would need the whole file: read larger batches (--batch-mb)",
            line=i,
        )

    df = _duplicates(df, frame.kind, report, state)
    if len(df):
        lo, hi = int(df["ts_event"].min()), int(df["ts_event"].max())
        report.start_ns = lo if report.start_ns is None else min(report.start_ns, lo)
        report.end_ns = hi if report.end_ns is None else max(report.end_ns, hi)
        _gaps(df, frame, opts, state)
        state.last_ts_init = int(df["ts_init"][-1])
        state.max_ts_event = hi if state.max_ts_event is None else max(state.max_ts_event, hi)
    return df


def _typed(df: pl.DataFrame, frame: LoadedFrame) -> pl.DataFrame:
    kind = frame.kind
    missing = [
        c
        for c in (*VALUE_COLUMNS[kind], *OTHER_COLUMNS[kind], *TIME_COLUMNS, "line")
        if c not in df.columns
    ]
    if missing:
        raise IngestError(frame.source, f"loader produced no column(s) {missing} for {kind}")
    df = parse_decimals(df, VALUE_COLUMNS[kind], frame.source)
    for col in TIME_COLUMNS:
        df = require_int(df, col, pl.Int64(), frame.source)
    for col, dtype in OTHER_COLUMNS[kind].items():
        if dtype == pl.String():
            if df[col].null_count():
                i = int(df[col].is_null().arg_true()[0])
                raise IngestError(
                    frame.source, f"missing value for field {col!r}", line=int(df["line"][i])
                )
            continue
        df = require_int(df, col, dtype, frame.source)
    for col in TIME_COLUMNS:
        bad = df[col] < 0
        if bad.any():
            i = int(bad.arg_true()[0])
            raise IngestError(frame.source, f"negative {col}", line=int(df["line"][i]))
    return df


def _precision(
    df: pl.DataFrame, frame: LoadedFrame, spec: InstrumentSpec, opts: IngestOptions, rep: KindReport
) -> pl.DataFrame:
    prices = PRICE_COLUMNS[frame.kind]
    cols = VALUE_COLUMNS[frame.kind]
    rounded = {
        c: pl.col(c)
        .cast(pl.Decimal(38, spec.price_precision if c in prices else spec.size_precision))
        .cast(DECIMAL)
        for c in cols
    }
    excess = pl.any_horizontal([pl.col(c) != rounded[c] for c in cols])
    mask = df.select(excess.alias("x"))["x"]
    n = int(mask.sum())
    if not n:
        return df
    if opts.excess_precision == "error":
        i = int(mask.arg_true()[0])
        col = next(c for c in cols if df[c][i] != df.select(rounded[c])[c][i])
        prec = spec.price_precision if col in prices else spec.size_precision
        raise IngestError(
            frame.source,
            f"field {col!r}: {df[col][i].normalize()} has more decimals than {spec.id} allows "
            f"({prec}); use --excess-precision reject|round to accept such rows",
            line=int(df["line"][i]),
        )
    if opts.excess_precision == "reject":
        rep.rows_rejected["excess_precision"] = rep.rows_rejected.get("excess_precision", 0) + n
        return df.filter(~mask)
    rep.rounded += n
    return df.with_columns(rounded[c].alias(c) for c in cols)


def _drop(df: pl.DataFrame, mask: pl.Expr, reason: str, rep: KindReport) -> pl.DataFrame:
    flags = df.select(mask.fill_null(False).alias("m"))["m"]
    n = int(flags.sum())
    if n:
        rep.rows_rejected[reason] = rep.rows_rejected.get(reason, 0) + n
        df = df.filter(~flags)
    return df


def _reject(df: pl.DataFrame, kind: str, opts: IngestOptions, rep: KindReport) -> pl.DataFrame:
    zero = pl.lit(0).cast(DECIMAL)
    if kind == "quotes":
        df = _drop(
            df, (pl.col("bid_size") < zero) | (pl.col("ask_size") < zero), "negative_size", rep
        )
        flags = df.select(
            (pl.col("bid_price") > pl.col("ask_price")).sum().alias("c"),
            (pl.col("bid_price") == pl.col("ask_price")).sum().alias("l"),
        )
        rep.crossed += int(flags["c"][0])
        rep.locked += int(flags["l"][0])
        if opts.crossed == "drop":
            df = _drop(df, pl.col("bid_price") > pl.col("ask_price"), "crossed", rep)
    elif kind == "trades":
        # Nautilus rejects trades of zero size; a negative size is not a trade.
        df = _drop(df, pl.col("size") <= zero, "non_positive_size", rep)
    elif kind == "bars":
        bad = (
            (pl.col("high") < pl.max_horizontal("open", "close", "low"))
            | (pl.col("low") > pl.min_horizontal("open", "close", "high"))
            | (pl.col("volume") < zero)
        )
        df = _drop(df, bad, "invalid_ohlc", rep)
    elif kind == "book_deltas":
        df = _drop(df, pl.col("size") < zero, "negative_size", rep)
    return df


def _duplicates(df: pl.DataFrame, kind: str, rep: KindReport, state: FrameState) -> pl.DataFrame:
    # A venue trade id names one trade and a bar type has one bar per time: repeats are
    # dropped (counted). Repeated quotes or deltas can be genuine (sizes unseen), so are kept.
    # Across batches, trade ids are compared with the previous batch only (bounded memory).
    if kind == "trades":
        ids = pl.col("trade_id")
        dup = (ids.is_duplicated() & ~ids.is_first_distinct()) | ids.is_in(
            list(state.recent_trade_ids)
        )
        n = int(df.select(dup.sum()).item())
        rep.duplicates += n
        df = _drop(df, dup, "duplicate_trade_id", rep)
        state.recent_trade_ids = set(df["trade_id"].to_list())
        return df
    if kind == "bars":
        ts = pl.col("ts_event")
        dup = ~ts.is_first_distinct()
        if state.max_ts_event is not None:
            dup = dup | (ts == state.max_ts_event)
        rep.duplicates += int(df.select(dup.sum()).item())
        return _drop(df, dup, "duplicate_timestamp", rep)
    cols = [c for c in df.columns if c != "line"]
    rep.duplicates += len(df) - df.select(cols).n_unique()
    return df


def _gaps(df: pl.DataFrame, frame: LoadedFrame, opts: IngestOptions, state: FrameState) -> None:
    rep = state.report
    ts = df["ts_event"].sort()
    if state.max_ts_event is not None:
        ts = pl.concat([pl.Series([state.max_ts_event], dtype=ts.dtype), ts])
    threshold = frame.bar_interval_ns or int(opts.gap_threshold_s * _NS)
    gaps = pl.DataFrame({"before": ts, "after": ts.shift(1)}).filter(
        (pl.col("before") - pl.col("after")) > threshold
    )
    if not len(gaps):
        return
    rep.gaps += len(gaps)
    widths = gaps["before"] - gaps["after"]
    rep.longest_gap_ns = max(rep.longest_gap_ns, int(widths.max()))
    top = gaps.with_columns(widths.alias("w")).sort("w", descending=True)
    found = [
        Gap(after_ns=int(a), before_ns=int(b))
        for a, b in top.head(opts.max_gap_examples).select("after", "before").iter_rows()
    ]
    merged = sorted([*rep.gap_examples, *found], key=lambda g: g.after_ns - g.before_ns)
    rep.gap_examples = merged[: opts.max_gap_examples]
