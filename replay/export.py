"""Export the four members to ONNX and merge them into one graph, checked against the natives.

The merged graph's inputs are ``features`` [N, F], ``window`` [N, T, F] and ``weights``
[N, 4] (float32); one run returns ``members`` [N, 4, 3] (calibrated member probabilities,
classes down/flat/up), ``ensemble`` [N, 3] (their weighted mean) and ``confidence`` [N]
(1 minus the weighted mean total-variation distance between each member and the ensemble:
1 when all agree, 0 when they are disjoint). Weights are an input so regime choice and
online adaptation never need a new graph.
"""

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType as MLFloatTensorType
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from tapereader.core.models.bundle import MEMBERS

from .training import CLAMP, EPS, N_CLASSES, Members, mixture

OPSET = 15  # the newest opset onnxmltools converts XGBoost to
ML_OPSET = 3
IR_VERSION = 8  # opset 15 needs IR >= 8; ONNX Runtime 1.20+ reads it
PARITY_TOLERANCE = 1e-5


class ExportParityError(AssertionError):
    """The exported graph disagrees with the native models beyond the tolerance."""


@dataclass(frozen=True)
class Exported:
    """The merged graph, each member's own graph (for comparisons) and the parity found."""

    merged: onnx.ModelProto
    members: dict[str, onnx.ModelProto]
    parity: dict[str, float]


def member_graphs(m: Members, n_features: int, window: int) -> dict[str, onnx.ModelProto]:
    """Each member as its own ONNX model with input ``features`` or ``window`` and its class
    probabilities as the last output (``probabilities``).

    The random forest and XGBoost go through their converters (one tree-ensemble node each).
    Logistic regression and the LSTM are written node by node from the fitted parameters:
    the converters add nodes that cost about a microsecond each at batch 1 and compute
    nothing here (an L1 normaliser after a softmax; the LSTM's initial-state construction,
    full output sequence and transposes back).
    """
    sk_types = [("features", FloatTensorType([None, n_features]))]
    opsets = {"": OPSET, "ai.onnx.ml": ML_OPSET}
    rf = convert_sklearn(
        m.rf, initial_types=sk_types, target_opset=opsets, options={id(m.rf): {"zipmap": False}}
    )
    xgb = convert_xgboost(
        m.xgb,
        initial_types=[("features", MLFloatTensorType([None, n_features]))],
        target_opset=OPSET,
    )
    return {
        "lr": _lr_graph(m, n_features),
        "rf": rf,
        "xgb": xgb,
        "lstm": _lstm_graph(m, window, n_features),
    }


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: list[TensorProto],
    name: str,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        ir_version=IR_VERSION,
        producer_name="tapereader",
    )
    onnx.checker.check_model(model)
    return model


def _lr_graph(m: Members, n_features: int) -> onnx.ModelProto:
    """Standardisation (``Scaler``) and a softmax ``LinearClassifier``: two nodes.

    The scaler is not folded into the coefficients: with a feature whose mean is large
    against its spread, ``x * (w / s) - w * mean / s`` loses float32 digits that
    ``(x - mean) * (1 / s)`` keeps."""
    scaler, lr = m.lr.steps[0][1], m.lr.steps[-1][1]
    if lr.coef_.shape[0] != N_CLASSES:
        raise ValueError(f"logistic regression has {lr.coef_.shape[0]} rows, not {N_CLASSES}")
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node(
            "Scaler",
            ["features"],
            ["scaled"],
            domain="ai.onnx.ml",
            offset=[float(v) for v in scaler.mean_],
            scale=[float(v) for v in 1.0 / scaler.scale_],
        ),
        helper.make_node(
            "LinearClassifier",
            ["scaled"],
            ["label", "probabilities"],
            domain="ai.onnx.ml",
            coefficients=[float(v) for v in np.asarray(lr.coef_, np.float64).ravel()],
            intercepts=[float(v) for v in lr.intercept_],
            classlabels_ints=[int(c) for c in lr.classes_],
            multi_class=1,
            post_transform="SOFTMAX",
        ),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("features", f32, ["N", n_features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", f32, ["N", N_CLASSES]),
        ],
        [],
        "lr",
    )


def _lstm_graph(m: Members, window: int, n_features: int) -> onnx.ModelProto:
    """:class:`WindowLSTM` as eight nodes: Transpose to [T, N, F], standardise and clip,
    LSTM (final hidden state only), Squeeze, Gemm (the head), Softmax.

    ONNX Runtime's CPU LSTM only takes time-major input (``layout=0``), hence the transpose.
    Gates: torch stores them (input, forget, cell, output), ONNX (input, output, forget,
    cell); the parity check at export compares the result with torch."""
    lstm = m.lstm.cpu().eval()
    cell = lstm.lstm
    if cell.num_layers != 1 or cell.bidirectional or not cell.batch_first:
        raise ValueError("the exporter writes a single-layer, one-way, batch-first LSTM")
    hidden = cell.hidden_size
    order = np.concatenate([np.arange(hidden) + k * hidden for k in (0, 3, 1, 2)])

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32)

    w = numpy(cell.weight_ih_l0)[order][None]  # [1, 4H, F]
    r = numpy(cell.weight_hh_l0)[order][None]  # [1, 4H, H]
    b = np.concatenate([numpy(cell.bias_ih_l0)[order], numpy(cell.bias_hh_l0)[order]])[None]
    inits = [
        _const("mean", numpy(lstm.mean)),
        _const("inv_std", numpy(lstm.inv_std)),
        _const("lo", np.array(-CLAMP, np.float32)),
        _const("hi", np.array(CLAMP, np.float32)),
        _const("W", w),
        _const("R", r),
        _const("B", b),
        _const("ax0", np.array([0], np.int64)),
        _const("head_w", numpy(lstm.head.weight)),  # [3, H]
        _const("head_b", numpy(lstm.head.bias)),
    ]
    nodes = [
        helper.make_node("Transpose", ["window"], ["tnf"], perm=[1, 0, 2]),
        helper.make_node("Sub", ["tnf", "mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "inv_std"], ["scaled"]),
        helper.make_node("Clip", ["scaled", "lo", "hi"], ["clipped"]),
        helper.make_node("LSTM", ["clipped", "W", "R", "B"], ["", "h_last"], hidden_size=hidden),
        helper.make_node("Squeeze", ["h_last", "ax0"], ["h"]),  # [1, N, H] -> [N, H]
        helper.make_node("Gemm", ["h", "head_w", "head_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    f32 = TensorProto.FLOAT
    return _model(
        nodes,
        [helper.make_tensor_value_info("window", f32, ["N", window, n_features])],
        [helper.make_tensor_value_info("probabilities", f32, ["N", N_CLASSES])],
        inits,
        "lstm",
    )


def _probability_output(model: onnx.ModelProto) -> str:
    names = [o.name for o in model.graph.output]
    for name in names:
        if "prob" in name:
            return name
    raise ValueError(f"no probability output among {names}")


def _const(name: str, value: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def merge(
    graphs: dict[str, onnx.ModelProto], temperatures: np.ndarray, n_features: int, window: int
) -> onnx.ModelProto:
    """One graph running every member, its calibration, the weighted ensemble and confidence.

    At batch 1 every ONNX node costs about a microsecond whatever it computes, so the
    combination is written in as few nodes as the arithmetic allows (11, 12 with a
    temperature other than 1): calibration runs once over all members, as a power and an L1
    normalisation; the weights are normalised by one ``LpNormalization`` (they are
    non-negative; the runtime refuses others); and the confidence uses
    ``1 - TV(p, q) = sum(min(p, q))`` for distributions, which needs no Sub/Abs/Mul/Sub.
    """
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    inits += [
        _const("c_eps", np.array(EPS, np.float32)),
        _const("c_one", np.array(1.0, np.float32)),
        _const("ax1", np.array([1], np.int64)),
        _const("ax12", np.array([1, 2], np.int64)),
    ]
    probs: list[str] = []
    for name in MEMBERS:
        model = onnx.compose.add_prefix(graphs[name], f"{name}__")
        shared = "window" if name == "lstm" else "features"
        (source,) = [i.name for i in model.graph.input]
        for node in model.graph.node:
            node.input[:] = [shared if i == source else i for i in node.input]
        nodes += model.graph.node
        inits += model.graph.initializer
        probs.append(_probability_output(model))
    inits += [
        _const("members_shape", np.array([-1, len(MEMBERS), N_CLASSES], np.int64)),
        _const("ens_shape", np.array([-1, N_CLASSES], np.int64)),
    ]
    # softmax(log(clip(p)) / T) = clip(p)^(1/T) / sum(clip(p)^(1/T)): Clip, Pow, then an L1
    # normalisation per member; without the Pow when every temperature is 1.
    nodes += [
        helper.make_node("Concat", probs, ["raw_flat"], axis=1),  # [N, 12]
        helper.make_node("Clip", ["raw_flat", "c_eps", "c_one"], ["raw_clip"]),
    ]
    clipped = "raw_clip"
    inv_t = 1.0 / np.asarray(temperatures, dtype=np.float64)
    if np.any(inv_t != 1.0):
        exponents = np.repeat(inv_t, N_CLASSES).astype(np.float32).reshape(1, -1)
        inits.append(_const("inv_t", exponents))
        nodes.append(helper.make_node("Pow", ["raw_clip", "inv_t"], ["raw_pow"]))
        clipped = "raw_pow"
    nodes += [
        helper.make_node("Reshape", [clipped, "members_shape"], ["raw"]),  # [N, 4, 3]
        helper.make_node("LpNormalization", ["raw"], ["members"], axis=-1, p=1),
        helper.make_node("LpNormalization", ["weights"], ["w_norm"], axis=1, p=1),
        helper.make_node("Unsqueeze", ["w_norm", "ax1"], ["w_row"]),  # [N, 1, 4]
        helper.make_node("MatMul", ["w_row", "members"], ["ens_row"]),  # [N, 1, 3]
        helper.make_node("Reshape", ["ens_row", "ens_shape"], ["ensemble"]),
        helper.make_node("Min", ["members", "ens_row"], ["overlap"]),  # [N, 4, 3]
        helper.make_node("MatMul", ["w_row", "overlap"], ["w_overlap"]),  # [N, 1, 3]
        helper.make_node("ReduceSum", ["w_overlap", "ax12"], ["confidence"], keepdims=0),
    ]
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "tapereader_ensemble",
        [
            helper.make_tensor_value_info("features", f32, ["N", n_features]),
            helper.make_tensor_value_info("window", f32, ["N", window, n_features]),
            helper.make_tensor_value_info("weights", f32, ["N", len(MEMBERS)]),
        ],
        [
            helper.make_tensor_value_info("members", f32, ["N", len(MEMBERS), N_CLASSES]),
            helper.make_tensor_value_info("ensemble", f32, ["N", N_CLASSES]),
            helper.make_tensor_value_info("confidence", f32, ["N"]),
        ],
        initializer=inits,
    )
    merged = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        ir_version=IR_VERSION,
        producer_name="tapereader",
    )
    onnx.checker.check_model(merged)
    return merged


def export(m: Members, x: np.ndarray, windows: np.ndarray) -> Exported:
    """Export and merge, then check parity on held-out rows ``x`` [N, F], ``windows``
    [N, T, F]; raises :class:`ExportParityError` when any probability differs by more
    than ``PARITY_TOLERANCE`` from the native models."""
    n_features, window = x.shape[1], windows.shape[1]
    graphs = member_graphs(m, n_features, window)
    merged = merge(graphs, m.temperatures, n_features, window)
    parity = check_parity(merged, m, x, windows)
    return Exported(merged, graphs, parity)


def check_parity(
    merged: onnx.ModelProto, m: Members, x: np.ndarray, windows: np.ndarray
) -> dict[str, float]:
    """Max |graph - native| per member, for the ensemble and the confidence; raises on excess."""
    session = ort.InferenceSession(merged.SerializeToString(), providers=["CPUExecutionProvider"])
    weights = np.broadcast_to(m.weights.astype(np.float32), (len(x), len(MEMBERS))).copy()
    got_members, got_ens, got_conf = session.run(
        None, {"features": x, "window": windows, "weights": weights}
    )
    native = m.probabilities(x, windows)
    ens = mixture(native, m.weights)
    conf = 1 - 0.5 * np.einsum(
        "m,nm->n", m.weights / m.weights.sum(), np.abs(native - ens[:, None, :]).sum(-1)
    )
    parity = {
        name: float(np.abs(got_members[:, i] - native[:, i]).max())
        for i, name in enumerate(MEMBERS)
    }
    parity["ensemble"] = float(np.abs(got_ens - ens).max())
    parity["confidence"] = float(np.abs(got_conf - conf).max())
    worst = max(parity, key=parity.__getitem__)
    if parity[worst] > PARITY_TOLERANCE:
        raise ExportParityError(
            f"exported graph differs from the native models: {worst} by {parity[worst]:.2e} "
            f"(tolerance {PARITY_TOLERANCE:.0e}) over {len(x)} held-out rows"
        )
    return parity
