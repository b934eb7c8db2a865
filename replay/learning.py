"""One training run end to end: dataset, split, members, export, evaluation, bundle.

The bundle is written to a folder of its own (staging); :class:`Registry.add` then stores it.
Evaluation scores what will be served: the merged ONNX graph's outputs on the held-out rows,
with the regime weights the runtime would use.
"""

import datetime as dt
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import sklearn
import torch
import xgboost

from tapereader.core.features.spec import SPEC
from tapereader.core.models.bundle import (
    CLASSES,
    GRAPH,
    MEMBERS,
    REGIMES,
    Holdout,
    Manifest,
    file_digests,
    write_holdout,
    write_manifest,
)
from tapereader.core.models.regime import RegimeRule, fit_regime_rule
from tapereader.core.models.registry import PRIOR_METRIC

from .dataset import Dataset, LabelSpec, build_dataset
from .evaluation import Evaluation, evaluate, prior_probabilities
from .export import OPSET, export
from .splits import time_split
from .training import Members, Progress, TrainingConfig, fit_members


@dataclass(frozen=True)
class RunConfig:
    """What to learn from and how to split it (recorded in the manifest)."""

    catalog: str
    instrument_id: str
    label: LabelSpec = field(default_factory=LabelSpec)
    window: int = 8  # LSTM rows; 16 cost more at batch 1 and scored no better
    stride: int = 1
    start_ns: int = 0
    end_ns: int = 0
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    embargo_ns: int = 0
    n_boot: int = 200


@dataclass(frozen=True)
class TrainResult:
    """The written bundle folder, its manifest and the held-out evaluation."""

    path: Path
    manifest: Manifest
    evaluation: Evaluation
    members: Members


def default_version(instrument_id: str) -> str:
    """``<instrument>-<UTC time>``, for example ``eurusd-oanda-20260101t120000z``."""
    slug = re.sub(r"[^a-z0-9]+", "-", instrument_id.lower()).strip("-")
    return f"{slug}-{dt.datetime.now(dt.UTC):%Y%m%dt%H%M%S%fz}"


def train_bundle(
    run: RunConfig,
    cfg: TrainingConfig,
    out_dir: str | Path,
    *,
    version: str = "",
    progress: Progress = lambda _msg: None,
) -> TrainResult:
    """Train, export, evaluate, and write a bundle folder ``out_dir/<version>``."""
    ds = build_dataset(
        run.catalog,
        run.instrument_id,
        label=run.label,
        window=run.window,
        stride=run.stride,
        start_ns=run.start_ns,
        end_ns=run.end_ns,
    )
    progress(f"dataset: {ds.params['rows']} rows, {len(ds.samples)} samples")
    s = ds.samples
    split = time_split(ds.ts[s], ds.t_end[s], fractions=run.fractions, embargo_ns=run.embargo_ns)
    tr, va, te = s[split.train], s[split.val], s[split.test]
    x_tr, x_va, x_te = ds.rows[tr], ds.rows[va], ds.rows[te]
    w_tr, w_va, w_te = ds.windows(tr), ds.windows(va), ds.windows(te)
    y_tr, y_va, y_te = (ds.labels[i].astype(np.int64) for i in (tr, va, te))
    progress(f"split: train {len(tr)}, validation {len(va)}, test {len(te)} samples")
    names = list(SPEC.names)
    rule_spec = fit_regime_rule(x_tr, names)
    rule = RegimeRule.bind(rule_spec, names)
    members = fit_members(
        cfg, (x_tr, w_tr, y_tr), (x_va, w_va, y_va), rule.classify(x_va), progress
    )
    exported = export(members, x_te, w_te)
    progress(f"export parity (max |d p|): {max(exported.parity.values()):.2e}")

    regime_w = np.array([members.regime_weights[r] for r in REGIMES], dtype=np.float32)
    session = ort.InferenceSession(
        exported.merged.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    served_members, served, _conf = session.run(
        None, {"features": x_te, "window": w_te, "weights": regime_w[rule.classify(x_te)]}
    )
    probs = {"prior": prior_probabilities(y_tr, len(y_te))}
    probs |= {name: served_members[:, i].astype(np.float64) for i, name in enumerate(MEMBERS)}
    probs["ensemble"] = served.astype(np.float64)
    progress("bootstrapping the evaluation")
    evaluation = evaluate(probs, y_te, n_boot=run.n_boot, block=max(run.label.horizon_events, 1))

    version = version or default_version(run.instrument_id)
    folder = Path(out_dir) / version
    folder.mkdir(parents=True, exist_ok=False)
    (folder / GRAPH).write_bytes(exported.merged.SerializeToString())
    lo = int(te[0]) - run.window + 1
    write_holdout(
        folder,
        Holdout(ds.rows[lo : int(te[-1]) + 1], (te - lo).astype(np.int64), y_te.astype(np.int8)),
    )
    files = file_digests(folder)
    metrics = evaluation.flat("ensemble")
    metrics |= {f"test_log_loss_{n}": evaluation.scores[n]["log_loss"].value for n in probs}
    metrics[PRIOR_METRIC] = evaluation.scores["prior"]["log_loss"].value
    metrics |= {f"parity_{k}": v for k, v in exported.parity.items()}
    manifest = Manifest(
        model_version=version,
        created_ns=time.time_ns(),
        feature_spec_hash=ds.feature_spec_hash,
        feature_names=names,
        window=run.window,
        members=list(MEMBERS),
        classes=list(CLASSES),
        weights=[float(w) for w in members.weights],
        regime_weights={r: [float(w) for w in members.regime_weights[r]] for r in REGIMES},
        regime_rule=rule_spec,
        temperatures=[float(t) for t in members.temperatures],
        instrument_id=run.instrument_id,
        data_start_ns=int(ds.ts[tr[0]]),
        data_end_ns=int(ds.t_end[va].max()),
        holdout_start_ns=int(ds.ts[te[0]]),
        holdout_end_ns=int(ds.t_end[te].max()),
        label_definition=run.label.definition(),
        label_params={k: v for k, v in asdict(run.label).items()},
        dataset_params=_dataset_record(ds, run, split_sizes=(len(tr), len(va), len(te))),
        metrics={k: float(v) for k, v in metrics.items()},
        sha256=files[GRAPH],
        files=files,
        onnx_opset=OPSET,
        trainer={
            **cfg.as_record(),
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "sklearn": sklearn.__version__,
            "xgboost": xgboost.__version__,
            "onnxruntime": ort.__version__,
            "seconds": ", ".join(f"{k} {v:.1f}" for k, v in members.seconds.items()),
        },
    )
    write_manifest(folder, manifest)
    return TrainResult(folder, manifest, evaluation, members)


def _dataset_record(
    ds: Dataset, run: RunConfig, split_sizes: tuple[int, int, int]
) -> dict[str, float | int | str]:
    rec = dict(ds.params)
    rec |= {
        "catalog": Path(run.catalog).name,
        "embargo_ns": run.embargo_ns,
        "fractions": ",".join(map(str, run.fractions)),
        "train_samples": split_sizes[0],
        "val_samples": split_sizes[1],
        "test_samples": split_sizes[2],
    }
    return rec
