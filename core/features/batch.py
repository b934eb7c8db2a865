"""The replay/training path: event arrays built from columns, run through the same kernel.

Columns come from anywhere (a catalog, a Parquet file, a test's parser); this module only
packs them into the kernel's event layout, merges streams in time order, and runs
:func:`kernel.run`. Nothing here computes a feature.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import kernel as k
from .spec import SPEC
from .state import check_state, new_state

ArrayLike = npt.ArrayLike


@dataclass(frozen=True)
class EventArrays:
    """Events in the kernel's layout: kind (int8), ts_event in ns (int64), values (n x 6)."""

    kind: np.ndarray
    ts: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        n = self.kind.shape[0]
        if self.ts.shape != (n,) or self.values.shape != (n, 6):
            raise ValueError(
                f"event arrays disagree: kind {self.kind.shape}, ts {self.ts.shape}, "
                f"values {self.values.shape} (expected values of shape ({n}, 6))"
            )

    def __len__(self) -> int:
        return int(self.kind.shape[0])


def _pack(kind: int, ts: ArrayLike, columns: list[ArrayLike]) -> EventArrays:
    ts_arr = np.ascontiguousarray(ts, dtype=np.int64)
    n = ts_arr.shape[0]
    values = np.zeros((n, 6), dtype=np.float64)
    for j, column in enumerate(columns):
        col = np.asarray(column, dtype=np.float64)
        if col.shape != (n,):
            raise ValueError(f"column {j} has shape {col.shape}, expected ({n},)")
        values[:, j] = col
    return EventArrays(np.full(n, kind, dtype=np.int8), ts_arr, values)


def quote_events(
    ts: ArrayLike, bid: ArrayLike, ask: ArrayLike, bid_size: ArrayLike, ask_size: ArrayLike
) -> EventArrays:
    """Quotes from columns (sizes 0 where the source publishes none)."""
    return _pack(k.KIND_QUOTE, ts, [bid, ask, bid_size, ask_size])


def trade_events(ts: ArrayLike, price: ArrayLike, size: ArrayLike, side: ArrayLike) -> EventArrays:
    """Trades from columns; ``side`` is +1 buyer aggressor, -1 seller aggressor, 0 unknown."""
    return _pack(k.KIND_TRADE, ts, [price, size, side])


def book_events(
    ts: ArrayLike,
    bid: ArrayLike,
    ask: ArrayLike,
    bid_size: ArrayLike,
    ask_size: ArrayLike,
    bid_depth: ArrayLike,
    ask_depth: ArrayLike,
) -> EventArrays:
    """Book tops with the summed sizes of the top ``DEPTH_LEVELS`` levels per side."""
    return _pack(k.KIND_BOOK, ts, [bid, ask, bid_size, ask_size, bid_depth, ask_depth])


def merge(*parts: EventArrays) -> EventArrays:
    """All events in ``ts`` order; equal times keep the order of ``parts``, then of rows."""
    kind = np.concatenate([p.kind for p in parts])
    ts = np.concatenate([p.ts for p in parts])
    values = np.concatenate([p.values for p in parts])
    order = np.argsort(ts, kind="stable")
    return EventArrays(kind[order], ts[order], np.ascontiguousarray(values[order]))


@dataclass(frozen=True)
class FeatureFrame:
    """One feature row and one status per event (rows follow the events' order)."""

    features: np.ndarray
    status: np.ndarray

    @property
    def ready(self) -> np.ndarray:
        """Rows whose event was accepted after warm-up: the rows a model may use."""
        return self.status == k.STATUS_READY

    def column(self, name: str) -> np.ndarray:
        """One feature column by name."""
        return self.features[:, SPEC.index(name)]


def compute(events: EventArrays, state: np.ndarray | None = None) -> FeatureFrame:
    """Run the kernel over ``events``; continues ``state`` when given, else starts fresh."""
    if state is None:
        state = new_state()
    else:
        check_state(state)
    n = len(events)
    out = np.empty((n, k.N_FEATURES), dtype=np.float64)
    status = np.empty(n, dtype=np.int8)
    k.run(
        state,
        np.ascontiguousarray(events.kind, dtype=np.int8),
        np.ascontiguousarray(events.ts, dtype=np.int64),
        np.ascontiguousarray(events.values, dtype=np.float64),
        out,
        status,
    )
    return FeatureFrame(out, status)
