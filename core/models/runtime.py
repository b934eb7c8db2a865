"""The ensemble runtime: one ONNX Runtime session over a verified bundle's merged graph.

It never pretends. A missing or mismatched bundle is refused at construction; an input of the
wrong width, shape or with non-finite values raises :class:`EnsembleInputError`; a session
failure or a non-probability output raises :class:`EnsembleFailure`. Nothing returns a
default probability. Running on the CPU when CUDA was asked for is an explicit *degraded*
status naming the cause, and :attr:`EnsembleRuntime.providers` is what the session really
uses (``session.get_providers()``), not what was requested.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from .bundle import REGIMES, Bundle, load_bundle
from .regime import RegimeRule

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
Device = Literal["cpu", "cuda"]
_SUM_TOLERANCE = 1e-3  # float32 softmax sums; anything further off is a broken graph


class EnsembleInputError(ValueError):
    """The caller's features do not fit the model (width, shape, dtype, non-finite values)."""


class EnsembleFailure(RuntimeError):
    """The session failed or produced something that is not a probability."""


@dataclass(frozen=True)
class RuntimeStatus:
    """``ready``, or ``degraded`` with the reasons (for example CUDA asked for, CPU running)."""

    state: Literal["ready", "degraded"]
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prediction:
    """One run: per-member and ensemble class probabilities (down, flat, up) and more."""

    members: np.ndarray  # [N, 4, 3]
    ensemble: np.ndarray  # [N, 3]
    confidence: np.ndarray  # [N], 1 when every member agrees with the ensemble
    regime: np.ndarray  # [N] regime index (see REGIMES)
    weights: np.ndarray  # [N, 4] the member weights used
    provider: str  # the session's first (preferred) provider that really ran
    model_version: str = ""

    def regime_names(self) -> list[str]:
        return [REGIMES[r] for r in self.regime]


@dataclass
class EnsembleRuntime:
    """Serve a bundle: ``predict`` for batches, ``predict_one`` for a single event."""

    bundle: Bundle
    session: ort.InferenceSession
    status: RuntimeStatus
    regime_rule: RegimeRule
    regime_weights: np.ndarray = field(repr=False)  # [3, 4] float32, updated by adaptation
    _providers: tuple[str, ...] = ()

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        feature_spec_hash: str,
        device: Device = "cpu",
        require_device: bool = False,
        intra_op_threads: int = 1,
    ) -> "EnsembleRuntime":
        """Load and verify the bundle at ``path`` and start a session on ``device``.

        ``feature_spec_hash`` is the hash of the spec the caller computes features with;
        a bundle trained on another spec is refused. ``require_device=True`` turns a CUDA
        request that cannot be honoured into an error instead of a degraded CPU run.
        """
        bundle = load_bundle(path, feature_spec_hash=feature_spec_hash)
        return cls.from_bundle(
            bundle, device=device, require_device=require_device, intra_op_threads=intra_op_threads
        )

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle,
        *,
        device: Device = "cpu",
        require_device: bool = False,
        intra_op_threads: int = 1,
    ) -> "EnsembleRuntime":
        """Start a session for an already verified bundle."""
        session, reasons = make_session(bundle.graph, device, intra_op_threads)
        if reasons and require_device:
            raise EnsembleFailure("; ".join(reasons))
        m = bundle.manifest
        weights = np.array([m.regime_weights[r] for r in REGIMES], dtype=np.float32)
        status = RuntimeStatus("degraded", tuple(reasons)) if reasons else RuntimeStatus("ready")
        rule = RegimeRule.bind(m.regime_rule, m.feature_names)
        runtime = cls(bundle, session, status, rule, weights, tuple(session.get_providers()))
        runtime._check_graph()
        return runtime

    @property
    def providers(self) -> tuple[str, ...]:
        """The execution providers the session really uses (``session.get_providers()``,
        read once: a session never changes them), preferred first."""
        return self._providers

    @property
    def version(self) -> str:
        return self.bundle.manifest.model_version

    def _check_graph(self) -> None:
        m = self.bundle.manifest
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        if set(shapes) != {"features", "window", "weights"}:
            raise EnsembleFailure(f"{self.version}: graph inputs {sorted(shapes)} are not the ones")
        if shapes["features"][1] != m.n_features or shapes["window"][1:] != [
            m.window,
            m.n_features,
        ]:
            raise EnsembleFailure(
                f"{self.version}: graph input shapes {shapes} disagree with the manifest "
                f"({m.n_features} features, window {m.window})"
            )

    def set_regime_weights(self, regime: int, weights: np.ndarray) -> None:
        """Replace one regime's member weights (non-negative, summing to 1)."""
        if regime not in range(len(REGIMES)):
            raise ValueError(f"regime must be 0..{len(REGIMES) - 1} ({', '.join(REGIMES)})")
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (4,) or not np.all(np.isfinite(w)) or w.min() < 0 or abs(w.sum() - 1) > 1e-6:
            raise ValueError(f"weights must be 4 non-negative numbers summing to 1, got {w}")
        self.regime_weights[regime] = w.astype(np.float32)

    def predict(
        self, features: np.ndarray, window: np.ndarray, weights: np.ndarray | None = None
    ) -> Prediction:
        """Run a batch: ``features`` [N, F], ``window`` [N, T, F] (oldest row first, the
        newest equal to ``features``). ``weights`` [N, 4] overrides the regime weights."""
        m = self.bundle.manifest
        x = _as_input(features, (m.n_features,), "features")
        w = _as_input(window, (m.window, m.n_features), "window")
        if w.shape[0] != x.shape[0]:
            raise EnsembleInputError(f"{x.shape[0]} feature rows but {w.shape[0]} windows")
        if weights is None and len(x) == 1:
            # The live path: a scalar rule and a slice are far cheaper than array ops.
            r = self.regime_rule.classify_one(x[0])
            regime = np.array([r], dtype=np.int8)
            weights = self.regime_weights[r : r + 1].copy()  # later adaptation must not alter it
        elif weights is None:
            regime = self.regime_rule.classify(x)
            weights = self.regime_weights[regime]
        else:
            regime = self.regime_rule.classify(x)
            weights = _as_input(weights, (4,), "weights")
            if weights.shape[0] != x.shape[0] or weights.min() < 0 or np.any(weights.sum(1) <= 0):
                raise EnsembleInputError("weights must be [N, 4], non-negative, each row > 0")
        try:
            members, ensemble, confidence = self.session.run(
                None, {"features": x, "window": w, "weights": weights}
            )
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise EnsembleFailure(f"{self.version}: session run failed: {exc}") from exc
        _check_probabilities(self.version, members, ensemble, confidence)
        return Prediction(
            members, ensemble, confidence, regime, weights, self._providers[0], self.version
        )

    def predict_one(self, row: np.ndarray, window: np.ndarray) -> Prediction:
        """One event: ``row`` [F] and its ``window`` [T, F]."""
        return self.predict(np.asarray(row)[None, :], np.asarray(window)[None, :, :])


def make_session(
    graph: bytes, device: Device, intra_op_threads: int
) -> tuple[ort.InferenceSession, list[str]]:
    """A session on ``device`` and the reasons it is degraded (empty when as asked)."""
    options = ort.SessionOptions()
    # One thread: on graphs this small, a second thread costs more in handoff than it saves.
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    reasons: list[str] = []
    if device == "cuda":
        if CUDA not in ort.get_available_providers():
            reasons.append(
                "CUDA requested but this onnxruntime build has no CUDAExecutionProvider "
                f"(available: {', '.join(ort.get_available_providers())}); running on the CPU"
            )
            providers = [CPU]
        else:
            providers = [CUDA, CPU]
    elif device == "cpu":
        providers = [CPU]
    else:
        raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
    try:
        session = ort.InferenceSession(graph, sess_options=options, providers=providers)
    except Exception as exc:
        raise EnsembleFailure(f"cannot create an ONNX Runtime session: {exc}") from exc
    active = session.get_providers()
    if device == "cuda" and not reasons and CUDA not in active:
        # onnxruntime-gpu without a usable GPU silently drops CUDA: say so.
        reasons.append(f"CUDA requested but the session runs on {', '.join(active)}")
    return session, reasons


def _as_input(a: np.ndarray, tail: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind != "f":
        raise EnsembleInputError(f"{name}: expected floating point values, got {arr.dtype}")
    if arr.shape[1:] != tail or arr.ndim != len(tail) + 1:
        expected = ", ".join(map(str, tail))
        raise EnsembleInputError(f"{name}: expected shape [N, {expected}], got {list(arr.shape)}")
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        raise EnsembleInputError(f"{name}: {bad} non-finite values (NaN or inf)")
    return arr


def _check_probabilities(
    version: str, members: np.ndarray, ensemble: np.ndarray, conf: np.ndarray
) -> None:
    # Three reductions on purpose (each costs a microsecond or more at batch 1). A NaN or
    # inf anywhere makes its sum non-finite; member rows come out of a softmax and ensemble
    # rows are convex mixtures of them (weights are checked non-negative), so totals of 4
    # and 1 per row are what an intact graph produces; confidence is 1 - a mean TV distance.
    n = len(ensemble)
    conf_sum = float(conf.sum())
    ok = (
        abs(float(members.sum()) - 4 * n) <= _SUM_TOLERANCE * n
        and abs(float(ensemble.sum()) - n) <= _SUM_TOLERANCE * n
        and -1e-6 * n <= conf_sum <= (1 + 1e-6) * n
    )
    if not ok:
        raise EnsembleFailure(f"{version}: graph output is not a probability distribution")
