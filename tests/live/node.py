"""An offline TradingNode fed by the ZeroMQ tick feed, run for one test and stopped by it.

The node runs on uvloop in the test's thread; the feed publisher runs in a worker thread so
the loop keeps handling ticks while they are sent. Every wait is bounded.
"""

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import uvloop
from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.adapters.sandbox.factory import SandboxLiveExecClientFactory
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import LoggingConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.actors.feature_actor import FeatureVector, feature_data_type
from tapereader.ingest.feed_publisher import FeedPublisher
from tapereader.ingest.zmq_feed import (
    ZmqFeedDataClient,
    ZmqFeedDataClientConfig,
    ZmqFeedDataClientFactory,
)

FEED = "ZMQFEED"
VENUE = "BINANCE"


class Collector(Actor):
    """Keeps the ticks it sees and the FeatureVectors published for one instrument."""

    def __init__(self, instrument_id: InstrumentId) -> None:
        super().__init__(ActorConfig(component_id="Collector"))
        self.iid = instrument_id
        self.ticks: list[QuoteTick | TradeTick] = []
        self.vectors: list[FeatureVector] = []

    def on_start(self) -> None:
        self.subscribe_data(feature_data_type(self.iid), instrument_id=self.iid)
        self.subscribe_quote_ticks(self.iid)
        self.subscribe_trade_ticks(self.iid)

    def on_stop(self) -> None:
        pass  # the node unsubscribes everything itself; overriding keeps its warning quiet

    def on_data(self, data: FeatureVector) -> None:
        self.vectors.append(data)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.ticks.append(tick)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.ticks.append(tick)


class _KeepingFactory(ZmqFeedDataClientFactory):
    """Keeps the client it builds, so a test can read its counters."""

    clients: ClassVar[list[ZmqFeedDataClient]] = []

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: ZmqFeedDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> ZmqFeedDataClient:
        client = ZmqFeedDataClientFactory.create(loop, name, config, msgbus, cache, clock)
        _KeepingFactory.clients.append(client)
        return client


def _config(endpoint: str, instrument_id: str) -> TradingNodeConfig:
    return TradingNodeConfig(
        trader_id="TESTER-001",
        logging=LoggingConfig(log_level="WARNING"),
        data_clients={
            FEED: ZmqFeedDataClientConfig(endpoint=endpoint, instrument_ids=[instrument_id])
        },
        exec_clients={
            VENUE: SandboxExecutionClientConfig(venue=VENUE, starting_balances=["1000000 USDT"])
        },
        timeout_connection=10.0,
        timeout_reconciliation=5.0,
        timeout_portfolio=5.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
    )


async def _until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def run_node(
    instrument_id: str,
    actors: Sequence[Actor],
    publish: Callable[[FeedPublisher], None],
    done: Callable[[], bool],
    timeout: float = 30.0,
) -> ZmqFeedDataClient:
    """Start a node with ``actors``, run ``publish`` once they run, stop when ``done()``.

    Returns the node's feed client (its counters). Raises TimeoutError when the node does not
    start or ``done()`` does not become true within ``timeout`` seconds.
    """
    publisher = FeedPublisher("tcp://127.0.0.1:*")  # an ephemeral loopback port
    nodes: list[TradingNode] = []
    _KeepingFactory.clients.clear()

    async def main() -> None:
        node = TradingNode(
            _config(publisher.endpoint, instrument_id), loop=asyncio.get_running_loop()
        )
        nodes.append(node)
        node.add_data_client_factory(FEED, _KeepingFactory)
        node.add_exec_client_factory(VENUE, SandboxLiveExecClientFactory)
        for actor in actors:
            node.trader.add_actor(actor)
        node.build()
        assert node.cache.instrument(InstrumentId.from_str(instrument_id)) is not None
        running = asyncio.create_task(node.run_async())
        try:
            await _until(lambda: all(a.is_running for a in actors), timeout, "the actors to start")
            # Hand the socket to a worker thread for the whole replay (ZeroMQ allows a move).
            sender = threading.Thread(target=publish, args=(publisher,), daemon=True)
            sender.start()
            await _until(lambda: not sender.is_alive(), timeout, "the publisher")
            await _until(done, timeout, "the node to receive the feed")
        finally:
            await node.stop_async()
            await asyncio.wait_for(running, timeout)

    try:
        uvloop.run(main())
    finally:
        publisher.close()
        for node in nodes:
            node.dispose()  # outside the loop: dispose closes it
    return _KeepingFactory.clients[0]
