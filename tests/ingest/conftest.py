"""Fixtures for ingest tests: contexts, and real files ingested once per session."""

import hashlib
from pathlib import Path

import pytest

from tapereader.ingest.context import LoadContext
from tapereader.ingest.instruments import default_registry
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.pipeline import ingest
from tapereader.ingest.report import IngestReport

BTC_FEED = "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz"
ETH_FEED = "hftbt_binance-usdm_ethusdt_20240808_rawfeed.gz"
TARDIS_TRADES = "nautilus_tardis_binance-futures_BTCUSDT_trades.csv"
TARDIS_QUOTES = "nautilus_tardis_binance-futures_BTCUSDT_quotes.csv"
FTX_BARS = "nautilus_ftx_btc-perp_1m_20211231_20220201.csv"
FXCM_TICKS = "lean_fxcm_eurusd_tick_201405"
OANDA_TICKS = "lean_oanda_eurusd_tick_201405"
OANDA_HOURS = "lean_oanda_eurusd_hour_2007_2018.zip"


def make_ctx(**options) -> LoadContext:
    """A context with the built-in instruments and the given options."""
    return LoadContext(default_registry(), IngestOptions(**options))


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> SHA-256), and every folder (-> "dir")."""
    if not root.exists():
        return {}
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def btc_feed_catalog(market_data: Path, tmp_path_factory) -> tuple[Path, IngestReport]:
    """The BTCUSDT raw feed ingested once into a fresh catalog."""
    catalog = tmp_path_factory.mktemp("btc") / "catalog"
    report = ingest([market_data / BTC_FEED], catalog, make_ctx())
    return catalog, report
