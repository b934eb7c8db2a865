"""Tardis.dev trades and quotes CSVs."""

import csv
from decimal import Decimal
from pathlib import Path

from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.ingest.pipeline import ingest

from .conftest import TARDIS_QUOTES, TARDIS_TRADES, make_ctx


def test_trades_and_quotes_round_trip(market_data: Path, tmp_path: Path) -> None:
    files = [market_data / TARDIS_TRADES, market_data / TARDIS_QUOTES]
    report = ingest(files, tmp_path / "cat", make_ctx(), record_events=False)
    assert [f.data_format for f in report.files] == ["tardis-trades", "tardis-quotes"]
    assert [f.kinds[0].rows_written for f in report.files] == [9_999, 9_999]
    cat = ParquetDataCatalog(str(tmp_path / "cat"))
    trades = cat.query(TradeTick, identifiers=["BTCUSDT-PERP.BINANCE"])
    quotes = cat.query(QuoteTick, identifiers=["BTCUSDT-PERP.BINANCE"])
    with (market_data / TARDIS_TRADES).open() as fh:
        raw_trades = list(csv.DictReader(fh))
    with (market_data / TARDIS_QUOTES).open() as fh:
        raw_quotes = list(csv.DictReader(fh))
    for tick, row in zip(trades, raw_trades, strict=True):
        assert tick.ts_event == int(row["timestamp"]) * 1000
        assert tick.ts_init == int(row["local_timestamp"]) * 1000
        assert tick.price.as_decimal() == Decimal(row["price"])
        assert tick.size.as_decimal() == Decimal(row["amount"])
        side = AggressorSide.BUYER if row["side"] == "buy" else AggressorSide.SELLER
        assert tick.aggressor_side == side and str(tick.trade_id) == row["id"]
    for tick, row in zip(quotes, raw_quotes, strict=True):
        assert tick.ts_event == int(row["timestamp"]) * 1000
        assert tick.bid_price.as_decimal() == Decimal(row["bid_price"])
        assert tick.ask_size.as_decimal() == Decimal(row["ask_amount"])
