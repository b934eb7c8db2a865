"""An L2 price-level book that answers the kernel's book-top question cheaply.

The kernel's book event needs the best bid/ask, their sizes, and the sizes summed over
the top ``DEPTH_LEVELS`` levels per side. Listing every level of an engine's book on each
update costs milliseconds for a deep book; this keeps plain ``price -> size`` maps plus,
per side, the best few prices in order, so an update costs O(1) to O(cache) and a full
scan happens only when deletions empty the cache.
"""

import bisect
import heapq

from .kernel import DEPTH_LEVELS

BookTop = tuple[float, float, float, float, float, float]
_CACHE = 4 * DEPTH_LEVELS  # best prices kept in order per side


class _Side:
    """One side. ``best`` always holds exactly the best ``len(best)`` prices, in order."""

    __slots__ = ("best", "is_bid", "levels")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[float, float] = {}
        self.best: list[float] = []  # ascending keys: -price for bids, price for asks

    def set(self, price: float, size: float) -> None:
        key = -price if self.is_bid else price
        best = self.best
        if size > 0.0:
            # A new price joins the cache if it beats the worst cached one, or if the
            # cache holds every level (then it ranks among them whatever it is).
            if price not in self.levels and (
                (best and key < best[-1]) or len(best) == len(self.levels)
            ):
                bisect.insort(best, key)
                if len(best) > _CACHE:
                    best.pop()
            self.levels[price] = size
        elif self.levels.pop(price, None) is not None:
            i = bisect.bisect_left(best, key)
            if i < len(best) and best[i] == key:
                best.pop(i)

    def top(self) -> list[float]:
        """The best ``DEPTH_LEVELS`` prices (fewer if the side is that thin)."""
        if len(self.best) < min(DEPTH_LEVELS, len(self.levels)):  # deletions drained it
            keys = (-p for p in self.levels) if self.is_bid else iter(self.levels)
            self.best = heapq.nsmallest(_CACHE, keys)
        sign = -1.0 if self.is_bid else 1.0
        return [sign * key for key in self.best[:DEPTH_LEVELS]]


class LevelBook:
    """Aggregated size per price level, per side; fed level updates, asked for the top."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = _Side(is_bid=True)
        self.asks = _Side(is_bid=False)

    def clear(self) -> None:
        self.bids = _Side(is_bid=True)
        self.asks = _Side(is_bid=False)

    def set_level(self, is_bid: bool, price: float, size: float) -> None:
        """Set a level's total size; a size of 0 (or less) removes the level."""
        (self.bids if is_bid else self.asks).set(price, size)

    def top(self) -> BookTop | None:
        """(bid, ask, bid size, ask size, bid depth, ask depth); None while a side is empty."""
        if not self.bids.levels or not self.asks.levels:
            return None
        bid_prices = self.bids.top()
        ask_prices = self.asks.top()
        bids, asks = self.bids.levels, self.asks.levels
        return (
            bid_prices[0],
            ask_prices[0],
            bids[bid_prices[0]],
            asks[ask_prices[0]],
            sum(bids[p] for p in bid_prices),
            sum(asks[p] for p in ask_prices),
        )
