"""Live-style per-event calls and the array run give bit-identical rows and states."""

import itertools

import numpy as np
import pytest

from tapereader.core.features import kernel as k
from tapereader.core.features.batch import EventArrays, compute
from tapereader.core.features.state import entry_points, feature_row, new_state

from .conftest import Replay


def _bits(a: np.ndarray) -> np.ndarray:
    """float64 as raw bits, so NaN == NaN and -0.0 != 0.0: the comparison is exact."""
    return np.ascontiguousarray(a).view(np.int64)


def _per_event(events: EventArrays, on_trade, on_quote, on_book) -> tuple[np.ndarray, ...]:
    """Feed events one by one as an actor would, copying the row after each."""
    state = new_state()
    row = feature_row(state)
    out = np.empty((len(events), k.N_FEATURES))
    status = np.empty(len(events), dtype=np.int8)
    kinds = events.kind.tolist()
    times = events.ts.tolist()
    values = events.values.tolist()
    for i, kind in enumerate(kinds):
        v = values[i]
        if kind == k.KIND_QUOTE:
            status[i] = on_quote(state, times[i], v[0], v[1], v[2], v[3])
        elif kind == k.KIND_TRADE:
            status[i] = on_trade(state, times[i], v[0], v[1], v[2])
        else:
            status[i] = on_book(state, times[i], v[0], v[1], v[2], v[3], v[4], v[5])
        out[i] = row
    return out, status, state


def _assert_same(replay: Replay, out: np.ndarray, status: np.ndarray) -> None:
    np.testing.assert_array_equal(status, replay.frame.status)
    same = _bits(out) == _bits(replay.frame.features)
    if not same.all():
        i, j = np.argwhere(~same)[0]
        want = replay.frame.features[i, j]
        pytest.fail(f"row {i} column {k.FEATURE_NAMES[j]}: {out[i, j]!r} != {want!r}")


def test_dispatcher_calls_match_array_run_on_binance(btc: Replay) -> None:
    """Trades, quotes and book tops, through Numba's ordinary dispatcher."""
    out, status, _ = _per_event(btc.events, k.on_trade, k.on_quote, k.on_book)
    assert {0, 1, 2} == set(np.unique(btc.events.kind).tolist())
    _assert_same(btc, out, status)


def test_entry_point_calls_match_array_run_on_fxcm(fxcm: Replay) -> None:
    """All 1.14M FXCM quotes (crossed ones included) through the compiled entry points."""
    ep = entry_points()
    out, status, _ = _per_event(fxcm.events, ep.on_trade, ep.on_quote, ep.on_book)
    assert (status == k.STATUS_REJECTED).sum() > 100_000
    _assert_same(fxcm, out, status)


def test_into_entry_points_write_the_array_run_rows_into_their_slots(btc: Replay) -> None:
    """The live path's ``*_into`` calls: the row lands in the slot given, bit-identical, and
    the slots written before are left alone (the whole feed goes through one block)."""
    ep = entry_points()
    n = len(btc.events)
    rows = np.full((n, k.N_FEATURES), -1.0)  # one slot per event: nothing is overwritten
    state = new_state()
    status = np.empty(n, dtype=np.int8)
    times, values = btc.events.ts.tolist(), btc.events.values.tolist()
    for i, kind in enumerate(btc.events.kind.tolist()):
        v = values[i]
        if kind == k.KIND_QUOTE:
            status[i] = ep.on_quote_into(state, rows, i, times[i], v[0], v[1], v[2], v[3])
        elif kind == k.KIND_TRADE:
            status[i] = ep.on_trade_into(state, rows, i, times[i], v[0], v[1], v[2])
        else:
            status[i] = ep.on_book_into(state, rows, i, times[i], *v)
    _assert_same(btc, rows, status)


def test_final_states_are_identical(tardis: Replay) -> None:
    _, _, live = _per_event(tardis.events, k.on_trade, k.on_quote, k.on_book)
    replayed = new_state()
    compute(tardis.events, replayed)
    np.testing.assert_array_equal(_bits(live), _bits(replayed))


def test_chunked_runs_continue_the_state(btc: Replay) -> None:
    """Replay in chunks (as a long history would be) equals one run over everything."""
    state = new_state()
    cuts = [0, 1, 777, 30_001, 65_432, len(btc.events)]
    parts = []
    for a, b in itertools.pairwise(cuts):
        ev = btc.events
        chunk = EventArrays(ev.kind[a:b], ev.ts[a:b], np.ascontiguousarray(ev.values[a:b]))
        parts.append(compute(chunk, state))
    features = np.concatenate([p.features for p in parts])
    status = np.concatenate([p.status for p in parts])
    _assert_same(btc, features, status)
