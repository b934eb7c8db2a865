"""Live timers run their callbacks on the node's event loop thread, not the clock's."""

import asyncio
import datetime as dt
import threading

from nautilus_trader.common.component import LiveClock, TestClock, TimeEvent

from tapereader.actors.timers import set_engine_timer


class _Owner:
    """What set_engine_timer uses of an actor: its clock."""

    def __init__(self, clock: LiveClock | TestClock) -> None:
        self.clock = clock


def test_a_live_timer_fires_on_the_event_loop_thread() -> None:
    async def main() -> tuple[int, set[int]]:
        clock = LiveClock()
        threads: set[int] = set()
        fired = asyncio.Event()

        def on_timer(event: TimeEvent) -> None:
            threads.add(threading.get_ident())
            fired.set()

        set_engine_timer(_Owner(clock), "t", dt.timedelta(milliseconds=10), on_timer)
        await asyncio.wait_for(fired.wait(), 5)
        await asyncio.sleep(0.05)  # a few more firings
        clock.cancel_timers()
        return threading.get_ident(), threads

    loop_thread, threads = asyncio.run(main())
    assert threads == {loop_thread}


def test_the_raw_live_clock_would_fire_elsewhere() -> None:
    # Why the helper exists: without it the callback runs on the clock's own thread.
    async def main() -> tuple[int, set[int]]:
        clock = LiveClock()
        threads: set[int] = set()
        fired = threading.Event()

        def on_timer(event: TimeEvent) -> None:
            threads.add(threading.get_ident())
            fired.set()

        clock.set_timer("t", interval=dt.timedelta(milliseconds=10), callback=on_timer)
        await asyncio.get_running_loop().run_in_executor(None, fired.wait, 5)
        clock.cancel_timers()
        return threading.get_ident(), threads

    loop_thread, threads = asyncio.run(main())
    assert threads and loop_thread not in threads


def test_a_backtest_timer_is_set_as_it_is() -> None:
    clock = TestClock()
    seen: list[str] = []
    set_engine_timer(_Owner(clock), "t", dt.timedelta(seconds=1), lambda e: seen.append(e.name))
    for handler in clock.advance_time(3_000_000_000):
        handler.handle()
    assert seen == ["t", "t", "t"]
