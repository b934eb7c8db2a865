"""Time splits with purging and embargo, and leakage controls that must score at chance."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tapereader.replay.dataset import DOWN, UP, LabelSpec, build_dataset
from tapereader.replay.evaluation import evaluate, prior_probabilities
from tapereader.replay.splits import time_split, walk_forward

from .conftest import OANDA_ID

H = 50


@pytest.fixture(scope="module")
def ds(oanda_catalog: Path):
    return build_dataset(
        oanda_catalog, OANDA_ID, label=LabelSpec(horizon_events=H), window=1, stride=2
    )


def test_no_label_crosses_a_boundary(ds) -> None:
    s = ds.samples
    ts, t_end = ds.ts[s], ds.t_end[s]
    embargo = 60 * 10**9
    split = time_split(ts, t_end, embargo_ns=embargo)
    assert t_end[split.train].max() < ts[split.val].min()
    assert t_end[split.val].max() < ts[split.test].min()
    assert ts[split.val].min() > t_end[split.train].max() + embargo
    assert ts[split.test].min() > t_end[split.val].max() + embargo
    # Purging really removed rows (their labels reached into the next window).
    assert len(split.train) + len(split.val) + len(split.test) < len(s)
    folds = list(walk_forward(ts, t_end, folds=3, embargo_ns=embargo))
    assert len(folds) == 3
    for train, test in folds:
        assert t_end[train].max() < ts[test].min() and train.max() < test.min()
        assert ts[test].min() > t_end[train].max() + embargo


def test_split_refuses_bad_input() -> None:
    ts = np.arange(100, dtype=np.int64)
    with pytest.raises(ValueError, match="time order"):
        time_split(ts[::-1].copy(), ts[::-1] + 1)
    with pytest.raises(ValueError, match="before its sample"):
        time_split(ts, ts - 1)
    with pytest.raises(ValueError, match="empty"):
        time_split(ts, ts + 90)


def _lr_gain(x: np.ndarray, y: np.ndarray, ts: np.ndarray, t_end: np.ndarray):
    split = time_split(ts, t_end, fractions=(0.6, 0.2, 0.2))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
    model.fit(x[split.train], y[split.train])
    p = model.predict_proba(x[split.test])
    yt = y[split.test]
    prior = prior_probabilities(y[split.train], len(yt), classes=p.shape[1])
    ev = evaluate({"prior": prior, "lr": p}, yt, n_boot=100, block=H)
    return ev.gain_vs_prior["lr"], ev.scores["lr"]["auc"]


def test_leakage_controls(ds) -> None:
    s = ds.samples
    x = ds.rows[s].astype(np.float64)
    y = ds.labels[s].astype(np.int64)
    ts, t_end = ds.ts[s], ds.t_end[s]

    # Positive control: a feature that *is* the future move must be found, or this test
    # could never fail.
    future_move = (ds.mid[np.minimum(s + H, len(ds.mid) - 1)] / ds.mid[s] - 1)[:, None]
    gain, auc = _lr_gain(np.hstack([x, future_move * 1e4]), y, ts, t_end)
    assert gain.low > 0.1 and auc.value > 0.8

    # Shuffled labels: nothing to learn; at chance out of sample.
    shuffled = np.random.default_rng(1).permutation(y)
    gain, auc = _lr_gain(x, shuffled, ts, t_end)
    assert gain.value < 0.005 and auc.low < 0.5 < auc.high + 0.02

    # Future-shift control: directions far ahead of the features (about 2,000 quotes later)
    # must not be predictable. Up vs down only: volatility clusters, so "flat or not"
    # legitimately carries over long gaps, while the direction must not.
    shift = 1000  # samples, stride 2: 2,000 quotes
    ys = y[shift:]
    moving = (ys == UP) | (ys == DOWN)
    xs = x[:-shift][moving]
    ys = (ys[moving] == UP).astype(np.int64)
    gain, auc = _lr_gain(xs, ys, ts[:-shift][moving], t_end[shift:][moving])
    assert gain.value < 0.01 and auc.low < 0.5 < auc.high + 0.02


def test_walk_forward_baseline_on_real_data(ds) -> None:
    from tapereader.replay.walkforward import table, walk_forward_baseline

    folds = walk_forward_baseline(ds, folds=3, embargo_ns=60 * 10**9, n_boot=30)
    assert len(folds) == 3
    for a, b in itertools.pairwise(folds):
        assert a.start_ns < b.start_ns  # test blocks move forward in time
        assert b.train_rows > a.train_rows  # expanding window
    for f in folds:
        assert f.gain_vs_prior.low <= f.gain_vs_prior.value <= f.gain_vs_prior.high
    assert table(folds).count("\n") == 4
