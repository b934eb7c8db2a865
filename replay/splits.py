"""Time-ordered splits with purging and an embargo, so no label overlaps the next window.

Each sample ``i`` is known at ``ts[i]`` and its label looks until ``t_end[i]``. A sample is
*purged* from a window when its label reaches into the following window (its ``t_end`` is
at or after the next window's first ``ts``); the *embargo* additionally leaves ``embargo_ns``
of time unused after each window's last label, since features of the next rows still
overlap (rolling windows) the information the labels used.
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Positions (into the sample arrays) of the training, validation and test rows."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _segment(
    order_ts: np.ndarray, t_end: np.ndarray, lo: int, hi: int, next_start_ts: int | None
) -> np.ndarray:
    idx = np.arange(lo, hi)
    if next_start_ts is not None:
        idx = idx[t_end[idx] < next_start_ts]  # purge labels reaching the next window
    return idx


def _first_after(ts: np.ndarray, t: int) -> int:
    return int(np.searchsorted(ts, t, side="right"))


def _check(ts: np.ndarray, t_end: np.ndarray) -> None:
    if ts.shape != t_end.shape or ts.ndim != 1:
        raise ValueError("ts and t_end must be 1-d arrays of the same length")
    if np.any(np.diff(ts) < 0):
        raise ValueError("samples must be in time order")
    if np.any(t_end < ts):
        raise ValueError("a label cannot end before its sample")


def time_split(
    ts: np.ndarray,
    t_end: np.ndarray,
    *,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    embargo_ns: int = 0,
) -> Split:
    """Train, validation and test in time order, purged and embargoed at both boundaries."""
    _check(ts, t_end)
    n = len(ts)
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    cut1 = int(n * fractions[0])
    cut2 = int(n * (fractions[0] + fractions[1]))
    train = _segment(ts, t_end, 0, cut1, int(ts[cut1]) if cut1 < n else None)
    # Validation starts once the last kept training label and the embargo are over.
    val_lo = _first_after(ts, int(t_end[train].max()) + embargo_ns) if len(train) else cut1
    val_lo = max(val_lo, cut1)
    val = _segment(ts, t_end, val_lo, cut2, int(ts[cut2]) if cut2 < n else None)
    test_lo = _first_after(ts, int(t_end[val].max()) + embargo_ns) if len(val) else cut2
    test = np.arange(max(test_lo, cut2), n)
    if min(len(train), len(val), len(test)) == 0:
        raise ValueError(
            f"split left an empty part (train {len(train)}, val {len(val)}, test {len(test)}): "
            "the horizon or embargo is too long for this much data"
        )
    return Split(train, val, test)


def walk_forward(
    ts: np.ndarray,
    t_end: np.ndarray,
    *,
    folds: int = 4,
    min_train_fraction: float = 0.4,
    embargo_ns: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: train on everything before a test block (purged), then test
    on the block after the embargo. Yields (train, test) position arrays."""
    _check(ts, t_end)
    n = len(ts)
    first = int(n * min_train_fraction)
    bounds = np.linspace(first, n, folds + 1).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        train = _segment(ts, t_end, 0, lo, int(ts[lo]))
        if len(train) == 0:
            continue
        test_lo = max(lo, _first_after(ts, int(t_end[train].max()) + embargo_ns))
        test = np.arange(test_lo, hi)
        if len(test):
            yield train, test
