"""Walk-forward check of the baseline: is the edge there in every period, or in one?

Logistic regression (the strongest single member in docs/MODELS.md) is refitted on an
expanding, purged and embargoed window before each test block and scored beside the class
prior of that window. A gain that holds fold after fold is a property of the market data;
one that appears in a single fold is luck or a regime.
"""

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .dataset import Dataset
from .evaluation import Interval, evaluate, prior_probabilities
from .splits import walk_forward


@dataclass(frozen=True)
class FoldResult:
    """One fold: its time span, sizes, and LR's log-loss gain over the prior and AUC."""

    start_ns: int
    end_ns: int
    train_rows: int
    test_rows: int
    gain_vs_prior: Interval
    auc: Interval


def walk_forward_baseline(
    ds: Dataset,
    *,
    folds: int = 4,
    embargo_ns: int = 0,
    n_boot: int = 100,
    lr_c: float = 0.1,
) -> list[FoldResult]:
    """LR vs the class prior on each walk-forward fold of ``ds``'s samples."""
    s = ds.samples
    ts, t_end = ds.ts[s], ds.t_end[s]
    x, y = ds.rows[s], ds.labels[s].astype(np.int64)
    block = max(ds.label.horizon_events, 1)
    out = []
    for train, test in walk_forward(ts, t_end, folds=folds, embargo_ns=embargo_ns):
        if len(np.unique(y[train])) < 3:
            raise ValueError("a walk-forward training window lacks a class: use fewer folds")
        model = Pipeline(
            [("scale", StandardScaler()), ("lr", LogisticRegression(C=lr_c, max_iter=500))]
        )
        model.fit(x[train], y[train])
        probs = {
            "prior": prior_probabilities(y[train], len(test)),
            "lr": model.predict_proba(x[test]),
        }
        ev = evaluate(probs, y[test], n_boot=n_boot, block=block)
        out.append(
            FoldResult(
                int(ts[test[0]]),
                int(t_end[test].max()),
                len(train),
                len(test),
                ev.gain_vs_prior["lr"],
                ev.scores["lr"]["auc"],
            )
        )
    return out


def table(results: list[FoldResult]) -> str:
    """One line per fold."""

    def iso(ns: int) -> str:
        return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M")

    head = (
        f"{'fold':<5} {'test period (UTC)':<35} {'train':>8} {'test':>7} "
        f"{'LR gain vs prior':>26} {'LR AUC':>26}"
    )
    lines = [head, "-" * len(head)]
    for i, r in enumerate(results, 1):
        span = f"{iso(r.start_ns)} -> {iso(r.end_ns)}"
        lines.append(
            f"{i:<5} {span:<35} {r.train_rows:>8} {r.test_rows:>7} "
            f"{r.gain_vs_prior!s:>26} {r.auc!s:>26}"
        )
    return "\n".join(lines)
