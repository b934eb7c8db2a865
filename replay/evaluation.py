"""Held-out evaluation: log-loss, AUC, Brier score and accuracy with bootstrap intervals.

Every model is scored on the same rows beside two baselines, the training class prior and
logistic regression alone. Intervals come from a moving-block bootstrap (blocks of
consecutive rows, because neighbouring labels overlap in time and are not independent),
with the same resampled rows for every model, so differences are paired.
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

METRICS: tuple[str, ...] = ("log_loss", "auc", "brier", "accuracy")
LOWER_IS_BETTER = {"log_loss": True, "auc": False, "brier": True, "accuracy": False}


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap confidence interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


@dataclass(frozen=True)
class Evaluation:
    """Scores per model and metric, and each model's log-loss gain over the baselines."""

    rows: int
    scores: dict[str, dict[str, Interval]]
    gain_vs_prior: dict[str, Interval]  # prior log-loss - model log-loss (> 0: better)
    gain_vs_lr: dict[str, Interval]
    n_boot: int
    block: int

    def flat(self, model: str = "ensemble") -> dict[str, float]:
        """One model's point scores as a flat dict (for manifests and events)."""
        out = {f"test_{m}": self.scores[model][m].value for m in METRICS}
        out["test_log_loss_gain_vs_prior"] = self.gain_vs_prior[model].value
        out["test_rows"] = float(self.rows)
        return out

    def table(self) -> str:
        """A readable table: one line per model."""
        titles = (
            "log-loss",
            "AUC (macro OvR)",
            "Brier",
            "accuracy",
            "log-loss gain vs prior",
            "log-loss gain vs LR",
        )
        head = f"{'model':<10} " + " ".join(f"{t:>26}" for t in titles)
        lines = [head, "-" * len(head)]
        for name, s in self.scores.items():
            cells = [f"{s[m]!s:>26}" for m in METRICS]
            gains = f"{self.gain_vs_prior[name]!s:>26} {self.gain_vs_lr[name]!s:>26}"
            lines.append(f"{name:<10} {' '.join(cells)} {gains}")
        lines.append(
            f"{self.rows} held-out rows; 95% moving-block bootstrap intervals "
            f"({self.n_boot} resamples, blocks of {self.block} rows)"
        )
        return "\n".join(lines)


def log_loss_rows(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row negative log-likelihood."""
    return -np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0))


def auc_ovr(p: np.ndarray, y: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes present (rank formula, ties averaged)."""
    aucs = []
    for c in range(p.shape[1]):
        pos = y == c
        n_pos = int(pos.sum())
        n_neg = len(y) - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(p[:, c])
        aucs.append((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def score(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The four metrics of probabilities ``p`` [N, C] for labels ``y``."""
    onehot = np.eye(p.shape[1])[y]
    return {
        "log_loss": float(log_loss_rows(p, y).mean()),
        "auc": auc_ovr(p, y),
        "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
        "accuracy": float((p.argmax(axis=1) == y).mean()),
    }


def block_indices(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """One moving-block bootstrap resample of ``range(n)``."""
    block = max(1, min(block, n))
    starts = rng.integers(0, n - block + 1, size=int(np.ceil(n / block)))
    return (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]


def evaluate(
    probabilities: dict[str, np.ndarray],
    y: np.ndarray,
    *,
    n_boot: int = 200,
    block: int = 0,
    seed: int = 11,
) -> Evaluation:
    """Score every model in ``probabilities`` (which must hold ``prior`` and ``lr``) on ``y``.

    ``block`` defaults to about the square root of the row count.
    """
    if "prior" not in probabilities or "lr" not in probabilities:
        raise ValueError("evaluation needs the 'prior' and 'lr' baselines")
    n = len(y)
    block = block or max(1, int(np.sqrt(n)))
    rng = np.random.default_rng(seed)
    points = {name: score(p, y) for name, p in probabilities.items()}
    nll = {name: log_loss_rows(p, y) for name, p in probabilities.items()}
    boots: dict[str, dict[str, list[float]]] = {
        name: {m: [] for m in METRICS} for name in probabilities
    }
    gains: dict[str, dict[str, list[float]]] = {
        name: {"prior": [], "lr": []} for name in probabilities
    }
    for _ in range(n_boot):
        idx = block_indices(n, block, rng)
        for name, p in probabilities.items():
            s = score(p[idx], y[idx])
            for m in METRICS:
                boots[name][m].append(s[m])
            for base in ("prior", "lr"):
                gains[name][base].append(float(nll[base][idx].mean() - nll[name][idx].mean()))

    def interval(point: float, samples: list[float]) -> Interval:
        lo, hi = np.percentile(samples, [2.5, 97.5]) if samples else (np.nan, np.nan)
        return Interval(point, float(lo), float(hi))

    scores = {
        name: {m: interval(points[name][m], boots[name][m]) for m in METRICS}
        for name in probabilities
    }
    gain_prior = {
        name: interval(float(nll["prior"].mean() - nll[name].mean()), gains[name]["prior"])
        for name in probabilities
    }
    gain_lr = {
        name: interval(float(nll["lr"].mean() - nll[name].mean()), gains[name]["lr"])
        for name in probabilities
    }
    return Evaluation(n, scores, gain_prior, gain_lr, n_boot, block)


def prior_probabilities(train_labels: np.ndarray, n: int, classes: int = 3) -> np.ndarray:
    """The class-prior baseline: training class frequencies for every row."""
    freq = np.bincount(train_labels, minlength=classes).astype(np.float64)
    return np.broadcast_to(freq / freq.sum(), (n, classes)).copy()
