"""FeatureActor's direct publication reaches the handlers MessageBus.publish would call."""

from collections.abc import Callable

import pytest
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.model.identifiers import TraderId

from tapereader.actors.direct_bus import Subscribers
from tapereader.actors.feature_actor import feature_data_type

TOPIC = f"data.{feature_data_type('BTCUSDT-PERP.BINANCE').topic}"


def _bus() -> MessageBus:
    return MessageBus(TraderId("TESTER-001"), TestClock())


def _handlers(calls: list[str], names: str) -> dict[str, Callable[[object], None]]:
    return {name: (lambda msg, name=name: calls.append(name)) for name in names}


def _subscribe_mix(bus: MessageBus, h: dict[str, Callable[[object], None]]) -> None:
    """Exact, wildcard and foreign topics, default and raised priorities, in a mixed order."""
    bus.subscribe(TOPIC, h["a"])
    bus.subscribe("data.*", h["b"])
    bus.subscribe("data.quotes.*", h["x"])  # another topic: never called
    bus.subscribe("data.FeatureVector.instrument_id=?TCUSDT-PERP.BINANCE", h["c"], priority=5)
    bus.subscribe(TOPIC.replace("BTC", "ETH"), h["y"])  # another instrument
    bus.subscribe("*", h["d"])
    bus.subscribe(TOPIC, h["e"], priority=5)
    bus.subscribe("data.FeatureVector.*", h["f"], priority=1)


def test_the_same_handlers_are_called_in_the_same_order_as_by_the_bus() -> None:
    bus = _bus()
    calls: list[str] = []
    h = _handlers(calls, "abcdefxy")
    _subscribe_mix(bus, h)
    bus.publish(TOPIC, object())
    expected, calls[:] = list(calls), []
    assert expected == ["c", "e", "f", "a", "b", "d"]  # the bus's order: priority, then age

    direct = Subscribers(bus, TOPIC)
    direct.publish(object())
    assert calls == expected
    assert direct.handlers == tuple(h[name] for name in expected)

    # Through the bus on request: the same calls, and counted by the bus.
    calls[:] = []
    count = bus.pub_count
    Subscribers(bus, TOPIC, direct=False).publish(object())
    assert calls == expected and bus.pub_count == count + 1


def test_a_command_on_the_bus_resolves_the_handlers_again() -> None:
    """Actor.subscribe_data and unsubscribe_data send one: seen at the next publication."""
    bus = _bus()
    calls: list[str] = []
    h = _handlers(calls, "ab")
    bus.subscribe(TOPIC, h["a"])
    bus.register("DataEngine.execute", lambda command: None)
    direct = Subscribers(bus, TOPIC, refresh=1_000_000)
    direct.publish(1)
    bus.subscribe(TOPIC, h["b"])
    bus.send("DataEngine.execute", "command")  # what subscribe_data does after subscribing
    direct.publish(2)
    bus.unsubscribe(TOPIC, h["a"])
    bus.send("DataEngine.execute", "command")
    direct.publish(3)
    assert calls == ["a", "a", "b", "b"]


def test_a_subscription_made_directly_on_the_bus_is_seen_within_refresh_publications() -> None:
    bus = _bus()
    got: list[int] = []
    direct = Subscribers(bus, TOPIC, refresh=3)
    direct.publish(1)  # resolves: nobody is subscribed
    bus.subscribe(TOPIC, got.append)  # and no command follows
    for i in range(2, 8):
        direct.publish(i)
    assert got == [4, 5, 6, 7]  # publications 2 and 3 still used the first resolution


def test_refresh_is_checked() -> None:
    with pytest.raises(ValueError, match="refresh"):
        Subscribers(_bus(), TOPIC, refresh=0)
