"""Per-instrument kernel state: creation, checks, read-outs, and compile warm-up."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba
import numpy as np

from . import kernel as k


@dataclass(frozen=True, slots=True)
class StateCounts:
    """What a state has seen: closed periods, accepted trades, rejected events."""

    periods: int
    trades: int
    rejected: int

    @property
    def ready(self) -> bool:
        return self.periods >= k.WARMUP


def new_state() -> np.ndarray:
    """A fresh state for one instrument: no periods, every feature not yet defined (NaN).

    The flow imbalance and both intensities start at 0: before any event there is no
    flow and the event rate is zero, which is a fact rather than a missing value.
    """
    state = np.zeros(k.STATE_SIZE, dtype=np.float64)
    state[k.S_MAGIC] = k.LAYOUT_MAGIC
    state[k.FEAT : k.FEAT + k.N_FEATURES] = np.nan
    for j in (k.F_FLOW_IMB, k.F_TRADE_RATE, k.F_QUOTE_RATE):
        state[k.FEAT + j] = 0.0
    return state


ROW_BLOCK = 256
"""Rows per block of :func:`new_rows` (27 features: 55 KB, below malloc's mmap threshold)."""


def new_rows() -> np.ndarray:
    """A block of ``ROW_BLOCK`` feature rows for the ``*_into`` entry points to fill."""
    return np.empty((ROW_BLOCK, k.N_FEATURES), dtype=np.float64)


def check_state(state: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``state`` is a state array of this kernel's layout."""
    if not isinstance(state, np.ndarray) or state.dtype != np.float64 or state.ndim != 1:
        raise ValueError("a feature state is a 1-d float64 numpy array (see new_state())")
    if state.shape[0] != k.STATE_SIZE or state[k.S_MAGIC] != k.LAYOUT_MAGIC:
        raise ValueError(
            f"feature state layout mismatch: {state.shape[0]} slots, tag {state[0]!r}; "
            f"this kernel expects {k.STATE_SIZE} slots and tag {k.LAYOUT_MAGIC}"
        )
    if not state.flags.c_contiguous or not state.flags.writeable:
        raise ValueError("a feature state must be C-contiguous and writeable")


def feature_row(state: np.ndarray) -> np.ndarray:
    """The current feature row as a *view* into the state (copy it to keep it)."""
    return state[k.FEAT : k.FEAT + k.N_FEATURES]


def counts(state: np.ndarray) -> StateCounts:
    """Counters of one state, as Python ints."""
    return StateCounts(
        periods=int(state[k.S_PERIODS]),
        trades=int(state[k.S_TRADES]),
        rejected=int(state[k.S_REJECTED]),
    )


def warm_up() -> float:
    """Compile (or load from Numba's cache) every kernel entry point; returns seconds.

    Call it when an actor starts, so the first live tick never pays for compilation.
    The signatures are the ones :mod:`.batch` and callers passing Python ``int`` times
    and ``float`` values use.
    """
    start = time.perf_counter()
    state = new_state()
    k.on_trade(state, 1, 1.0, 1.0, 1.0)
    k.on_quote(state, 2, 1.0, 1.0, 1.0, 1.0)
    k.on_book(state, 3, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    rows = new_rows()
    k.on_trade_into(state, rows, 0, 4, 1.0, 1.0, 1.0)
    k.on_quote_into(state, rows, 0, 5, 1.0, 1.0, 1.0, 1.0)
    k.on_book_into(state, rows, 0, 6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    kind = np.array([k.KIND_QUOTE], dtype=np.int8)
    ts = np.array([7], dtype=np.int64)
    values = np.ones((1, 6), dtype=np.float64)
    out = np.empty((1, k.N_FEATURES), dtype=np.float64)
    status = np.empty(1, dtype=np.int8)
    k.run(new_state(), kind, ts, values, out, status)
    return time.perf_counter() - start


class EntryPoints(NamedTuple):
    """The kernel's per-event functions, compiled, callable without the dispatcher.

    ``*_into`` also write the row into a block from :func:`new_rows`, at the slot given.
    """

    on_trade: Callable[[np.ndarray, int, float, float, float], int]
    on_quote: Callable[[np.ndarray, int, float, float, float, float], int]
    on_book: Callable[[np.ndarray, int, float, float, float, float, float, float], int]
    on_trade_into: Callable[..., int]
    on_quote_into: Callable[..., int]
    on_book_into: Callable[..., int]


def entry_points() -> EntryPoints:
    """The kernel's per-event functions for a live caller, compiled and warmed.

    A Numba dispatcher resolves the type of every argument on every call; on these machines
    that costs about as much as the kernel itself. The compiled entry point skips it and
    only unboxes. The price is that nothing is resolved: pass a state from
    :func:`new_state` (checked once by the caller with :func:`check_state`), an ``int``
    time in nanoseconds and ``float`` values, as the signatures say.
    """
    warm_up()
    state_type = numba.typeof(new_state())
    rows_type = numba.typeof(new_rows())
    f64, i64 = numba.float64, numba.int64

    def compiled(fn: Any, n_values: int, into: bool = False) -> Callable[..., int]:
        block = (rows_type, i64) if into else ()
        sig = (state_type, *block, i64, *([f64] * n_values))
        return fn.overloads[sig].entry_point

    return EntryPoints(
        on_trade=compiled(k.on_trade, 3),
        on_quote=compiled(k.on_quote, 4),
        on_book=compiled(k.on_book, 6),
        on_trade_into=compiled(k.on_trade_into, 3, into=True),
        on_quote_into=compiled(k.on_quote_into, 4, into=True),
        on_book_into=compiled(k.on_book_into, 6, into=True),
    )
