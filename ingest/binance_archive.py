"""Binance public data archive (data.binance.vision): daily ``trades``, ``aggTrades`` and
``bookTicker`` CSVs, one per zip named ``<SYMBOL>-<kind>-<YYYY-MM-DD>.zip``.

Columns (USD-M futures; a header line is optional, older files have none):
- trades: ``id,price,qty,quote_qty,time,is_buyer_maker``
- aggTrades: ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,
  is_buyer_maker``
- bookTicker: ``update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,
  transaction_time,event_time``

Times are milliseconds (spot files from 2025 use microseconds; values above 1e14 are taken
as such). The archive has no receive time, so ``ts_init`` = ``ts_event`` (the transaction
time).
"""

import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tapereader.ingest.context import LoadContext
from tapereader.ingest.frames import LoadedFrame, LoadResult
from tapereader.ingest.readers import iter_line_batches, read_csv_text, read_first_line
from tapereader.ingest.report import IngestError

ARCHIVE_NAME = re.compile(
    r"^([A-Z0-9]+)-(trades|aggTrades|bookTicker)-(\d{4}-\d{2}(?:-\d{2})?)\.(zip|csv)$"
)
COLUMNS = {
    "trades": ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"],
    "aggTrades": [
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
    ],
    "bookTicker": [
        "update_id",
        "best_bid_price",
        "best_bid_qty",
        "best_ask_price",
        "best_ask_qty",
        "transaction_time",
        "event_time",
    ],
}
VENUE = "BINANCE"


def _epoch_ns(col: str) -> pl.Expr:
    raw = pl.col(col).str.strip_chars().cast(pl.Int64, strict=False)
    return pl.when(raw >= 10**14).then(raw * 1_000).otherwise(raw * 1_000_000)


def load(path: Path, ctx: LoadContext) -> Iterator[LoadResult]:
    """One archive zip (or its extracted CSV), read in batches."""
    name = ARCHIVE_NAME.match(path.name)
    if not name:
        raise IngestError(str(path), "expected a name like BTCUSDT-trades-2024-08-08.zip")
    symbol, kind = name.group(1), name.group(2)
    columns = COLUMNS[kind]
    head = read_first_line(path)
    has_header = bool(head) and not head[:1].isdigit()
    if has_header:
        header = head.decode("utf-8", "replace").strip().split(",")
        if header != columns:
            raise IngestError(str(path), f"expected header {columns}, found {header}", 1)
    spec = ctx.instrument(str(path), ctx.venue or VENUE, symbol, 2 if has_header else 1)
    batches = iter_line_batches(path, ctx.options.batch_bytes, skip_header=has_header)
    for source, data, first in batches:
        df = read_csv_text(data, source, columns, has_header=False, first_line=first)
        yield _result(df, kind, spec.id, source)


def _result(df: pl.DataFrame, kind: str, instrument_id: str, source: str) -> LoadResult:
    time_col = {"trades": "time", "aggTrades": "transact_time"}.get(kind, "transaction_time")
    ts = _epoch_ns(time_col)
    bad = df.select(ts.is_null().alias("x"))["x"]
    if bad.any():
        i = int(bad.arg_true()[0])
        raise IngestError(
            source, f"field {time_col!r}: {df[time_col][i]!r} is not an integer", int(df["line"][i])
        )
    if kind == "bookTicker":
        frame = df.select(
            "line",
            ts.alias("ts_event"),
            ts.alias("ts_init"),
            pl.col("best_bid_price").alias("bid_price"),
            pl.col("best_ask_price").alias("ask_price"),
            pl.col("best_bid_qty").alias("bid_size"),
            pl.col("best_ask_qty").alias("ask_size"),
        )
        return LoadResult(
            "binance-archive-bookTicker", [LoadedFrame("quotes", instrument_id, frame, source)]
        )
    maker = pl.col("is_buyer_maker").str.strip_chars().str.to_lowercase()
    bad = df.select((~maker.is_in(["true", "false"])).fill_null(True).alias("x"))["x"]
    if bad.any():
        i = int(bad.arg_true()[0])
        raise IngestError(
            source,
            f"field 'is_buyer_maker': {df['is_buyer_maker'][i]!r} is not true/false",
            int(df["line"][i]),
        )
    id_col = "id" if kind == "trades" else "agg_trade_id"
    frame = df.select(
        "line",
        ts.alias("ts_event"),
        ts.alias("ts_init"),
        pl.col("price"),
        pl.col("qty" if kind == "trades" else "quantity").alias("size"),
        # The buyer was the maker, so the seller crossed the spread.
        pl.when(maker == "true").then(2).otherwise(1).cast(pl.UInt8).alias("aggressor_side"),
        pl.col(id_col).str.strip_chars().alias("trade_id"),
    )
    frames = [LoadedFrame("trades", instrument_id, frame, source)]
    return LoadResult(f"binance-archive-{kind}", frames)
