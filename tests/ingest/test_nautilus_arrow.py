"""The Arrow tables written to the catalog equal what Nautilus's own serializer produces."""

from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from nautilus_trader.model.data import Bar, BarType, BookOrder, OrderBookDelta, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.serialization.arrow.serializer import ArrowSerializer

from tapereader.ingest.frames import DECIMAL
from tapereader.ingest.nautilus_arrow import (
    bars_table,
    deltas_table,
    fixed_point,
    quotes_table,
    trades_table,
)

from .conftest import TARDIS_QUOTES, TARDIS_TRADES

BTC = "BTCUSDT-PERP.BINANCE"
IID = InstrumentId.from_str(BTC)


def _dec(df: pl.DataFrame, *cols: str) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(DECIMAL) for c in cols)


def test_quotes(market_data: Path) -> None:
    raw = pl.read_csv(market_data / TARDIS_QUOTES, infer_schema=False).head(2_000)
    df = _dec(
        raw.select(
            pl.col("bid_price"),
            pl.col("ask_price"),
            pl.col("bid_amount").alias("bid_size"),
            pl.col("ask_amount").alias("ask_size"),
            (pl.col("timestamp").cast(pl.Int64) * 1000).alias("ts_event"),
            (pl.col("local_timestamp").cast(pl.Int64) * 1000).alias("ts_init"),
        ),
        "bid_price",
        "ask_price",
        "bid_size",
        "ask_size",
    )
    ts_e = df["ts_event"].cast(pl.UInt64).to_numpy()
    ts_i = df["ts_init"].cast(pl.UInt64).to_numpy()
    ticks = QuoteTick.from_raw_arrays_to_list(
        IID,
        2,
        3,
        *(
            raw[c].cast(pl.Float64).to_numpy()
            for c in ("bid_price", "ask_price", "bid_amount", "ask_amount")
        ),
        ts_e,
        ts_i,
    )
    expected = ArrowSerializer.serialize_batch(ticks, QuoteTick)
    assert quotes_table(df, BTC, 2, 3).equals(expected, check_metadata=True)


def test_trades(market_data: Path) -> None:
    raw = pl.read_csv(market_data / TARDIS_TRADES, infer_schema=False).head(2_000)
    side = pl.when(pl.col("side") == "buy").then(1).otherwise(2).cast(pl.UInt8)
    df = _dec(
        raw.select(
            pl.col("price"),
            pl.col("amount").alias("size"),
            side.alias("aggressor_side"),
            pl.col("id").alias("trade_id"),
            (pl.col("timestamp").cast(pl.Int64) * 1000).alias("ts_event"),
            (pl.col("local_timestamp").cast(pl.Int64) * 1000).alias("ts_init"),
        ),
        "price",
        "size",
    )
    ticks = [
        TradeTick(
            IID,
            Price(Decimal(r["price"]), 2),
            Quantity(Decimal(r["size"]), 3),
            AggressorSide(r["aggressor_side"]),
            TradeId(r["trade_id"]),
            r["ts_event"],
            r["ts_init"],
        )
        for r in df.with_columns(pl.col("price", "size").cast(pl.String)).iter_rows(named=True)
    ]
    expected = ArrowSerializer.serialize_batch(ticks, TradeTick)
    assert trades_table(df, BTC, 2, 3).equals(expected, check_metadata=True)


def test_bars_and_deltas() -> None:
    bar_type = "EUR/USD.OANDA-1-HOUR-BID-EXTERNAL"
    values = [
        ("1.31927", "1.31955", "1.31870", "1.31935", "0"),
        ("1.31935", "1.32020", "1.31925", "1.32000", "12"),
    ]
    df = _dec(
        pl.DataFrame(values, schema=["open", "high", "low", "close", "volume"], orient="row"),
        "open",
        "high",
        "low",
        "close",
        "volume",
    )
    df = df.with_columns(pl.Series("ts_event", [10, 20]), pl.Series("ts_init", [11, 21]))
    bars = [
        Bar(
            BarType.from_str(bar_type),
            *(Price.from_str(v) for v in row[:4]),
            Quantity.from_str(row[4]),
            te,
            ti,
        )
        for row, te, ti in zip(values, [10, 20], [11, 21], strict=True)
    ]
    expected = ArrowSerializer.serialize_batch(bars, Bar)
    assert bars_table(df, bar_type, "EUR/USD.OANDA", 5, 0).equals(expected, check_metadata=True)

    deltas = [
        OrderBookDelta(
            IID,
            BookAction.UPDATE,
            BookOrder(OrderSide.BUY, Price.from_str("61800.20"), Quantity.from_str("2.909"), 0),
            0,
            7,
            100,
            101,
        ),
        OrderBookDelta(
            IID,
            BookAction.DELETE,
            BookOrder(OrderSide.SELL, Price.from_str("61800.30"), Quantity.from_str("0.000"), 0),
            128,
            7,
            100,
            101,
        ),
    ]
    df = _dec(
        pl.DataFrame(
            {
                "action": [2, 3],
                "side": [1, 2],
                "price": ["61800.20", "61800.30"],
                "size": ["2.909", "0.000"],
                "order_id": [0, 0],
                "flags": [0, 128],
                "sequence": [7, 7],
                "ts_event": [100, 100],
                "ts_init": [101, 101],
            }
        ),
        "price",
        "size",
    )
    expected = ArrowSerializer.serialize_batch(deltas, OrderBookDelta)
    assert deltas_table(df, BTC, 2, 3).equals(expected, check_metadata=True)


def test_fixed_point_is_exact_for_large_and_negative_values() -> None:
    s = pl.Series("p", ["123456789.123456", "-0.5", "0"]).cast(DECIMAL)
    raw = [int.from_bytes(b, "little", signed=True) for b in fixed_point(s).to_pylist()]
    assert raw == [1234567891234560000000000, -5 * 10**15, 0]
    with pytest.raises(TypeError):
        fixed_point(pl.Series("p", np.array([1.5])))
