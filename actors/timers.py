"""Timers whose callbacks run on the engine's thread, in backtests and live alike.

In a backtest the clock fires timers on the engine thread, between events. A live node's
``LiveClock`` (nautilus_trader 1.231) calls each timer's callback on a worker thread of its
Rust runtime instead, so an actor's timer ran beside its own handlers: the journal's flush
swapped the list of held events while the engine thread appended to it, and the trade
monitor's stale-data check read the ledger and published alerts on the message bus from the
wrong thread. :func:`set_engine_timer` hands a live timer's events to the node's event loop,
which runs them between the other handlers.
"""

import asyncio
import datetime as dt
from collections.abc import Callable

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import LiveClock, TimeEvent


def set_engine_timer(
    actor: Actor, name: str, interval: dt.timedelta, callback: Callable[[TimeEvent], None]
) -> None:
    """``actor.clock.set_timer``, with the callback run on the engine's thread.

    Call it from ``on_start``: live, that runs on the node's event loop, which receives the
    timer's events from then on.
    """
    if isinstance(actor.clock, LiveClock):
        loop = asyncio.get_running_loop()  # raises outside the node's loop: a wiring error
        target = callback

        def callback(event: TimeEvent) -> None:
            loop.call_soon_threadsafe(target, event)

    actor.clock.set_timer(name, interval=interval, callback=callback)
