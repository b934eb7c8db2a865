"""Ensemble latency: one merged ONNX graph vs four separate sessions, same inputs, same run.

Trains a bundle on one real day of OANDA EUR/USD quotes (default training config, so the
trees are the size a real run produces), then, interleaved in each run:
- batch-1 latency p50/p99 of the merged graph (``session.run``), of the runtime's
  ``predict_one`` (input checks, regime weights and output checks included) on float32 rows
  and on float64, non-contiguous windows (a ring-buffer view), and of four separate sessions
  plus the same calibration/mixture/confidence in numpy; the runtime's own cost per call is
  ``predict_one`` minus ``session.run`` in the same run;
- batch-1 p50 of each member's graph alone (its own session: what each member costs);
- rows/s at batch 256 for the merged graph and the four sessions;
- feature step + ensemble per real quote: the kernel's compiled ``on_quote``, the LSTM
  window kept in a mirrored ring, then ``predict_one``;
- the compiled engine (core/models/compiled.py, the same graph in Numba kernels): batch-1
  p50/p99 of the evaluator alone and of ``predict_one`` with ``engine="compiled"``, rows/s
  of its batch path at batch 256, the feature step + ensemble per quote with it, and the
  compiled/ONNX Runtime ratios measured in the same runs.
Targets (2-core machine): batch-1 p50 <= 60 us, p99 <= 200 us, >= 40,000 rows/s batched.
Figures are medians with min-max over ``--runs`` runs; the 1-minute load average is printed
before and after every run (the machine is shared: read the figures beside it).

    .venv/bin/python tests/bench/bench_ensemble.py [--runs 5] [--calls 20000]
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
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tapereader.core.features.spec import SPEC  # noqa: E402
from tapereader.core.features.state import entry_points, feature_row, new_state  # noqa: E402
from tapereader.core.models.bundle import MEMBERS, load_bundle  # noqa: E402
from tapereader.core.models.compiled import CompiledEnsemble  # noqa: E402
from tapereader.core.models.runtime import EnsembleRuntime, make_session  # noqa: E402
from tapereader.ingest.context import LoadContext  # noqa: E402
from tapereader.ingest.instruments import default_registry  # noqa: E402
from tapereader.ingest.options import IngestOptions  # noqa: E402
from tapereader.ingest.pipeline import ingest  # noqa: E402
from tapereader.replay.dataset import LabelSpec, catalog_events  # noqa: E402
from tapereader.replay.learning import RunConfig, train_bundle  # noqa: E402
from tapereader.replay.training import EPS, TrainingConfig  # noqa: E402

MARKET = ROOT.parent / "shared" / "data" / "market"
DAY = MARKET / "lean_oanda_eurusd_tick_201405" / "20140501_quote.zip"
INSTRUMENT = "EUR/USD.OANDA"


def latencies(call: Callable[[int], object], n: int) -> np.ndarray:
    """Per-call wall time in us of ``call(i)`` for i in range(n)."""
    out = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        call(i)
        out[i] = clock() - start
    return out / 1e3


def separate(sessions: list[ort.InferenceSession], temps: np.ndarray, weights: np.ndarray):
    """Four sessions plus, in numpy, the work the merged graph does inside itself."""
    w = (weights / weights.sum()).astype(np.float32)

    def run(x: np.ndarray, win: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs = [s.run(None, {"features": x})[-1] for s in sessions[:3]]
        probs.append(sessions[3].run(None, {"window": win})[0])
        p = np.stack(probs, axis=1)
        logp = np.log(np.clip(p, EPS, 1.0)) / temps[None, :, None]
        e = np.exp(logp - logp.max(-1, keepdims=True))
        members = e / e.sum(-1, keepdims=True)
        ens = np.einsum("m,nmc->nc", w, members)
        conf = 1 - 0.5 * np.einsum("m,nm->n", w, np.abs(members - ens[:, None]).sum(-1))
        return members, ens, conf

    return run


def summary(label: str, values: list[float], unit: str, fmt: str = "{:.1f}") -> None:
    med = statistics.median(values)
    print(
        f"{label:<52} {fmt.format(med):>10} {unit}  "
        f"(min {fmt.format(min(values))}, max {fmt.format(max(values))})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    if not DAY.is_file():
        print(f"real market data not found at {DAY}: nothing to measure")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench_ensemble_") as folder:
        return measure(Path(folder), args.runs, args.calls)


def measure(tmp: Path, runs: int, calls_per_run: int) -> int:
    """Train the bundle in ``tmp``, then measure every path; prints the table."""
    ingest(
        [DAY],
        tmp / "catalog",
        LoadContext(default_registry(), IngestOptions()),
        record_events=False,
    )
    print(
        f"load average {os.getloadavg()}; training the benchmark bundle (default training "
        "config, one OANDA day)...",
        flush=True,
    )
    result = train_bundle(
        RunConfig(
            catalog=str(tmp / "catalog"),
            instrument_id=INSTRUMENT,
            label=LabelSpec(horizon_events=50),
            stride=2,
            n_boot=20,
        ),
        TrainingConfig(),
        tmp / "staging",
        version="bench",
    )
    bundle = load_bundle(result.path, feature_spec_hash=SPEC.hash)
    m = bundle.manifest
    runtime = EnsembleRuntime.from_bundle(bundle)
    compiled_rt = EnsembleRuntime.from_bundle(bundle, engine="compiled")
    compiled = CompiledEnsemble.from_bytes(bundle.graph, "ensemble.onnx")
    merged, _ = make_session(bundle.graph, "cpu", 1)
    # The member graphs as trained, each in its own session (same options).
    from tapereader.replay.export import member_graphs

    graphs = member_graphs(result.members, m.n_features, m.window)
    sessions = [make_session(graphs[name].SerializeToString(), "cpu", 1)[0] for name in MEMBERS]
    four = separate(sessions, np.array(m.temperatures), np.array(m.weights))
    holdout = bundle.holdout()
    xs, ws = holdout.features(), holdout.windows(m.window)
    n = min(calls_per_run, len(xs))
    weights1 = np.array([m.weights], dtype=np.float32)
    print(
        f"providers: merged {merged.get_providers()}, runtime {runtime.providers}, "
        f"status {runtime.status.state}; compiled engine parity at load "
        f"{ {k: f'{v:.1e}' for k, v in compiled_rt.parity.items()} }"
    )
    print(f"{n} batch-1 calls per run on held-out rows; {runs} runs; threads per session: 1")

    # Same answers from both paths, or the comparison means nothing.
    got = merged.run(
        None, {"features": xs[:256], "window": ws[:256], "weights": np.tile(weights1, (256, 1))}
    )
    ref = four(xs[:256], ws[:256])
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, ref, strict=True)) < 1e-5

    x1 = [xs[i : i + 1] for i in range(n)]
    w1 = [ws[i : i + 1] for i in range(n)]
    # A SignalActor's window may be a float64 view with a row stride: same values.
    ws64 = np.repeat(ws[:n].astype(np.float64), 2, axis=1)[:, ::2]
    xs64 = xs[:n].astype(np.float64)
    assert not ws64[0].flags.c_contiguous
    run_merged = "merged graph, session.run"
    # ONNX Runtime's Python wrapper re-validates the feed on every call; predict_one calls
    # the binding underneath it directly (core/models/runtime.py says why).
    binding = merged._sess.run
    outputs = [o.name for o in merged.get_outputs()]
    run_one = "merged graph, runtime.predict_one"
    run_binding = "merged graph, binding run (no Python wrapper)"
    run_compiled = "compiled evaluator alone (CompiledEnsemble.predict_one)"
    run_one_compiled = "compiled engine, runtime.predict_one"
    calls = {
        run_merged: lambda i: merged.run(
            None, {"features": x1[i], "window": w1[i], "weights": weights1}
        ),
        run_binding: lambda i: binding(
            outputs, {"features": x1[i], "window": w1[i], "weights": weights1}, None
        ),
        run_one: lambda i: runtime.predict_one(xs[i], ws[i]),
        "predict_one, float64 strided window": lambda i: runtime.predict_one(xs64[i], ws64[i]),
        "four sessions + numpy combine": lambda i: four(x1[i], w1[i]),
        run_compiled: lambda i: compiled.predict_one(xs[i], ws[i], weights1[0]),
        run_one_compiled: lambda i: compiled_rt.predict_one(xs[i], ws[i]),
    }
    for name, sess in zip(MEMBERS, sessions, strict=True):
        key = "window" if name == "lstm" else "features"
        inputs = w1 if name == "lstm" else x1
        calls[f"member {name} alone, session.run"] = lambda i, s=sess, k=key, a=inputs: s.run(
            None, {k: a[i]}
        )
    p50: dict[str, list[float]] = {k: [] for k in calls}
    p99: dict[str, list[float]] = {k: [] for k in calls}
    overhead: list[float] = []
    overhead_binding: list[float] = []
    load: list[str] = []
    rows_s: dict[str, list[float]] = {
        "merged graph": [],
        "four sessions + numpy combine": [],
        "compiled evaluator": [],
    }
    b = 256
    wb = np.tile(weights1, (b, 1))
    batches = [(xs[i : i + b], ws[i : i + b]) for i in range(0, len(xs) - b + 1, b)]
    step: list[float] = []
    step99: list[float] = []
    step_c: list[float] = []
    step99_c: list[float] = []
    quotes = catalog_events(tmp / "catalog", INSTRUMENT)
    on_quote = entry_points().on_quote
    labels = list(calls)
    for _run in range(runs):
        before = os.getloadavg()[0]
        # The path measured first in a run came out slower on this machine whatever it was:
        # the order rotates from run to run, and each path is warmed up right before it runs.
        for label in labels[_run % len(labels) :] + labels[: _run % len(labels)]:
            latencies(calls[label], 200)
            lat = latencies(calls[label], n)
            p50[label].append(float(np.percentile(lat, 50)))
            p99[label].append(float(np.percentile(lat, 99)))
        overhead.append(p50[run_one][-1] - p50[run_merged][-1])
        overhead_binding.append(p50[run_one][-1] - p50[run_binding][-1])
        for label, fn in (
            (
                "merged graph",
                lambda x, w: merged.run(None, {"features": x, "window": w, "weights": wb}),
            ),
            ("four sessions + numpy combine", four),
            ("compiled evaluator", lambda x, w: compiled.predict(x, w, wb)),
        ):
            start = time.perf_counter()
            for x, w in batches:
                fn(x, w)
            rows_s[label].append(len(batches) * b / (time.perf_counter() - start))
        # Both engines per quote, alternating which goes first.
        engines = [("onnxruntime", runtime), ("compiled", compiled_rt)][:: 1 if _run % 2 else -1]
        for engine, rt in engines:
            lat50, lat99 = feature_and_ensemble(quotes, on_quote, rt, m.window, m.n_features)
            (step if engine == "onnxruntime" else step_c).append(lat50)
            (step99 if engine == "onnxruntime" else step99_c).append(lat99)
        load.append(f"{before:.2f}->{os.getloadavg()[0]:.2f}")
        print(
            f"run {_run + 1}: merged p50 {p50[run_merged][-1]:.1f} us, predict_one p50 "
            f"{p50[run_one][-1]:.1f} us, compiled predict_one p50 "
            f"{p50[run_one_compiled][-1]:.1f} us; load average {load[-1]}",
            flush=True,
        )
    print()
    for label in calls:
        summary(f"batch-1 p50, {label}", p50[label], "us")
        summary(f"batch-1 p99, {label}", p99[label], "us")
    for label, values in rows_s.items():
        summary(f"rows/s at batch {b}, {label}", values, "rows/s", "{:,.0f}")
    summary("feature step + ensemble per quote, p50", step, "us")
    summary("feature step + ensemble per quote, p99", step99, "us")
    summary("feature step + compiled ensemble per quote, p50", step_c, "us")
    summary("feature step + compiled ensemble per quote, p99", step99_c, "us")
    print()
    print("compiled / ONNX Runtime, ratio of the same run's figures (median, min-max):")
    ratios = {
        "batch-1 p50, evaluator / session.run": (p50[run_compiled], p50[run_merged]),
        "batch-1 p99, evaluator / session.run": (p99[run_compiled], p99[run_merged]),
        "batch-1 p50, predict_one compiled / onnxruntime": (p50[run_one_compiled], p50[run_one]),
        "batch-1 p99, predict_one compiled / onnxruntime": (p99[run_one_compiled], p99[run_one]),
        "rows/s at batch 256, compiled / merged graph": (
            rows_s["compiled evaluator"],
            rows_s["merged graph"],
        ),
        "feature step + ensemble p50, compiled / onnxruntime": (step_c, step),
    }
    for label, (a, b) in ratios.items():
        summary(label, [x / y for x, y in zip(a, b, strict=True)], "x", "{:.3f}")
    summary("predict_one p50 minus session.run p50 (same run)", overhead, "us")
    summary("predict_one p50 minus binding run p50 (same run)", overhead_binding, "us")
    print(f"1-minute load average per run (before->after): {', '.join(load)}")
    return 0


def feature_and_ensemble(
    quotes, on_quote, runtime: EnsembleRuntime, window: int, width: int
) -> tuple[float, float]:
    """Per-quote latency of the kernel step plus the ensemble, over the day's first quotes."""
    state = new_state()
    row = feature_row(state)
    ring = np.zeros((2 * window, width), dtype=np.float32)  # mirrored: any window is one slice
    ts, v = quotes.ts, quotes.values
    seen = 0
    out: list[int] = []
    clock = time.perf_counter_ns
    for i in range(min(len(ts), 20_000)):
        start = clock()
        status = on_quote(
            state, int(ts[i]), float(v[i, 0]), float(v[i, 1]), float(v[i, 2]), float(v[i, 3])
        )
        if status == 1:
            slot = seen % window
            ring[slot] = row
            ring[slot + window] = row
            seen += 1
            if seen >= window:
                runtime.predict_one(ring[slot + window], ring[slot + 1 : slot + 1 + window])
                out.append(clock() - start)
    lat = np.array(out) / 1e3
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


if __name__ == "__main__":
    sys.exit(main())
