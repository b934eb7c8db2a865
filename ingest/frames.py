"""The columnar shape every loader produces, and exact decimal parsing with line-level errors.

Loaders hand over polars frames in one standard layout per data type, with prices and
sizes still as text; :func:`parse_decimals` turns them into exact ``Decimal(38, 16)``
columns (16 decimals is Nautilus's fixed-point scale), so no value ever passes through a
binary float.
"""

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from tapereader.ingest.report import BookReport, IngestError

Kind = Literal["quotes", "trades", "book_deltas", "bars"]

DECIMAL = pl.Decimal(38, 16)

# Value columns (exact decimals) and the other required columns, per data type. Every frame
# also carries ``line``: the source line number, for error messages.
VALUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "quotes": ("bid_price", "ask_price", "bid_size", "ask_size"),
    "trades": ("price", "size"),
    "book_deltas": ("price", "size"),
    "bars": ("open", "high", "low", "close", "volume"),
}
PRICE_COLUMNS: dict[str, tuple[str, ...]] = {
    "quotes": ("bid_price", "ask_price"),
    "trades": ("price",),
    "book_deltas": ("price",),
    "bars": ("open", "high", "low", "close"),
}
OTHER_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    "quotes": {},
    "trades": {"aggressor_side": pl.UInt8(), "trade_id": pl.String()},
    "book_deltas": {
        "action": pl.UInt8(),
        "side": pl.UInt8(),
        "order_id": pl.UInt64(),
        "flags": pl.UInt8(),
        "sequence": pl.UInt64(),
    },
    "bars": {},
}
TIME_COLUMNS = ("ts_event", "ts_init")


@dataclass
class LoadedFrame:
    """One data type for one instrument (or bar type) as read from a source."""

    kind: Kind
    instrument_id: str
    df: pl.DataFrame
    source: str
    bar_type: str | None = None
    # Bar length in ns (bars only): a gap is a missing bar.
    bar_interval_ns: int | None = None
    # Rows the loader itself rejected before building the frame, by reason.
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def identifier(self) -> str:
        """Catalog identifier: the bar type for bars, else the instrument id."""
        return self.bar_type or self.instrument_id


@dataclass
class LoadResult:
    """Everything a loader read from one source file."""

    data_format: str
    frames: list[LoadedFrame]
    book: BookReport | None = None
    notes: list[str] = field(default_factory=list)


def parse_decimals(df: pl.DataFrame, columns: tuple[str, ...], source: str) -> pl.DataFrame:
    """Cast text columns to exact decimals; a missing or non-numeric value is an error."""
    casts = []
    for col in columns:
        if df.schema[col] == DECIMAL:
            continue
        text = pl.col(col).cast(pl.String)
        casts.append(text.str.strip_chars().cast(DECIMAL, strict=False).alias(col))
    if not casts:
        return df
    out = df.with_columns(casts)
    for col in columns:
        _refuse_first_null(df, out, col, source, "a number")
    return out


def require_int(df: pl.DataFrame, col: str, dtype: pl.DataType, source: str) -> pl.DataFrame:
    """Cast a column to an integer type; a missing or non-integer value is an error."""
    if df.schema[col] == dtype:
        if df[col].null_count():
            i = int(df[col].is_null().arg_true()[0])
            raise IngestError(source, f"missing value for field {col!r}", line=_line(df, i))
        return df
    src = pl.col(col)
    if df.schema[col] == pl.String:
        src = src.str.strip_chars()
    out = df.with_columns(src.cast(dtype, strict=False).alias(col))
    _refuse_first_null(df, out, col, source, "a valid integer")
    return out


def _refuse_first_null(
    raw_df: pl.DataFrame, cast_df: pl.DataFrame, col: str, source: str, expected: str
) -> None:
    """Raise for the first row whose cast failed, naming its line and the raw text."""
    bad = cast_df[col].is_null()
    if not bad.any():
        return
    i = int(bad.arg_true()[0])
    raw = raw_df[col][i]
    problem = (
        f"missing value for field {col!r}"
        if raw is None or str(raw).strip() == ""
        else f"field {col!r}: {str(raw)!r} is not {expected}"
    )
    raise IngestError(source, problem, line=_line(raw_df, i))


def _line(df: pl.DataFrame, i: int) -> int | None:
    return int(df["line"][i]) if "line" in df.columns else None
