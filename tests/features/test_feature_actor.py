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


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="every_events"):
        FeatureActor(FeatureActorConfig(instrument_ids=["BTCUSDT-PERP.BINANCE"], every_events=0))
    with pytest.raises(FeatureSpecMismatch):
        FeatureActor(FeatureActorConfig(instrument_ids=["X.Y"], spec_hash="0" * 16))
    FeatureActor(FeatureActorConfig(instrument_ids=["X.Y"], spec_hash=SPEC.hash))
