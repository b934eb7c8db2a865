"""Tardis.dev CSV downloads: ``trades`` and ``quotes`` (plain or gzipped), read in batches.

Timestamps are microseconds since the epoch: ``timestamp`` is the exchange's time
(``ts_event``), ``local_timestamp`` Tardis's receive time (``ts_init``).
"""

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tapereader.ingest.context import LoadContext
from tapereader.ingest.frames import LoadedFrame, LoadResult
from tapereader.ingest.readers import (
    header_of,
    iter_line_batches,
    read_csv_text,
    read_first_line,
)
from tapereader.ingest.report import IngestError

# Tardis exchange names to Nautilus venues.
VENUES = {
    "binance-futures": "BINANCE",
    "binance-delivery": "BINANCE",
    "binance": "BINANCE",
    "bybit": "BYBIT",
    "okex": "OKX",
    "okex-swap": "OKX",
    "deribit": "DERIBIT",
    "bitmex": "BITMEX",
    "ftx": "FTX",
}
TRADES = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]
QUOTES = [
    "exchange", "symbol", "timestamp", "local_timestamp",
    "ask_amount", "ask_price", "bid_price", "bid_amount",
]  # fmt: skip
_SIDES = {"buy": 1, "sell": 2, "unknown": 0}


def load(path: Path, ctx: LoadContext) -> Iterator[LoadResult]:
    """A Tardis trades or quotes CSV; which one is told by the header."""
    header = header_of(read_first_line(path))
    if header == TRADES:
        kind, columns = "trades", TRADES
    elif header == QUOTES:
        kind, columns = "quotes", QUOTES
    else:
        raise IngestError(str(path), f"not a Tardis trades or quotes header: {header}", 1)
    batches = iter_line_batches(path, ctx.options.batch_bytes, skip_header=True)
    for source, data, first in batches:
        df = read_csv_text(data, source, columns, has_header=False, first_line=first)
        yield LoadResult(f"tardis-{kind}", _frames(df, kind, source, ctx))


def _frames(df: pl.DataFrame, kind: str, source: str, ctx: LoadContext) -> list[LoadedFrame]:
    for col in ("timestamp", "local_timestamp"):
        bad = df[col].str.strip_chars().cast(pl.Int64, strict=False).is_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            raise IngestError(
                source, f"field {col!r}: {df[col][i]!r} is not an integer", int(df["line"][i])
            )
    micros = {
        c: pl.col(c).str.strip_chars().cast(pl.Int64) * 1000
        for c in ("timestamp", "local_timestamp")
    }
    times = (micros["timestamp"].alias("ts_event"), micros["local_timestamp"].alias("ts_init"))
    frames = []
    for (exchange, symbol), part in df.group_by("exchange", "symbol", maintain_order=True):
        first = int(part["line"][0])
        if exchange is None or symbol is None:
            raise IngestError(source, "missing exchange or symbol", first)
        venue = ctx.venue or VENUES.get(exchange, exchange.upper())
        spec = ctx.instrument(source, venue, symbol, first)
        if kind == "trades":
            side = pl.col("side").str.strip_chars().str.to_lowercase()
            bad = part.select(~side.is_in(list(_SIDES)).fill_null(True))["side"]
            if bad.any():
                i = int(bad.arg_true()[0])
                raise IngestError(
                    source,
                    f"field 'side': {part['side'][i]!r} is not buy/sell",
                    int(part["line"][i]),
                )
            frame = part.select(
                "line", *times,
                pl.col("price"), pl.col("amount").alias("size"),
                side.replace_strict(_SIDES, return_dtype=pl.UInt8).alias("aggressor_side"),
                pl.col("id").alias("trade_id"),
            )  # fmt: skip
        else:
            frame = part.select(
                "line", *times,
                pl.col("bid_price"), pl.col("ask_price"),
                pl.col("bid_amount").alias("bid_size"), pl.col("ask_amount").alias("ask_size"),
            )  # fmt: skip
        frames.append(LoadedFrame(kind, spec.id, frame, source))
    return frames
