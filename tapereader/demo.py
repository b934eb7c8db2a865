"""``tapereader demo``: the main job end to end on real data.

It finds the data (``--data``, else ``$TAPEREADER_DATA``, else ``../shared/data/market``;
without any, it says where it looked and how to get a public Binance day), ingests it,
trains and promotes the EUR/USD ensemble when none is active (on the days before the
backtest), replays the whole actor chain over the following days with its signals
published on ZeroMQ to a subscriber that counts them, splits a multi-scanner file, and
prints where the report and the event store are. Every step records what it did in the
event store (``var/events.db`` unless told otherwise).
"""

import argparse
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tapereader.core.events import RunCompleted, RunStarted, Source
from tapereader.core.store import EventStore

DATA = Path("../shared/data/market")  # relative to the project root, where make runs
DATA_ENV = "TAPEREADER_DATA"
BACKTEST_CONFIG = "config/backtest.toml"
TRAIN_END = "2014-05-13T00:00:00"  # the backtest (config/backtest.toml) starts here
PUBLIC_DAY = (
    "https://data.binance.vision/data/futures/um/daily/{kind}/BTCUSDT/BTCUSDT-{kind}-2024-08-08.zip"
)
DEMO_FILES = [
    "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz",
    "lean_oanda_eurusd_tick_201405",
]
SCANNER_FILE = "tests/scanners/corpus/momentum_trio.py"
DEMO_INSTRUMENT = "EUR/USD.OANDA"


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser("demo", help="run the main job end to end on the real data")
    demo.add_argument("--store", default="var/events.db", help="event store (default %(default)s)")
    demo.add_argument("--catalog", default="var/catalog", help="tick catalog (default %(default)s)")
    demo.add_argument(
        "--data", type=Path, help=f"real market data folder (default: ${DATA_ENV}, else {DATA})"
    )
    demo.add_argument("--config", default=BACKTEST_CONFIG, help="backtest (default %(default)s)")
    demo.add_argument(
        "--scanner-file",
        default=SCANNER_FILE,
        help="multi-scanner file to split (default: one of the test corpus)",
    )
    demo.set_defaults(run=run)


def _ingest(args: argparse.Namespace) -> int:
    from tapereader.cli import main

    paths = [str(args.data / name) for name in DEMO_FILES]
    return main(
        ["ingest", *paths, "--catalog", args.catalog, "--events", args.store, "--no-progress"]
    )


def _train(args: argparse.Namespace) -> int:
    from tapereader.cli import main
    from tapereader.core.models.registry import Registry

    registry = str(Path(args.store).parent / "models")
    active = Registry(registry).active(DEMO_INSTRUMENT)
    if active is not None:
        print(f"   {DEMO_INSTRUMENT} already has an active model: {active}")
        return 0
    # A lighter run than the documented one (every 10th sample, 3 LSTM epochs): the demo
    # shows the whole path in about half a minute; docs/MODELS.md has the full command.
    return main(
        [
            "train",
            "--catalog",
            args.catalog,
            "--instrument",
            DEMO_INSTRUMENT,
            "--registry",
            registry,
            "--store",
            args.store,
            "--horizon-events",
            "50",
            "--stride",
            "10",
            "--lstm-epochs",
            "3",
            "--embargo-seconds",
            "300",
            "--end",
            TRAIN_END,
            "--promote",
            "--no-progress",
        ]
    )


def _scanners(args: argparse.Namespace) -> int:
    from tapereader.cli import main

    out = str(Path(args.store).parent / "scanners")
    return main(["scanners", "split", args.scanner_file, "-o", out, "--events", args.store])


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


class _Counter(threading.Thread):
    """A ZeroMQ subscriber beside the backtest, counting what reaches it, per type."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(name="demo-subscriber", daemon=True)
        from tapereader.core.wire import WireSubscriber

        # Connected before the publisher binds: ZeroMQ retries, so nothing early is missed.
        self.subscriber = WireSubscriber(endpoint)
        self.by_type: dict[str, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for message in self.subscriber.messages(timeout_ms=200):
                name = type(message.event).__name__
                self.by_type[name] = self.by_type.get(name, 0) + 1

    def stop(self) -> None:
        # It leaves once nothing arrived for 200 ms: everything sent has been read by then,
        # however far behind the publisher a busy machine left it.
        self.done.set()
        self.join(120)
        self.subscriber.close()


def _backtest(args: argparse.Namespace) -> int:
    import msgspec

    from tapereader.replay.backtest import BacktestError, print_summary, run_backtest
    from tapereader.replay.backtest_config import BacktestConfigError, load_backtest_config

    try:
        cfg = load_backtest_config(args.config)
    except BacktestConfigError as exc:
        print(f"   {exc}")
        return 2
    var = Path(args.store).parent
    endpoint = _free_endpoint()
    chain = msgspec.structs.replace(
        cfg.chain,
        signals=msgspec.structs.replace(cfg.chain.signals, registry=str(var / "models")),
        publisher=msgspec.structs.replace(cfg.chain.publisher, endpoint=endpoint),
    )
    cfg = msgspec.structs.replace(
        cfg,
        chain=chain,
        backtest=msgspec.structs.replace(
            cfg.backtest, catalog=args.catalog, store=args.store, report_dir=str(var / "reports")
        ),
    )
    counter = _Counter(endpoint)
    counter.start()
    try:
        result = run_backtest(cfg, progress=lambda msg: print(f"   {msg}", flush=True))
    except (BacktestError, RuntimeError) as exc:
        print(f"   backtest failed: {exc}")
        return 1
    finally:
        counter.stop()
    print_summary(result, out=lambda text: print("   " + text.replace("\n", "\n   ")))
    sub = counter.subscriber
    received = ", ".join(f"{n:,} {t}" for t, n in sorted(counter.by_type.items())) or "nothing"
    # Sequence numbers start at 1 per topic: what came before a stream's first message was
    # sent before the subscriber had joined (ZeroMQ reconnects every 100 ms), not lost.
    before = sum(s.first_seq - 1 for s in sub.streams.values())
    print(
        f"\n   ZeroMQ subscriber on {endpoint}: received {received}; lost {sub.stats.lost}; "
        f"{before} sent before it joined"
    )
    print(f"   report: {result.html}")
    print(f"   events: {args.store} (run {result.run_id})")
    return 0 if result.reconciliation.ok else 1


STEPS: list[tuple[str, Callable[[argparse.Namespace], int]]] = [
    ("ingest the BTCUSDT feed and OANDA EUR/USD ticks into the catalog", _ingest),
    ("train the EUR/USD ensemble on 1-12 May when none is active", _train),
    ("backtest the actor chain on 13-15 May, signals published on ZeroMQ", _backtest),
    ("split a multi-scanner file into isolated scanners", _scanners),
]


def find_data(explicit: Path | None) -> Path | None:
    """``--data``, else ``$TAPEREADER_DATA``, else ``../shared/data/market``, if it exists."""
    for candidate in (explicit, os.environ.get(DATA_ENV), DATA):
        if candidate:
            return Path(candidate) if Path(candidate).is_dir() else None
    return None


def no_data_message(explicit: Path | None) -> str:
    """What to do when no data folder was found: where we looked, and the public source."""
    looked = explicit or os.environ.get(DATA_ENV) or DATA
    urls = "\n  ".join(PUBLIC_DAY.format(kind=k) for k in ("bookTicker", "trades"))
    return (
        f"tapereader demo: real market data not found at {looked} "
        f"(looked at --data, ${DATA_ENV}, then {DATA}).\n"
        "The demo's steps use the OANDA EUR/USD ticks and the Binance BTCUSDT feed of the "
        "tapereader data set. With internet access, one public Binance day can be ingested "
        "instead (`tapereader ingest` reads these archives as they are):\n  "
        f"{urls}"
    )


def run(args: argparse.Namespace) -> int:
    """Run every built step, then report what was recorded."""
    data = find_data(args.data)
    if data is None:
        print(no_data_message(args.data))
        return 2
    args.data = data
    store_path = Path(args.store)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    run_id = f"demo-{uuid.uuid4().hex[:8]}"
    source = Source(component="tapereader.demo", run_id=run_id)
    started = time.perf_counter()
    config = f"{args.catalog}|{sorted(DEMO_FILES)}".encode()
    with EventStore.open(store_path) as store:
        now = time.time_ns()
        store.append(
            [
                RunStarted(
                    ts_event=now,
                    ts_init=now,
                    source=source,
                    kind="backtest",
                    config_hash=hashlib.sha256(config).hexdigest()[:16],
                    parameters={"store": str(store_path), "catalog": args.catalog},
                )
            ]
        )
    print(f"tapereader demo, run {run_id}")
    status = 0
    for title, step in STEPS:
        print(f"\n== {title}")
        status = step(args)
        if status != 0:
            print(f"   step failed (exit {status}); stopping")
            break
    with EventStore.open(store_path) as store:
        now = time.time_ns()
        store.append(
            [
                RunCompleted(
                    ts_event=now,
                    ts_init=now,
                    source=source,
                    status="succeeded" if status == 0 else "failed",
                    summary={"seconds": time.perf_counter() - started},
                )
            ]
        )
        print(
            f"\n{store.count()} events in {store.description}; look with "
            f"`tapereader events --store {store_path} stats`"
        )
    return status
