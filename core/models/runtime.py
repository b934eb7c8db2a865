"""The ensemble runtime: one ONNX Runtime session over a verified bundle's merged graph.

It never pretends. A missing or mismatched bundle is refused at construction; an input of the
wrong width, shape or with non-finite values raises :class:`EnsembleInputError`; a session
failure or a non-probability output raises :class:`EnsembleFailure`. Nothing returns a
default probability. Running on the CPU when CUDA was asked for is an explicit *degraded*
status naming the cause, and :attr:`EnsembleRuntime.providers` is what the session really
uses (``session.get_providers()``), not what was requested.
"""

import functools
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from .bundle import GRAPH as GRAPH_FILE
from .bundle import MEMBERS, REGIMES, Bundle, load_bundle
from .compiled import (
    COMPILED_PROVIDER,
    PARITY_TOLERANCE,
    CompiledEnsemble,
    CompiledGraphError,
    check_parity,
)
from .regime import RegimeRule

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
Device = Literal["cpu", "cuda"]
Engine = Literal["auto", "compiled", "onnxruntime"]
ENGINES: tuple[str, ...] = ("auto", "compiled", "onnxruntime")
_SUM_TOLERANCE = 1e-3  # float32 softmax sums; anything further off is a broken graph
_new = object.__new__

# predict_one's checks run as two compiled loops: right after a session run every numpy call
# is slow (its code has left the caches), and four of them (two copies, a sum, an isfinite)
# cost several times one small compiled loop. They are compiled (or loaded from numba's
# cache) when the first runtime starts, so importing this module stays light.
_LOADED, _NON_FINITE, _WRONG_SHAPE = 0, 1, 2


def _load(row, window, out_row, out_window):
    """Cast ``row`` and ``window`` into the float32 buffers: ``_LOADED``, or ``_NON_FINITE``
    when a value written is not finite (NaN, inf, float32 overflow), or ``_WRONG_SHAPE``
    (nothing written) when the shapes differ from the buffers'."""
    if row.shape[0] != out_row.shape[0] or window.shape != out_window.shape:
        return _WRONG_SHAPE
    ok = True
    for j in range(row.shape[0]):
        v = np.float32(row[j])
        out_row[j] = v
        ok &= np.isfinite(v)
    for t in range(window.shape[0]):
        for j in range(window.shape[1]):
            v = np.float32(window[t, j])
            out_window[t, j] = v
            ok &= np.isfinite(v)
    return _LOADED if ok else _NON_FINITE


def _outputs_ok(members, ensemble, confidence, tolerance):
    """One batch-1 output: member rows total 4, the ensemble row 1, confidence in [0, 1]
    (NaN fails every comparison)."""
    if members.shape[0] != 1 or ensemble.shape[0] != 1 or confidence.shape[0] != 1:
        return False
    total = 0.0
    for m in range(members.shape[1]):
        for c in range(members.shape[2]):
            total += members[0, m, c]
    ens = 0.0
    for c in range(ensemble.shape[1]):
        ens += ensemble[0, c]
    conf = confidence[0]
    return (
        abs(total - 4.0) <= tolerance
        and abs(ens - 1.0) <= tolerance
        and -1e-6 <= conf <= 1.0 + 1e-6
    )


@functools.cache
def _compiled() -> tuple[Callable[..., int], Callable[..., bool]]:
    """The two loops, compiled for float32 and float64 inputs in any layout ('A': contiguous
    and strided alike); other inputs raise TypeError and take the numpy path."""
    import numba as nb

    load_signatures = [
        nb.int64(r[:], w[:, :], nb.float32[::1], nb.float32[:, ::1])
        for r in (nb.float32, nb.float64)
        for w in (nb.float32, nb.float64)
    ]
    outputs_signature = nb.boolean(
        nb.float32[:, :, ::1], nb.float32[:, ::1], nb.float32[::1], nb.float64
    )
    # They keep the GIL (as evaluate_one does): released for a microsecond, it goes to the
    # journal's writer thread, and getting it back waits for that thread's switch interval
    # (5 ms); in the chain that made these two loops 28 us at p50 instead of 2.
    return (
        nb.njit(load_signatures, cache=True)(_load),
        nb.njit([outputs_signature], cache=True)(_outputs_ok),
    )


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
    regime_weights: np.ndarray = field(repr=False)  # [3, 4] float32, read-only; replaced
    # (never written in place) by set_regime_weights, so a Prediction can keep a view of it
    _providers: tuple[str, ...] = ()
    # engine="compiled": the Numba evaluator of the same graph serves predict_one (checked
    # against the session on the bundle's held-out rows when the runtime was made).
    compiled: CompiledEnsemble | None = field(default=None, repr=False)
    parity: dict[str, float] = field(default_factory=dict)
    # engine="auto" served by ONNX Runtime: why the compiled engine could not take the graph.
    fallback: str = ""

    def __post_init__(self) -> None:
        m = self.bundle.manifest
        width, window = m.n_features, m.window
        self._row_shape = (width,)
        self._window_shape = (window, width)
        # predict_one's inputs, cast into one preallocated float32 buffer.
        self._buffer = np.zeros(width + window * width, dtype=np.float32)
        self._row = self._buffer[:width]
        self._window = self._buffer[width:].reshape(window, width)
        self._feed: dict[str, np.ndarray] = {
            "features": self._buffer[:width].reshape(1, width),
            "window": self._buffer[width:].reshape(1, window, width),
        }
        self._outputs = [o.name for o in self.session.get_outputs()]
        # The binding's own run: the Python wrapper re-validates the feed names on every call
        # (ours are fixed and checked against the graph once, in _check_graph) and, on an
        # execution-provider error, may silently move the session to another provider, which
        # would make ``providers`` untrue. Any other session object: its ``run``.
        inner = getattr(self.session, "_sess", None)
        self._run = inner.run if inner is not None else self.session.run
        self._lock = threading.Lock()  # the buffers serve one predict_one call at a time
        self._load, self._outputs_ok = _compiled()
        self._regimes = tuple(_frozen(np.array([r], dtype=np.int8)) for r in range(len(REGIMES)))
        self._evaluate = self.compiled.predict_one if self.compiled is not None else None
        self._provider = COMPILED_PROVIDER if self.compiled is not None else self._providers[0]
        self._install_weights(np.array(self.regime_weights, dtype=np.float32))

    @property
    def serving_provider(self) -> str:
        """What runs :meth:`predict_one`: ``COMPILED_PROVIDER`` or the session's first
        provider."""
        return self._provider

    def _install_weights(self, weights: np.ndarray) -> None:
        self.regime_weights = _frozen(weights)
        self._weight_rows = tuple(self.regime_weights[r : r + 1] for r in range(len(REGIMES)))
        # The compiled kernel takes writable float32 rows: private copies, never exposed.
        self._weight_vectors = tuple(np.array(self.regime_weights[r]) for r in range(len(REGIMES)))

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        feature_spec_hash: str,
        device: Device = "cpu",
        require_device: bool = False,
        intra_op_threads: int = 1,
        engine: Engine = "onnxruntime",
    ) -> "EnsembleRuntime":
        """Load and verify the bundle at ``path`` and start a session on ``device``.

        ``feature_spec_hash`` is the hash of the spec the caller computes features with;
        a bundle trained on another spec is refused. ``require_device=True`` turns a CUDA
        request that cannot be honoured into an error instead of a degraded CPU run.
        ``engine="compiled"`` serves :meth:`predict_one` with the Numba evaluator of the
        same graph (CPU only), see :meth:`from_bundle`.
        """
        bundle = load_bundle(path, feature_spec_hash=feature_spec_hash)
        return cls.from_bundle(
            bundle,
            device=device,
            require_device=require_device,
            intra_op_threads=intra_op_threads,
            engine=engine,
        )

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle,
        *,
        device: Device = "cpu",
        require_device: bool = False,
        intra_op_threads: int = 1,
        engine: Engine = "onnxruntime",
    ) -> "EnsembleRuntime":
        """Start a session for an already verified bundle.

        ``engine="compiled"``: the ONNX Runtime CPU session is still made (it serves
        :meth:`predict` batches), the graph is read into the compiled evaluator, and that
        evaluator must agree with the session within 1e-5 on the bundle's held-out rows
        (members, ensemble, confidence; batch N and batch 1) or :class:`EnsembleFailure`
        names the output and the difference. :meth:`predict_one` then runs the compiled
        evaluator and reports ``provider == "CompiledCPU"``. It is CPU-only: asking for
        ``device="cuda"`` with it is a ``ValueError``, never a silent CPU run.
        ``engine="auto"``: the compiled engine on the CPU, except for a graph it cannot read
        (a bundle exported before it existed), served by ONNX Runtime with the reason in
        :attr:`fallback`; ONNX Runtime on CUDA. A compiled engine that disagrees with the
        session is an error under either name.
        """
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if engine == "compiled" and device != "cpu":
            raise ValueError(
                f"engine='compiled' runs on the CPU only; device={device!r} needs "
                "engine='onnxruntime'"
            )
        session, reasons = _device_session(bundle, device, intra_op_threads)
        if reasons and require_device:
            raise EnsembleFailure("; ".join(reasons))
        m = bundle.manifest
        weights = np.array([m.regime_weights[r] for r in REGIMES], dtype=np.float32)
        status = RuntimeStatus("degraded", tuple(reasons)) if reasons else RuntimeStatus("ready")
        rule = RegimeRule.bind(m.regime_rule, m.feature_names)
        providers = tuple(session.get_providers())
        probe = cls(bundle, session, status, rule, weights, providers)
        probe._check_graph()
        if engine == "onnxruntime" or (engine == "auto" and device != "cpu"):
            return probe
        version = bundle.manifest.model_version
        try:
            compiled = CompiledEnsemble.from_bytes(bundle.graph, f"{version}: {GRAPH_FILE}")
        except CompiledGraphError as exc:
            if engine != "auto":
                raise EnsembleFailure(f"compiled engine: {exc}") from exc
            probe.fallback = f"compiled engine cannot read the graph ({exc}); ONNX Runtime serves"
            return probe
        parity = _checked_parity(compiled, session, probe)
        return cls(bundle, session, status, rule, weights, providers, compiled, parity)

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
        updated = self.regime_weights.copy()  # a new array: earlier Predictions keep theirs
        updated[regime] = w.astype(np.float32)
        self._install_weights(updated)

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
            r = self.regime_rule.classify_one(x[0])
            regime, weights = self._regimes[r], self._weight_rows[r]
        elif weights is None:
            regime = self.regime_rule.classify(x)
            weights = self.regime_weights[regime]
        else:
            regime = self.regime_rule.classify(x)
            weights = _as_input(weights, (4,), "weights")
            if weights.shape[0] != x.shape[0] or weights.min() < 0 or np.any(weights.sum(1) <= 0):
                raise EnsembleInputError("weights must be [N, 4], non-negative, each row > 0")
        try:
            members, ensemble, confidence = self._run(
                self._outputs, {"features": x, "window": w, "weights": weights}, None
            )
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise EnsembleFailure(f"{self.version}: session run failed: {exc}") from exc
        _check_probabilities(self.version, members, ensemble, confidence)
        return Prediction(
            members, ensemble, confidence, regime, weights, self._providers[0], self.version
        )

    def predict_one(self, row: np.ndarray, window: np.ndarray) -> Prediction:
        """One event: ``row`` [F] and its ``window`` [T, F] (oldest row first, the newest
        equal to ``row``), float32 or float64, contiguous or not (a view of a ring buffer).

        The same guarantees as :meth:`predict` at a fraction of its cost: one compiled loop
        casts both inputs into a preallocated float32 buffer and checks every value is finite
        (as float32: a float64 beyond its range is refused too), another checks the outputs.
        Returned arrays are never reused by later calls. One call at a time per runtime.
        """
        with self._lock:
            try:
                status = self._load(row, window, self._row, self._window)
            except TypeError:  # not float32/float64 arrays of one and two dimensions
                status = self._load_general(row, window)
            if status != _LOADED:
                self._refuse(status, row, window)
            r = self.regime_rule.classify_one(self._row)
            weights = self._weight_rows[r]
            if self._evaluate is None:
                feed = self._feed
                feed["weights"] = weights
                try:
                    members, ensemble, confidence = self._run(self._outputs, feed, None)
                except Exception as exc:  # ONNX Runtime raises its own exception types
                    raise EnsembleFailure(f"{self.version}: session run failed: {exc}") from exc
            else:
                try:
                    members, ensemble, confidence = self._evaluate(
                        self._row, self._window, self._weight_vectors[r]
                    )
                except Exception as exc:  # a kernel refusing its arguments
                    raise EnsembleFailure(f"{self.version}: compiled run failed: {exc}") from exc
        try:
            ok = self._outputs_ok(members, ensemble, confidence, _SUM_TOLERANCE)
        except TypeError:  # not float32 [1, 4, 3], [1, 3], [1]: the general check decides
            _check_probabilities(self.version, members, ensemble, confidence)
            ok = len(ensemble) == 1
        if not ok:
            raise EnsembleFailure(f"{self.version}: graph output is not a probability distribution")
        # A frozen dataclass's __init__ sets each field through object.__setattr__, about three
        # times the cost of filling the new instance's dict at once: same object, same fields.
        pred = _new(Prediction)
        pred.__dict__.update(
            members=members,
            ensemble=ensemble,
            confidence=confidence,
            regime=self._regimes[r],
            weights=weights,
            provider=self._provider,
            model_version=self.bundle.manifest.model_version,
        )
        return pred

    def _load_general(self, row: object, window: object) -> int:
        """The numpy path for inputs the compiled loop has no variant for (lists, float16,
        read-only arrays, wrong dimensions, other dtypes, refused here)."""
        try:
            row, window = np.asarray(row), np.asarray(window)
        except (ValueError, TypeError) as exc:  # ragged nested lists and the like
            raise EnsembleInputError(f"inputs are not arrays of numbers: {exc}") from exc
        if row.shape != self._row_shape or window.shape != self._window_shape:
            return _WRONG_SHAPE
        if row.dtype.kind != "f" or window.dtype.kind != "f":
            raise EnsembleInputError(
                f"expected floating point values, got {row.dtype} and {window.dtype}"
            )
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an overflowing cast is reported as non-finite
            self._row[...] = row
            self._window[...] = window
        return _LOADED if np.isfinite(self._buffer).all() else _NON_FINITE

    def _refuse(self, status: int, row: object, window: object) -> None:
        if status == _WRONG_SHAPE:
            raise EnsembleInputError(
                f"expected a row of shape {list(self._row_shape)} and a window of shape "
                f"{list(self._window_shape)}, got {list(np.shape(row))} and "
                f"{list(np.shape(window))}"
            )
        bad_row = int(self._row.size - np.isfinite(self._row).sum())
        bad_window = int(self._window.size - np.isfinite(self._window).sum())
        raise EnsembleInputError(
            f"non-finite values (NaN or inf, or too large for float32): {bad_row} in the "
            f"row, {bad_window} in the window"
        )


def _checked_parity(
    compiled: CompiledEnsemble, session: ort.InferenceSession, probe: "EnsembleRuntime"
) -> dict[str, float]:
    """``compiled`` against ``session`` on the held-out rows, with the regime weights each
    row would get in ``predict``; beyond the tolerance, :class:`EnsembleFailure`."""
    bundle = probe.bundle
    holdout = bundle.holdout()
    x, windows = holdout.features(), holdout.windows(bundle.manifest.window)
    weights = probe.regime_weights[probe.regime_rule.classify(x)]
    try:
        parity = check_parity(compiled, session, x, windows, weights)
    except AssertionError as exc:  # CompiledParityError, or no held-out rows
        raise EnsembleFailure(f"compiled engine: {exc}") from exc
    return parity


def _device_session(
    bundle: Bundle, device: Device, intra_op_threads: int
) -> tuple[ort.InferenceSession, list[str]]:
    """The session on ``device`` and the reasons it is degraded.

    On CUDA the session runs the graph rewritten in standard operators
    (:func:`~tapereader.core.models.tensor_graph.tensor_graph`: ONNX Runtime has no CUDA
    kernels for the tree, linear and scaler nodes), checked first against the original on
    the CPU and then, once CUDA really runs it, against the CPU on the held-out rows; a
    difference above 1e-5 serves the original graph on the CPU, degraded, with the numbers.
    """
    if device != "cuda" or CUDA not in ort.get_available_providers():
        return make_session(bundle.graph, device, intra_op_threads)
    import onnx  # only here: the CPU path parses no graph

    from .tensor_graph import TensorGraphError, tensor_graph

    version = bundle.manifest.model_version
    cpu, _ = make_session(bundle.graph, "cpu", intra_op_threads)
    try:
        rewritten = tensor_graph(onnx.load_from_string(bundle.graph)).SerializeToString()
    except TensorGraphError as exc:
        return cpu, [f"{version}: no CUDA graph ({exc}); running on the CPU"]
    rewritten_cpu, _ = make_session(rewritten, "cpu", intra_op_threads)
    worst = session_difference(cpu, rewritten_cpu, bundle)
    if worst > PARITY_TOLERANCE:
        return cpu, [f"{version}: CUDA graph differs on the CPU by {worst:.2e}; running on CPU"]
    session, reasons = make_session(rewritten, "cuda", intra_op_threads)
    if reasons:
        return cpu, reasons
    worst = session_difference(cpu, session, bundle)
    if worst > PARITY_TOLERANCE:
        return cpu, [f"{version}: CUDA results differ from the CPU's by {worst:.2e}; on CPU"]
    return session, []


def session_difference(
    reference: ort.InferenceSession, candidate: ort.InferenceSession, bundle: Bundle
) -> float:
    """The largest |difference| of any output of two sessions on the bundle's held-out rows
    (the manifest's weights on every row)."""
    holdout = bundle.holdout()
    x, windows = holdout.features(), holdout.windows(bundle.manifest.window)
    weights = np.broadcast_to(
        np.asarray(bundle.manifest.weights, np.float32), (len(x), len(MEMBERS))
    ).copy()
    feed = {"features": x, "window": windows, "weights": weights}
    got = zip(reference.run(None, feed), candidate.run(None, feed), strict=True)
    return max(float(np.abs(a - b).max()) for a, b in got)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


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
