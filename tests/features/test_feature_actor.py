"""The FeatureActor in a BacktestEngine over the BTCUSDT feed ingested into a catalog."""

from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide

from tapereader.actors.feature_actor import (
    FeatureActor,
    FeatureActorConfig,
    FeatureVector,
    feature_data_type,
)
from tapereader.core.features import kernel as k
from tapereader.core.features.batch import EventArrays, compute
from tapereader.core.features.spec import SPEC, FeatureSpecMismatch

from .backtest import BTC_FEED, FeedData, ingest_feed, load_feed, run_engine
from .loaders import binance_events

pytestmark = pytest.mark.slow
SIDE = {AggressorSide.BUYER: 1.0, AggressorSide.SELLER: -1.0, AggressorSide.NO_AGGRESSOR: 0.0}


class Recorder(Actor):
    """Sees the ticks right after the FeatureActor (same bus) and keeps its vectors."""

    def __init__(self, feed: FeedData) -> None:
        super().__init__(ActorConfig(component_id="Recorder"))
        self.iid = feed.instrument.id
        self.kind: list[int] = []
        self.ts: list[int] = []
        self.values: list[tuple[float, ...]] = []
        self.vectors: dict[str, list[tuple[int, FeatureVector]]] = {}

    def on_start(self) -> None:
        self.subscribe_data(feature_data_type(self.iid), instrument_id=self.iid)
        self.subscribe_quote_ticks(self.iid)
        self.subscribe_trade_ticks(self.iid)

    def on_data(self, data: FeatureVector) -> None:
        # Published while the FeatureActor handled the event this recorder sees next.
        self.vectors.setdefault(data.source, []).append((len(self.kind), data))

    def on_quote_tick(self, t: QuoteTick) -> None:
        self.kind.append(k.KIND_QUOTE)
        self.ts.append(t.ts_event)
        prices = (t.bid_price.as_double(), t.ask_price.as_double())
        self.values.append((*prices, t.bid_size.as_double(), t.ask_size.as_double(), 0.0, 0.0))

    def on_trade_tick(self, t: TradeTick) -> None:
        self.kind.append(k.KIND_TRADE)
        self.ts.append(t.ts_event)
        side = SIDE[t.aggressor_side]
        self.values.append((t.price.as_double(), t.size.as_double(), side, 0.0, 0.0, 0.0))

    def events(self) -> EventArrays:
        return EventArrays(
            np.array(self.kind, dtype=np.int8),
            np.array(self.ts, dtype=np.int64),
            np.array(self.values, dtype=np.float64).reshape(len(self.kind), 6),
        )


class LateSubscriber(Actor):
    """Subscribes to the vectors at its ``first``-th tick and unsubscribes at its ``last``."""

    def __init__(self, feed: FeedData, source: str, first: int, last: int) -> None:
        super().__init__(ActorConfig(component_id="LateSubscriber"))
        self.iid = feed.instrument.id
        self.source, self.first, self.last = source, first, last
        self.ticks = 0
        self.got: list[tuple[int, int]] = []  # (ticks seen, vector seq)

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self.iid)
        self.subscribe_trade_ticks(self.iid)

    def _tick(self) -> None:
        self.ticks += 1
        if self.ticks == self.first:
            self.subscribe_data(feature_data_type(self.iid), instrument_id=self.iid)
        elif self.ticks == self.last:
            self.unsubscribe_data(feature_data_type(self.iid), instrument_id=self.iid)

    def on_quote_tick(self, t: QuoteTick) -> None:
        self._tick()

    def on_trade_tick(self, t: TradeTick) -> None:
        self._tick()

    def on_data(self, data: FeatureVector) -> None:
        if data.source == self.source:
            self.got.append((self.ticks, data.seq))


@pytest.fixture(scope="session")
def btc_feed(market_data: Path, tmp_path_factory: pytest.TempPathFactory) -> FeedData:
    catalog = tmp_path_factory.mktemp("features") / "catalog"
    return load_feed(ingest_feed(market_data / BTC_FEED, catalog))


def _actor(name: str, feed: FeedData, **config) -> FeatureActor:
    cfg = FeatureActorConfig(component_id=name, instrument_ids=[str(feed.instrument.id)], **config)
    return FeatureActor(cfg)


def test_vectors_equal_the_replay_path_and_honour_the_cadences(btc_feed: FeedData) -> None:
    every = _actor("FeatureActor-every", btc_feed, publish_warming=True)
    counted = _actor("FeatureActor-100", btc_feed, every_events=100)
    timed = _actor("FeatureActor-1s", btc_feed, every_ms=1_000)
    recorder = Recorder(btc_feed)
    run_engine(btc_feed, [every, counted, timed, recorder], use_book=False)
    assert every.warm_up_seconds > 0

    # Every event, through the actor, equals the array run over the same events.
    frame = compute(recorder.events())
    accepted = np.flatnonzero(frame.status != k.STATUS_REJECTED)
    published = recorder.vectors[str(every.id)]
    assert [i for i, _ in published] == accepted.tolist()
    got = np.array([v.values for _, v in published])
    assert np.array_equal(got.view(np.int64), frame.features[accepted].view(np.int64))
    assert [v.ready for _, v in published] == (frame.status[accepted] == 1).tolist()
    assert {v.spec_hash for _, v in published} == {SPEC.hash}

    # The event behind each row: kind, time, rank among the accepted events, and the top
    # of book after it. Every field is set, although the actor skips __init__.
    events, vectors = recorder.events(), [v for _, v in published]
    assert all(hasattr(v, name) for v in vectors for name in FeatureVector.__slots__)
    assert [v.kind for v in vectors] == events.kind[accepted].tolist()
    assert [v.ts_event for v in vectors] == events.ts[accepted].tolist()
    assert [v.seq for v in vectors] == list(range(1, len(accepted) + 1))
    quotes = accepted[events.kind[accepted] == k.KIND_QUOTE]
    last = np.searchsorted(quotes, accepted, side="right") - 1  # -1: no quote yet
    for j, name in enumerate(("bid", "ask")):
        expected = np.where(last >= 0, events.values[quotes[last], j], np.nan)
        assert np.array_equal([getattr(v, name) for v in vectors], expected, equal_nan=True)

    ready = np.flatnonzero(frame.ready)
    counted_rows = [i for i, _ in recorder.vectors[str(counted.id)]]
    assert counted_rows == ready[99::100].tolist()
    assert all(v.ready for _, v in recorder.vectors[str(counted.id)])

    # At the first event at least 1 s after the last publication: gaps >= 1 s, and on a
    # feed this dense barely more.
    times = np.array([v.ts_event for _, v in recorder.vectors[str(timed.id)]])
    gaps = np.diff(times) / 1e9
    assert gaps.min() >= 1.0 and np.median(gaps) < 1.1
    span_s = (recorder.ts[-1] - recorder.ts[ready[0]]) / 1e9
    assert 0.9 * span_s <= len(times) <= span_s + 1


def test_book_depth_reaches_the_vectors(btc_feed: FeedData, market_data: Path) -> None:
    actor = _actor("FeatureActor-book", btc_feed, use_book=True)
    recorder = Recorder(btc_feed)
    run_engine(btc_feed, [actor, recorder], use_book=True)
    vectors = [v for _, v in recorder.vectors[str(actor.id)]]
    assert len(vectors) > len(recorder.kind)  # book tops are events too
    assert all(np.isfinite(v.values).all() for v in vectors)
    # The book after the last diff, rebuilt independently from the raw file.
    raw = binance_events(market_data / BTC_FEED)
    last = np.flatnonzero(raw.kind == k.KIND_BOOK)[-1]
    bid_depth, ask_depth = raw.values[last, 4:6]
    final = vectors[-1].values[k.F_DEPTH_IMB]
    assert final == pytest.approx((bid_depth - ask_depth) / (bid_depth + ask_depth), abs=1e-12)


def _same(a: list[FeatureVector], b: list[FeatureVector]) -> bool:
    """The same rows, bit for bit, with the same event fields."""

    def fields(v: FeatureVector) -> tuple:
        return (v.ready, v.kind, v.seq, v.ts_event, v.ts_init, v.bid, v.ask, v.values.tobytes())

    return len(a) == len(b) and all(fields(x) == fields(y) for x, y in zip(a, b, strict=True))


def test_kinds_the_bus_path_and_subscribers_that_come_and_go(btc_feed: FeedData) -> None:
    every = _actor("FeatureActor-every", btc_feed, publish_warming=True)
    bus = _actor("FeatureActor-bus", btc_feed, publish_warming=True, direct_publish=False)
    quotes = _actor("FeatureActor-quotes", btc_feed, publish_warming=True, publish_kinds=["quote"])
    tenth = _actor("FeatureActor-q10", btc_feed, every_events=10, publish_kinds=["quote"])
    recorder = Recorder(btc_feed)
    late = LateSubscriber(btc_feed, str(every.id), first=20_000, last=50_000)
    run_engine(btc_feed, [every, bus, quotes, tenth, recorder, late], use_book=False)
    vectors = {source: [v for _, v in got] for source, got in recorder.vectors.items()}
    published = vectors[str(every.id)]
    assert len(published) == every.published > 80_000

    # MessageBus.publish delivers the same vectors as the direct path.
    assert _same(vectors[str(bus.id)], published) and bus.published == every.published

    # Trade rows are left out; the rest are the same rows, and the cadence counts quotes.
    quote_rows = [v for v in published if v.kind == k.KIND_QUOTE]
    assert 0 < len(quote_rows) < len(published)
    assert _same(vectors[str(quotes.id)], quote_rows)
    assert _same(vectors[str(tenth.id)], [v for v in quote_rows if v.ready][9::10])

    # A subscriber gets every vector published while it is subscribed, from the next one.
    expected = [(i, v.seq) for i, v in recorder.vectors[str(every.id)] if 20_000 <= i < 50_000]
    assert late.got == expected and len(expected) > 25_000


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="every_events"):
        FeatureActor(FeatureActorConfig(instrument_ids=["BTCUSDT-PERP.BINANCE"], every_events=0))
    with pytest.raises(FeatureSpecMismatch):
        FeatureActor(FeatureActorConfig(instrument_ids=["X.Y"], spec_hash="0" * 16))
    FeatureActor(FeatureActorConfig(instrument_ids=["X.Y"], spec_hash=SPEC.hash))
    for kinds in ([], ["quote", "bar"]):
        with pytest.raises(ValueError, match="publish_kinds"):
            FeatureActor(FeatureActorConfig(instrument_ids=["X.Y"], publish_kinds=kinds))
    FeatureActor(FeatureActorConfig(instrument_ids=["X.Y"], publish_kinds=["quote", "book"]))
