"""FeatureActor's own tick handlers keep the base Actor's rules: running only, indicators."""

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
from tapereader.core.features.state import counts

IID = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")


def _actor(**config) -> tuple[FeatureActor, list[FeatureVector]]:
    """A registered, not yet started FeatureActor, and the vectors it publishes."""
    clock = TestClock()
    bus = MessageBus(TraderId("TESTER-001"), clock)
    cache = Cache()
    actor = FeatureActor(FeatureActorConfig(instrument_ids=[str(IID)], **config))
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


def test_ticks_count_only_while_running() -> None:
    actor, got = _actor(publish_warming=True)
    actor.handle_quote_tick(_quote(1))  # registered, not started: dropped, as by Actor
    actor.start()
    assert actor.is_running
    # The bus calls these overrides, not the base Actor's handlers.
    subscribed = {getattr(s.handler, "__func__", None) for s in actor.msgbus.subscriptions()}
    assert {FeatureActor.handle_quote_tick, FeatureActor.handle_trade_tick} <= subscribed
    state = actor.state_of(IID)
    actor.handle_quote_tick(_quote(2))
    actor.handle_trade_tick(_trade(3))
    actor.handle_quote_tick(_quote(4), historical=True)  # historical: not a live event
    assert counts(state).periods == 1 and counts(state).trades == 1
    assert [(v.kind, v.seq) for v in got] == [(k.KIND_QUOTE, 1), (k.KIND_TRADE, 2)]
    actor.stop()
    actor.handle_quote_tick(_quote(5))
    assert counts(state).periods == 1 and len(got) == 2


def test_a_tick_of_another_instrument_is_an_error() -> None:
    actor, _ = _actor()
    actor.start()
    with pytest.raises(KeyError):
        actor.handle_quote_tick(_quote(1, InstrumentId.from_str("ETHUSDT-PERP.BINANCE")))


def test_registered_indicators_still_receive_the_ticks() -> None:
    plain, plain_got = _actor(publish_warming=True)
    actor, got = _actor(publish_warming=True)
    quotes_sma, trades_sma = SimpleMovingAverage(3, PriceType.MID), SimpleMovingAverage(3)
    actor.register_indicator_for_quote_ticks(IID, quotes_sma)
    actor.register_indicator_for_trade_ticks(IID, trades_sma)
    for a in (plain, actor):
        a.start()
        for i in range(1, 80):
            if i % 4:
                a.handle_quote_tick(_quote(i))
            else:
                a.handle_trade_tick(_trade(i))
    assert quotes_sma.count == 60 and trades_sma.count == 19
    assert len(got) == len(plain_got) == 79 and got[-1].ready
    pairs = zip(got, plain_got, strict=True)
    assert all(np.array_equal(a.values, b.values, equal_nan=True) for a, b in pairs)
