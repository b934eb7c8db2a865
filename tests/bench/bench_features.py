"""Feature kernel speed: per event from Python, and the array run over real ticks.

Four figures, each the median with min-max over the runs:
- the array run (``kernel.run``) over the 1.14M FXCM EUR/USD quotes into a reused output
  buffer (the replay/training loop), target >= 5 million events/s;
- the same through ``batch.compute``, which also allocates the 1.14M x 27 output;
- the kernel called once per event from a Python loop through the compiled entry points
  (what the FeatureActor does), target <= 1 us per event; and through Numba's dispatcher;
- the array run over the Binance BTCUSDT feed (trades, quotes and book tops mixed);
- a BacktestEngine over the same feed ingested into a catalog, bare and with the
  FeatureActor, in the same process and interleaved: ticks/s and the ratio (target: the
  actor keeps >= 60% of the bare engine's throughput publishing on every event); also
  through ``MessageBus.publish``, with one subscribed actor, period-closing rows only,
  every 10 events, every 100 ms, and with the L2 book. Load averages are printed beside
  every case (the machines are shared).

    .venv/bin/python tests/bench/bench_features.py [--runs R] [--engine-runs E] [--engine-only]
        [--cases I ...]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tapereader.core.features import kernel as k  # noqa: E402
from tapereader.core.features.batch import EventArrays, compute  # noqa: E402
from tapereader.core.features.state import entry_points, new_state, warm_up  # noqa: E402
from tests.features.loaders import binance_events, lean_events, lean_quotes  # noqa: E402

MARKET = ROOT.parent / "shared" / "data" / "market"


def measure(label: str, runs: int, n_events: int, once: Callable[[], None]) -> float:
    """Run ``once`` ``runs`` times after one untimed run; print ns/event; return the median."""
    once()
    ns = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        ns.append((time.perf_counter() - start) * 1e9 / n_events)
    med = statistics.median(ns)
    print(
        f"{label:<44} {med:8.1f} ns/event (min {min(ns):.1f}, max {max(ns):.1f})"
        f"  = {1e3 / med:6.2f} M events/s"
    )
    return med


def array_run(events: EventArrays, out: np.ndarray, status: np.ndarray) -> Callable[[], None]:
    def once() -> None:
        k.run(new_state(), events.kind, events.ts, events.values, out, status)

    return once


def python_loop(events: EventArrays, on_quote: Callable[..., int]) -> Callable[[], None]:
    """Quotes only (FXCM has nothing else): a Python loop calling the kernel per event."""
    times = events.ts.tolist()
    bid, ask, bid_size, ask_size = (events.values[:, j].tolist() for j in range(4))

    def once() -> None:
        state = new_state()
        for i in range(len(times)):
            on_quote(state, times[i], bid[i], ask[i], bid_size[i], ask_size[i])

    return once


def kernel_figures(runs: int) -> tuple[float, float]:
    """The kernel alone: array runs and per-event calls; returns (array ns, call ns)."""
    fxcm = lean_events(lean_quotes(MARKET / "lean_fxcm_eurusd_tick_201405", -5))
    btc = binance_events(MARKET / "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz")
    n = len(fxcm)
    print(f"FXCM EUR/USD: {n:,} quotes; BTCUSDT feed: {len(btc):,} events\n")
    out = np.full((n, k.N_FEATURES), 0.0)  # written once, so page faults are not timed
    status = np.full(n, 0, dtype=np.int8)
    array_ns = measure("array run, FXCM, reused output", runs, n, array_run(fxcm, out, status))
    measure("batch.compute, FXCM, fresh output", runs, n, lambda: compute(fxcm))
    ep = entry_points()
    call_ns = measure("per event from Python, entry point", runs, n, python_loop(fxcm, ep.on_quote))
    measure("per event from Python, dispatcher", runs, n, python_loop(fxcm, k.on_quote))
    btc_out = np.full((len(btc), k.N_FEATURES), 0.0)
    btc_status = np.full(len(btc), 0, dtype=np.int8)
    measure("array run, BTCUSDT mixed", runs, len(btc), array_run(btc, btc_out, btc_status))
    return array_ns, call_ns


ENGINE_CASES = (  # (label, use the L2 book, FeatureActorConfig options, a subscriber)
    ("quotes+trades, publish every event", False, {}, False),
    ("  same, through MessageBus.publish", False, {"direct_publish": False}, False),
    ("  same, one actor subscribed to the vectors", False, {}, True),
    ("quotes+trades, period-closing rows only", False, {"publish_kinds": ["quote"]}, False),
    ("quotes+trades, publish every 10 events", False, {"every_events": 10}, False),
    ("quotes+trades, publish every 100 ms", False, {"every_ms": 100}, False),
    ("quotes+trades+book, publish every event", True, {}, False),
)


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def engine_ratios(runs: int, cases: list[int] | None = None) -> None:
    """Bare engine vs engine + FeatureActor over the BTCUSDT catalog, interleaved; ``cases``
    picks some of ``ENGINE_CASES`` by index."""
    from nautilus_trader.common.actor import Actor
    from nautilus_trader.common.config import ActorConfig

    from tapereader.actors.feature_actor import (
        FeatureActor,
        FeatureActorConfig,
        feature_data_type,
    )
    from tests.features.backtest import BTC_FEED, ingest_feed, load_feed, run_engine

    class Counter(Actor):
        """Subscribes to the vectors and counts them: the least a consumer does."""

        def __init__(self, instrument_id: object) -> None:
            super().__init__(ActorConfig(component_id="Counter"))
            self.iid, self.count = instrument_id, 0

        def on_start(self) -> None:
            self.subscribe_data(feature_data_type(self.iid), instrument_id=self.iid)

        def on_data(self, data: object) -> None:
            self.count += 1

    with tempfile.TemporaryDirectory() as tmp:
        feed = load_feed(ingest_feed(MARKET / BTC_FEED, Path(tmp) / "catalog"))
    print(
        f"\nBacktestEngine over the BTCUSDT catalog: {len(feed.quotes):,} quotes, "
        f"{len(feed.trades):,} trades, {len(feed.books):,} book batches (one tick each); "
        f"{runs} runs per case, load averages 1/5/15 min at the start and end of each case"
    )
    for number, (label, use_book, options, subscribed) in enumerate(ENGINE_CASES):
        if cases is not None and number not in cases:
            continue
        ticks = len(feed.quotes) + len(feed.trades) + (len(feed.books) if use_book else 0)
        bare, with_actor, load = [], [], _load()
        for run in range(runs):
            config = FeatureActorConfig(
                instrument_ids=[str(feed.instrument.id)], use_book=use_book, **options
            )
            actor = FeatureActor(config)
            counter = Counter(feed.instrument.id)
            actors = [actor, counter] if subscribed else [actor]
            # Each pair in turn starts with the bare engine or with the actor, so neither
            # always runs in the other's wake (memory freed, caches left behind).
            for with_it in (False, True) if run % 2 == 0 else (True, False):
                seconds = run_engine(feed, actors if with_it else [], use_book)
                (with_actor if with_it else bare).append(ticks / seconds)
            assert not subscribed or counter.count == actor.published
        b, a = statistics.median(bare), statistics.median(with_actor)
        ratio = [x / y for x, y in zip(with_actor, bare, strict=True)]
        print(
            f"{label:<44} bare {b:7,.0f} ticks/s ({min(bare):,.0f}-{max(bare):,.0f}), "
            f"with actor {a:7,.0f} ({min(with_actor):,.0f}-{max(with_actor):,.0f}), "
            f"ratio {a / b:.2f} (pairs {min(ratio):.2f}-{max(ratio):.2f}), "
            f"{actor.published:,} vectors: {'met' if a / b >= 0.6 else 'MISSED'}; "
            f"load {load} -> {_load()}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--engine-runs", type=int, default=3, help="0 skips the engine part")
    parser.add_argument("--engine-only", action="store_true", help="skip the kernel figures")
    parser.add_argument(
        "--cases", type=int, nargs="+", help="engine cases to run, by index (0: every event)"
    )
    args = parser.parse_args()
    if not MARKET.is_dir():
        print(f"real market data not found at {MARKET}")
        return 1
    print(f"warm-up (compile or load from cache): {warm_up():.2f} s")
    print(f"load averages before (1/5/15 min): {_load()} on {os.cpu_count()} CPUs")
    array_ns = call_ns = None
    if not args.engine_only:
        array_ns, call_ns = kernel_figures(args.runs)
    if args.engine_runs:
        engine_ratios(args.engine_runs, args.cases)
    print(f"\nload averages after: {_load()}")
    if array_ns is not None and call_ns is not None:
        print(f"target array run >= 5 M events/s: {'met' if array_ns <= 200 else 'MISSED'}")
        print(f"target Python call <= 1000 ns/event: {'met' if call_ns <= 1000 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
