"""Training of the four ensemble members, their calibration and the ensemble weights.

Members: logistic regression (standardised), random forest, XGBoost on the newest feature
row, and a small LSTM over the last ``T`` rows. Each member's probabilities are calibrated
by one temperature fitted on validation data, kept at 1 unless it lowers the validation
log-loss ("where it helps"). Ensemble weights, global and per regime, minimise the
validation log-loss of the weighted mixture; they are fitted, not guessed.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from tapereader.core.models.bundle import MEMBERS, REGIMES

EPS = 1e-6  # probabilities are clipped here before the log of the calibration
CLAMP = 10.0  # the LSTM clips standardised inputs to +-CLAMP standard deviations
N_CLASSES = 3
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingConfig:
    """Every knob of a training run (recorded in the bundle's manifest)."""

    # Sizes chosen for batch-1 latency as well as validation log-loss (docs/MODELS.md,
    # "Model sizes"): at batch 1 a tree costs its depth in node visits, so the forest (fitted
    # ensemble weight about 0) has 20 trees and XGBoost trees of depth 2 with a larger
    # step; held-out log-loss of each member was the same or better than with 100 trees and
    # depth 4 at eta 0.05 on EUR/USD.
    seed: int = 7
    lr_c: float = 0.1
    rf_trees: int = 20
    rf_depth: int = 8
    rf_min_leaf: int = 50
    xgb_trees: int = 200  # an upper bound: early stopping on validation decides
    xgb_depth: int = 2
    xgb_eta: float = 0.2
    lstm_hidden: int = 16
    lstm_epochs: int = 6
    lstm_batch: int = 256
    lstm_lr: float = 3e-3
    threads: int = 2
    min_regime_rows: int = 200
    device: str = "auto"  # LSTM: cuda when present and asked ("auto"/"cuda"), else cpu

    def as_record(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


class WindowLSTM(torch.nn.Module):
    """LSTM over a [N, T, F] window; standardisation and clipping live inside the model,
    so the exported graph takes raw feature rows like every other member."""

    def __init__(self, n_features: int, hidden: int, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("inv_std", torch.tensor(1.0 / std, dtype=torch.float32))
        self.lstm = torch.nn.LSTM(n_features, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, N_CLASSES)

    def logits(self, window: torch.Tensor) -> torch.Tensor:
        z = torch.clamp((window - self.mean) * self.inv_std, -CLAMP, CLAMP)
        out, _ = self.lstm(z)
        return self.head(out[:, -1, :])

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(window), dim=-1)


@dataclass
class Members:
    """The four fitted members plus calibration and weights."""

    lr: Pipeline
    rf: RandomForestClassifier
    xgb: XGBClassifier
    lstm: WindowLSTM
    temperatures: np.ndarray = field(default_factory=lambda: np.ones(4))
    weights: np.ndarray = field(default_factory=lambda: np.full(4, 0.25))
    regime_weights: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def raw_probabilities(self, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Uncalibrated [N, 4, 3] probabilities of the native models (float32 inputs)."""
        with torch.no_grad():
            lstm = self.lstm.cpu().eval()(torch.from_numpy(windows)).numpy()
        parts = [self.lr.predict_proba(x), self.rf.predict_proba(x), self.xgb.predict_proba(x)]
        return np.stack([*(p.astype(np.float64) for p in parts), lstm.astype(np.float64)], axis=1)

    def probabilities(self, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Calibrated [N, 4, 3] member probabilities: what the exported graph must match."""
        return calibrate(self.raw_probabilities(x, windows), self.temperatures)


def calibrate(p: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """softmax(log(clip(p)) / T) per member, on [N, 4, 3] (or [N, 3] with one T)."""
    t = np.asarray(temperatures, dtype=np.float64)
    logp = np.log(np.clip(p, EPS, 1.0)) / (t[:, None] if p.ndim == 3 else t)
    logp -= logp.max(axis=-1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=-1, keepdims=True)


def mixture(members: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted ensemble of [N, 4, 3] member probabilities; weights [4] or [N, 4]."""
    w = np.asarray(weights, dtype=np.float64)
    w = np.broadcast_to(w, members.shape[:2])
    return np.einsum("nm,nmc->nc", w, members) / w.sum(axis=1, keepdims=True)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels under [N, 3] probabilities."""
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0))))


def _fit_lstm(
    cfg: TrainingConfig,
    x_tr: np.ndarray,
    w_tr: np.ndarray,
    y_tr: np.ndarray,
    w_va: np.ndarray,
    y_va: np.ndarray,
    progress: Progress,
) -> WindowLSTM:
    torch.manual_seed(cfg.seed)
    use_cuda = cfg.device in ("auto", "cuda") and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    std = x_tr.std(axis=0).astype(np.float64)
    model = WindowLSTM(
        x_tr.shape[1], cfg.lstm_hidden, x_tr.mean(axis=0), np.where(std > 0, std, 1.0)
    )
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lstm_lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(w_tr), torch.from_numpy(y_tr.astype(np.int64))
    xv, yv = torch.from_numpy(w_va).to(device), torch.from_numpy(y_va.astype(np.int64)).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_state = math.inf, None
    for epoch in range(cfg.lstm_epochs):
        model.train()
        for batch in torch.randperm(len(yt), generator=gen).split(cfg.lstm_batch):
            opt.zero_grad()
            loss = loss_fn(model.logits(xt[batch].to(device)), yt[batch].to(device))
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(loss_fn(model.logits(xv), yv))
        progress(f"lstm epoch {epoch + 1}/{cfg.lstm_epochs} on {device}: val log-loss {val:.4f}")
        if val < best:  # keep the epoch that did best on validation (early stopping)
            best = val
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    return model.cpu().eval()


def fit_members(
    cfg: TrainingConfig,
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    regimes_val: np.ndarray | None = None,
    progress: Progress = lambda _msg: None,
) -> Members:
    """Fit the four members on ``train`` = (rows, windows, labels); ``val`` steers early
    stopping of XGBoost and the LSTM, and fits calibration and (per ``regimes_val``) the
    ensemble weights. Raises ValueError when a class is absent."""
    x_tr, w_tr, y_tr = train
    x_va, w_va, y_va = val
    for name, y in (("training", y_tr), ("validation", y_va)):
        missing = set(range(N_CLASSES)) - set(np.unique(y).tolist())
        if missing:
            raise ValueError(f"{name} labels lack classes {sorted(missing)}: widen the data")
    torch.set_num_threads(cfg.threads)
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    lr = Pipeline(
        [("scale", StandardScaler()), ("lr", LogisticRegression(C=cfg.lr_c, max_iter=500))]
    )
    lr.fit(x_tr, y_tr)
    seconds["lr"] = time.perf_counter() - start
    progress(f"lr fitted in {seconds['lr']:.1f} s")

    start = time.perf_counter()
    rf = RandomForestClassifier(
        n_estimators=cfg.rf_trees,
        max_depth=cfg.rf_depth,
        min_samples_leaf=cfg.rf_min_leaf,
        n_jobs=cfg.threads,
        random_state=cfg.seed,
    ).fit(x_tr, y_tr)
    seconds["rf"] = time.perf_counter() - start
    progress(f"rf fitted in {seconds['rf']:.1f} s")

    start = time.perf_counter()
    params = dict(
        max_depth=cfg.xgb_depth,
        learning_rate=cfg.xgb_eta,
        objective="multi:softprob",
        tree_method="hist",
        n_jobs=cfg.threads,
        random_state=cfg.seed,
    )
    probe = XGBClassifier(
        n_estimators=cfg.xgb_trees, early_stopping_rounds=20, eval_metric="mlogloss", **params
    )
    probe.fit(x_tr, y_tr, eval_set=[(x_va, y_va)], verbose=False)
    # Refit with exactly the trees early stopping kept: the ONNX converter exports every
    # tree in the booster, while predict_proba would silently stop at best_iteration.
    xgb = XGBClassifier(n_estimators=probe.best_iteration + 1, **params).fit(x_tr, y_tr)
    seconds["xgb"] = time.perf_counter() - start
    progress(f"xgb fitted in {seconds['xgb']:.1f} s ({probe.best_iteration + 1} trees kept)")

    start = time.perf_counter()
    lstm = _fit_lstm(cfg, x_tr, w_tr, y_tr, w_va, y_va, progress)
    seconds["lstm"] = time.perf_counter() - start
    members = Members(lr, rf, xgb, lstm, seconds=seconds)
    fit_calibration_and_weights(members, x_va, w_va, y_va, cfg.min_regime_rows, regimes_val)
    return members


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the log-loss of ``p`` [N, 3]; 1 unless it clearly helps."""
    res = minimize_scalar(
        lambda t: log_loss(calibrate(p, np.array(t)), y), bounds=(0.2, 10.0), method="bounded"
    )
    base = log_loss(calibrate(p, np.array(1.0)), y)
    return float(res.x) if res.fun < base - 1e-4 else 1.0


def fit_weights(members: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Simplex weights minimising the validation log-loss of the mixture."""

    def loss(z: np.ndarray) -> float:
        w = np.exp(z - z.max())
        return log_loss(mixture(members, w / w.sum()), y)

    res = minimize(loss, np.zeros(members.shape[1]), method="L-BFGS-B")
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


def fit_calibration_and_weights(
    members: Members,
    x_va: np.ndarray,
    w_va: np.ndarray,
    y_va: np.ndarray,
    min_regime_rows: int,
    regimes: np.ndarray | None,
) -> None:
    """Temperatures, global weights and (given ``regimes``) per-regime weights from
    validation data. Regimes with fewer than ``min_regime_rows`` rows use the global ones."""
    raw = members.raw_probabilities(x_va, w_va)
    members.temperatures = np.array([fit_temperature(raw[:, m], y_va) for m in range(len(MEMBERS))])
    cal = calibrate(raw, members.temperatures)
    members.weights = fit_weights(cal, y_va)
    members.regime_weights = {r: members.weights.copy() for r in REGIMES}
    if regimes is None:
        return
    for index, name in enumerate(REGIMES):
        rows = regimes == index
        if rows.sum() >= min_regime_rows and len(np.unique(y_va[rows])) == N_CLASSES:
            members.regime_weights[name] = fit_weights(cal[rows], y_va[rows])
