"""Fixtures for model tests: a small real catalog and one small ensemble trained on it."""

import shutil
from pathlib import Path

import pytest

from tapereader.ingest.context import LoadContext
from tapereader.ingest.instruments import default_registry
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.pipeline import ingest
from tapereader.replay.dataset import LabelSpec
from tapereader.replay.learning import RunConfig, TrainResult, train_bundle
from tapereader.replay.training import TrainingConfig

OANDA_DAY = "lean_oanda_eurusd_tick_201405/20140501_quote.zip"
OANDA_ID = "EUR/USD.OANDA"
BTC_FEED = "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz"
BTC_ID = "BTCUSDT-PERP.BINANCE"
# Small on purpose: the whole model suite must stay within a few minutes on two cores.
SMALL = TrainingConfig(rf_trees=15, rf_depth=6, xgb_trees=40, lstm_epochs=2, lstm_hidden=8)
WINDOW = 8


def ingest_into(paths: list[Path], catalog: Path) -> Path:
    ingest(paths, catalog, LoadContext(default_registry(), IngestOptions()), record_events=False)
    return catalog


@pytest.fixture(scope="session")
def oanda_catalog(market_data: Path, tmp_path_factory) -> Path:
    """One real day of OANDA EUR/USD quotes (24,179 ticks) in a fresh catalog."""
    return ingest_into([market_data / OANDA_DAY], tmp_path_factory.mktemp("oanda") / "catalog")


@pytest.fixture(scope="session")
def btc_catalog(market_data: Path, tmp_path_factory) -> Path:
    """The real BTCUSDT feed (trades, quotes, book) in a fresh catalog."""
    return ingest_into([market_data / BTC_FEED], tmp_path_factory.mktemp("btc") / "catalog")


def small_run(catalog: Path, **changes) -> RunConfig:
    base = dict(
        catalog=str(catalog),
        instrument_id=OANDA_ID,
        label=LabelSpec(horizon_events=50),
        window=WINDOW,
        stride=3,
        n_boot=30,
    )
    return RunConfig(**(base | changes))


@pytest.fixture(scope="session")
def trained(oanda_catalog: Path, tmp_path_factory) -> TrainResult:
    """A small ensemble trained once on the real OANDA day (bundle in a staging folder)."""
    out = tmp_path_factory.mktemp("staging")
    return train_bundle(small_run(oanda_catalog), SMALL, out, version="oanda-small")


@pytest.fixture
def bundle_copy(trained: TrainResult, tmp_path: Path) -> Path:
    """A private copy of the trained bundle folder, free to damage."""
    target = tmp_path / trained.path.name
    shutil.copytree(trained.path, target)
    return target
