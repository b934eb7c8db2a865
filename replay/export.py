"""Export the four members to ONNX and merge them into one graph, checked against the natives.

The merged graph's inputs are ``features`` [N, F], ``window`` [N, T, F] and ``weights``
[N, 4] (float32); one run returns ``members`` [N, 4, 3] (calibrated member probabilities,
classes down/flat/up), ``ensemble`` [N, 3] (their weighted mean) and ``confidence`` [N]
(1 minus the weighted mean total-variation distance between each member and the ensemble:
1 when all agree, 0 when they are disjoint). Weights are an input so regime choice and
online adaptation never need a new graph.
"""

import io
import warnings
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

from .training import EPS, Members, mixture

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
    """Each member as its own ONNX model with input ``features`` or ``window``."""
    sk_types = [("features", FloatTensorType([None, n_features]))]
    opsets = {"": OPSET, "ai.onnx.ml": ML_OPSET}
    lr = convert_sklearn(
        m.lr,
        initial_types=sk_types,
        target_opset=opsets,
        options={id(m.lr.steps[-1][1]): {"zipmap": False}},
    )
    rf = convert_sklearn(
        m.rf, initial_types=sk_types, target_opset=opsets, options={id(m.rf): {"zipmap": False}}
    )
    xgb = convert_xgboost(
        m.xgb,
        initial_types=[("features", MLFloatTensorType([None, n_features]))],
        target_opset=OPSET,
    )
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The tracer warns about LSTM batch sizes and Python booleans; batch-1 vs batch-N
        # equality and parity are checked on the exported graph instead (tests/models).
        warnings.simplefilter("ignore")
        _export_lstm(m, window, n_features, buf)
    lstm = onnx.load_from_string(buf.getvalue())
    return {"lr": lr, "rf": rf, "xgb": xgb, "lstm": lstm}


def _export_lstm(m: Members, window: int, n_features: int, buf: io.BytesIO) -> None:
    torch.onnx.export(
        m.lstm.cpu().eval(),
        (torch.zeros(1, window, n_features),),
        buf,
        input_names=["window"],
        output_names=["probabilities"],
        dynamic_axes={"window": {0: "N"}, "probabilities": {0: "N"}},
        opset_version=OPSET,
        dynamo=False,  # the TorchScript exporter: exact dynamic batch axis, small graph
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
    """One graph running every member, its calibration, the weighted ensemble and confidence."""
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    inits += [
        _const("c_eps", np.array(EPS, np.float32)),
        _const("c_one", np.array(1.0, np.float32)),
        _const("c_half", np.array(0.5, np.float32)),
        _const("ax1", np.array([1], np.int64)),
        _const("ax2", np.array([2], np.int64)),
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
    # Calibration runs once over all members ([N, 4, 3]): at batch 1 every ONNX node costs
    # about a microsecond, so four per-member chains would cost more than the arithmetic.
    inv_t = (1.0 / np.asarray(temperatures, dtype=np.float64)).astype(np.float32)
    inits += [
        _const("inv_t", inv_t.reshape(1, len(MEMBERS), 1)),
        _const("members_shape", np.array([-1, len(MEMBERS), 3], np.int64)),
        _const("ens_shape", np.array([-1, 3], np.int64)),
        _const("conf_shape", np.array([-1], np.int64)),
    ]
    nodes += [
        helper.make_node("Concat", probs, ["raw_flat"], axis=1),
        helper.make_node("Reshape", ["raw_flat", "members_shape"], ["raw"]),
        helper.make_node("Clip", ["raw", "c_eps", "c_one"], ["raw_clip"]),
        helper.make_node("Log", ["raw_clip"], ["raw_log"]),
        helper.make_node("Mul", ["raw_log", "inv_t"], ["raw_scaled"]),
        helper.make_node("Softmax", ["raw_scaled"], ["members"], axis=-1),
        helper.make_node("ReduceSum", ["weights", "ax1"], ["w_sum"], keepdims=1),
        helper.make_node("Div", ["weights", "w_sum"], ["w_norm"]),
        helper.make_node("Unsqueeze", ["w_norm", "ax1"], ["w_row"]),  # [N, 1, 4]
        helper.make_node("MatMul", ["w_row", "members"], ["ens_row"]),  # [N, 1, 3]
        helper.make_node("Reshape", ["ens_row", "ens_shape"], ["ensemble"]),
        helper.make_node("Sub", ["members", "ens_row"], ["diff"]),
        helper.make_node("Abs", ["diff"], ["abs_diff"]),
        helper.make_node("ReduceSum", ["abs_diff", "ax2"], ["l1"], keepdims=1),  # [N, 4, 1]
        helper.make_node("MatMul", ["w_row", "l1"], ["l1_mean"]),  # [N, 1, 1]
        helper.make_node("Reshape", ["l1_mean", "conf_shape"], ["l1_flat"]),
        helper.make_node("Mul", ["l1_flat", "c_half"], ["tv"]),
        helper.make_node("Sub", ["c_one", "tv"], ["confidence"]),
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
            helper.make_tensor_value_info("members", f32, ["N", len(MEMBERS), 3]),
            helper.make_tensor_value_info("ensemble", f32, ["N", 3]),
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
