"""QuantConnect Lean FX files: daily quote-tick zips and hourly/daily bid/ask bar zips.

Ticks: ``YYYYMMDD_quote.zip`` holding ``YYYYMMDD_<pair>_tick_quote.csv`` with header-less
``ms_since_midnight,bid,ask`` rows in the venue's clock (FXCM: fixed UTC-05; OANDA: UTC).
Bars: a zip holding ``<pair>.csv`` with ``YYYYMMDD HH:mm,bidO,bidH,bidL,bidC,bidVol,
askO,askH,askL,askC,askVol`` rows, stamped at the bar's open in UTC.
"""

import datetime as dt
import re
from pathlib import Path

import polars as pl

from tapereader.ingest.context import LoadContext
from tapereader.ingest.frames import LoadedFrame, LoadResult
from tapereader.ingest.readers import read_csv_text, read_zip_member
from tapereader.ingest.report import IngestError

_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS
# Hours to add to a venue's Lean clock to get UTC.
CLOCK_OFFSET_HOURS = {"FXCM": 5, "OANDA": 0}
TICK_NAME = re.compile(r"^(\d{8})_quote\.zip$", re.IGNORECASE)
_TICK_MEMBER = re.compile(r"(\d{8})_([a-z0-9]+)_tick_quote\.csv$", re.IGNORECASE)


def lean_venue(path: Path, ctx: LoadContext) -> str:
    """The venue: ``--venue``, else a known venue named in the path (Lean's folder layout)."""
    if ctx.venue:
        return ctx.venue.upper()
    found = {v for v in CLOCK_OFFSET_HOURS if v.lower() in str(path).lower()}
    if len(found) != 1:
        raise IngestError(str(path), "cannot tell the venue from the path; pass --venue")
    return found.pop()


def _utc_offset_ns(path: Path, venue: str, result: LoadResult) -> int:
    if venue not in CLOCK_OFFSET_HOURS:
        result.notes.append(f"venue {venue} has no known Lean clock; times taken as UTC")
    return CLOCK_OFFSET_HOURS.get(venue, 0) * _HOUR_NS


def load_ticks(path: Path, ctx: LoadContext) -> LoadResult:
    """One Lean daily quote-tick zip as quotes (sizes set to ``fx_quote_size``)."""
    name = TICK_NAME.match(path.name)
    if not name:
        raise IngestError(str(path), "expected a Lean tick zip named YYYYMMDD_quote.zip")
    source, data = read_zip_member(path)
    member = _TICK_MEMBER.search(source)
    if not member:
        raise IngestError(source, "expected a member named YYYYMMDD_<pair>_tick_quote.csv")
    venue = lean_venue(path, ctx)
    spec = ctx.instrument(source, venue, member.group(2))
    result = LoadResult(data_format="lean-fx-ticks", frames=[])
    day = dt.datetime.strptime(name.group(1), "%Y%m%d").replace(tzinfo=dt.UTC)
    base = int(day.timestamp()) * 1_000_000_000 + _utc_offset_ns(path, venue, result)

    df = read_csv_text(data, source, ["ms", "bid", "ask"], has_header=False)
    ms = pl.col("ms").str.strip_chars().cast(pl.Int64, strict=False)
    bad = df.select(ms.is_null() | (ms < 0) | (ms >= 86_400_000))["ms"]
    if bad.any():
        i = int(bad.arg_true()[0])
        raise IngestError(
            source, f"field 'ms': {df['ms'][i]!r} is not a time of day in ms", int(df["line"][i])
        )
    size = pl.lit(ctx.options.fx_quote_size)
    ts = (ms * 1_000_000 + base).alias("ts_event")
    df = df.select(
        "line",
        ts,
        ts.alias("ts_init"),
        pl.col("bid").alias("bid_price"),
        pl.col("ask").alias("ask_price"),
        size.alias("bid_size"),
        size.alias("ask_size"),
    )
    result.frames.append(LoadedFrame("quotes", spec.id, df, source))
    result.notes.append(
        f"Lean ticks carry no sizes: both sides set to {ctx.options.fx_quote_size}; "
        f"clock {venue} shifted by {CLOCK_OFFSET_HOURS.get(venue, 0)} h to UTC"
    )
    return result


_BAR_SPECS = {"hour": ("1-HOUR", _HOUR_NS), "daily": ("1-DAY", _DAY_NS)}


def load_bars(path: Path, ctx: LoadContext) -> LoadResult:
    """A Lean hourly (or daily) FX bar zip as BID and ASK bars stamped at bar close."""
    source, data = read_zip_member(path)
    pair = Path(source.split("!", 1)[1]).stem
    lowered = str(path).lower()
    kinds = [k for k in _BAR_SPECS if k in lowered]
    if len(kinds) != 1:
        raise IngestError(str(path), "cannot tell the bar length (hour/daily) from the path")
    step, length_ns = _BAR_SPECS[kinds[0]]
    venue = lean_venue(path, ctx)
    spec = ctx.instrument(source, venue, pair)
    result = LoadResult(data_format="lean-fx-bars", frames=[])
    offset = _utc_offset_ns(path, venue, result)

    cols = ["time", *(f"bid_{c}" for c in "ohlcv"), *(f"ask_{c}" for c in "ohlcv")]
    df = read_csv_text(data, source, cols, has_header=False)
    opened = (
        pl.col("time")
        .str.strip_chars()
        .str.strptime(pl.Datetime("ns", "UTC"), "%Y%m%d %H:%M", strict=False)
    )
    df = df.with_columns(opened.alias("opened"))
    bad = df["opened"].is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise IngestError(
            source, f"field 'time': {df['time'][i]!r} is not YYYYMMDD HH:mm", int(df["line"][i])
        )
    closed = (pl.col("opened").dt.epoch("ns") + offset + length_ns).alias("ts_event")
    for side in ("BID", "ASK"):
        p = side.lower()
        frame = df.select(
            "line",
            closed,
            closed.alias("ts_init"),
            *(
                pl.col(f"{p}_{c}").alias(n)
                for c, n in zip("ohlcv", ("open", "high", "low", "close", "volume"), strict=True)
            ),
        )
        bar_type = f"{spec.id}-{step}-{side}-EXTERNAL"
        result.frames.append(LoadedFrame("bars", spec.id, frame, source, bar_type, length_ns))
    result.notes.append("Lean bars are stamped at their open; ts_event is the bar close")
    return result
