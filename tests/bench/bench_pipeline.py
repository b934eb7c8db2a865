"""End-to-end backtest throughput: the whole actor chain beside the bare engine, same run.

For each data set (OANDA EUR/USD quotes, the Binance BTCUSDT feed's quotes and trades),
the same ticks are replayed, interleaved ``--runs`` times each, through:
- the bare BacktestEngine (no actors: the engine's own ceiling on this machine), and
- the full chain (features on every tick, the ensemble on every period-closing row,
  decision, risk, execution, trade monitor, journal into a fresh SQLite store).
Reported: ticks/s of each (median, min-max) and the ratio of the medians, plus the chain's
per-hop latency (tick to features / signal / decision / risk / order) of the last run.
Target (2-core machine): at least 20,000 ticks/s end to end.

Two floors run beside them on the same ticks, to show what any chain evaluating the ensemble
on every tick can reach here:
- ``model call``: the bare engine plus one actor that only calls the served model
  (``EnsembleRuntime.predict_one`` through the compiled engine) on every quote, on a fixed
  window: no features, no events, nothing downstream;
- ``features+signals``: the engine with the chain's FeatureActor and SignalActor alone (the
  signal events go nowhere).

Models come from ``--registry`` (each instrument's active version); an instrument with
none gets a model trained here on the data before the replayed span (default training
config, a few minutes), added to the registry without being promoted.

    .venv/bin/python tests/bench/bench_pipeline.py [--runs 3] [--registry var/models]
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig  # noqa: E402
from nautilus_trader.common.actor import Actor  # noqa: E402
from nautilus_trader.config import ActorConfig, LoggingConfig  # noqa: E402
from nautilus_trader.model.data import QuoteTick  # noqa: E402
from nautilus_trader.model.identifiers import InstrumentId  # noqa: E402

from tapereader.actors.chain import build_chain  # noqa: E402
from tapereader.core.models.registry import Registry  # noqa: E402
from tapereader.core.models.runtime import EnsembleRuntime  # noqa: E402
from tapereader.ingest.context import LoadContext  # noqa: E402
from tapereader.ingest.instruments import default_registry  # noqa: E402
from tapereader.ingest.options import IngestOptions  # noqa: E402
from tapereader.ingest.pipeline import ingest  # noqa: E402
from tapereader.replay.backtest import add_venue, load_ticks, run_backtest  # noqa: E402
from tapereader.replay.backtest_config import load_backtest_config  # noqa: E402
from tapereader.replay.dataset import LabelSpec  # noqa: E402
from tapereader.replay.learning import RunConfig, train_bundle  # noqa: E402
from tapereader.replay.training import TrainingConfig  # noqa: E402

MARKET = ROOT.parent / "shared" / "data" / "market"

SETS = {
    "EUR/USD.OANDA": {
        "files": [
            f"lean_oanda_eurusd_tick_201405/201405{d:02d}_quote.zip" for d in (1, 2, 4, 5, 6)
        ],
        "start": dt.datetime(2014, 5, 5, tzinfo=dt.UTC),
        "end": dt.datetime(2014, 5, 7, tzinfo=dt.UTC),
        "venue": 'name = "OANDA"\nbase_currency = "USD"\nstarting_balances = ["100000 USD"]',
        "size": 10_000.0,
    },
    "BTCUSDT-PERP.BINANCE": {
        "files": ["hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz"],
        "start": None,  # trained on the first 60% of the feed, replayed on the rest
        "end": None,
        "venue": 'name = "BINANCE"\nstarting_balances = ["1000000 USDT"]',
        "size": 0.01,
    },
}

CONFIG = """
[backtest]
catalog = "{catalog}"
start = {start}
end = {end}
store = "{store}"
report_dir = "{reports}"

[[backtest.venues]]
{venue}
default_leverage = 10.0

[chain]
instruments = ["{instrument}"]

[chain.signals]
registry = "{registry}"
model_versions = {{ "{instrument}" = "{version}" }}

[chain.decision]
emit_holds = false  # as config/backtest.toml: HOLDs are not journaled, changes of stance are

[chain.decision.policy]
enter = 0.2
exit = 0.16
min_edge = 0.03
min_confidence = 0.5
min_hold_ns = 30_000_000_000
position_size = {size}

[chain.risk]
limits = "{limits}"

[chain.monitor]
stale_check_ms = 0
"""


def _model(registry: Path, instrument: str, catalog: Path, end_ns: int) -> str:
    reg = Registry(registry)
    active = reg.active(instrument)
    if active is not None:
        return active
    print(f"   no active model for {instrument}: training one (default config)", flush=True)
    run = RunConfig(
        catalog=str(catalog),
        instrument_id=instrument,
        label=LabelSpec(horizon_events=50),
        stride=10,
        end_ns=end_ns,
        n_boot=20,
    )
    with tempfile.TemporaryDirectory() as staging:
        trained = train_bundle(run, TrainingConfig(lstm_epochs=3), Path(staging))
        return reg.add(trained.path).model_version


class _ModelCall(Actor):
    """Calls the served model on every quote with a fixed window, and nothing else."""

    def __init__(self, instrument_id: InstrumentId, runtime: EnsembleRuntime) -> None:
        super().__init__(ActorConfig(component_id="ModelCall"))
        self._id = instrument_id
        self._predict = runtime.predict_one
        m = runtime.bundle.manifest
        rng = np.random.default_rng(0)
        self._window = (rng.normal(size=(m.window, m.n_features)) * 0.01).astype(np.float32)
        self.calls = 0

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self._id)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self._predict(self._window[-1], self._window)
        self.calls += 1


def _partial(cfg, kind: str, registry: Path, version: str) -> tuple[int, float]:
    """Ticks and seconds of the engine bare (``bare``) or with a floor's actors (``model``,
    ``signals``: see the top)."""
    instruments, data = load_ticks(cfg)
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    try:
        for name in {cfg.venue_of(i.id.value).name for i in instruments}:
            add_venue(engine, cfg.venue_of(f"_.{name}"))
        for instrument in instruments:
            engine.add_instrument(instrument)
        engine.add_data(data)
        if kind == "bare":
            pass
        elif kind == "model":
            runtime = EnsembleRuntime.from_bundle(Registry(registry).load(version), engine="auto")
            if runtime.serving_provider != "CompiledCPU":
                raise RuntimeError(f"{version} is not served by the compiled engine")
            engine.add_actor(_ModelCall(instruments[0].id, runtime))
        else:
            chain = build_chain(cfg.chain, run_id="floor", reproducible_ids=True, store="")
            engine.add_actor(chain.features)
            engine.add_actor(chain.signals)
        start = time.perf_counter()
        engine.run()
        return len(data), time.perf_counter() - start
    finally:
        engine.dispose()


def _span(catalog: Path, instrument: str, spec: dict) -> tuple[dt.datetime, dt.datetime]:
    if spec["start"] is not None:
        return spec["start"], spec["end"]
    from tapereader.replay.dataset import catalog_events

    ts = catalog_events(catalog, instrument).ts
    cut = int(ts[int(len(ts) * 0.6)])
    return (
        dt.datetime.fromtimestamp(cut / 1e9, dt.UTC),
        dt.datetime.fromtimestamp(int(ts[-1]) / 1e9 + 1, dt.UTC),
    )


def bench(instrument: str, spec: dict, runs: int, registry: Path, work: Path) -> None:
    catalog = work / "catalog"
    ctx = LoadContext(default_registry(), IngestOptions(progress=False))
    ingest([MARKET / f for f in spec["files"]], catalog, ctx, record_events=False)
    start, end = _span(catalog, instrument, spec)
    version = _model(registry, instrument, catalog, int(start.timestamp() * 1e9))
    chain_rates, bare_rates = [], []
    floors: dict[str, list[float]] = {"model": [], "signals": []}
    result = None
    for i in range(runs):
        folder = work / f"run{i}"
        folder.mkdir()
        path = folder / "backtest.toml"
        path.write_text(
            CONFIG.format(
                catalog=catalog,
                start=start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                end=end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                store=folder / "events.db",
                reports=folder / "reports",
                venue=spec["venue"],
                instrument=instrument,
                registry=registry,
                version=version,
                size=spec["size"],
                limits=ROOT / "config" / "risk.toml",
            )
        )
        cfg = load_backtest_config(path)
        ticks, seconds = _partial(cfg, "bare", registry, version)
        bare_rates.append(ticks / seconds)
        for kind, rates in floors.items():
            ticks, seconds = _partial(cfg, kind, registry, version)
            rates.append(ticks / seconds)
        result = run_backtest(cfg, run_id=f"bench-{i}")
        chain_rates.append(result.ticks / result.wall_seconds)
        print(
            f"   run {i + 1}: bare {bare_rates[-1]:,.0f} ticks/s, model call "
            f"{floors['model'][-1]:,.0f}, features+signals {floors['signals'][-1]:,.0f}, chain "
            f"{chain_rates[-1]:,.0f} ticks/s ({result.ticks:,} ticks, "
            f"{int(result.report.signals.count):,} signals, {len(result.report.fills)} fills)",
            flush=True,
        )
    load = os.getloadavg()
    bare, chain = statistics.median(bare_rates), statistics.median(chain_rates)
    print(f"{instrument}, model {version}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    print(f"  bare engine  {bare:>10,.0f} ticks/s ({min(bare_rates):,.0f}-{max(bare_rates):,.0f})")
    for kind, label in (("model", "model call"), ("signals", "feat+signals")):
        r = floors[kind]
        print(
            f"  {label:<12} {statistics.median(r):>10,.0f} ticks/s ({min(r):,.0f}-{max(r):,.0f})"
            f"   ratio {statistics.median(r) / bare:.3f}"
        )
    print(
        f"  full chain   {chain:>10,.0f} ticks/s ({min(chain_rates):,.0f}-{max(chain_rates):,.0f})"
        f"   ratio {chain / bare:.3f}   target >= 20,000 ticks/s"
    )
    assert result is not None
    for hop, s in result.report.latency.hops.items():
        if s.count:
            print(
                f"  tick -> {hop:<9} p50 {s.p50_us:8.1f} us  p99 {s.p99_us:8.1f} us  (n={s.count})"
            )
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--registry", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--only", choices=sorted(SETS), help="one data set")
    args = parser.parse_args()
    if not MARKET.is_dir():
        print(f"real market data not found at {MARKET}")
        return 2
    for instrument, spec in SETS.items():
        if args.only and instrument != args.only:
            continue
        with tempfile.TemporaryDirectory() as work:
            bench(instrument, spec, args.runs, args.registry, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
