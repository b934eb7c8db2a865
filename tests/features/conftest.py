"""Real market data as kernel events and feature frames, parsed once per session."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tapereader.core.features import kernel as k
from tapereader.core.features.batch import EventArrays, FeatureFrame, compute

from .loaders import binance_events, lean_events, lean_quotes, tardis_events


@dataclass(frozen=True)
class Replay:
    """Events, their feature rows, and the periods (accepted quotes and book tops)."""

    events: EventArrays
    frame: FeatureFrame

    @property
    def period_rows(self) -> np.ndarray:
        """Indexes of the events that closed a period, in order."""
        accepted = self.frame.status != k.STATUS_REJECTED
        return np.flatnonzero(accepted & (self.events.kind != k.KIND_TRADE))

    @property
    def mids(self) -> np.ndarray:
        v = self.events.values[self.period_rows]
        return (v[:, 0] + v[:, 1]) / 2

    def at_periods(self, name: str) -> np.ndarray:
        return self.frame.column(name)[self.period_rows]


def _replay(events: EventArrays) -> Replay:
    return Replay(events, compute(events))


@pytest.fixture(scope="session")
def fxcm(market_data: Path) -> Replay:
    """1.14M FXCM EUR/USD quotes (clock UTC-05), about 10% of them crossed."""
    return _replay(lean_events(lean_quotes(market_data / "lean_fxcm_eurusd_tick_201405", -5)))


@pytest.fixture(scope="session")
def oanda(market_data: Path) -> Replay:
    """533k clean OANDA EUR/USD quotes."""
    return _replay(lean_events(lean_quotes(market_data / "lean_oanda_eurusd_tick_201405", 0)))


@pytest.fixture(scope="session")
def btc(market_data: Path) -> Replay:
    """Binance USD-M BTCUSDT: trades, best bid/ask and a rebuilt L2 book, merged by time."""
    return _replay(binance_events(market_data / "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz"))


@pytest.fixture(scope="session")
def tardis(market_data: Path) -> Replay:
    """Tardis Binance-futures BTCUSDT quotes and trades."""
    return _replay(
        tardis_events(
            market_data / "nautilus_tardis_binance-futures_BTCUSDT_quotes.csv",
            market_data / "nautilus_tardis_binance-futures_BTCUSDT_trades.csv",
        )
    )
