"""``tapereader demo``: the main job, as far as the product is built today.

Each step records what it did in the event store (``var/events.db`` unless told
otherwise), so ``tapereader events stats`` shows the run afterwards. Steps whose
part is not built yet say so instead of pretending.
"""

import argparse
import hashlib
import time
import uuid
from pathlib import Path

from tapereader.core.events import RunCompleted, RunStarted, Source
from tapereader.core.store import EventStore

NOT_YET = [
    ("features", "Numba feature kernel and FeatureActor (issue: features)"),
    ("ensemble", "ONNX ensemble, training and the model registry (issue: learning)"),
    ("backtest", "decision, risk, execution and trade-monitor chain (issue: pipeline)"),
]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser("demo", help="run the main job end to end on the real data")
    demo.add_argument("--store", default="var/events.db", help="event store (default %(default)s)")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run every built step, then report what was recorded."""
    store_path = Path(args.store)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    run_id = f"demo-{uuid.uuid4().hex[:8]}"
    source = Source(component="tapereader.demo", run_id=run_id)
    started = time.perf_counter()
    with EventStore.open(store_path) as store:
        now = time.time_ns()
        store.append(
            [
                RunStarted(
                    ts_event=now,
                    ts_init=now,
                    source=source,
                    kind="backtest",
                    config_hash=hashlib.sha256(b"demo").hexdigest()[:16],
                    parameters={"store": str(store_path)},
                )
            ]
        )
        print(f"tapereader demo, run {run_id}, events in {store.description}")
        for part, what in NOT_YET:
            print(f"  [not built yet] {part:<9} {what}")
        now = time.time_ns()
        store.append(
            [
                RunCompleted(
                    ts_event=now,
                    ts_init=now,
                    source=source,
                    status="succeeded",
                    summary={"seconds": time.perf_counter() - started},
                )
            ]
        )
        print(
            f"  recorded: {store.count()} events in the store, last position "
            f"{store.last_position()}; look with `tapereader events --store {store_path} stats`"
        )
    return 0
