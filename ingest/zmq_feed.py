"""A live data client that reads the tick-feed wire (``docs/FEED.md``) from a ZeroMQ SUB socket.

The client turns each message for an instrument it knows into a Nautilus ``TradeTick``,
``QuoteTick`` or ``OrderBookDeltas`` and hands it to the engine. It subscribes the socket to
an instrument when the node first subscribes to any of its data, not at connection: a live
node connects its clients before it starts its actors, and ticks received in between would
reach no actor. From then on it streams every message of the instrument whatever kind was
asked for: the data engine delivers only what actors asked for, and the feed has no
per-kind cost worth saving. Frames that do not
decode, or carry values the instrument cannot represent, are counted and skipped (frames
whose topic matches none of the subscribed prefixes are dropped by ZeroMQ before that).
"""

import asyncio
from collections import deque
from dataclasses import dataclass

import zmq
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.data.messages import (
    SubscribeData,
    SubscribeInstrument,
    SubscribeInstruments,
    SubscribeOrderBook,
    SubscribeQuoteTicks,
    SubscribeTradeTicks,
    UnsubscribeData,
    UnsubscribeInstrument,
    UnsubscribeInstruments,
    UnsubscribeOrderBook,
    UnsubscribeQuoteTicks,
    UnsubscribeTradeTicks,
)
from nautilus_trader.live.config import LiveDataClientConfig
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.data import (
    BookOrder,
    OrderBookDelta,
    OrderBookDeltas,
    QuoteTick,
    TradeTick,
)
from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
from nautilus_trader.model.identifiers import ClientId, InstrumentId, TradeId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price, Quantity

from tapereader.core import tickwire
from tapereader.ingest.instruments import default_registry

_AGGRESSOR = {
    "buyer": AggressorSide.BUYER,
    "seller": AggressorSide.SELLER,
    "none": AggressorSide.NO_AGGRESSOR,
}
_ACTION = {"add": BookAction.ADD, "update": BookAction.UPDATE, "delete": BookAction.DELETE}
_SIDE = {"bid": OrderSide.BUY, "ask": OrderSide.SELL}
_BATCH = 1_000  # messages drained per loop turn before letting other callbacks run
_LOGGED_GARBAGE = 10  # log each of the first garbage frames, then every 1000th


class ZmqFeedDataClientConfig(LiveDataClientConfig, frozen=True, kw_only=True):
    """Where the feed is and which instruments to take from it.

    ``instrument_ids`` must be declared in the built-in registry or in ``instrument_files``
    (TOML, see ``ingest/instruments.py``). With ``stamp_ts_init`` the node's clock stamps
    ``ts_init`` on receipt (the live convention, which makes feed latency measurable);
    without it the publisher's ``ts_init`` is kept, as a replay would.
    """

    endpoint: str = "tcp://127.0.0.1:5555"
    instrument_ids: list[str]
    instrument_files: tuple[str, ...] = ()
    stamp_ts_init: bool = True
    receive_hwm: int = 100_000


@dataclass
class FeedStats:
    """Messages handed to the engine, and frames skipped as garbage."""

    received: int = 0
    garbage: int = 0


class WireConverter:
    """Wire messages to Nautilus objects at one instrument's precisions.

    Decimal strings with fewer decimals than the instrument are widened exactly; more
    decimals raise ``ValueError`` (the instrument cannot represent the value).
    """

    __slots__ = ("_nothing", "id", "price_precision", "size_precision")

    def __init__(self, instrument: Instrument) -> None:
        self.id = instrument.id
        self.price_precision = instrument.price_precision
        self.size_precision = instrument.size_precision
        self._nothing = BookOrder(
            OrderSide.NO_ORDER_SIDE,
            Price(0, self.price_precision),
            Quantity(0, self.size_precision),
            0,
        )

    def price(self, text: str) -> Price:
        """A price at the instrument's precision."""
        p = Price.from_str(text)
        if p.precision == self.price_precision:
            return p
        if p.precision > self.price_precision:
            raise ValueError(f"price {text} has more decimals than {self.price_precision}")
        # The raw value is scaled the same at every precision: only the label changes.
        return Price.from_raw(p.raw, self.price_precision)

    def size(self, text: str) -> Quantity:
        """A size at the instrument's precision."""
        q = Quantity.from_str(text)
        if q.precision == self.size_precision:
            return q
        if q.precision > self.size_precision:
            raise ValueError(f"size {text} has more decimals than {self.size_precision}")
        return Quantity.from_raw(q.raw, self.size_precision)

    def trade(self, m: tickwire.Trade, ts_init: int) -> TradeTick:
        """The trade tick of a wire trade."""
        return TradeTick(
            self.id,
            self.price(m.price),
            self.size(m.size),
            _AGGRESSOR[m.aggressor],
            TradeId(m.trade_id),
            m.ts_event,
            ts_init,
        )

    def quote(self, m: tickwire.Quote, ts_init: int) -> QuoteTick:
        """The quote tick of a wire quote."""
        return QuoteTick(
            self.id,
            self.price(m.bid),
            self.price(m.ask),
            self.size(m.bid_size),
            self.size(m.ask_size),
            m.ts_event,
            ts_init,
        )

    def book(self, m: tickwire.Book, ts_init: int) -> OrderBookDeltas:
        """One batch of deltas; ``F_LAST`` on the last, ``F_SNAPSHOT`` on all of a snapshot."""
        base = RecordFlag.F_SNAPSHOT if m.snapshot else 0
        last = len(m.deltas) - 1
        deltas = []
        for i, d in enumerate(m.deltas):
            flags = base | (RecordFlag.F_LAST if i == last else 0)
            if d.action == "clear":
                order = self._nothing  # what Nautilus's own loaders put on a CLEAR
                action = BookAction.CLEAR
            else:
                order = BookOrder(_SIDE[d.side], self.price(d.price), self.size(d.size), 0)
                action = _ACTION[d.action]
            deltas.append(
                OrderBookDelta(self.id, action, order, flags, m.sequence, m.ts_event, ts_init)
            )
        return OrderBookDeltas(self.id, deltas)


class ZmqFeedDataClient(LiveMarketDataClient):
    """Streams the tick-feed wire of its instruments from a ZeroMQ SUB socket into the engine.

    It registers with no venue, so the data engine routes every venue's subscriptions here
    (default routing). Its instruments are put in the cache at construction: the sandbox
    execution client reads them from the cache when it connects, before this client's
    asynchronous connect has run.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client_id: ClientId,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: ZmqFeedDataClientConfig,
        instruments: list[Instrument],
    ) -> None:
        provider = InstrumentProvider()
        for instrument in instruments:
            provider.add(instrument)
        super().__init__(
            loop=loop,
            client_id=client_id,
            venue=None,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
        )
        for instrument in instruments:
            cache.add_instrument(instrument)
        self._endpoint = config.endpoint
        self._stamp = config.stamp_ts_init
        self._hwm = config.receive_hwm
        self._converters = {str(i.id): WireConverter(i) for i in instruments}
        self._context: zmq.Context | None = None
        self._socket: zmq.Socket | None = None
        self._stats = FeedStats()
        self._wanted: dict[str, set[type]] = {}  # instrument -> kinds the node subscribed to
        # (ts_init stamped on receipt, the publisher's ts_sent) of each stamped message, for
        # whoever measures feed latency (see TickTap): the loop hands data on in this order.
        self.send_stamps: deque[tuple[int, int]] | None = None

    @property
    def stats(self) -> FeedStats:
        """Counts since construction (live object: read, do not modify)."""
        return self._stats

    @property
    def instrument_ids(self) -> list[InstrumentId]:
        """The instruments this client takes from the feed."""
        return [c.id for c in self._converters.values()]

    async def _connect(self) -> None:
        self._context = zmq.Context()
        sock = self._context.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, self._hwm)
        sock.setsockopt(zmq.LINGER, 0)
        for instrument_id, kinds in self._wanted.items():  # a reconnection keeps them
            if kinds:
                sock.setsockopt_string(zmq.SUBSCRIBE, tickwire.instrument_prefix(instrument_id))
        sock.connect(self._endpoint)
        self._socket = sock
        # ZeroMQ's descriptor signals edges, not levels: drain after registering, in case
        # messages were queued before the loop started watching it.
        self._loop.add_reader(sock.getsockopt(zmq.FD), self._drain)
        self._loop.call_soon(self._drain)
        self._log.info(f"Feed {self._endpoint}: {', '.join(self._converters)}")

    async def _disconnect(self) -> None:
        if self._socket is not None:
            self._loop.remove_reader(self._socket.getsockopt(zmq.FD))
            self._socket.close(linger=0)
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None
        s = self._stats
        self._log.info(f"Feed closed: received {s.received}, garbage {s.garbage}")

    def _drain(self) -> None:
        sock = self._socket
        if sock is None:
            return
        for _ in range(_BATCH):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_frames(frames)
        # More may be queued and the descriptor will not signal them again: come back soon.
        self._loop.call_soon(self._drain)

    def _on_frames(self, frames: list[bytes]) -> None:
        try:
            message = tickwire.decode(frames)
            converter = self._converters.get(message.instrument_id)
            if converter is None:  # only reachable through a prefix shared by two ids
                raise tickwire.TickWireError(f"{message.instrument_id} is not fed by this client")
            ts_init = self._clock.timestamp_ns() if self._stamp else message.ts_init
            if type(message) is tickwire.Quote:
                data = converter.quote(message, ts_init)
            elif type(message) is tickwire.Trade:
                data = converter.trade(message, ts_init)
            else:
                data = converter.book(message, ts_init)
        # TickWireError, or a value Nautilus refuses (zero trade size, precision overflow).
        except (ValueError, TypeError, ArithmeticError) as exc:
            self._stats.garbage += 1
            n = self._stats.garbage
            if n <= _LOGGED_GARBAGE or n % 1000 == 0:
                self._log.warning(f"Skipped garbage frame (#{n}): {exc}")
            return
        self._stats.received += 1
        if message.ts_sent and self.send_stamps is not None:
            self.send_stamps.append((ts_init, message.ts_sent))
        self._handle_data(data)

    def _want(self, instrument_id: InstrumentId, kind: type) -> None:
        key = str(instrument_id)
        if key not in self._converters:
            self._log.error(f"{key} is not fed by {self._endpoint}; nothing will arrive for it")
            return
        kinds = self._wanted.setdefault(key, set())
        if not kinds and self._socket is not None:
            self._socket.setsockopt_string(zmq.SUBSCRIBE, tickwire.instrument_prefix(key))
        kinds.add(kind)

    def _unwant(self, instrument_id: InstrumentId, kind: type) -> None:
        key = str(instrument_id)
        kinds = self._wanted.get(key)
        if not kinds or kind not in kinds:
            return
        kinds.discard(kind)
        if not kinds and self._socket is not None:
            self._socket.setsockopt_string(zmq.UNSUBSCRIBE, tickwire.instrument_prefix(key))

    # Generic data, instruments: the feed carries only ticks and books.

    async def _subscribe(self, command: SubscribeData) -> None:
        pass

    async def _subscribe_instruments(self, command: SubscribeInstruments) -> None:
        pass

    async def _subscribe_instrument(self, command: SubscribeInstrument) -> None:
        pass

    async def _unsubscribe(self, command: UnsubscribeData) -> None:
        pass

    async def _unsubscribe_instruments(self, command: UnsubscribeInstruments) -> None:
        pass

    async def _unsubscribe_instrument(self, command: UnsubscribeInstrument) -> None:
        pass

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        self._want(command.instrument_id, QuoteTick)

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        self._want(command.instrument_id, TradeTick)

    async def _subscribe_order_book_deltas(self, command: SubscribeOrderBook) -> None:
        self._want(command.instrument_id, OrderBookDeltas)

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        self._unwant(command.instrument_id, QuoteTick)

    async def _unsubscribe_trade_ticks(self, command: UnsubscribeTradeTicks) -> None:
        self._unwant(command.instrument_id, TradeTick)

    async def _unsubscribe_order_book_deltas(self, command: UnsubscribeOrderBook) -> None:
        self._unwant(command.instrument_id, OrderBookDeltas)


class ZmqFeedDataClientFactory(LiveDataClientFactory):
    """Builds :class:`ZmqFeedDataClient` from its config (instruments from the registry)."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: ZmqFeedDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> ZmqFeedDataClient:
        """A client named ``name`` for the config's instruments."""
        registry = default_registry(list(config.instrument_files))
        instruments = []
        for instrument_id in config.instrument_ids:
            if registry.get(instrument_id) is None:
                raise ValueError(
                    f"ZmqFeedDataClientConfig.instrument_ids: {instrument_id!r} is not declared "
                    "(built-in instruments or instrument_files)"
                )
            instruments.append(registry.nautilus(instrument_id))
        return ZmqFeedDataClient(loop, ClientId(name), msgbus, cache, clock, config, instruments)
