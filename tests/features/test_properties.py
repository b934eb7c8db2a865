"""Properties over generated event streams, and the compile warm-up."""

import math
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tapereader.core.features import kernel as k
from tapereader.core.features.batch import EventArrays, compute
from tapereader.core.features.state import entry_points, feature_row, new_state, warm_up

NAN = float("nan")
_price = st.one_of(
    st.floats(99.0, 101.0),
    st.sampled_from([100.0, 100.0, 100.0, NAN, 0.0, -1.0, math.inf]),
)
_size = st.one_of(st.floats(0.0, 5.0), st.sampled_from([0.0, 0.0, NAN, -1.0, math.inf]))
_side = st.sampled_from([1.0, -1.0, 0.0, 1.0, -1.0, 0.5, NAN])


@st.composite
def _event(draw: st.DrawFn) -> tuple[int, int, tuple[float, ...]]:
    kind = draw(st.sampled_from([k.KIND_TRADE, k.KIND_QUOTE, k.KIND_QUOTE, k.KIND_BOOK, 9]))
    step = draw(st.integers(-(10**9), 10**10))  # ns; sometimes backwards, sometimes a gap
    if kind == k.KIND_TRADE:
        values = (draw(_price), draw(_size), draw(_side), 0.0, 0.0, 0.0)
    else:
        values = (draw(_price), draw(_price), *(draw(_size) for _ in range(4)))
    return kind, step, values


def _valid(kind: int, v: tuple) -> bool:
    """The acceptance rule of docs/FEATURES.md, written independently of the kernel."""

    def size_ok(x: float) -> bool:
        return math.isfinite(x) and x >= 0

    if kind == k.KIND_TRADE:
        return math.isfinite(v[0]) and v[0] > 0 and size_ok(v[1]) and v[2] in (1.0, -1.0, 0.0)
    if kind in (k.KIND_QUOTE, k.KIND_BOOK):
        top = math.isfinite(v[0]) and math.isfinite(v[1]) and 0 < v[0] <= v[1]
        top = top and size_ok(v[2]) and size_ok(v[3])
        return top and (kind == k.KIND_QUOTE or (size_ok(v[4]) and size_ok(v[5])))
    return False


def _arrays(events: list) -> EventArrays:
    kind = np.array([e[0] for e in events], dtype=np.int8)
    ts = 1_700_000_000 * 10**9 + np.cumsum([e[1] for e in events]).astype(np.int64)
    values = np.array([e[2] for e in events], dtype=np.float64).reshape(len(events), 6)
    return EventArrays(kind, ts, values)


@settings(max_examples=60, deadline=None)
@given(st.lists(_event(), min_size=1, max_size=400))
def test_streams_are_accepted_by_rule_identical_per_event_and_finite_when_ready(events) -> None:
    arrays = _arrays(events)
    frame = compute(arrays)
    expected = [_valid(e[0], e[2]) for e in events]
    assert ((frame.status != k.STATUS_REJECTED) == np.array(expected)).all()
    assert np.isfinite(frame.features[frame.ready]).all()
    state = new_state()
    row = feature_row(state)
    for i, (kind, _, v) in enumerate(events):
        t = int(arrays.ts[i])
        if kind == k.KIND_TRADE:
            s = k.on_trade(state, t, v[0], v[1], v[2])
        elif kind == k.KIND_QUOTE:
            s = k.on_quote(state, t, v[0], v[1], v[2], v[3])
        elif kind == k.KIND_BOOK:
            s = k.on_book(state, t, *v)
        else:
            continue
        assert s == frame.status[i]
        assert np.array_equal(row.view(np.int64), frame.features[i].view(np.int64))
    flow = frame.column("trade_flow_imbalance")
    assert np.all((flow >= -1) & (flow <= 1))
    for name in ("trade_intensity", "quote_intensity"):
        assert np.all(frame.column(name) >= 0)


def test_warm_up_compiles_the_entry_points_used_live() -> None:
    assert warm_up() >= 0
    ep = entry_points()
    state = new_state()
    assert ep.on_quote(state, 1, 1.0, 1.0002, 1.0, 1.0) == k.STATUS_WARMING
    assert ep.on_trade(state, 2, 1.0001, 1.0, 1.0) == k.STATUS_WARMING
    assert ep.on_book(state, 3, 1.0, 1.0002, 1.0, 1.0, 5.0, 3.0) == k.STATUS_WARMING
    assert feature_row(state)[k.F_DEPTH_IMB] == 0.25


def test_a_new_process_loads_every_kernel_from_the_cache() -> None:
    """Compilation is paid once per kernel version, not per process or per tick."""
    warm_up()  # this process has compiled (or loaded) and so written the cache
    code = (
        "from tapereader.core.features import kernel as k, state\n"
        "state.warm_up()\n"
        "fns = (k.on_trade, k.on_quote, k.on_book, k.run,"
        " k.on_trade_into, k.on_quote_into, k.on_book_into)\n"
        "print(sum(sum(f.stats.cache_hits.values()) for f in fns),"
        " sum(sum(f.stats.cache_misses.values()) for f in fns))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["7", "0"]
