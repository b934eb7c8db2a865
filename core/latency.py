"""Wall-clock latency of the actor chain, hop by hop, measured in-process.

The chain runs on one thread and each actor hands its output to the next synchronously, so
the time since the tick's start (:meth:`LatencyRecorder.tick`) is, at any hop, the latency
of that tick so far. A tick starts when the chain sees it (a backtest), or when the data
client received it (live: its ``ts_init``, so the wait in the data engine's queue counts).
Live, ``queue`` is kept too (receipt to the chain seeing the tick: the data engine's queue
and whatever handled the tick before the chain), and when the feed's publisher stamped its
send time, ``wire`` (publisher's send to the client's receipt) and ``feed_to_order`` (send
to order submitted).
All times are the wall clock (``time.time_ns``), the clock Nautilus stamps ``ts_init``
with live and a local publisher stamps ``ts_sent`` with. Samples stay out of the event
stream on purpose: wall-clock times differ between runs, and a backtest's events must not.
"""

import time

import numpy as np

HOPS: tuple[str, ...] = ("features", "signal", "decision", "risk", "order")
# Live only: "queue" (receipt by the data client to the chain seeing the tick), and with a
# stamping feed "wire" (send to receipt) and "feed_to_order" (send to order submitted).
LIVE_HOPS: tuple[str, ...] = ("queue", "wire", "feed_to_order")


class LatencyRecorder:
    """Nanoseconds from tick to each hop, kept in preallocated arrays (oldest overwritten
    once ``capacity`` samples of a hop were taken)."""

    __slots__ = ("_counts", "_data", "capacity", "sent", "t0", "ticks")

    def __init__(self, capacity: int = 1_000_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._data = {hop: np.zeros(capacity, dtype=np.int64) for hop in HOPS + LIVE_HOPS}
        self._counts = dict.fromkeys(HOPS + LIVE_HOPS, 0)
        self.t0 = 0
        self.sent = 0
        self.ticks = 0

    def tick(self, received_ns: int = 0, sent_ns: int = 0) -> None:
        """A tick starts: received at ``received_ns`` (0: now), sent by the feed's publisher
        at ``sent_ns`` (0: unknown)."""
        now = time.time_ns()
        self.t0 = received_ns or now
        self.sent = sent_ns
        self.ticks += 1
        if received_ns:
            self._put("queue", now - received_ns)
        if sent_ns:
            self._put("wire", self.t0 - sent_ns)

    def hop(self, name: str) -> None:
        """The current tick reached hop ``name`` now."""
        now = time.time_ns()
        self._put(name, now - self.t0)
        if name == "order" and self.sent:
            self._put("feed_to_order", now - self.sent)

    def _put(self, name: str, ns: int) -> None:
        n = self._counts[name]
        self._data[name][n % self.capacity] = ns
        self._counts[name] = n + 1

    def samples(self) -> dict[str, np.ndarray]:
        """The kept samples per hop (ns), in no particular order; hops never reached are
        left out."""
        return {
            hop: self._data[hop][: min(n, self.capacity)].copy()
            for hop, n in self._counts.items()
            if n
        }

    def count(self, name: str) -> int:
        return self._counts[name]
