"""Metrics and bootstrap intervals, checked against scikit-learn on real predictions."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from tapereader.replay.evaluation import block_indices, evaluate, prior_probabilities, score


def test_metrics_match_sklearn(trained) -> None:
    from tapereader.core.models.bundle import load_bundle

    h = load_bundle(trained.path).holdout()
    p = trained.members.probabilities(h.features(), h.windows(trained.manifest.window))[:, 1]
    y = h.labels.astype(np.int64)
    s = score(p, y)
    assert s["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1, 2]), rel=1e-9)
    assert s["auc"] == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro"), rel=1e-9
    )
    assert s["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    onehot = np.eye(3)[y]
    assert s["brier"] == pytest.approx(((p - onehot) ** 2).sum(1).mean())


def test_intervals_and_baselines(trained) -> None:
    ev = trained.evaluation
    assert set(ev.scores) == {"prior", "lr", "rf", "xgb", "lstm", "ensemble"}
    for name, scores in ev.scores.items():
        for interval in scores.values():
            assert interval.low <= interval.value <= interval.high or name == "prior"
    assert ev.scores["prior"]["auc"].value == pytest.approx(0.5)
    assert ev.gain_vs_prior["prior"].value == 0 and ev.gain_vs_lr["lr"].value == 0
    assert "log-loss gain vs prior" in ev.table()


def test_a_useless_model_does_not_beat_the_prior() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 3000)
    prior = prior_probabilities(y, len(y))
    noise = rng.dirichlet(np.ones(3), len(y))
    ev = evaluate(
        {"prior": prior, "lr": noise, "ensemble": 0.5 * noise + 0.5 * prior}, y, n_boot=100
    )
    assert ev.gain_vs_prior["lr"].high < 0  # pure noise is clearly worse than the prior
    assert ev.scores["lr"]["auc"].low < 0.5 < ev.scores["lr"]["auc"].high


def test_block_bootstrap_indices() -> None:
    idx = block_indices(1000, 50, np.random.default_rng(1))
    assert idx.shape == (1000,) and idx.min() >= 0 and idx.max() < 1000
    runs = np.diff(idx) == 1
    assert runs.mean() > 0.9  # consecutive blocks, not single rows
    with pytest.raises(ValueError):
        evaluate({"ensemble": np.full((3, 3), 1 / 3)}, np.zeros(3, int))
