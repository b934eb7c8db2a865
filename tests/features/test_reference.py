"""Every technical indicator against TA-Lib on real mid series.

The kernel's period is one accepted quote (or book top) and its price is the mid, so
TA-Lib gets that same mid series with high = low = close. TA-Lib treats anything below
1e-8 as zero, so it is fed ``(mid - first mid) / tick`` (every indicator here is
shift-invariant, and scale-invariant or scaled back): that keeps its thresholds away
from real price moves without touching the kernel. Rows where the window is flat are
degenerate (0/0); TA-Lib answers 0 there, the kernel its documented neutral value, and
those rows are checked separately against that definition.
"""

import numpy as np
import pytest
import talib
from numpy.testing import assert_allclose, assert_array_equal

from tapereader.core.features import kernel as k

from .conftest import Replay

DATASETS = ["fxcm", "btc", "oanda"]


@pytest.fixture(params=DATASETS)
def replay(request: pytest.FixtureRequest) -> Replay:
    return request.getfixturevalue(request.param)


def _talib_input(mids: np.ndarray) -> tuple[np.ndarray, float]:
    """Mids in ticks from the first; steps below 1e-9 of the price are rounding, not ticks."""
    steps = np.abs(np.diff(mids))
    tick = steps[steps > mids.mean() * 1e-9].min()
    return (mids - mids[0]) / tick, tick


def _flat(mids: np.ndarray, n: int) -> np.ndarray:
    """Rows whose last ``n`` mids count as flat for the kernel (width <= FLAT_EPS of price)."""
    hi = talib.MAX(mids, n)
    return hi - talib.MIN(mids, n) <= k.FLAT_EPS * hi


def _defined(ref: np.ndarray) -> np.ndarray:
    return ~np.isnan(ref)


def test_price_change_and_means(replay: Replay) -> None:
    mids = replay.mids
    ret = replay.at_periods("ret_1")
    assert np.isnan(ret[0])
    assert_array_equal(ret[1:], mids[1:] / mids[:-1] - 1.0)
    for n in (5, 20):
        ref = mids / talib.SMA(mids, n) - 1.0
        got = replay.at_periods(f"sma_{n}_dev")
        assert_array_equal(np.isnan(got), np.isnan(ref))
        # TA-Lib's SMA is a running sum, which drifts by ~1e-13 over a million periods.
        assert_allclose(got[n - 1 :], ref[n - 1 :], rtol=0, atol=5e-13)


def test_volatility_and_range(replay: Replay) -> None:
    mids = replay.mids
    ret = np.concatenate([[np.nan], mids[1:] / mids[:-1] - 1.0])
    # In basis points so that TA-Lib's variance stays above its 1e-8 zero threshold.
    ref_vol = talib.STDDEV(ret * 1e4, 20, 1.0) / 1e4
    got_vol = replay.at_periods("volatility_20")
    assert_array_equal(np.isnan(got_vol), np.isnan(ref_vol))
    ok = _defined(ref_vol)
    assert_allclose(got_vol[ok], ref_vol[ok], rtol=1e-6, atol=1e-12)
    ref_range = (talib.MAX(mids, 20) - talib.MIN(mids, 20)) / mids
    got_range = replay.at_periods("range_20")
    ok = _defined(ref_range)
    assert_allclose(got_range[ok], ref_range[ok], rtol=1e-14, atol=0)


def test_rsi_wilder(replay: Replay) -> None:
    x, _ = _talib_input(replay.mids)
    ref = talib.RSI(x, 14)
    got = replay.at_periods("rsi_14")
    assert_array_equal(np.isnan(got), np.isnan(ref))
    # Wilder's averages decay through a flat stretch until they are rounding noise: the
    # kernel then answers its 0/0 value 50 (below FLAT_EPS of the price), TA-Lib 0 (below
    # 1e-8 of its input). Both take ~100+ flat periods; elsewhere they must agree.
    quiet = _defined(ref) & _flat(replay.mids, 100)
    assert np.all((got[quiet] >= 0) & (got[quiet] <= 100))
    neutral = _defined(ref) & (got == 50.0) & (np.abs(ref - 50.0) > 1e-9)
    assert np.all(quiet[neutral] | _flat(replay.mids, 15)[neutral])
    ok = _defined(ref) & ~quiet & ~neutral
    assert_allclose(got[ok], ref[ok], rtol=1e-9, atol=1e-9)


def test_macd_and_signal(replay: Replay) -> None:
    mids = replay.mids
    x, tick = _talib_input(mids)
    macd = talib.EMA(x, 12) - talib.EMA(x, 26)
    signal = np.full_like(macd, np.nan)
    signal[25:] = talib.EMA(macd[25:], 9)
    got_macd = replay.at_periods("macd_rel")
    got_signal = replay.at_periods("macd_signal_rel")
    assert_array_equal(np.isnan(got_macd), np.isnan(macd))
    assert_array_equal(np.isnan(got_signal), np.isnan(signal))
    # Both sides are differences of EMAs of numbers near 1e4 ticks: compare in ticks.
    ok = _defined(macd)
    assert_allclose(got_macd[ok] * mids[ok] / tick, macd[ok], rtol=0, atol=1e-8)
    ok = _defined(signal)
    assert_allclose(got_signal[ok] * mids[ok] / tick, signal[ok], rtol=0, atol=1e-8)
    # TA-Lib's own MACD seeds its fast EMA later; the seeds are forgotten after ~500 periods.
    ta_macd, ta_signal, _ = talib.MACD(x, 12, 26, 9)
    late = slice(600, None)
    assert_allclose((got_macd * mids / tick)[late], ta_macd[late], rtol=0, atol=1e-6)
    assert_allclose((got_signal * mids / tick)[late], ta_signal[late], rtol=0, atol=1e-6)


def test_bollinger_pctb(replay: Replay) -> None:
    x, _ = _talib_input(replay.mids)
    upper, _, lower = talib.BBANDS(x, 20, 2.0, 2.0, 0)
    got = replay.at_periods("bollinger_pctb_20")
    flat = _flat(replay.mids, 20)
    assert np.all(got[flat] == 0.5)
    ok = _defined(upper) & ~flat
    ref = (x[ok] - lower[ok]) / (upper[ok] - lower[ok])
    assert_allclose(got[ok], ref, rtol=0, atol=1e-6)


def test_stochastic_and_williams(replay: Replay) -> None:
    x, _ = _talib_input(replay.mids)
    fastk, _ = talib.STOCHF(x, x, x, fastk_period=14, fastd_period=1, fastd_matype=0)
    willr = talib.WILLR(x, x, x, 14)
    got_k = replay.at_periods("stoch_k_14")
    got_r = replay.at_periods("williams_r_14")
    assert_array_equal(np.isnan(got_k), np.isnan(fastk))
    assert_array_equal(np.isnan(got_r), np.isnan(willr))
    flat = _flat(replay.mids, 14)
    assert np.all(got_k[flat] == 50.0) and np.all(got_r[flat] == -50.0)
    ok = _defined(fastk) & ~flat
    assert_allclose(got_k[ok], fastk[ok], rtol=0, atol=1e-9)
    assert_allclose(got_r[ok], willr[ok], rtol=0, atol=1e-9)


def test_cci(replay: Replay) -> None:
    x, _ = _talib_input(replay.mids)
    ref = talib.CCI(x, x, x, 20)
    got = replay.at_periods("cci_20")
    assert_array_equal(np.isnan(got), np.isnan(ref))
    flat = _flat(replay.mids, 20)
    assert np.all(got[flat] == 0.0)
    ok = _defined(ref) & ~flat
    # The kernel works in prices: deviations of a few ticks from a mean near 6e4 leave
    # ~1e-8 relative precision in the mean absolute deviation.
    assert_allclose(got[ok], ref[ok], rtol=2e-8, atol=1e-7)


def test_atr_momentum_roc(replay: Replay) -> None:
    mids = replay.mids
    x, tick = _talib_input(mids)
    ref_atr = talib.ATR(x, x, x, 14) * tick / mids
    got_atr = replay.at_periods("atr_14_rel")
    assert_array_equal(np.isnan(got_atr), np.isnan(ref_atr))
    ok = _defined(ref_atr)
    assert_allclose(got_atr[ok], ref_atr[ok], rtol=1e-9, atol=1e-18)
    ref_mom = talib.MOM(mids, 10) / mids
    got_mom = replay.at_periods("momentum_10_rel")
    assert_array_equal(np.isnan(got_mom), np.isnan(ref_mom))
    ok = _defined(ref_mom)
    assert_allclose(got_mom[ok], ref_mom[ok], rtol=1e-14, atol=0)
    ref_roc = talib.ROC(mids, 10)
    got_roc = replay.at_periods("roc_10")
    assert_array_equal(np.isnan(got_roc), np.isnan(ref_roc))
    ok = _defined(ref_roc)
    assert_array_equal(got_roc[ok], ref_roc[ok])
