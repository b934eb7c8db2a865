"""The tick-feed wire: codec, conversion to Nautilus objects, and the catalog replayer."""

import argparse
import socket
import threading
import time
from pathlib import Path

import msgspec
import pytest
import zmq
from nautilus_trader.model.data import OrderBookDelta, OrderBookDeltas, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.objects import Price, Quantity

from tapereader import feed_cli
from tapereader.core import tickwire
from tapereader.core.tickwire import Book, BookDelta, Quote, TickWireError, Trade
from tapereader.ingest.feed_publisher import FeedPublisher, catalog_ticks, parse_speed, to_message
from tapereader.ingest.instruments import default_registry
from tapereader.ingest.zmq_feed import WireConverter

IID = "BTCUSDT-PERP.BINANCE"
TRADE = Trade(
    instrument_id=IID,
    price="61800.20",
    size="0.015",
    aggressor="seller",
    trade_id="5012345678",
    ts_event=1_723_161_256_313_000_000,
    ts_init=1_723_161_256_314_000_000,
)
QUOTE = Quote(
    instrument_id=IID,
    bid="61800.2",
    ask="61800.30",
    bid_size="2.5",
    ask_size="0.001",
    ts_event=1,
    ts_init=2,
)
BOOK = Book(
    instrument_id=IID,
    deltas=[
        BookDelta(action="clear"),
        BookDelta(action="add", side="bid", price="61800.20", size="1.000"),
        BookDelta(action="add", side="ask", price="61800.30", size="0.5"),
    ],
    snapshot=True,
    sequence=42,
    ts_event=3,
    ts_init=4,
)


def _converter() -> WireConverter:
    return WireConverter(default_registry().nautilus(IID))


@pytest.mark.parametrize("message", [TRADE, QUOTE, BOOK])
def test_messages_round_trip_under_their_instrument_topic(message: tickwire.TickMessage) -> None:
    frames = tickwire.encode(message)
    assert frames[0] == f"{IID}/{message.__struct_config__.tag}".encode()
    assert frames[0].startswith(tickwire.instrument_prefix(IID).encode())
    assert tickwire.decode(frames) == message


def _raw(**changes: object) -> list[bytes]:
    fields = msgspec.structs.asdict(TRADE) | {"type": "trade"} | changes
    return [f"{IID}/trade".encode(), msgspec.msgpack.encode(fields)]


@pytest.mark.parametrize(
    ("frames", "problem"),
    [
        ([b"x"], "expected 2 frames"),
        ([b"a", b"b", b"c"], "expected 2 frames"),
        ([f"{IID}/trade".encode(), b"\xc1"], "bad message"),
        (_raw(type="bar"), "bad message"),
        (_raw(price="1e5"), "price"),
        (_raw(price=""), "price"),
        (_raw(price="NaN"), "price"),
        (_raw(price=61800.2), "price"),
        (_raw(size="-1"), "size"),
        (_raw(ts_event=-1), "ts_event"),
        (_raw(aggressor="BUY"), "aggressor"),
        (_raw(trade_id=""), "trade_id"),
        (_raw(v=2), "wire version 2"),
        ([f"{IID}/quote".encode(), tickwire.encode(TRADE)[1]], "does not match"),
    ],
)
def test_garbage_raises_a_value_error_naming_the_problem(frames: list, problem: str) -> None:
    with pytest.raises(TickWireError, match=problem) as info:
        tickwire.decode(frames)
    assert isinstance(info.value, ValueError)


def test_unknown_keys_are_ignored_so_minor_additions_need_no_new_version() -> None:
    assert tickwire.decode(_raw(venue_latency_ns=12)) == TRADE


def test_conversion_keeps_every_digit_at_the_instrument_precision() -> None:
    conv = _converter()
    quote = conv.quote(QUOTE, 99)
    assert quote.bid_price == Price.from_str("61800.20") and quote.bid_price.precision == 2
    assert quote.bid_size == Quantity.from_str("2.500") and quote.bid_size.precision == 3
    assert (quote.ts_event, quote.ts_init) == (1, 99)
    trade = conv.trade(TRADE, TRADE.ts_init)
    expected = TradeTick(
        conv.id,
        Price.from_str("61800.20"),
        Quantity.from_str("0.015"),
        AggressorSide.SELLER,
        TradeId("5012345678"),
        TRADE.ts_event,
        TRADE.ts_init,
    )
    assert trade == expected and to_message(trade) == TRADE
    with pytest.raises(ValueError, match="more decimals"):
        conv.price("61800.205")
    with pytest.raises(ValueError, match="more decimals"):
        conv.size("0.0001")


def test_a_book_message_becomes_one_flagged_batch() -> None:
    deltas = _converter().book(BOOK, 5)
    assert isinstance(deltas, OrderBookDeltas)
    actions = [d.action for d in deltas.deltas]
    assert actions == [BookAction.CLEAR, BookAction.ADD, BookAction.ADD]
    assert [d.order.side for d in deltas.deltas[1:]] == [OrderSide.BUY, OrderSide.SELL]
    assert all(d.flags & RecordFlag.F_SNAPSHOT for d in deltas.deltas)
    assert [bool(d.flags & RecordFlag.F_LAST) for d in deltas.deltas] == [False, False, True]
    assert {(d.sequence, d.ts_event, d.ts_init) for d in deltas.deltas} == {(42, 3, 5)}
    widened = [*BOOK.deltas[:2], msgspec.structs.replace(BOOK.deltas[2], size="0.500")]
    assert to_message(deltas) == msgspec.structs.replace(BOOK, ts_init=5, deltas=widened)


def test_real_book_batches_survive_the_wire(btc_catalog: Path) -> None:
    batches = catalog_ticks(btc_catalog, [IID], kinds=("book",), limit=500)
    assert len(batches) == 500 and all(isinstance(b, OrderBookDeltas) for b in batches)
    conv = _converter()
    for batch in batches:
        message = tickwire.decode(tickwire.encode(to_message(batch)))
        back = conv.book(message, batch.ts_init)
        # Field by field: Rust-side equality also compares where the id string is interned.
        assert [OrderBookDelta.to_dict(d) for d in back.deltas] == [
            OrderBookDelta.to_dict(d) for d in batch.deltas
        ]


def test_speed_parsing() -> None:
    assert parse_speed("1x") == 1.0 and parse_speed("10x") == 10.0 and parse_speed("max") is None
    for bad in ("10", "0x", "-1x", "fastx", ""):
        with pytest.raises(ValueError, match="speed"):
            parse_speed(bad)


def test_replay_paces_at_the_chosen_speed() -> None:
    conv = _converter()
    step = 100_000_000  # 100 ms of exchange time between trades
    trades = [
        conv.trade(msgspec.structs.replace(TRADE, ts_event=TRADE.ts_event + i * step), 0)
        for i in range(5)
    ]
    with FeedPublisher("tcp://127.0.0.1:*", linger_ms=0) as publisher:
        paced = publisher.replay(trades, speed=2.0)
        fast = publisher.replay(trades, speed=None)
    assert paced.published == fast.published == 5
    assert 0.2 <= paced.seconds < 1.0  # 400 ms of exchange time at 2x
    assert fast.seconds < 0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_feed_replay_command_publishes_in_exchange_time_order(btc_catalog: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    parser = argparse.ArgumentParser()
    feed_cli.register(parser.add_subparsers())
    argv = ["feed", "replay", "--catalog", str(btc_catalog), "--endpoint", endpoint]
    args = parser.parse_args([*argv, "--speed", "max", "--limit", "2000", "--wait", "10"])
    status: list[int] = []
    sender = threading.Thread(target=lambda: status.append(args.run(args)), daemon=True)
    sender.start()
    with zmq.Context() as ctx, ctx.socket(zmq.SUB) as sub:
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt_string(zmq.SUBSCRIBE, tickwire.instrument_prefix(IID))
        sub.connect(endpoint)
        messages = []
        deadline = time.monotonic() + 30
        while len(messages) < 2000 and time.monotonic() < deadline:
            if sub.poll(1000):
                messages.append(tickwire.decode(sub.recv_multipart()))
    sender.join(30)
    assert status == [0]
    assert len(messages) == 2000
    assert {m.__struct_config__.tag for m in messages} == {"quote", "trade", "book"}
    times = [m.ts_event for m in messages]
    assert times == sorted(times)
