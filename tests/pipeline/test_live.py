"""`tapereader live` as users run it: a separate process, a real ZeroMQ feed, SIGTERM to stop.

The node paper-trades the chain through the sandbox execution client on real EUR/USD quotes
replayed on the tick feed; on SIGTERM it cancels, flattens, journals what it holds and exits 0.
"""

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tapereader.core import events as ev
from tapereader.core.ledger import ledger_from_events
from tapereader.core.store import EventStore
from tapereader.ingest.feed_publisher import FeedPublisher, catalog_ticks

from ..conftest import ROOT
from .conftest import OANDA, VERSION

pytestmark = pytest.mark.slow

LIVE = """
[live]
feed_endpoint = "{endpoint}"
store = "{store}"
log_level = "WARNING"
metrics_port = {metrics}

[[live.venues]]
name = "OANDA"
base_currency = "USD"
starting_balances = ["100000 USD"]
default_leverage = 10.0

[chain]
instruments = ["EUR/USD.OANDA"]

[chain.signals]
registry = "{registry}"
model_versions = {{ "EUR/USD.OANDA" = "{version}" }}

[chain.decision.policy]
enter = 0.02
exit = 0.01
min_edge = 0.01
min_confidence = 0.0
min_hold_ns = 0
position_size = 10_000.0

[chain.risk]
limits = "{limits}"

[chain.execution]
flatten_on_stop = true
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(store: Path) -> list[ev.DomainEvent]:
    with EventStore.open(store) as s:
        return [r.event for r in s.read()]


def _config(tmp_path: Path, registry: Path, endpoint: str, limits: Path | None = None) -> Path:
    config = tmp_path / "live.toml"
    config.write_text(
        LIVE.format(
            endpoint=endpoint,
            store=tmp_path / "events.db",
            registry=registry,
            version=VERSION,
            limits=limits or ROOT / "config" / "risk.toml",
            metrics=_free_port(),
        )
    )
    return config


def _start(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tapereader.cli", "live", "--config", str(config)],
        cwd=ROOT,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _ticks(catalog: Path, hour: int, n: int) -> list:
    start = int(dt.datetime(2014, 5, 2, hour, tzinfo=dt.UTC).timestamp() * 1e9)
    return [t for t in catalog_ticks(catalog, [OANDA]) if start <= t.ts_event][:n]


def _wait_for(store: Path, run_id: str | None, signals: int, timeout: float = 60) -> None:
    """Until ``signals`` signals of the run (any run: None) are stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = [e for e in _events(store) if isinstance(e, ev.SignalGenerated)]
        if sum(1 for e in stored if run_id in (None, e.source.run_id)) >= signals:
            return
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {signals} signals stored after {timeout} s")


def _run_of(store: Path, index: int) -> str:
    runs = [e for e in _events(store) if isinstance(e, ev.RunStarted)]
    return runs[index].source.run_id


def test_the_live_node_paper_trades_the_feed_and_stops_cleanly_on_sigterm(
    two_days: Path, registry: Path, tmp_path: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    store = tmp_path / "events.db"
    config = _config(tmp_path, registry, endpoint)
    ticks = _ticks(two_days, 7, 3_000)
    publisher = FeedPublisher(endpoint)
    node = _start(config)
    try:
        assert publisher.wait_for_subscribers([OANDA], timeout=90), "the node never subscribed"
        stats = publisher.replay(ticks, speed=None)
        assert stats.published == len(ticks)
        _wait_for(store, None, len(ticks) - 100)  # every quote once the LSTM window is full
        port = tomllib.loads(config.read_text())["live"]["metrics_port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        node.send_signal(signal.SIGTERM)
        out, _ = node.communicate(timeout=90)
    finally:
        publisher.close()
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, out
    events = _events(store)
    (started,) = [e for e in events if isinstance(e, ev.RunStarted)]
    (completed,) = [e for e in events if isinstance(e, ev.RunCompleted)]
    assert started.kind == "paper" and completed.status == "succeeded"
    signals = [e for e in events if isinstance(e, ev.SignalGenerated)]
    fills = [e for e in events if isinstance(e, ev.OrderFilled)]
    assert len(signals) >= len(ticks) - 100  # every quote after the window fills
    assert fills, "the chain should trade with these thresholds"
    assert completed.summary["signals"] == len(signals)
    # What Prometheus scrapes while the node runs.
    assert f"tapereader_feed_messages_total {float(len(ticks))}" in metrics
    assert "tapereader_feed_garbage_total 0.0" in metrics
    assert 'tapereader_hop_latency_seconds{hop="signal",quantile="0.99"}' in metrics
    assert 'tapereader_hop_latency_seconds{hop="order",quantile="0.5"}' in metrics
    # The replayer stamps its send time: the wire and publish-to-order latency are measured.
    wire = f'tapereader_hop_latency_seconds_count{{hop="wire"}} {float(len(ticks))}'
    assert wire in metrics
    assert 'tapereader_hop_latency_seconds{hop="feed_to_order",quantile="0.99"}' in metrics
    signals_line = next(x for x in metrics.splitlines() if x.startswith("tapereader_signals_total"))
    assert float(signals_line.split()[-1]) >= len(ticks) - 100
    # Flattened on stop: the stored fills leave no position.
    ledger = ledger_from_events(events)
    assert ledger.position(OANDA) == pytest.approx(0.0, abs=1e-9)


def test_after_sigkill_the_next_run_takes_over_the_position_and_loses_no_event(
    two_days: Path, registry: Path, tmp_path: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    config = _config(tmp_path, registry, endpoint)
    store = tmp_path / "events.db"
    ticks = _ticks(two_days, 7, 6_000)
    publisher = FeedPublisher(endpoint)
    first = _start(config)
    try:
        assert publisher.wait_for_subscribers([OANDA], timeout=90)
        sent = 0
        for chunk in range(0, 4_000, 500):  # until the stored fills leave a position open
            publisher.replay(ticks[chunk : chunk + 500], speed=None)
            sent += 500
            _wait_for(store, None, sent - 100)
            time.sleep(0.3)  # one journal flush interval and then some
            if ledger_from_events(_events(store)).position(OANDA) != 0:
                break
        first.kill()  # SIGKILL: no stop, no flush, no RunCompleted
        first.wait(30)
        publisher.close()  # a fresh socket for the next run: it must see the new node join
        publisher = FeedPublisher(endpoint)
        before = _events(store)
        held = ledger_from_events(before).position(OANDA)
        assert held != 0, "the first run never held a position"
        run1 = _run_of(store, 0)

        second = _start(config)
        try:
            assert publisher.wait_for_subscribers([OANDA], timeout=90)
            publisher.replay(ticks[4_000:5_000], speed=None)
            _wait_for(store, _run_of(store, 1), 900)
            second.send_signal(signal.SIGTERM)
            out, _ = second.communicate(timeout=90)
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        publisher.close()
        if first.poll() is None:
            first.kill()
    assert second.returncode == 0, out
    assert f"taking over from run {run1} (crashed" in out
    after = _events(store)
    # Nothing of the first run was lost or rewritten, and no event is stored twice.
    assert after[: len(before)] == before
    assert len({e.event_id for e in after}) == len(after)
    run2 = [e for e in after[len(before) :] if e.source.run_id != run1]
    (started,) = [e for e in run2 if isinstance(e, ev.RunStarted)]
    assert started.parameters["recovered_from"] == run1
    # The first order of the new run restores the position, with no decision behind it.
    restore = next(e for e in run2 if isinstance(e, ev.OrderSubmitted))
    assert restore.decision_id is None
    assert restore.side == ("BUY" if held > 0 else "SELL")
    assert restore.quantity == pytest.approx(abs(held))
    # Restored, traded on, flattened at the stop: the new run ends flat.
    assert ledger_from_events(run2).position(OANDA) == pytest.approx(0.0, abs=1e-9)


def test_a_tripped_kill_switch_survives_a_crash(
    two_days: Path, registry: Path, tmp_path: Path
) -> None:
    limits = (
        (ROOT / "config" / "risk.toml")
        .read_text()
        .replace("max_drawdown = 2_500.0", "max_drawdown = 0.5")
    )
    (tmp_path / "risk.toml").write_text(limits)
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    config = _config(tmp_path, registry, endpoint, limits=tmp_path / "risk.toml")
    store = tmp_path / "events.db"
    ticks = _ticks(two_days, 7, 4_000)
    publisher = FeedPublisher(endpoint)
    first = _start(config)
    try:
        assert publisher.wait_for_subscribers([OANDA], timeout=90)
        tripped = False
        for chunk in range(0, 2_500, 250):  # in chunks: fills land between them (live, the
            publisher.replay(ticks[chunk : chunk + 250], speed=None)  # orders of a burst
            _wait_for(store, None, chunk + 150)  # fill after all of its ticks were seen)
            time.sleep(0.5)
            tripped = any(
                isinstance(e, ev.TradeMonitorAlert) and e.kind == "kill_switch"
                for e in _events(store)
            )
            if tripped:
                break
        assert tripped, "the kill switch should trip on a 0.5 drawdown limit"
        first.kill()
        first.wait(30)
        publisher.close()  # a fresh socket for the next run: it must see the new node join
        publisher = FeedPublisher(endpoint)
        second = _start(config)
        try:
            assert publisher.wait_for_subscribers([OANDA], timeout=90)
            publisher.replay(ticks[2_500:], speed=None)
            _wait_for(store, _run_of(store, 1), 1_000)
            second.send_signal(signal.SIGTERM)
            out, _ = second.communicate(timeout=90)
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        publisher.close()
        if first.poll() is None:
            first.kill()
    assert second.returncode == 0, out
    assert "kill switch TRIPPED" in out
    run2 = _run_of(store, 1)
    mine = [e for e in _events(store) if e.source.run_id == run2]
    assert any(isinstance(e, ev.TradeMonitorAlert) and e.kind == "kill_switch" for e in mine)
    decisions = {e.event_id: e for e in mine if isinstance(e, ev.DecisionMade)}
    verdicts = [e for e in mine if isinstance(e, ev.RiskVerdict)]
    assert any(v.rule == "kill_switch" for v in verdicts)
    assert all(decisions[v.decision_id].action == "FLATTEN" for v in verdicts if v.approved)
