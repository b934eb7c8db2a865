"""Any CSV or Parquet file with a declared column mapping (TOML), for formats not built in.

Example mapping (``--mapping quotes.toml``)::

    kind = "quotes"
    instrument_id = "EUR/USD.OANDA"
    time_unit = "ms"              # s, ms, us, ns, or "iso" for ISO-8601 text (UTC if no zone)
    [columns]                     # standard column = column in the file
    ts_event = "time"
    bid_price = "bid"
    ask_price = "ask"
    [constants]                   # standard column = value for every row
    bid_size = "1000000"
    ask_size = "1000000"

``ts_init`` defaults to ``ts_event``. Trades need ``price, size, trade_id`` and
``aggressor_side`` mapped through ``aggressor_values`` (file value -> BUYER/SELLER/NONE).
Bars need ``open, high, low, close, volume`` and ``bar_type``; their times are bar closes.
"""

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import msgspec
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tapereader.ingest.bars import step_ns
from tapereader.ingest.context import LoadContext
from tapereader.ingest.frames import OTHER_COLUMNS, VALUE_COLUMNS, LoadedFrame, LoadResult
from tapereader.ingest.readers import iter_line_batches, read_csv_text, read_first_line
from tapereader.ingest.report import IngestError

_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_SIDES = {"BUYER": 1, "SELLER": 2, "NONE": 0}


class ColumnMapping(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """How a file's columns become one standard data type."""

    kind: Literal["quotes", "trades", "bars"]
    instrument_id: str
    columns: dict[str, str]
    constants: dict[str, str] = {}
    time_unit: Literal["s", "ms", "us", "ns", "iso"] = "ns"
    bar_type: str | None = None
    aggressor_values: dict[str, Literal["BUYER", "SELLER", "NONE"]] = {}
    separator: str = ","

    def required(self) -> list[str]:
        """Standard columns this kind needs from the file or constants."""
        needed = ["ts_event", *VALUE_COLUMNS[self.kind], *OTHER_COLUMNS[self.kind]]
        return needed

    @classmethod
    def from_toml(cls, path: str | Path) -> "ColumnMapping":
        """Load and validate a mapping file; errors name the file and the problem."""
        try:
            mapping = msgspec.convert(tomllib.loads(Path(path).read_text()), cls)
        except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        missing = [
            c for c in mapping.required() if c not in mapping.columns and c not in mapping.constants
        ]
        if missing:
            raise ValueError(f"{path}: columns not mapped for {mapping.kind}: {missing}")
        if mapping.kind == "bars" and not mapping.bar_type:
            raise ValueError(f"{path}: bars need bar_type")
        return mapping


def _batches(path: Path, mapping: ColumnMapping, batch_bytes: int) -> Iterator[pl.DataFrame]:
    """The file in batches, every column as read plus ``line`` (row number for Parquet)."""
    if path.suffix == ".parquet":
        try:
            pf = pq.ParquetFile(path)
            rows = max(1, batch_bytes // 100)  # Parquet batches go by rows
            offset = 1
            for batch in pf.iter_batches(batch_size=rows):
                df = pl.from_arrow(batch)
                yield df.with_row_index("line", offset=offset)
                offset += len(df)
        except (OSError, pa.ArrowException) as exc:
            raise IngestError(str(path), f"cannot read Parquet: {exc}") from None
        return
    head = read_first_line(path).decode("utf-8", "replace").strip()
    header = [h.strip() for h in head.split(mapping.separator)]
    for source, data, first in iter_line_batches(path, batch_bytes, skip_header=True):
        yield read_csv_text(
            data, source, header, has_header=False, separator=mapping.separator, first_line=first
        )


def _time(col: str, unit: str) -> pl.Expr:
    if unit == "iso":
        text = pl.col(col).cast(pl.String).str.strip_chars()
        return pl.coalesce(
            text.str.to_datetime(time_unit="ns", time_zone="UTC", strict=False),
            text.str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.f%#z", time_unit="ns", strict=False
            ).dt.convert_time_zone("UTC"),
        ).dt.epoch("ns")
    return (
        pl.col(col).cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False) * _UNIT_NS[unit]
    )


def load(path: Path, ctx: LoadContext) -> Iterator[LoadResult]:
    """Load ``path`` with the mapping given as ``ctx.extra["mapping"]``, in batches."""
    mapping = ctx.extra.get("mapping")
    if not isinstance(mapping, ColumnMapping):
        raise IngestError(str(path), "the generic format needs a column mapping (--mapping FILE)")
    spec = ctx.registry.get(mapping.instrument_id)
    if spec is None:
        raise IngestError(str(path), f"unknown instrument {mapping.instrument_id!r}")
    bar_interval = None
    if mapping.kind == "bars":
        step = "-".join(mapping.bar_type.split("-")[-4:-2])
        try:
            bar_interval = step_ns(step)
        except ValueError as exc:
            raise IngestError(str(path), f"bar_type {mapping.bar_type!r}: {exc}") from None
    for df in _batches(path, mapping, ctx.options.batch_bytes):
        absent = [c for c in mapping.columns.values() if c not in df.columns]
        if absent:
            raise IngestError(str(path), f"mapped column(s) {absent} not in the file")
        frame = _standard(df, mapping, str(path))
        yield LoadResult(
            data_format=f"generic-{mapping.kind}",
            frames=[
                LoadedFrame(mapping.kind, spec.id, frame, str(path), mapping.bar_type, bar_interval)
            ],
        )


def _standard(df: pl.DataFrame, mapping: ColumnMapping, source: str) -> pl.DataFrame:
    exprs = [pl.col("line")]
    for target in ("ts_event", "ts_init"):
        col = mapping.columns.get(target, mapping.columns["ts_event"])
        exprs.append(_time(col, mapping.time_unit).alias(target))
    for target in (*VALUE_COLUMNS[mapping.kind], *OTHER_COLUMNS[mapping.kind]):
        if target in mapping.constants:
            exprs.append(pl.lit(mapping.constants[target]).alias(target))
        elif target == "aggressor_side":
            values = {k: _SIDES[v] for k, v in mapping.aggressor_values.items()}
            exprs.append(
                pl.col(mapping.columns[target])
                .cast(pl.String)
                .str.strip_chars()
                .replace_strict(values, default=None, return_dtype=pl.UInt8)
                .alias(target)
            )
        else:
            exprs.append(pl.col(mapping.columns[target]).cast(pl.String).alias(target))
    frame = df.select(exprs)
    for target in ("ts_event", "aggressor_side"):
        if target in frame.columns and frame[target].null_count():
            i = int(frame[target].is_null().arg_true()[0])
            col = mapping.columns.get(target, target)
            raise IngestError(
                source,
                f"field {col!r}: {df[col][i]!r} cannot be read as {target}",
                int(frame["line"][i]),
            )
    return frame
