"""Wall-clock latency of the actor chain, hop by hop, measured in-process.

The chain runs on one thread and each actor hands its output to the next synchronously, so
the time since the tick entered the chain (:meth:`LatencyRecorder.tick`) is, at any hop,
the latency of that tick so far. Samples stay out of the event stream on purpose: wall-clock
times differ between runs, and a backtest's events must not.
"""

import time

import numpy as np

HOPS: tuple[str, ...] = ("features", "signal", "decision", "risk", "order")


class LatencyRecorder:
    """Nanoseconds from tick to each hop, kept in preallocated arrays (oldest overwritten
    once ``capacity`` samples of a hop were taken)."""

    __slots__ = ("_counts", "_data", "capacity", "t0", "ticks")

    def __init__(self, capacity: int = 1_000_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._data = {hop: np.zeros(capacity, dtype=np.int64) for hop in HOPS}
        self._counts = dict.fromkeys(HOPS, 0)
        self.t0 = 0
        self.ticks = 0

    def tick(self) -> None:
        """A tick entered the chain now."""
        self.t0 = time.perf_counter_ns()
        self.ticks += 1

    def hop(self, name: str) -> None:
        """The current tick reached hop ``name`` now."""
        n = self._counts[name]
        self._data[name][n % self.capacity] = time.perf_counter_ns() - self.t0
        self._counts[name] = n + 1

    def samples(self) -> dict[str, np.ndarray]:
        """The kept samples per hop (ns), in no particular order."""
        return {
            hop: self._data[hop][: min(n, self.capacity)].copy()
            for hop, n in self._counts.items()
            if n
        }

    def count(self, name: str) -> int:
        return self._counts[name]
