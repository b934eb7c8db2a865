"""``tapereader demo``: the main job end to end on real data.

It finds the data (``--data``, else ``$TAPEREADER_DATA``, else ``../shared/data/market``),
ingests it, trains and promotes the EUR/USD ensemble when none is active (on the days before
the backtest), replays the whole actor chain over the following days with its signals
published on ZeroMQ to a subscriber that counts them, splits a multi-scanner file, and
prints where the report and the event store are. Every step records what it did in the
event store (``var/events.db`` unless told otherwise).

Without a data folder it downloads one public Binance day (BTCUSDT USD-M futures,
2024-08-08; ``tapereader.public_data``) unless ``--no-download``, and runs the same steps on
BTCUSDT-PERP.BINANCE: trained on 14:00-16:00 UTC, backtested on 16:00-16:30
(``config/backtest_binance.toml``). When that fails too it says where it looked, what it
tried and why it failed, and how to fetch the files by hand (exit code 2).
"""

import argparse
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tapereader import public_data
from tapereader.core.events import RunCompleted, RunStarted, Source
from tapereader.core.store import EventStore

DATA = Path("../shared/data/market")  # relative to the project root, where make runs
DATA_ENV = "TAPEREADER_DATA"
BACKTEST_CONFIG = "config/backtest.toml"
TRAIN_END = "2014-05-13T00:00:00"  # the backtest (config/backtest.toml) starts here
PUBLIC_DAY = public_data.archive_url("{kind}")  # data.binance.vision, BTCUSDT, 2024-08-08
DEMO_FILES = [
    "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz",
    "lean_oanda_eurusd_tick_201405",
]
SCANNER_FILE = "tests/scanners/corpus/momentum_trio.py"
DEMO_INSTRUMENT = "EUR/USD.OANDA"
PUBLIC_CONFIG = "config/backtest_binance.toml"
PUBLIC_INSTRUMENT = "BTCUSDT-PERP.BINANCE"
# The chain replays BTCUSDT at a few thousand ticks/s (docs/BENCHMARKS.md) and the day has
# about 200 quotes a second, so half an hour of backtest takes minutes where the rest of the
# day would take most of an hour; two hours before it train the model, none after it.
PUBLIC_TRAIN_START = "2024-08-08T14:00:00"
PUBLIC_TRAIN_END = "2024-08-08T16:00:00"  # config/backtest_binance.toml starts here
# A smaller ensemble than the demo's own, for tests (--quick-training).
QUICK_TRAINING = ["--rf-trees", "5", "--xgb-trees", "20", "--lstm-epochs", "1", "--boot", "20"]


@dataclass(frozen=True)
class Plan:
    """What one demo run ingests, trains on and backtests, and how its steps are titled."""

    files: list[Path]
    instrument: str
    config: str
    train_start: str | None
    train_end: str
    embargo_seconds: float
    titles: tuple[str, str, str]
    # The backtest's span when it differs from the config's (tests, on a shorter day).
    span: tuple[str, str] | None = None


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser("demo", help="run the main job end to end on the real data")
    demo.add_argument("--store", default="var/events.db", help="event store (default %(default)s)")
    demo.add_argument("--catalog", default="var/catalog", help="tick catalog (default %(default)s)")
    demo.add_argument(
        "--data", type=Path, help=f"real market data folder (default: ${DATA_ENV}, else {DATA})"
    )
    demo.add_argument(
        "--config",
        help=f"backtest (default {BACKTEST_CONFIG}; {PUBLIC_CONFIG} on the downloaded day)",
    )
    demo.add_argument(
        "--scanner-file",
        default=SCANNER_FILE,
        help="multi-scanner file to split (default: one of the test corpus)",
    )
    demo.add_argument(
        "--no-download",
        action="store_true",
        help="without a data folder, stop instead of downloading a public Binance day",
    )
    demo.add_argument(
        "--public-cache",
        type=Path,
        help="where the downloaded day is kept (default: public/ beside the event store)",
    )
    demo.add_argument(
        "--public-url",
        default=public_data.BASE_URL,
        help="base URL of the Binance public archives (default %(default)s)",
    )
    # For tests: train on START-SPLIT and backtest SPLIT-END (UTC, ISO) of the downloaded
    # day, and train a smaller ensemble; a real day needs neither.
    demo.add_argument("--public-window", help=argparse.SUPPRESS)
    demo.add_argument("--quick-training", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(run=run)


def data_set_plan(data: Path) -> Plan:
    """The tapereader data set: OANDA EUR/USD ticks (and the BTCUSDT feed, ingested too)."""
    return Plan(
        files=[data / name for name in DEMO_FILES],
        instrument=DEMO_INSTRUMENT,
        config=BACKTEST_CONFIG,
        train_start=None,
        train_end=TRAIN_END,
        embargo_seconds=300,
        titles=(
            "ingest the BTCUSDT feed and OANDA EUR/USD ticks into the catalog",
            "train the EUR/USD ensemble on 1-12 May when none is active",
            "backtest the actor chain on 13 May, signals published on ZeroMQ",
        ),
    )


def public_plan(files: list[Path], window: str | None = None) -> Plan:
    """The downloaded Binance day; ``window`` ("START,SPLIT,END") replaces its fixed split."""
    start, end, span = PUBLIC_TRAIN_START, PUBLIC_TRAIN_END, None
    if window:
        parts = window.split(",")
        if len(parts) != 3:
            raise ValueError(f"--public-window {window!r}: expected START,SPLIT,END")
        start, end, span = parts[0], parts[1], (parts[1], parts[2])
    hours = f"{start[11:16]}-{end[11:16]}"
    after = f"{end[11:16]}-{span[1][11:16]}" if span else "16:00-16:30"
    return Plan(
        files=files,
        instrument=PUBLIC_INSTRUMENT,
        config=PUBLIC_CONFIG,
        train_start=start,
        train_end=end,
        # The label horizon (50 quotes) is well under a second of BTCUSDT: 30 s is ample.
        embargo_seconds=30,
        titles=(
            "ingest the public Binance BTCUSDT trades and best bid/ask into the catalog",
            f"train the BTCUSDT-PERP ensemble on 8 Aug {hours} UTC when none is active",
            f"backtest the actor chain on 8 Aug {after} UTC, signals published on ZeroMQ",
        ),
        span=span,
    )


def _ingest(args: argparse.Namespace, plan: Plan) -> int:
    from tapereader.cli import main

    paths = [str(p) for p in plan.files]
    return main(
        ["ingest", *paths, "--catalog", args.catalog, "--events", args.store, "--no-progress"]
    )


def _train(args: argparse.Namespace, plan: Plan) -> int:
    from tapereader.cli import main
    from tapereader.core.models.registry import Registry

    registry = str(Path(args.store).parent / "models")
    active = Registry(registry).active(plan.instrument)
    if active is not None:
        print(f"   {plan.instrument} already has an active model: {active}")
        return 0
    span = ["--start", plan.train_start] if plan.train_start else []
    # A lighter run than the documented one (every 10th sample, 3 LSTM epochs): the demo
    # shows the whole path in about half a minute; docs/MODELS.md has the full command.
    status = main(
        [
            "train",
            "--catalog",
            args.catalog,
            "--instrument",
            plan.instrument,
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
            f"{plan.embargo_seconds:g}",
            *span,
            "--end",
            plan.train_end,
            "--promote",
            "--no-progress",
            *(QUICK_TRAINING if args.quick_training else []),
        ]
    )
    if status == 0 and Registry(registry).active(plan.instrument) is None:
        # The backtest trades the active model only: one that lost to the class prior is
        # kept in the registry but must not be traded as if it had won.
        print(f"   no model is active for {plan.instrument}: the new one was not promoted")
        return 1
    return status


def _scanners(args: argparse.Namespace, plan: Plan) -> int:
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


def _backtest(args: argparse.Namespace, plan: Plan) -> int:
    import datetime as dt

    import msgspec

    from tapereader.replay.backtest import BacktestError, print_summary, run_backtest
    from tapereader.replay.backtest_config import BacktestConfigError, load_backtest_config

    try:
        cfg = load_backtest_config(args.config or plan.config)
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
    table = msgspec.structs.replace(
        cfg.backtest, catalog=args.catalog, store=args.store, report_dir=str(var / "reports")
    )
    if plan.span:
        start, end = (dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC) for t in plan.span)
        table = msgspec.structs.replace(table, start=start, end=end)
    cfg = msgspec.structs.replace(cfg, chain=chain, backtest=table)
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


Step = Callable[[argparse.Namespace, Plan], int]


def steps(plan: Plan) -> list[tuple[str, Step]]:
    """The demo's steps, titled for the data they run on."""
    ingest, train, backtest = plan.titles
    return [
        (ingest, _ingest),
        (train, _train),
        (backtest, _backtest),
        ("split a multi-scanner file into isolated scanners", _scanners),
    ]


def find_data(explicit: Path | None) -> Path | None:
    """``--data``, else ``$TAPEREADER_DATA``, else ``../shared/data/market``, if it exists."""
    for candidate in (explicit, os.environ.get(DATA_ENV), DATA):
        if candidate:
            return Path(candidate) if Path(candidate).is_dir() else None
    return None


def no_data_message(
    explicit: Path | None,
    failure: str | None = None,
    cache: Path = public_data.DEFAULT_CACHE,
    base_url: str = public_data.BASE_URL,
) -> str:
    """Where we looked, what the download tried and why it failed, and how to do it by hand.

    ``failure`` is None when the download was not tried (``--no-download``).
    """
    looked = explicit or os.environ.get(DATA_ENV) or DATA
    urls = public_data.archive_urls(base_url)
    listed = "\n  ".join(urls)
    tried = (
        f"Did not try to download the public Binance day (--no-download):\n  {listed}"
        if failure is None
        else f"Tried to download one public Binance day (BTCUSDT USD-M futures, "
        f"{public_data.DAY}) into {cache}, which failed:\n  {failure}"
    )
    fetch = "\n  ".join(f"curl -fO {u} -O {u}.CHECKSUM" for u in urls)
    return (
        f"tapereader demo: real market data not found at {looked} "
        f"(looked at --data, ${DATA_ENV}, then {DATA}).\n"
        f"{tried}\n"
        f"To get the data by hand, fetch each zip with its .CHECKSUM into {cache} "
        "(then run the demo again; it verifies them and does not download them again):\n"
        f"  mkdir -p {cache} && cd {cache}\n  {fetch}\n"
        f"or point ${DATA_ENV} (or --data) at the tapereader data set's folder."
    )


def _download(args: argparse.Namespace, cache: Path) -> tuple[list[Path] | None, str]:
    """The downloaded day's zips, or None and why it failed."""
    print(f"tapereader demo: no data folder; fetching one public Binance day into {cache}")
    try:
        files = public_data.download_day(
            cache, base_url=args.public_url, progress=lambda msg: print(f"   {msg}", flush=True)
        )
    except (public_data.PublicDataError, OSError) as exc:
        return None, str(exc)
    return files, ""


def _plan(args: argparse.Namespace) -> Plan | None:
    data = find_data(args.data)
    if data is not None:
        args.data = data
        return data_set_plan(data)
    cache = args.public_cache or Path(args.store).parent / "public"
    if args.no_download:
        print(no_data_message(args.data, None, cache, args.public_url))
        return None
    files, failure = _download(args, cache)
    if files is None:
        print(no_data_message(args.data, failure, cache, args.public_url))
        return None
    try:
        return public_plan(files, args.public_window)
    except ValueError as exc:
        print(f"tapereader demo: {exc}")
        return None


def run(args: argparse.Namespace) -> int:
    """Run every built step, then report what was recorded."""
    plan = _plan(args)
    if plan is None:
        return 2
    store_path = Path(args.store)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    run_id = f"demo-{uuid.uuid4().hex[:8]}"
    source = Source(component="tapereader.demo", run_id=run_id)
    started = time.perf_counter()
    config = f"{args.catalog}|{sorted(p.name for p in plan.files)}".encode()
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
    for title, step in steps(plan):
        print(f"\n== {title}")
        status = step(args, plan)
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
