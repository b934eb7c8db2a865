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


def test_the_live_node_paper_trades_the_feed_and_stops_cleanly_on_sigterm(
    two_days: Path, registry: Path, tmp_path: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    store = tmp_path / "events.db"
    config = tmp_path / "live.toml"
    config.write_text(
        LIVE.format(
            endpoint=endpoint,
            store=store,
            registry=registry,
            version=VERSION,
            limits=ROOT / "config" / "risk.toml",
        )
    )
    start = int(dt.datetime(2014, 5, 2, 7, tzinfo=dt.UTC).timestamp() * 1e9)
    ticks = [t for t in catalog_ticks(two_days, [OANDA]) if start <= t.ts_event][:3_000]
    publisher = FeedPublisher(endpoint)
    node = subprocess.Popen(
        [sys.executable, "-m", "tapereader.cli", "live", "--config", str(config)],
        cwd=ROOT,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert publisher.wait_for_subscribers([OANDA], timeout=90), "the node never subscribed"
        stats = publisher.replay(ticks, speed=None)
        assert stats.published == len(ticks)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the node works through the burst
            signals = sum(isinstance(e, ev.SignalGenerated) for e in _events(store))
            if signals >= len(ticks) - 100:
                break
            time.sleep(0.5)
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
    # Flattened on stop: the stored fills leave no position.
    ledger = ledger_from_events(events)
    assert ledger.position(OANDA) == pytest.approx(0.0, abs=1e-9)
