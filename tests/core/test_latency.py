"""The latency recorder and the tap that starts each tick's clock."""

import time
from collections import deque

import pytest

from tapereader.actors.chain import TickTap
from tapereader.core.latency import LatencyRecorder


def test_hops_are_timed_from_the_receipt_and_the_send_when_the_feed_stamped_it() -> None:
    rec = LatencyRecorder(capacity=4)
    now = time.time_ns()
    rec.tick(received_ns=now - 2_000_000, sent_ns=now - 3_000_000)  # 1 ms on the wire
    rec.hop("signal")
    rec.hop("order")
    s = rec.samples()
    assert s["wire"].tolist() == [1_000_000]
    assert 2_000_000 <= s["queue"][0] <= s["signal"][0]  # receipt to the chain, before any hop
    assert 2_000_000 <= s["signal"][0] < 2_000_000 + 5e8
    assert s["feed_to_order"][0] - s["order"][0] >= 1_000_000  # the wire comes on top
    assert "features" not in s  # never reached: left out, not reported as zero


def test_without_a_send_stamp_there_is_no_feed_series() -> None:
    rec = LatencyRecorder()
    rec.tick()
    rec.hop("order")
    assert set(rec.samples()) == {"order"} and rec.ticks == 1


def test_capacity_keeps_the_newest_samples() -> None:
    rec = LatencyRecorder(capacity=2)
    for _ in range(5):
        rec.tick()
        rec.hop("risk")
    assert rec.count("risk") == 5 and len(rec.samples()["risk"]) == 2
    with pytest.raises(ValueError, match="capacity"):
        LatencyRecorder(capacity=0)


def test_the_tap_matches_each_tick_to_its_send_stamp_and_drops_unseen_ones() -> None:
    rec = LatencyRecorder()
    tap = TickTap(["EUR/USD.OANDA"], rec)
    tap.live = True
    # Receipt stamps 100, 200 (a book update no tap sees), 300; the tick at 300 is next.
    tap.send_stamps = deque([(100, 90), (200, 150), (300, 280)])
    tap._begin(100)
    assert rec.t0 == 100 and rec.sent == 90
    tap._begin(300)
    assert rec.t0 == 300 and rec.sent == 280 and not tap.send_stamps
    tap._begin(400)  # no stamp (a publisher that does not stamp): timed from receipt only
    assert rec.t0 == 400 and rec.sent == 0
    assert rec.samples()["wire"].tolist() == [10, 20]
    assert rec.count("queue") == 3  # every live tick


def test_in_a_backtest_the_tap_starts_the_clock_when_it_sees_the_tick() -> None:
    rec = LatencyRecorder()
    tap = TickTap(["EUR/USD.OANDA"], rec)
    before = time.time_ns()
    tap._begin(1_400_000_000_000_000_000)  # a historical ts_init: not a receipt time
    assert rec.t0 >= before and rec.sent == 0
