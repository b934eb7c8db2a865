"""The unchanged FeatureActor in a live TradingNode fed by the ZeroMQ tick feed (issue 8)."""

from pathlib import Path

import msgspec
import numpy as np
import pytest
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide

from tapereader.actors.feature_actor import FeatureActor, FeatureActorConfig
from tapereader.core import tickwire
from tapereader.core.features import kernel as k
from tapereader.core.features.batch import EventArrays, compute
from tapereader.core.features.spec import SPEC
from tapereader.ingest.feed_publisher import FeedPublisher, catalog_ticks, to_message

from .node import Collector, run_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
IID = "BTCUSDT-PERP.BINANCE"
TICKS = 4_000
SIDE = {AggressorSide.BUYER: 1.0, AggressorSide.SELLER: -1.0, AggressorSide.NO_AGGRESSOR: 0.0}


@pytest.fixture(scope="module")
def ticks(btc_catalog: Path) -> list:
    """The first quotes and trades of the real BTCUSDT feed, read back from a catalog."""
    return catalog_ticks(btc_catalog, [IID], kinds=("quote", "trade"), limit=TICKS)


def _events(ticks: list) -> EventArrays:
    """The replay path's input, built from the catalog's own objects."""
    kind, ts, values = [], [], []
    for t in ticks:
        ts.append(t.ts_event)
        if isinstance(t, QuoteTick):
            kind.append(k.KIND_QUOTE)
            prices = (t.bid_price.as_double(), t.ask_price.as_double())
            values.append((*prices, t.bid_size.as_double(), t.ask_size.as_double(), 0.0, 0.0))
        else:
            kind.append(k.KIND_TRADE)
            side = SIDE[t.aggressor_side]
            values.append((t.price.as_double(), t.size.as_double(), side, 0.0, 0.0, 0.0))
    return EventArrays(
        np.array(kind, dtype=np.int8),
        np.array(ts, dtype=np.int64),
        np.array(values, dtype=np.float64).reshape(len(kind), 6),
    )


def _same_tick(a: QuoteTick | TradeTick, b: QuoteTick | TradeTick) -> bool:
    """Equal as the engine sees them (ts_init is the node's receipt time, not the file's)."""
    ma, mb = (msgspec.structs.replace(to_message(t), ts_init=0) for t in (a, b))
    return type(a) is type(b) and ma == mb


def _replay(ticks: list):
    def publish(publisher: FeedPublisher) -> None:
        assert publisher.wait_for_subscribers([IID], timeout=10.0), "the node never subscribed"
        publisher.replay(ticks, speed=None)

    return publish


def test_live_vectors_are_bit_identical_to_the_replay_path(ticks: list) -> None:
    assert len(ticks) == TICKS and {type(t) for t in ticks} == {QuoteTick, TradeTick}
    actor = FeatureActor(
        FeatureActorConfig(component_id="FeatureActor", instrument_ids=[IID], publish_warming=True)
    )
    collector = Collector(ticks[0].instrument_id)
    client = run_node(
        IID, [actor, collector], _replay(ticks), lambda: len(collector.ticks) >= TICKS
    )

    # Every tick arrived once, in exchange-time order, with its exact values.
    assert client.stats.received == TICKS and client.stats.garbage == 0
    assert len(collector.ticks) == TICKS
    assert all(_same_tick(a, b) for a, b in zip(collector.ticks, ticks, strict=True))
    assert all(t.ts_init >= t.ts_event for t in collector.ticks)  # stamped by the node on receipt

    # The actor's vectors are the array run over the same events, bit for bit.
    frame = compute(_events(ticks))
    accepted = np.flatnonzero(frame.status != k.STATUS_REJECTED)
    assert len(collector.vectors) == len(accepted) == actor.published
    assert [v.ts_event for v in collector.vectors] == [ticks[i].ts_event for i in accepted]
    got = np.array([v.values for v in collector.vectors])
    assert np.array_equal(got.view(np.int64), frame.features[accepted].view(np.int64))
    ready = [v.ready for v in collector.vectors]
    assert ready == (frame.status[accepted] == k.STATUS_READY).tolist()
    assert any(ready), "the slice is too short to warm the features up"
    assert {v.spec_hash for v in collector.vectors} == {SPEC.hash}


def test_garbage_frames_are_counted_and_skipped(ticks: list) -> None:
    good = ticks[:300]
    trade = next(t for t in good if isinstance(t, TradeTick))
    valid = tickwire.encode(to_message(trade))
    topic = valid[0]
    garbage = [
        [topic],  # one frame
        [topic, valid[1], b"extra"],  # three frames
        [topic, b"\xc1 not msgpack"],
        [topic, b"\x93\x01\x02\x03"],  # msgpack, not a message
        [topic.replace(b"trade", b"quote"), valid[1]],  # topic disagrees with the message
        [topic, valid[1].replace(b"\xa1v\x01", b"\xa1v\x07")],  # unknown wire version
        _trade(trade, price="1.005"),  # more decimals than the instrument's 2
        _trade(trade, size="0"),  # Nautilus refuses a trade of size 0
        _trade(trade, price="12,5"),
    ]

    def publish(publisher: FeedPublisher) -> None:
        assert publisher.wait_for_subscribers([IID], timeout=10.0)
        for i, tick in enumerate(good):
            if i % 30 == 0 and i // 30 < len(garbage):
                publisher.send_frames(garbage[i // 30])
            publisher.publish(to_message(tick))

    collector = Collector(good[0].instrument_id)
    client = run_node(IID, [collector], publish, lambda: len(collector.ticks) >= len(good))
    assert client.stats.garbage == len(garbage)
    assert client.stats.received == len(good)
    assert all(_same_tick(a, b) for a, b in zip(collector.ticks, good, strict=True))


def _trade(trade: TradeTick, **changes: str) -> list[bytes]:
    """A trade message with raw field values the wire schema may not allow."""
    fields = msgspec.structs.asdict(to_message(trade)) | {"type": "trade"} | changes
    return [f"{IID}/trade".encode(), msgspec.msgpack.encode(fields)]
