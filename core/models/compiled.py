"""The merged ensemble graph evaluated by Numba kernels instead of ONNX Runtime.

At batch 1 ONNX Runtime costs 60-100 us per call on this machine (the session call, about a
microsecond per node, and its LSTM kernel), while the arithmetic of the ensemble is a few
microseconds. :class:`CompiledEnsemble` reads the *exported graph* (``ensemble.onnx``: node
attributes and initializers), not the native sklearn/XGBoost/torch objects, so what it serves
is exactly what was exported, checked, and scored; :func:`check_parity` compares it with an
ONNX Runtime CPU session of the same graph and raises beyond ``PARITY_TOLERANCE``.

What it implements (anything else in a graph is refused by name, see ``compiled_graph``):
LR as ``Scaler`` + ``LinearClassifier``; each tree ensemble as one
``TreeEnsembleClassifier`` (every branch mode, missing-value tracking, base values, the
``NONE``/``LOGISTIC``/``SOFTMAX``/``SOFTMAX_ZERO`` transforms, three or more classes); the
LSTM as Transpose/Sub/Mul/Clip/``LSTM`` (gates i, o, f, c; sigmoid, tanh, tanh)/Squeeze/
Gemm/Softmax; and the combination ``merge`` writes (clip, optional power 1/T, L1 per member,
L1 weights, weighted mean, confidence as the weighted sum of min(member, ensemble)).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import compiled_kernels as kernels
from .compiled_graph import CompiledGraphError, _onnx, pack, read_graph

__all__ = [
    "COMPILED_PROVIDER",
    "PARITY_TOLERANCE",
    "CompiledEnsemble",
    "CompiledGraphError",
    "CompiledParityError",
    "check_parity",
]

COMPILED_PROVIDER = "CompiledCPU"  # Prediction.provider when the compiled evaluator ran
PARITY_TOLERANCE = 1e-5  # the export's tolerance (replay.export.PARITY_TOLERANCE)
OUTPUTS = ("members", "ensemble", "confidence")
_F32 = np.float32
_empty = np.empty


class CompiledParityError(AssertionError):
    """The compiled evaluator disagrees with ONNX Runtime on the same graph and rows."""


@dataclass(frozen=True)
class CompiledEnsemble:
    """The merged graph's parameters in one array and the kernels that evaluate them."""

    params: np.ndarray = field(repr=False)  # see compiled_kernels: int32 header + segments
    n_features: int
    window: int
    n_members: int
    n_classes: int
    source: str

    @classmethod
    def from_model(cls, model: Any, source: str = "graph") -> "CompiledEnsemble":
        """Read an ``onnx.ModelProto`` of the merged graph; ``source`` names it in errors."""
        members, combination = read_graph(model, source)
        params = pack(members, combination)
        params.flags.writeable = False
        compiled = cls(
            params,
            combination["n_features"],
            combination["window"],
            combination["members"],
            combination["classes"],
            source,
        )
        # The public entry points take writable arrays: a private writable copy for kernels.
        object.__setattr__(compiled, "_params", np.array(params))
        return compiled

    @classmethod
    def from_bytes(cls, graph: bytes, source: str = "graph") -> "CompiledEnsemble":
        """Parse serialized ONNX bytes (a bundle's ``ensemble.onnx``)."""
        onnx = _onnx()
        try:
            model = onnx.load_from_string(graph)
        except Exception as exc:  # protobuf raises its own DecodeError
            raise CompiledGraphError(f"{source}: not an ONNX model: {exc}") from exc
        return cls.from_model(model, source)

    @classmethod
    def from_file(cls, path: str | Path) -> "CompiledEnsemble":
        """Read an ``ensemble.onnx`` file."""
        p = Path(path)
        return cls.from_bytes(p.read_bytes(), str(p))

    def predict_one(
        self, row: np.ndarray, window: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batch 1: ``row`` [F], ``window`` [T, F], ``weights`` [4], float32 C-contiguous
        (others are converted, slower). Fresh ``members`` [1, 4, 3], ``ensemble`` [1, 3],
        ``confidence`` [1] (float32), like the session's outputs. No finiteness check: the
        runtime does that before and after."""
        members = _empty((1, self.n_members, self.n_classes), _F32)
        ensemble = _empty((1, self.n_classes), _F32)
        confidence = _empty(1, _F32)
        try:
            kernels.evaluate_one(row, window, weights, self._params, members, ensemble, confidence)
        except TypeError:  # not float32 C-contiguous writable arrays: convert, then run
            kernels.evaluate_one(
                _f32(row, 1, "row"),
                _f32(window, 2, "window"),
                _f32(weights, 1, "weights"),
                self._params,
                members,
                ensemble,
                confidence,
            )
        return members, ensemble, confidence

    def predict(
        self, features: np.ndarray, windows: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batch N: ``features`` [N, F], ``windows`` [N, T, F], ``weights`` [N, 4]; returns
        ``members`` [N, 4, 3], ``ensemble`` [N, 3], ``confidence`` [N] (float32)."""
        x = _f32(features, 2, "features")
        w = _f32(windows, 3, "windows")
        wt = _f32(weights, 2, "weights")
        n = x.shape[0]
        members = _empty((n, self.n_members, self.n_classes), _F32)
        ensemble = _empty((n, self.n_classes), _F32)
        confidence = _empty(n, _F32)
        kernels.evaluate_batch(x, w, wt, self._params, members, ensemble, confidence)
        return members, ensemble, confidence


def _f32(a: Any, ndim: int, name: str) -> np.ndarray:
    arr = np.array(a, dtype=np.float32, order="C", copy=True) if not _fits(a) else a
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {list(arr.shape)}")
    return arr


def _fits(a: Any) -> bool:
    return (
        isinstance(a, np.ndarray)
        and a.dtype == np.float32
        and a.flags.c_contiguous
        and a.flags.writeable
    )


def check_parity(
    compiled: CompiledEnsemble,
    session: Any,
    features: np.ndarray,
    windows: np.ndarray,
    weights: np.ndarray,
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, float]:
    """Max |compiled - session| per output (``members``, ``ensemble``, ``confidence``) on
    the given rows, batch N and batch 1 (every row up to 256, so both entry points are
    checked); raises :class:`CompiledParityError` naming the output beyond ``tolerance``.

    ``session`` is an ONNX Runtime session of the same graph (anything with ``run``)."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    w = np.ascontiguousarray(windows, dtype=np.float32)
    wt = np.ascontiguousarray(weights, dtype=np.float32)
    if len(x) == 0:
        raise CompiledParityError(f"{compiled.source}: no rows to check parity on")
    expected = session.run(list(OUTPUTS), {"features": x, "window": w, "weights": wt})
    got = compiled.predict(x, w, wt)
    worst = {name: _diff(a, b) for name, a, b in zip(OUTPUTS, got, expected, strict=True)}
    for i in range(min(len(x), 256)):
        one = compiled.predict_one(x[i], w[i], wt[i])
        for name, a, b in zip(OUTPUTS, one, expected, strict=True):
            d = _diff(a[0], b[i])
            worst[name] = d if not d <= worst[name] else worst[name]  # keeps a NaN
    failed = [name for name in OUTPUTS if not worst[name] <= tolerance]  # NaN fails too
    if failed:
        name = failed[0]
        raise CompiledParityError(
            f"{compiled.source}: compiled evaluator differs from ONNX Runtime: {name} by "
            f"{worst[name]:.2e} (tolerance {tolerance:.0e}) over {len(x)} rows"
        )
    return worst


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    if np.shape(a) != np.shape(b):
        return float("inf")
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(d.max()) if not np.isnan(d).any() else float("nan")
