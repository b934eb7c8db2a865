"""Edge cases: flat prices, zero volume, gaps, a single tick, crossed quotes, bad input."""

import math

import numpy as np
import pytest

from tapereader.core.features import kernel as k
from tapereader.core.features.batch import compute, merge, quote_events, trade_events
from tapereader.core.features.spec import SPEC
from tapereader.core.features.state import counts, feature_row, new_state

from .conftest import Replay

SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC


def _row(state: np.ndarray) -> dict[str, float]:
    return dict(zip(SPEC.names, feature_row(state).tolist(), strict=True))


def _quotes(state: np.ndarray, n: int, bid: float = 1.0, ask: float = 1.0002, t0: int = T0) -> int:
    status = k.STATUS_WARMING
    for i in range(n):
        status = k.on_quote(state, t0 + i * SEC, bid, ask, 3.0, 1.0)
    return status


def test_single_quote_is_not_ready_and_defines_only_what_it_can() -> None:
    state = new_state()
    assert k.on_quote(state, T0, 1.0, 1.0002, 3.0, 1.0) == k.STATUS_WARMING
    row = _row(state)
    for f in SPEC.features:
        assert math.isnan(row[f.name]) == (f.warmup > 1), f.name
    assert row["spread_rel"] == pytest.approx(0.0002 / 1.0001, rel=1e-12)
    assert row["tob_imbalance"] == 0.5
    assert row["depth_imbalance"] == 0.5  # no book yet: the top level is the depth known
    assert row["quote_intensity"] == 1 / k.RATE_TAU_S


def test_single_trade_before_any_quote() -> None:
    state = new_state()
    assert k.on_trade(state, T0, 100.0, 2.0, -1.0) == k.STATUS_WARMING
    row = _row(state)
    assert row["trade_flow_imbalance"] == -1.0
    assert row["trade_intensity"] == 1 / k.RATE_TAU_S
    assert math.isnan(row["spread_rel"]) and math.isnan(row["volume_last"])
    # Its size belongs to the first period, closed by the first quote.
    k.on_quote(state, T0 + 1, 99.0, 101.0, 1.0, 1.0)
    assert _row(state)["volume_last"] == 2.0


def test_flat_prices_give_the_defined_neutral_values() -> None:
    state = new_state()
    assert _quotes(state, k.WARMUP - 1) == k.STATUS_WARMING
    assert _quotes(state, 1, t0=T0 + k.WARMUP * SEC) == k.STATUS_READY
    row = _row(state)
    assert all(math.isfinite(v) for v in row.values())
    for name in ("ret_1", "sma_5_dev", "sma_20_dev", "volatility_20", "range_20", "macd_rel"):
        assert row[name] == 0.0, name
    for name in ("macd_signal_rel", "atr_14_rel", "momentum_10_rel", "roc_10", "cci_20"):
        assert row[name] == 0.0, name
    assert (row["rsi_14"], row["stoch_k_14"], row["williams_r_14"]) == (50.0, 50.0, -50.0)
    assert row["bollinger_pctb_20"] == 0.5


def test_zero_volume_trades() -> None:
    state = new_state()
    for i in range(k.WARMUP):
        k.on_trade(state, T0 + i * SEC, 1.0001, 0.0, 1.0 if i % 2 else -1.0)
        k.on_quote(state, T0 + i * SEC + 1, 1.0, 1.0002, 1.0, 1.0)
    row = _row(state)
    assert row["trade_flow_imbalance"] == 0.0  # 0/0: no traded size, no imbalance
    assert (row["volume_last"], row["volume_mean_5"], row["volume_sum_60"]) == (0.0, 0.0, 0.0)
    assert (row["volume_ratio_20"], row["volume_volatility_20"]) == (1.0, 0.0)
    assert counts(state).trades == k.WARMUP


def test_volume_goes_to_the_period_the_next_quote_closes() -> None:
    state = new_state()
    _quotes(state, 1)
    k.on_trade(state, T0 + 1, 1.0001, 2.0, 1.0)
    k.on_trade(state, T0 + 2, 1.0001, 3.0, -1.0)
    assert _row(state)["volume_last"] == 0.0
    assert _row(state)["trade_flow_imbalance"] == pytest.approx(-0.2)
    _quotes(state, 1, t0=T0 + 3)
    assert _row(state)["volume_last"] == 5.0


def test_a_gap_decays_the_intensities_and_nothing_else() -> None:
    state = new_state()
    _quotes(state, k.WARMUP)
    k.on_trade(state, T0 + k.WARMUP * SEC, 1.0001, 1.0, 1.0)
    before = _row(state)
    week = 7 * 86_400 * SEC
    assert k.on_quote(state, T0 + week, 1.0, 1.0002, 3.0, 1.0) == k.STATUS_READY
    after = _row(state)
    assert after["trade_intensity"] == 0.0  # exp(-1e5) underflows to exactly 0, not NaN
    assert after["quote_intensity"] == 1 / k.RATE_TAU_S
    assert all(math.isfinite(v) for v in after.values())
    assert after["rsi_14"] == before["rsi_14"]  # periods are quotes, not clock time


def test_decay_matches_the_exponential() -> None:
    state = new_state()
    k.on_trade(state, T0, 1.0, 1.0, 1.0)
    k.on_trade(state, T0 + 2 * SEC, 1.0, 1.0, 1.0)
    expected = (math.exp(-2 / k.RATE_TAU_S) + 1) / k.RATE_TAU_S
    assert _row(state)["trade_intensity"] == pytest.approx(expected, rel=1e-14)


def test_time_running_backwards_neither_decays_nor_rewinds() -> None:
    state = new_state()
    k.on_trade(state, T0 + 10 * SEC, 1.0, 1.0, 1.0)
    k.on_trade(state, T0, 1.0, 1.0, 1.0)  # merged streams can be slightly out of order
    assert _row(state)["trade_intensity"] == 2 / k.RATE_TAU_S
    k.on_trade(state, T0 + 11 * SEC, 1.0, 1.0, 1.0)
    assert _row(state)["trade_intensity"] == pytest.approx(
        (2 * math.exp(-1 / k.RATE_TAU_S) + 1) / k.RATE_TAU_S, rel=1e-14
    )


def test_locked_quote_is_accepted_with_zero_spread() -> None:
    state = new_state()
    assert k.on_quote(state, T0, 1.0, 1.0, 0.0, 0.0) == k.STATUS_WARMING
    row = _row(state)
    assert (row["spread_rel"], row["tob_imbalance"], row["microprice_dev"]) == (0.0, 0.0, 0.0)


NAN = float("nan")
INF = float("inf")
BAD_QUOTES = [
    (1.0002, 1.0, 1.0, 1.0),  # crossed
    (NAN, 1.0, 1.0, 1.0),
    (1.0, NAN, 1.0, 1.0),
    (1.0, 1.0002, NAN, 1.0),
    (1.0, 1.0002, 1.0, NAN),
    (0.0, 1.0002, 1.0, 1.0),
    (-1.0, 1.0002, 1.0, 1.0),
    (1.0, INF, 1.0, 1.0),
    (1.0, 1.0002, -1.0, 1.0),
    (1.0, 1.0002, 1.0, INF),
]
BAD_TRADES = [
    (NAN, 1.0, 1.0),
    (0.0, 1.0, 1.0),
    (INF, 1.0, 1.0),
    (1.0, NAN, 1.0),
    (1.0, -1.0, 1.0),
    (1.0, 1.0, NAN),
    (1.0, 1.0, 0.5),
    (1.0, 1.0, 2.0),
]


def _warm_state() -> np.ndarray:
    state = new_state()
    for i in range(k.WARMUP + 5):
        k.on_trade(state, T0 + i * SEC, 1.0001, 1.0 + i % 3, 1.0)
        k.on_quote(state, T0 + i * SEC + 1, 1.0 + (i % 7) * 1e-4, 1.0008, 1.0, 2.0)
    return state


def _unchanged_but_counted(before: np.ndarray, after: np.ndarray) -> None:
    assert after[k.S_REJECTED] == before[k.S_REJECTED] + 1
    keep = np.ones(k.STATE_SIZE, dtype=bool)
    keep[k.S_REJECTED] = False
    assert np.array_equal(before[keep].view(np.int64), after[keep].view(np.int64))


@pytest.mark.parametrize("quote", BAD_QUOTES)
def test_invalid_quotes_are_rejected_without_touching_the_state(quote: tuple) -> None:
    state = _warm_state()
    before = state.copy()
    assert k.on_quote(state, T0 + 10**12, *quote) == k.STATUS_REJECTED
    _unchanged_but_counted(before, state)
    before = state.copy()
    assert k.on_book(state, T0 + 10**12, *quote, 1.0, 1.0) == k.STATUS_REJECTED
    _unchanged_but_counted(before, state)


@pytest.mark.parametrize("depth", [(NAN, 1.0), (1.0, -1.0), (INF, 1.0)])
def test_invalid_book_depth_is_rejected(depth: tuple) -> None:
    state = _warm_state()
    before = state.copy()
    assert k.on_book(state, T0 + 10**12, 1.0, 1.0002, 1.0, 1.0, *depth) == k.STATUS_REJECTED
    _unchanged_but_counted(before, state)


@pytest.mark.parametrize("trade", BAD_TRADES)
def test_invalid_trades_are_rejected_without_touching_the_state(trade: tuple) -> None:
    state = _warm_state()
    before = state.copy()
    assert k.on_trade(state, T0 + 10**12, *trade) == k.STATUS_REJECTED
    _unchanged_but_counted(before, state)


def test_unknown_event_kind_is_rejected_in_the_array_run() -> None:
    events = merge(
        quote_events([T0], [1.0], [1.0002], [1.0], [1.0]), trade_events([T0], [1.0], [1.0], [1.0])
    )
    events.kind[1] = 7
    frame = compute(events)
    assert frame.status.tolist() == [k.STATUS_WARMING, k.STATUS_REJECTED]
    assert np.array_equal(frame.features[0], frame.features[1], equal_nan=True)


def test_fxcm_crossed_quotes_are_all_rejected_and_only_they(fxcm: Replay) -> None:
    v = fxcm.events.values
    crossed = v[:, 0] > v[:, 1]
    assert 0.05 < crossed.mean() < 0.15  # the README's ~10%
    assert np.array_equal(fxcm.frame.status == k.STATUS_REJECTED, crossed)
    locked = v[:, 0] == v[:, 1]
    assert locked.sum() > 0 and np.all(fxcm.frame.column("spread_rel")[locked] == 0.0)


@pytest.mark.parametrize("name", ["fxcm", "oanda", "btc", "tardis"])
def test_after_warm_up_every_feature_is_finite_on_real_data(
    name: str, request: pytest.FixtureRequest
) -> None:
    replay: Replay = request.getfixturevalue(name)
    ready = replay.frame.ready
    assert ready.sum() > 0.9 * len(replay.events) * (1 - (replay.frame.status == -1).mean())
    assert np.isfinite(replay.frame.features[ready]).all()
    # Readiness is monotone: once ready, only rejected events interrupt it.
    first = np.argmax(ready)
    assert np.all(replay.frame.status[first:] != k.STATUS_WARMING)
    assert not ready[:first].any()
