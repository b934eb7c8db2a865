"""The feed client subscribes to an instrument when the node does, not when it connects.

A live node connects its data clients before it starts its actors; a client that subscribed
the socket at connection would take ticks no actor is there to receive (issue 8: the first
ticks of a run went missing when starting the node took long).
"""

import datetime as dt
import threading
from collections import deque
from pathlib import Path

import pytest
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.ingest.feed_publisher import FeedPublisher, catalog_ticks

from .node import Collector, _KeepingFactory, run_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
IID = "BTCUSDT-PERP.BINANCE"
TICKS = 500


class LateCollector(Collector):
    """Subscribes only once the test says so (it polls a flag on the node's clock)."""

    def __init__(self, instrument_id: InstrumentId, go: threading.Event) -> None:
        super().__init__(instrument_id)
        self.go = go

    def on_start(self) -> None:
        self.clock.set_timer("poll", interval=dt.timedelta(milliseconds=20), callback=self._poll)

    def _poll(self, _event) -> None:
        if self.go.is_set():
            self.clock.cancel_timer("poll")
            self.subscribe_quote_ticks(self.iid)
            self.subscribe_trade_ticks(self.iid)


def test_no_tick_is_taken_before_an_actor_subscribes(btc_catalog: Path) -> None:
    ticks = catalog_ticks(btc_catalog, [IID], kinds=("quote", "trade"), limit=TICKS)
    go = threading.Event()
    collector = LateCollector(ticks[0].instrument_id, go)
    before: list[bool] = []

    def publish(publisher: FeedPublisher) -> None:
        # Connected and running, but nobody asked for the instrument yet.
        before.append(publisher.wait_for_subscribers([IID], timeout=1.0))
        go.set()
        assert publisher.wait_for_subscribers([IID], timeout=10.0), "the node never subscribed"
        publisher.replay(ticks, speed=None)

    client = run_node(IID, [collector], publish, lambda: len(collector.ticks) >= TICKS)
    assert before == [False]
    assert client.stats.received == TICKS == len(collector.ticks)


def test_send_stamps_pair_each_receipt_with_the_publishers_send_time(btc_catalog: Path) -> None:
    ticks = catalog_ticks(btc_catalog, [IID], kinds=("quote", "trade"), limit=TICKS)
    collector = Collector(ticks[0].instrument_id)
    stamps: deque[tuple[int, int]] = deque()

    def publish(publisher: FeedPublisher) -> None:
        _KeepingFactory.clients[0].send_stamps = stamps
        assert publisher.wait_for_subscribers([IID], timeout=10.0), "the node never subscribed"
        publisher.replay(ticks, speed=None)

    run_node(IID, [collector], publish, lambda: len(collector.ticks) >= TICKS)
    assert [received for received, _ in stamps] == [t.ts_init for t in collector.ticks]
    transit = [received - sent for received, sent in stamps]
    assert all(0 < ns < 10e9 for ns in transit)  # same clock: sent before received
