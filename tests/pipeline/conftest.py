"""Fixtures for the pipeline: two real OANDA days, a small model trained on the first, and a
backtest configuration that trades the second (out of sample) through the whole chain."""

import datetime as dt
from pathlib import Path

import pytest

from tapereader.core.models.registry import Registry
from tapereader.ingest.context import LoadContext
from tapereader.ingest.instruments import default_registry
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.pipeline import ingest
from tapereader.replay.dataset import LabelSpec
from tapereader.replay.learning import RunConfig, train_bundle
from tapereader.replay.training import TrainingConfig

from ..conftest import ROOT

OANDA = "EUR/USD.OANDA"
DAYS = [
    "lean_oanda_eurusd_tick_201405/20140501_quote.zip",
    "lean_oanda_eurusd_tick_201405/20140502_quote.zip",
]
DAY2 = dt.datetime(2014, 5, 2, tzinfo=dt.UTC)
SMALL = TrainingConfig(rf_trees=15, rf_depth=6, xgb_trees=40, lstm_epochs=2, lstm_hidden=8)
VERSION = "pipeline-oanda"

# Thresholds low enough that a small model trades a few hours of quotes: the tests are
# about the chain, not about the edge.
CONFIG = """
[backtest]
catalog = "{catalog}"
start = 2014-05-02T07:00:00Z
end = 2014-05-02T10:00:00Z
store = "{store}"
report_dir = "{reports}"

[[backtest.venues]]
name = "OANDA"
base_currency = "USD"
starting_balances = ["100000 USD"]
default_leverage = 10.0

[chain]
instruments = ["EUR/USD.OANDA"]

[chain.signals]
registry = "{registry}"
model_versions = {{ "EUR/USD.OANDA" = "{version}" }}
adapt_every = 100

[chain.decision.policy]
enter = 0.02
exit = 0.01
min_edge = 0.01
min_confidence = 0.0
min_hold_ns = 60_000_000_000
position_size = 10_000.0

[chain.risk]
limits = "{limits}"

[chain.monitor]
stale_check_ms = 0
"""


@pytest.fixture(scope="session")
def two_days(market_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OANDA EUR/USD quotes of 1 and 2 May 2014 in a fresh catalog."""
    catalog = tmp_path_factory.mktemp("pipeline") / "catalog"
    ingest(
        [market_data / d for d in DAYS],
        catalog,
        LoadContext(default_registry(), IngestOptions()),
        record_events=False,
    )
    return catalog


@pytest.fixture(scope="session")
def registry(two_days: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding a small ensemble trained on 1 May only (not promoted: pinned)."""
    staging = tmp_path_factory.mktemp("staging")
    run = RunConfig(
        catalog=str(two_days),
        instrument_id=OANDA,
        label=LabelSpec(horizon_events=50),
        window=8,
        stride=3,
        end_ns=int(DAY2.timestamp() * 1e9),
        n_boot=20,
    )
    trained = train_bundle(run, SMALL, staging, version=VERSION)
    root = tmp_path_factory.mktemp("registry")
    Registry(root).add(trained.path)
    return root


def write_config(
    folder: Path, catalog: Path, registry: Path, *, limits: Path | None = None, extra: str = ""
) -> Path:
    """A backtest TOML in ``folder`` writing its store and reports there too."""
    path = folder / "backtest.toml"
    path.write_text(
        CONFIG.format(
            catalog=catalog,
            store=folder / "events.db",
            reports=folder / "reports",
            registry=registry,
            version=VERSION,
            limits=limits or ROOT / "config" / "risk.toml",
        )
        + extra
    )
    return path
