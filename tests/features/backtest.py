"""A BacktestEngine over the BTCUSDT feed ingested into a catalog, for the FeatureActor.

Shared by the actor tests and the actor benchmark: the feed goes through the ingest
pipeline into a fresh ParquetDataCatalog, and is read back from it.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import OrderBookDelta, OrderBookDeltas
from nautilus_trader.model.enums import AccountType, BookType, OmsType, RecordFlag
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.ingest.context import LoadContext
from tapereader.ingest.instruments import default_registry
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.pipeline import ingest

BTC_FEED = "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz"


@dataclass(frozen=True)
class FeedData:
    """One instrument's ticks from a catalog; book deltas grouped into their batches."""

    instrument: Instrument
    quotes: list
    trades: list
    books: list[OrderBookDeltas]


def ingest_feed(feed: Path, catalog: Path) -> Path:
    ctx = LoadContext(default_registry(), IngestOptions(progress=False))
    ingest([feed], catalog, ctx, record_events=False)
    return catalog


def load_feed(catalog: Path) -> FeedData:
    cat = ParquetDataCatalog(str(catalog))
    (instrument,) = cat.instruments()
    books, batch = [], []
    for delta in cat.query(OrderBookDelta):
        batch.append(delta)
        if delta.flags & RecordFlag.F_LAST:  # the last delta of one venue message
            books.append(OrderBookDeltas(delta.instrument_id, batch))
            batch = []
    assert not batch, "book deltas end without an F_LAST flag"
    return FeedData(instrument, cat.quote_ticks(), cat.trade_ticks(), books)


def run_engine(data: FeedData, actors: Sequence[Actor], use_book: bool) -> float:
    """Run one backtest over the feed with ``actors``; returns wall seconds of ``run()``."""
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    try:
        engine.add_venue(
            Venue("BINANCE"),
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            base_currency=None,
            starting_balances=[Money(1_000_000, USDT)],
            book_type=BookType.L2_MBP if use_book else BookType.L1_MBP,
        )
        engine.add_instrument(data.instrument)
        engine.add_data(data.quotes)
        engine.add_data(data.trades)
        if use_book:
            engine.add_data(data.books)
        for actor in actors:
            engine.add_actor(actor)
        start = time.perf_counter()
        engine.run()
        return time.perf_counter() - start
    finally:
        engine.dispose()
