"""The generic loader: any CSV or Parquet with a declared column mapping."""

from pathlib import Path

import polars as pl
import pytest
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.ingest.generic import ColumnMapping
from tapereader.ingest.pipeline import ingest
from tapereader.ingest.report import IngestError

from .conftest import TARDIS_QUOTES, TARDIS_TRADES, make_ctx

QUOTES_TOML = """
kind = "quotes"
instrument_id = "BTCUSDT-PERP.BINANCE"
time_unit = "iso"
[columns]
ts_event = "when"
bid_price = "best_bid"
ask_price = "best_ask"
bid_size = "bid_qty"
ask_size = "ask_qty"
"""

TRADES_TOML = """
kind = "trades"
instrument_id = "BTCUSDT-PERP.BINANCE"
time_unit = "us"
[columns]
ts_event = "timestamp"
ts_init = "local_timestamp"
price = "price"
size = "amount"
trade_id = "id"
aggressor_side = "side"
[aggressor_values]
buy = "BUYER"
sell = "SELLER"
"""


def _mapping(tmp_path: Path, text: str) -> ColumnMapping:
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    return ColumnMapping.from_toml(path)


def test_csv_with_iso_times_and_renamed_columns(market_data: Path, tmp_path: Path) -> None:
    src = pl.read_csv(market_data / TARDIS_QUOTES, infer_schema=False)
    when = pl.from_epoch(pl.col("timestamp").cast(pl.Int64), time_unit="us")
    renamed = src.select(
        when.dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("when"),
        pl.col("bid_price").alias("best_bid"),
        pl.col("ask_price").alias("best_ask"),
        pl.col("bid_amount").alias("bid_qty"),
        pl.col("ask_amount").alias("ask_qty"),
    )
    path = tmp_path / "quotes_export.csv"
    renamed.write_csv(path)
    ctx = make_ctx()
    ctx.extra["mapping"] = _mapping(tmp_path, QUOTES_TOML)
    report = ingest([path], tmp_path / "cat", ctx, data_format="generic", record_events=False)
    assert report.files[0].kinds[0].rows_written == 9_999
    quotes = ParquetDataCatalog(str(tmp_path / "cat")).query(QuoteTick)
    assert quotes[0].ts_event == int(src["timestamp"][0]) * 1000
    assert str(quotes[0].bid_price) == "9681.92"


def test_parquet_trades_with_mapped_sides(market_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "trades.parquet"
    pl.read_csv(market_data / TARDIS_TRADES).write_parquet(path)
    ctx = make_ctx()
    ctx.extra["mapping"] = _mapping(tmp_path, TRADES_TOML)
    report = ingest([path], tmp_path / "cat", ctx, data_format="generic", record_events=False)
    assert report.files[0].kinds[0].rows_written == 9_999
    trades = ParquetDataCatalog(str(tmp_path / "cat")).query(TradeTick)
    assert str(trades[0].trade_id) == "42377944" and str(trades[0].size) == "0.132"


def test_an_unmapped_required_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"columns not mapped for quotes: \['ask_size'\]"):
        _mapping(tmp_path, QUOTES_TOML.replace('ask_size = "ask_qty"\n', ""))


def test_a_mapped_column_missing_from_the_file(market_data: Path, tmp_path: Path) -> None:
    ctx = make_ctx()
    ctx.extra["mapping"] = _mapping(tmp_path, QUOTES_TOML)
    with pytest.raises(IngestError, match=r"mapped column\(s\) \['when'"):
        ingest([market_data / TARDIS_QUOTES], tmp_path / "cat", ctx, data_format="generic")
