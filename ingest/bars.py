"""OHLCV bar CSVs (``timestamp,open,high,low,close,volume``), such as the FTX 1-minute file.

The timestamp is the bar's open in UTC (a zone suffix is honoured when present); Nautilus
stamps bars at their close, so ``ts_event`` = open + bar length. The bar length is inferred
from the most common spacing of the timestamps unless given (``extra["bar_step"]``, e.g.
``"1-MINUTE"``). The instrument comes from the file name (``ftx`` + ``btc-perp``) or
``--instrument``.
"""

import re
from pathlib import Path

import polars as pl

from tapereader.ingest.context import LoadContext
from tapereader.ingest.frames import LoadedFrame, LoadResult
from tapereader.ingest.readers import read_csv_text, read_gzip
from tapereader.ingest.report import IngestError

OHLCV_HEADER = ("timestamp", "open", "high", "low", "close", "volume")
_UNITS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_STEP = re.compile(r"^(\d+)-(SECOND|MINUTE|HOUR|DAY)$")
_NS = 1_000_000_000


def step_ns(step: str) -> int:
    """Nanoseconds in a Nautilus bar step such as ``1-MINUTE``."""
    match = _STEP.match(step)
    if not match:
        raise ValueError(f"bar step {step!r} must look like 1-MINUTE")
    return int(match.group(1)) * _UNITS[match.group(2)] * _NS


def _infer_step(ts: pl.Series) -> str:
    spacing = ts.diff().drop_nulls()
    spacing = spacing.filter(spacing > 0)
    if not len(spacing):
        raise ValueError("cannot infer the bar length from fewer than two distinct times")
    secs = int(spacing.mode().min()) // _NS
    for unit, size in sorted(_UNITS.items(), key=lambda kv: -kv[1]):
        if secs % size == 0:
            return f"{secs // size}-{unit}"
    raise ValueError(f"bar spacing of {secs} s is not a whole number of seconds")


def _instrument_from_name(path: Path) -> str | None:
    name = path.name.lower()
    for spec_id in ("BTC-PERP.FTX",):
        symbol, venue = spec_id.lower().rsplit(".", 1)
        if symbol in name and venue in name:
            return spec_id
    return None


def load(path: Path, ctx: LoadContext) -> LoadResult:
    """An OHLCV CSV as one bar type (``<instrument>-<step>-LAST-EXTERNAL``)."""
    data = read_gzip(path) if path.suffix == ".gz" else path.read_bytes()
    source = str(path)
    df = read_csv_text(data, source, list(OHLCV_HEADER), has_header=True)
    instrument_id = ctx.instrument_id or _instrument_from_name(path)
    if instrument_id is None:
        raise IngestError(
            source, "cannot tell the instrument from the file name; pass --instrument"
        )
    spec = ctx.registry.get(instrument_id)
    if spec is None:
        raise IngestError(source, f"unknown instrument {instrument_id!r}")
    text = pl.col("timestamp").str.strip_chars()
    opened = (
        pl.coalesce(
            text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_unit="ns", strict=False),
            text.str.to_datetime(
                "%Y-%m-%d %H:%M:%S%.f", time_unit="ns", time_zone="UTC", strict=False
            ),
            text.str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.f", time_unit="ns", time_zone="UTC", strict=False
            ),
        )
        .dt.convert_time_zone("UTC")
        .dt.epoch("ns")
    )
    df = df.with_columns(opened.alias("opened"))
    bad = df["opened"].is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise IngestError(
            source, f"field 'timestamp': {df['timestamp'][i]!r} is not a time", int(df["line"][i])
        )
    step = str(ctx.extra.get("bar_step") or "")
    try:
        step = step or _infer_step(df["opened"])
        length = step_ns(step)
    except ValueError as exc:
        raise IngestError(source, str(exc)) from None
    ts = (pl.col("opened") + length).alias("ts_event")
    frame = df.select("line", ts, ts.alias("ts_init"), "open", "high", "low", "close", "volume")
    bar_type = f"{spec.id}-{step}-LAST-EXTERNAL"
    result = LoadResult(
        data_format="ohlcv-bars",
        frames=[LoadedFrame("bars", spec.id, frame, source, bar_type, length)],
    )
    result.notes.append(f"bar times are opens; ts_event = open + {step}")
    return result
