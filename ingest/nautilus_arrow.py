"""Arrow tables in exactly the layout Nautilus's own serializer writes to the catalog.

Nautilus 1.231 (high-precision build) stores prices and sizes as 16-byte little-endian
two's-complement integers scaled by 10**16. An Arrow ``decimal128(38, 16)`` column holds the
same bytes, so exact decimals from polars become catalog columns by reinterpreting buffers:
no Python object per row, no float rounding. ``tests/ingest/test_nautilus_arrow.py`` checks
the tables equal ``ArrowSerializer.serialize_batch`` output for the same data.
"""

import polars as pl
import pyarrow as pa
from nautilus_trader.model.objects import FIXED_PRECISION

from tapereader.ingest.frames import DECIMAL

if FIXED_PRECISION != 16:  # a standard-precision build stores 8-byte values instead
    raise ImportError(
        f"tapereader.ingest needs Nautilus high precision (16), not {FIXED_PRECISION}"
    )

_FIXED = pa.binary(16)


def fixed_point(series: pl.Series) -> pa.Array:
    """A ``Decimal(38, 16)`` series as Nautilus fixed-point ``fixed_size_binary[16]``."""
    if series.dtype != DECIMAL:
        raise TypeError(f"{series.name}: expected {DECIMAL}, got {series.dtype}")
    arr = series.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        raise ValueError(f"{series.name}: nulls cannot be written to the catalog")
    return pa.Array.from_buffers(_FIXED, len(arr), [None, arr.buffers()[1]], offset=arr.offset)


def _u64(series: pl.Series) -> pa.Array:
    return series.cast(pl.UInt64).to_arrow()


def _meta(instrument_id: str, price_prec: int, size_prec: int, bar_type: str | None = None):
    meta = {} if bar_type is None else {"bar_type": bar_type}
    meta |= {
        "instrument_id": instrument_id,
        "price_precision": str(price_prec),
        "size_precision": str(size_prec),
    }
    return meta


def _table(cols: dict[str, pa.Array], meta: dict[str, str]) -> pa.Table:
    fields = [pa.field(name, arr.type, nullable=False) for name, arr in cols.items()]
    return pa.Table.from_arrays(list(cols.values()), schema=pa.schema(fields, metadata=meta))


def quotes_table(df: pl.DataFrame, instrument_id: str, price_prec: int, size_prec: int) -> pa.Table:
    """``QuoteTick`` rows."""
    cols = {c: fixed_point(df[c]) for c in ("bid_price", "ask_price", "bid_size", "ask_size")}
    cols |= {"ts_event": _u64(df["ts_event"]), "ts_init": _u64(df["ts_init"])}
    return _table(cols, _meta(instrument_id, price_prec, size_prec))


def trades_table(df: pl.DataFrame, instrument_id: str, price_prec: int, size_prec: int) -> pa.Table:
    """``TradeTick`` rows."""
    cols = {
        "price": fixed_point(df["price"]),
        "size": fixed_point(df["size"]),
        "aggressor_side": df["aggressor_side"].cast(pl.UInt8).to_arrow(),
        "trade_id": df["trade_id"].cast(pl.String).to_arrow().cast(pa.string()),
        "ts_event": _u64(df["ts_event"]),
        "ts_init": _u64(df["ts_init"]),
    }
    return _table(cols, _meta(instrument_id, price_prec, size_prec))


def bars_table(
    df: pl.DataFrame, bar_type: str, instrument_id: str, price_prec: int, size_prec: int
) -> pa.Table:
    """``Bar`` rows of one bar type."""
    cols = {c: fixed_point(df[c]) for c in ("open", "high", "low", "close", "volume")}
    cols |= {"ts_event": _u64(df["ts_event"]), "ts_init": _u64(df["ts_init"])}
    return _table(cols, _meta(instrument_id, price_prec, size_prec, bar_type))


def deltas_table(df: pl.DataFrame, instrument_id: str, price_prec: int, size_prec: int) -> pa.Table:
    """``OrderBookDelta`` rows."""
    cols = {
        "action": df["action"].cast(pl.UInt8).to_arrow(),
        "side": df["side"].cast(pl.UInt8).to_arrow(),
        "price": fixed_point(df["price"]),
        "size": fixed_point(df["size"]),
        "order_id": _u64(df["order_id"]),
        "flags": df["flags"].cast(pl.UInt8).to_arrow(),
        "sequence": _u64(df["sequence"]),
        "ts_event": _u64(df["ts_event"]),
        "ts_init": _u64(df["ts_init"]),
    }
    return _table(cols, _meta(instrument_id, price_prec, size_prec))


# Nautilus class name (its catalog folder is derived from it) per data type.
NAUTILUS_CLASS = {
    "quotes": "QuoteTick",
    "trades": "TradeTick",
    "bars": "Bar",
    "book_deltas": "OrderBookDelta",
}


def build_table(
    kind: str,
    df: pl.DataFrame,
    identifier: str,
    instrument_id: str,
    price_prec: int,
    size_prec: int,
) -> pa.Table:
    """The catalog table for one chunk of one data type."""
    if kind == "quotes":
        return quotes_table(df, instrument_id, price_prec, size_prec)
    if kind == "trades":
        return trades_table(df, instrument_id, price_prec, size_prec)
    if kind == "bars":
        return bars_table(df, identifier, instrument_id, price_prec, size_prec)
    if kind == "book_deltas":
        return deltas_table(df, instrument_id, price_prec, size_prec)
    raise ValueError(f"unknown data type {kind!r}")
