"""Volume, quote, book and trade-flow features against direct numpy computations.

TA-Lib has no notion of trades within quotes, so these references are written out
from the definitions in docs/FEATURES.md, independently of the kernel's ring buffers
and recursions (sliding windows, explicit sums over the past).
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from numpy.testing import assert_allclose, assert_array_equal

from tapereader.core.features import kernel as k

from .conftest import Replay

DATASETS = ["btc", "tardis"]


@pytest.fixture(params=DATASETS)
def replay(request: pytest.FixtureRequest) -> Replay:
    return request.getfixturevalue(request.param)


def _trade_rows(replay: Replay) -> np.ndarray:
    accepted = replay.frame.status != k.STATUS_REJECTED
    return np.flatnonzero(accepted & (replay.events.kind == k.KIND_TRADE))


def _windows(x: np.ndarray, n: int) -> np.ndarray:
    """Rows of the last ``n`` values ending at each index (zeros before the start)."""
    return sliding_window_view(np.concatenate([np.zeros(n - 1), x]), n)


def _period_volumes(replay: Replay) -> np.ndarray:
    """Traded size per period: each trade belongs to the period the next quote closes."""
    trades = _trade_rows(replay)
    periods = replay.period_rows
    owner = np.searchsorted(periods, trades)
    sizes = replay.events.values[trades, 1]
    return np.bincount(owner, weights=sizes, minlength=len(periods) + 1)[: len(periods)]


def test_volume_features(replay: Replay) -> None:
    v = _period_volumes(replay)
    assert v.sum() > 0
    n = len(v)
    assert_allclose(replay.at_periods("volume_last"), v, rtol=1e-12, atol=1e-12)
    mean5 = _windows(v, 5).mean(axis=1)
    sum60 = _windows(v, 60).sum(axis=1)
    w20 = _windows(v, 20)
    mean20 = w20.mean(axis=1)
    std20 = w20.std(axis=1)
    got = {name: replay.at_periods(name) for name in k.FEATURE_NAMES if name.startswith("volume")}
    assert_allclose(got["volume_mean_5"][4:], mean5[4:], rtol=1e-12, atol=1e-12)
    assert_allclose(got["volume_sum_60"][59:], sum60[59:], rtol=1e-12, atol=1e-12)
    traded = mean20 > 0
    ok = traded & (np.arange(n) >= 19)
    assert_allclose(got["volume_ratio_20"][ok], v[ok] / mean20[ok], rtol=1e-12)
    assert_allclose(got["volume_volatility_20"][ok], std20[ok] / mean20[ok], rtol=1e-9, atol=1e-12)
    idle = ~traded & (np.arange(n) >= 19)
    assert np.all(got["volume_ratio_20"][idle] == 1.0)
    assert np.all(got["volume_volatility_20"][idle] == 0.0)
    assert np.isnan(got["volume_sum_60"][:59]).all() and np.isnan(got["volume_mean_5"][:4]).all()


def test_trade_flow_imbalance(replay: Replay) -> None:
    rows = _trade_rows(replay)
    size, side = replay.events.values[rows, 1:3].T
    assert set(np.unique(side).tolist()) == {-1.0, 1.0}
    signed = _windows(side * size, k.FLOW_TRADES).sum(axis=1)
    total = _windows(size, k.FLOW_TRADES).sum(axis=1)
    ref = np.divide(signed, total, out=np.zeros_like(signed), where=total > 0)
    got = replay.frame.column("trade_flow_imbalance")
    assert_allclose(got[rows], ref, rtol=1e-12, atol=1e-12)
    # Quotes and book tops leave it where the last trade put it.
    last_trade = np.maximum.accumulate(
        np.where(np.isin(np.arange(len(got)), rows), np.arange(len(got)), -1)
    )
    after = last_trade >= 0
    assert_array_equal(got[after], got[last_trade[after]])


def _direct_rate(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Sum over past events of exp(-age / tau) / tau, written out (ages within 40 tau)."""
    out = np.empty(len(at))
    tau_ns = k.RATE_TAU_S * 1e9
    for i, t in enumerate(at):
        lo = np.searchsorted(times, t - 40 * tau_ns, side="left")
        hi = np.searchsorted(times, t, side="right")
        out[i] = np.exp(-(t - times[lo:hi]) / tau_ns).sum() / k.RATE_TAU_S
    return out


def test_trade_and_quote_intensities(replay: Replay) -> None:
    ts = replay.events.ts
    assert np.all(np.diff(ts) >= 0)
    sample = np.linspace(0, len(ts) - 1, 1500).astype(np.int64)
    # Events sharing the sampled row's time but later in the stream are not in its row yet.
    for name, rows in (
        ("trade_intensity", _trade_rows(replay)),
        ("quote_intensity", replay.period_rows),
    ):
        got = replay.frame.column(name)[sample]
        ref = np.empty(len(sample))
        for j, i in enumerate(sample):
            seen = rows[rows <= i]
            ref[j] = _direct_rate(ts[seen], ts[i : i + 1])[0] if len(seen) else 0.0
        assert_allclose(got, ref, rtol=1e-9, atol=1e-12, err_msg=name)
        assert got.max() > 1.0


def test_quote_features(replay: Replay) -> None:
    rows = replay.period_rows
    bid, ask, bsz, asz = replay.events.values[rows, :4].T
    mid = (bid + ask) / 2
    assert_allclose(replay.at_periods("spread_rel"), (ask - bid) / mid, rtol=1e-14, atol=0)
    imb = (bsz - asz) / (bsz + asz)
    assert_allclose(replay.at_periods("tob_imbalance"), imb, rtol=1e-14, atol=1e-16)
    micro = (bid * asz + ask * bsz) / (bsz + asz)
    assert_allclose(replay.at_periods("microprice_dev"), (micro - mid) / mid, rtol=1e-9, atol=1e-15)


def test_depth_imbalance_follows_the_book(btc: Replay) -> None:
    ev, frame = btc.events, btc.frame
    books = np.flatnonzero((ev.kind == k.KIND_BOOK) & (frame.status != k.STATUS_REJECTED))
    assert len(books) > 6000
    bd, ad = ev.values[books, 4], ev.values[books, 5]
    got = frame.column("depth_imbalance")
    assert_allclose(got[books], (bd - ad) / (bd + ad), rtol=1e-14, atol=1e-16)
    # Before the first book top only the top level is known; after it, quotes keep the
    # last book's value.
    quotes = btc.period_rows
    early = quotes[quotes < books[0]]
    assert_array_equal(got[early], frame.column("tob_imbalance")[early])
    later = quotes[(quotes > books[0]) & (ev.kind[quotes] == k.KIND_QUOTE)]
    last_book = books[np.searchsorted(books, later) - 1]
    assert_array_equal(got[later], got[last_book])
