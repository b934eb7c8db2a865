"""FeatureActor's tick routes keep the base Actor's rules: running only, order, indicators."""

import numpy as np
import pytest
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.indicators.averages import SimpleMovingAverage
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, PriceType
from nautilus_trader.model.identifiers import InstrumentId, TradeId, TraderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.portfolio.portfolio import Portfolio

from tapereader.actors.feature_actor import FeatureActor, FeatureActorConfig, FeatureVector
from tapereader.core.features import kernel as k
from tapereader.core.features.state import ROW_BLOCK, counts

IID = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")


def _actor(ids: tuple[InstrumentId, ...] = (IID,), **config) -> tuple[FeatureActor, list]:
    """A registered, not yet started FeatureActor, and the vectors it publishes."""
    clock = TestClock()
    bus = MessageBus(TraderId("TESTER-001"), clock)
    cache = Cache()
    actor = FeatureActor(FeatureActorConfig(instrument_ids=[str(i) for i in ids], **config))
    actor.register_base(Portfolio(bus, cache, clock), bus, cache, clock)
    bus.register("DataEngine.execute", lambda command: None)  # takes the subscriptions
    got: list[FeatureVector] = []
    bus.subscribe("data.FeatureVector.*", got.append)
    return actor, got


def _quote(i: int, instrument_id: InstrumentId = IID) -> QuoteTick:
    bid = Price(60_000.0 + i % 7, 1)
    ask = Price(60_000.5 + i % 7, 1)
    size = Quantity(1.0 + i % 3, 3)
    return QuoteTick(instrument_id, bid, ask, size, size, 1_000_000 * i, 1_000_000 * i)


def _trade(i: int) -> TradeTick:
    return TradeTick(
        IID,
        Price(60_000.0, 1),
        Quantity(0.5, 3),
        AggressorSide.BUYER,
        TradeId(str(i)),
        1_000_000 * i,
        1_000_000 * i,
    )


QUOTES = f"data.quotes.{IID.venue}.{IID.symbol}"
TRADES = f"data.trades.{IID.venue}.{IID.symbol}"


def _handlers(bus: MessageBus, topic: str) -> list[object]:
    """Whose handler each subscription of ``topic`` is, in the bus's calling order."""
    subs = sorted((s for s in bus.subscriptions() if s.topic == topic), reverse=True)
    return [getattr(s.handler, "__self__", s.handler) for s in subs]


def test_ticks_reach_the_instrument_only_while_running() -> None:
    actor, got = _actor(publish_warming=True)
    bus = actor.msgbus
    actor.handle_quote_tick(_quote(1))  # registered, not started: dropped, as by Actor
    actor.start()
    # The bus calls the instrument's handlers, not the actor's.
    for topic in (QUOTES, TRADES):
        (owner,) = _handlers(bus, topic)
        assert owner is not actor and type(owner).__name__ == "_Instrument"
    state = actor.state_of(IID)
    bus.publish(QUOTES, _quote(2))
    bus.publish(TRADES, _trade(3))
    actor.handle_quote_tick(_quote(4), historical=True)  # historical: not a live event
    assert counts(state).periods == 1 and counts(state).trades == 1
    assert [(v.kind, v.seq) for v in got] == [(k.KIND_QUOTE, 1), (k.KIND_TRADE, 2)]
    actor.stop()
    assert _handlers(bus, QUOTES) == [actor] and _handlers(bus, TRADES) == [actor]
    bus.publish(QUOTES, _quote(5))
    actor.handle_quote_tick(_quote(6))
    assert counts(state).periods == 1 and len(got) == 2
    actor.resume()  # the same state, routed again
    (owner,) = _handlers(bus, QUOTES)
    assert owner is not actor
    bus.publish(QUOTES, _quote(7))
    assert counts(state).periods == 2 and [v.seq for v in got[2:]] == [3]


def test_each_instrument_gets_its_own_ticks() -> None:
    eth = InstrumentId.from_str("ETHUSDT-PERP.BINANCE")
    actor, got = _actor((IID, eth), publish_warming=True)
    actor.start()
    for i in range(1, 4):
        actor.msgbus.publish(QUOTES, _quote(i))
    actor.msgbus.publish(f"data.quotes.{eth.venue}.{eth.symbol}", _quote(4, eth))
    assert counts(actor.state_of(IID)).periods == 3
    assert counts(actor.state_of(eth)).periods == 1
    assert [str(v.instrument_id) for v in got] == [str(IID)] * 3 + [str(eth)]


def test_the_route_keeps_its_place_among_the_topic_handlers() -> None:
    actor, _ = _actor()
    bus = actor.msgbus
    calls: list[str] = []
    first = lambda tick: calls.append("first")  # noqa: E731
    last = lambda tick: calls.append("last")  # noqa: E731
    bus.subscribe(QUOTES, first)
    actor.start()
    bus.subscribe(QUOTES, last)
    (instrument,) = actor._instruments.values()
    assert _handlers(bus, QUOTES) == [first, instrument, last]
    bus.publish(QUOTES, _quote(1))
    assert calls == ["first", "last"] and instrument.seq == 1


def test_an_error_in_a_routed_tick_goes_on_to_the_engine() -> None:
    actor, _ = _actor(publish_warming=True)
    actor.start()

    def broken(vector: FeatureVector) -> None:
        raise RuntimeError("a subscriber failed")

    actor.msgbus.subscribe("data.FeatureVector.*", broken)
    with pytest.raises(RuntimeError, match="a subscriber failed"):
        actor.msgbus.publish(QUOTES, _quote(1))


def test_a_tick_of_another_instrument_is_an_error() -> None:
    actor, _ = _actor()
    actor.start()
    with pytest.raises(KeyError):
        actor.handle_quote_tick(_quote(1, InstrumentId.from_str("ETHUSDT-PERP.BINANCE")))


def _feed(actor: FeatureActor, ticks: range) -> None:
    """Three quotes, then a trade, and so on, published on the bus as the engine does."""
    for i in ticks:
        if i % 4:
            actor.msgbus.publish(QUOTES, _quote(i))
        else:
            actor.msgbus.publish(TRADES, _trade(i))


def test_registered_indicators_still_receive_the_ticks() -> None:
    plain, plain_got = _actor(publish_warming=True)
    actor, got = _actor(publish_warming=True)
    quotes_sma, trades_sma = SimpleMovingAverage(3, PriceType.MID), SimpleMovingAverage(3)
    actor.register_indicator_for_quote_ticks(IID, quotes_sma)
    actor.register_indicator_for_trade_ticks(IID, trades_sma)
    for a in (plain, actor):
        a.start()
        _feed(a, range(1, 80))
    assert _handlers(actor.msgbus, QUOTES) == [actor]  # the base handlers feed indicators
    assert quotes_sma.count == 60 and trades_sma.count == 19
    assert len(got) == len(plain_got) == 79 and got[-1].ready
    pairs = zip(got, plain_got, strict=True)
    assert all(np.array_equal(a.values, b.values, equal_nan=True) for a, b in pairs)


def test_an_indicator_registered_while_running_gets_the_next_ticks() -> None:
    actor, got = _actor(publish_warming=True)
    actor.start()
    _feed(actor, range(1, 5))
    sma = SimpleMovingAverage(3, PriceType.MID)
    actor.register_indicator_for_quote_ticks(IID, sma)
    assert _handlers(actor.msgbus, QUOTES) == [actor]
    _feed(actor, range(5, 9))
    assert sma.count == 3 and len(got) == 8


def test_a_vector_keeps_its_row_after_later_events_and_blocks() -> None:
    actor, got = _actor(publish_warming=True)
    seen: list[np.ndarray] = []  # each vector's row, read as it is published
    actor.msgbus.subscribe("data.FeatureVector.*", lambda v: seen.append(v.values.copy()))
    actor.start()
    _feed(actor, range(1, 3 * ROW_BLOCK + 50))
    assert len(got) == len(seen) == 3 * ROW_BLOCK + 49
    pairs = zip(got, seen, strict=True)
    assert all(np.array_equal(v.values, row, equal_nan=True) for v, row in pairs)
    assert got[-1].values is got[-1].values  # made once, then kept
    made = FeatureVector(IID, seen[0], True, "hash", "src", 1, 1)
    assert made.values is seen[0]
