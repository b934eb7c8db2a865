"""Binance USD-M raw websocket feed: ``<receive_ns> <combined-stream JSON>`` lines.

Trades become ``TradeTick`` (``m`` true means the buyer was the maker, so the seller
aggressed), ``bookTicker`` becomes ``QuoteTick``, and the REST depth snapshot plus the
``depthUpdate`` diffs become ``OrderBookDelta`` rows (see :mod:`tapereader.ingest.binance_book`).
The exchange's transaction time ``T`` is ``ts_event``; the collector's receive time is
``ts_init``. JSON is decoded by polars, one stream type at a time.
"""

from collections.abc import Iterator
from pathlib import Path

import msgspec
import polars as pl

from tapereader.ingest import binance_book
from tapereader.ingest.context import LoadContext
from tapereader.ingest.frames import LoadedFrame, LoadResult
from tapereader.ingest.readers import iter_line_batches
from tapereader.ingest.report import IngestError

VENUE = "BINANCE"
_MS = 1_000_000

TRADE = pl.Struct(
    {
        "s": pl.String,
        "T": pl.Int64,
        "t": pl.Int64,
        "p": pl.String,
        "q": pl.String,
        "X": pl.String,
        "m": pl.Boolean,
    }
)
BOOK_TICKER = pl.Struct(
    {
        "s": pl.String,
        "u": pl.Int64,
        "b": pl.String,
        "B": pl.String,
        "a": pl.String,
        "A": pl.String,
        "T": pl.Int64,
        "E": pl.Int64,
    }
)
LEVELS = pl.List(pl.List(pl.String))
DEPTH = pl.Struct(
    {
        "s": pl.String,
        "T": pl.Int64,
        "E": pl.Int64,
        "U": pl.Int64,
        "u": pl.Int64,
        "pu": pl.Int64,
        "b": LEVELS,
        "a": LEVELS,
    }
)
SNAPSHOT = pl.Struct(
    {"lastUpdateId": pl.Int64, "E": pl.Int64, "T": pl.Int64, "bids": LEVELS, "asks": LEVELS}
)


def read_lines(path: Path, batch_bytes: int = 1 << 40) -> pl.DataFrame:
    """The whole feed as :func:`parse_lines` columns (for tools and tests)."""
    parts = [parse_lines(d, first, src) for src, d, first in iter_line_batches(path, batch_bytes)]
    return pl.concat(parts)


def parse_lines(data: bytes, first_line: int, source: str) -> pl.DataFrame:
    """Columns ``line``, ``recv`` (receive ns), ``js`` (JSON text) and ``stream``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data[: exc.start].count(b"\n")
        raise IngestError(source, "line is not UTF-8 text", line) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    df = pl.DataFrame({"raw": lines}).with_row_index("line", offset=first_line)
    parts = pl.col("raw").str.split_exact(" ", 1).struct
    df = df.select(
        "line",
        parts.field("field_0").cast(pl.Int64, strict=False).alias("recv"),
        parts.field("field_1").alias("js"),
    )
    bad = df["recv"].is_null() | df["js"].is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise IngestError(source, "expected '<receive time ns> <JSON message>'", int(df["line"][i]))
    stream = pl.col("js").str.extract(r'^\{"stream":"([^"]+)"', 1)
    kind = (
        pl.when(stream.is_not_null())
        .then(stream.str.replace(r"^[^@]*@", ""))
        .when(pl.col("js").str.starts_with('{"lastUpdateId"'))
        .then(pl.lit("snapshot"))
    )
    return df.with_columns(kind.alias("stream"))


def decode(rows: pl.DataFrame, dtype: pl.Struct, source: str, wrapped: bool) -> pl.DataFrame:
    """Decode the ``js`` column (the ``data`` of a combined-stream message when ``wrapped``)."""
    full = pl.Struct({"data": dtype}) if wrapped else dtype
    try:
        decoded = rows.select("line", "recv", pl.col("js").str.json_decode(full).alias("m"))
    except pl.exceptions.PolarsError as exc:
        _raise_bad_json(rows, source, str(exc).splitlines()[0])
    msg = pl.col("m").struct.field("data") if wrapped else pl.col("m")
    return decoded.select("line", "recv", msg.alias("m")).unnest("m")


def _raise_bad_json(rows: pl.DataFrame, source: str, polars_message: str) -> None:
    # Error path only: find the first line msgspec cannot decode, else report polars' reason.
    for line, js in rows.select("line", "js").iter_rows():
        try:
            msgspec.json.decode(js)
        except msgspec.DecodeError as exc:
            raise IngestError(source, f"line is not valid JSON: {exc}", int(line)) from None
    raise IngestError(source, f"unexpected JSON field type: {polars_message}")


def load(path: Path, ctx: LoadContext) -> Iterator[LoadResult]:
    """Trades, quotes and (when a snapshot exists) book deltas, one batch of lines at a time."""
    book = binance_book.BookBuilder(str(path))
    for source, data, first in iter_line_batches(path, ctx.options.batch_bytes):
        df = parse_lines(data, first, source)
        yield _batch(df, source, ctx, book)
    yield LoadResult("binance-rawfeed", [], book=book.finish())


def _batch(
    df: pl.DataFrame, source: str, ctx: LoadContext, book: binance_book.BookBuilder
) -> LoadResult:
    unknown = df["stream"].is_null()
    if unknown.any():
        i = int(unknown.arg_true()[0])
        raise IngestError(
            source, "not a Binance combined-stream message or depth snapshot", int(df["line"][i])
        )
    result = LoadResult(data_format="binance-rawfeed", frames=[])
    streams = set(df["stream"].unique())
    known = {"trade", "bookTicker", "snapshot"} | {s for s in streams if s.startswith("depth")}
    for other in sorted(streams - known):
        result.notes.append(f"'{other}' messages not ingested (stream type not supported)")

    trades = decode(df.filter(pl.col("stream") == "trade"), TRADE, source, True)
    for sym, rows in _by_symbol(trades, source, ctx):
        market = (pl.col("X").is_null()) | (pl.col("X") == "MARKET")
        n_other = int(rows.select((~market).sum()).item())
        frame = rows.filter(market).select(
            "line",
            (pl.col("T") * _MS).alias("ts_event"),
            pl.col("recv").alias("ts_init"),
            pl.col("p").alias("price"),
            pl.col("q").alias("size"),
            pl.when(pl.col("m")).then(2).otherwise(1).cast(pl.UInt8).alias("aggressor_side"),
            pl.col("t").cast(pl.String).alias("trade_id"),
        )
        rejected = {"non_market_trade": n_other} if n_other else {}
        result.frames.append(LoadedFrame("trades", sym, frame, source, rejected=rejected))

    quotes = decode(df.filter(pl.col("stream") == "bookTicker"), BOOK_TICKER, source, True)
    for sym, rows in _by_symbol(quotes, source, ctx):
        frame = rows.select(
            "line",
            (pl.col("T") * _MS).alias("ts_event"),
            pl.col("recv").alias("ts_init"),
            pl.col("b").alias("bid_price"),
            pl.col("a").alias("ask_price"),
            pl.col("B").alias("bid_size"),
            pl.col("A").alias("ask_size"),
        )
        result.frames.append(LoadedFrame("quotes", sym, frame, source))

    diffs = decode(df.filter(pl.col("stream").str.starts_with("depth")), DEPTH, source, True)
    snaps = decode(df.filter(pl.col("stream") == "snapshot"), SNAPSHOT, source, False)
    frame = book.feed(dict(_by_symbol(diffs, source, ctx)), snaps)
    if frame is not None:
        result.frames.append(frame)
    return result


def _by_symbol(rows: pl.DataFrame, source: str, ctx: LoadContext):
    """(instrument id, rows) per symbol; an undeclared symbol is an error naming its line."""
    if not len(rows):
        return []
    missing = rows["s"].is_null()
    if missing.any():
        i = int(missing.arg_true()[0])
        raise IngestError(source, "message has no symbol field 's'", int(rows["line"][i]))
    out = []
    for (sym,), part in rows.group_by("s", maintain_order=True):
        spec = ctx.instrument(source, VENUE, sym, int(part["line"][0]))
        out.append((spec.id, part))
    return out
