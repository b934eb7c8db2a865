"""LevelBook's cached top levels against a plain sort of every level."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tapereader.core.features import kernel as k
from tapereader.core.features.depth import LevelBook

_update = st.one_of(
    st.tuples(st.booleans(), st.integers(90, 110), st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0])),
    st.just(None),  # clear
)


def _naive(bids: dict, asks: dict):
    if not bids or not asks:
        return None
    b = sorted(bids, reverse=True)[: k.DEPTH_LEVELS]
    a = sorted(asks)[: k.DEPTH_LEVELS]
    depth_b = sum(bids[p] for p in b)
    depth_a = sum(asks[p] for p in a)
    return (b[0], a[0], bids[b[0]], asks[a[0]], depth_b, depth_a)


@settings(max_examples=200, deadline=None)
@given(st.lists(_update, max_size=300))
def test_top_equals_a_full_sort_after_every_update(updates) -> None:
    book = LevelBook()
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for update in updates:
        if update is None:
            book.clear()
            bids.clear()
            asks.clear()
        else:
            is_bid, tick, size = update
            price = tick * 0.5
            side = bids if is_bid else asks
            if size > 0:
                side[price] = size
            else:
                side.pop(price, None)
            book.set_level(is_bid, price, size)
        assert book.top() == _naive(bids, asks)


def test_deep_book_drained_from_the_top() -> None:
    """Deleting the best levels one by one forces the cache to refill from the rest."""
    book = LevelBook()
    for i in range(200):
        book.set_level(True, 100.0 - i, 1.0 + i)
        book.set_level(False, 101.0 + i, 2.0)
    for i in range(195):
        top = book.top()
        assert top[0] == 100.0 - i
        assert top[4] == sum(1.0 + j for j in range(i, i + k.DEPTH_LEVELS))
        book.set_level(True, 100.0 - i, 0.0)
