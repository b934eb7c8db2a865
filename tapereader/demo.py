"""``tapereader demo``: the main job, as far as the product is built today.

Every step runs on the real data in ``../shared/data/market`` and records what it did in
the event store (``var/events.db`` unless told otherwise), so ``tapereader events stats``
shows the run afterwards. Steps whose part is not built yet say so instead of pretending.
"""

import argparse
import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tapereader.core.events import RunCompleted, RunStarted, Source
from tapereader.core.store import EventStore

DATA = Path("../shared/data/market")  # relative to the project root, where make runs
DEMO_FILES = [
    "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz",
    "lean_oanda_eurusd_tick_201405",
]
SCANNER_FILE = "tests/scanners/corpus/momentum_trio.py"
DEMO_INSTRUMENT = "EUR/USD.OANDA"
NOT_YET = [
    ("signals", "SignalActor serving the ensemble in the actor chain (issue: learning)"),
    ("backtest", "decision, risk, execution and trade-monitor actors (issue: pipeline)"),
]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser("demo", help="run the main job end to end on the real data")
    demo.add_argument("--store", default="var/events.db", help="event store (default %(default)s)")
    demo.add_argument("--catalog", default="var/catalog", help="tick catalog (default %(default)s)")
    demo.add_argument("--data", type=Path, default=DATA, help="real market data folder")
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
            "--promote",
            "--no-progress",
        ]
    )


def _scanners(args: argparse.Namespace) -> int:
    from tapereader.cli import main

    out = str(Path(args.store).parent / "scanners")
    return main(["scanners", "split", args.scanner_file, "-o", out, "--events", args.store])


STEPS: list[tuple[str, Callable[[argparse.Namespace], int]]] = [
    ("ingest the BTCUSDT feed and OANDA EUR/USD ticks into the catalog", _ingest),
    ("train the EUR/USD ensemble when none is active", _train),
    ("split a multi-scanner file into isolated scanners", _scanners),
]


def run(args: argparse.Namespace) -> int:
    """Run every built step, then report what was recorded."""
    if not args.data.is_dir():
        print(f"tapereader demo: real market data not found at {args.data} (use --data)")
        return 2
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
    for part, what in NOT_YET:
        print(f"\n== [not built yet] {part}: {what}")
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
