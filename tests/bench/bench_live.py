"""Live node latency: `tapereader live` fed real EUR/USD quotes at a fixed rate on loopback.

A node runs as its own process (the chain, the sandbox venue, the journal, /metrics); this
process replays real quotes on the tick feed paced at each ``--rates`` value (ticks/s,
sleeping, then spinning the last 200 us before each send), then scrapes the node's
/metrics: per-hop latency from the tick's receipt by the data client to features, signal,
decision, risk verdict and order submitted (p50/p99); the wire (the publisher's send, its
``ts_sent`` stamp, to the receipt) and publish to order submitted; and the feed's received
count against what was sent (dropped ticks). Targets: tick to signal p99 <= 300 us; feed
publish to order submitted p99 <= 2 ms at 1,000 ticks/s; no tick dropped at 1,000 ticks/s.

Needs an active EUR/USD model in ``--registry`` (``make demo`` trains one) and the demo's
catalog (``--catalog``).

    .venv/bin/python tests/bench/bench_live.py [--rates 1000 10000] [--ticks 20000]
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tapereader.ingest.feed_publisher import FeedPublisher, catalog_ticks, to_message  # noqa: E402

INSTRUMENT = "EUR/USD.OANDA"
SHOWN_HOPS = ("wire", "queue", "features", "signal", "decision", "risk", "order", "feed_to_order")
SPIN_S = 200e-6  # the part of each gap the sender spins for (sleep overshoots by ~60 us)
CONFIG = """
[live]
feed_endpoint = "{feed}"
store = "{store}"
log_level = "ERROR"
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

[chain.decision]
emit_holds = false

[chain.decision.policy]
enter = 0.2
exit = 0.16
min_edge = 0.03
min_confidence = 0.5
min_hold_ns = 30_000_000_000
position_size = 10_000.0

[chain.risk]
limits = "{limits}"

[chain.journal]
writer = "{writer}"
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in lines if ln[:1] != "#"}


def _drained(port: int, timeout: float = 120.0) -> dict[str, float]:
    """Metrics once the node's feed count stops moving (its backlog is worked off)."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while True:
        m = _metrics(port)
        now = m.get("tapereader_feed_messages_total", 0.0)
        if now == last or time.monotonic() > deadline:
            return m
        last = now
        time.sleep(1.0)


def run(rate: int, ticks: list, registry: Path, work: Path, writer: str) -> None:
    feed, metrics = _port(), _port()
    config = work / f"live-{rate}.toml"
    config.write_text(
        CONFIG.format(
            feed=f"tcp://127.0.0.1:{feed}",
            store=work / f"events-{rate}.db",
            metrics=metrics,
            registry=registry,
            limits=ROOT / "config" / "risk.toml",
            writer=writer,
        )
    )
    messages = [to_message(t) for t in ticks]
    publisher = FeedPublisher(f"tcp://127.0.0.1:{feed}")
    node = subprocess.Popen(
        [sys.executable, "-m", "tapereader.cli", "live", "--config", str(config), "--fresh"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not publisher.wait_for_subscribers([INSTRUMENT], timeout=120):
            raise RuntimeError("the node never subscribed to the feed")
        time.sleep(1.0)
        gap = 1.0 / rate
        start = time.perf_counter()
        for i, message in enumerate(messages):
            due = start + i * gap
            # Sleep through most of the gap and spin only its end: on two cores a sender
            # spinning the whole time takes one of them from the node it measures.
            ahead = due - time.perf_counter()
            if ahead > SPIN_S:
                time.sleep(ahead - SPIN_S)
            while time.perf_counter() < due:
                pass
            publisher.publish(message)
        elapsed = time.perf_counter() - start
        m = _drained(metrics)
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(60)
        except subprocess.TimeoutExpired:
            node.kill()
        publisher.close()
    received = m.get("tapereader_feed_messages_total", 0.0)
    print(
        f"{rate:>6,} ticks/s target: sent {len(messages):,} in {elapsed:.2f} s "
        f"({len(messages) / elapsed:,.0f}/s); node received {received:,.0f}, dropped "
        f"{len(messages) - received:,.0f}; signals {m.get('tapereader_signals_total', 0):,.0f}; "
        f"journal writer: {writer}"
    )
    for hop in SHOWN_HOPS:
        p50 = m.get(f'tapereader_hop_latency_seconds{{hop="{hop}",quantile="0.5"}}')
        p99 = m.get(f'tapereader_hop_latency_seconds{{hop="{hop}",quantile="0.99"}}')
        n = m.get(f'tapereader_hop_latency_seconds_count{{hop="{hop}"}}', 0.0)
        if p50 is not None:
            what = "publish -> order" if hop == "feed_to_order" else f"tick -> {hop}"
            print(f"   {what:<17} p50 {p50 * 1e6:9.1f} us  p99 {p99 * 1e6:9.1f} us  n={n:,.0f}")
    load = os.getloadavg()
    print(f"   load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--catalog", type=Path, default=ROOT / "var" / "catalog")
    parser.add_argument("--registry", type=Path, default=ROOT / "var" / "models")
    parser.add_argument(
        "--writers",
        nargs="+",
        choices=("process", "thread"),
        default=["process"],
        help="journal writers to compare, alternating at each rate",
    )
    args = parser.parse_args()
    if not (args.registry / "active").is_dir():
        print(f"no active model in {args.registry}: run `make demo` first")
        return 2
    ticks = catalog_ticks(args.catalog, [INSTRUMENT], limit=args.ticks)
    with tempfile.TemporaryDirectory() as work:
        for rate in args.rates:
            for writer in args.writers:
                run(rate, ticks, args.registry, Path(work), writer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
