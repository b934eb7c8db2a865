"""The real BTCUSDT feed ingested once per session into a catalog the live tests publish from."""

from pathlib import Path

import pytest

from tests.features.backtest import BTC_FEED, ingest_feed


@pytest.fixture(scope="session")
def btc_catalog(market_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh ParquetDataCatalog holding the BTCUSDT feed (trades, quotes, book)."""
    return ingest_feed(market_data / BTC_FEED, tmp_path_factory.mktemp("live") / "catalog")
