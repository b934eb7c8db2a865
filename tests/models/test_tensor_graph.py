"""The merged graph in standard operators (the CUDA path): same numbers, refused by name
where it cannot be rewritten, checked before it is served."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tapereader.core.models import runtime as rt
from tapereader.core.models.bundle import load_bundle
from tapereader.core.models.tensor_graph import TensorGraphError, tensor_graph

# Every operator the rewrite may leave: standard ones a CUDA provider is expected to have
# (not checked on a GPU here); anything new in the rewrite must be added here on purpose.
CUDA_OPS = {
    "Abs", "Add", "Cast", "Clip", "Concat", "Div", "Equal", "Gather", "Gemm", "Greater",
    "LSTM", "Less", "MatMul", "Min", "Mul", "Not", "Pow", "ReduceSum", "Reshape", "Sigmoid",
    "Softmax", "Squeeze", "Sub", "Transpose", "Unsqueeze",
}  # fmt: skip
CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def bundle(trained):
    return load_bundle(trained.path)


def _run(graph: bytes, feed: dict) -> list[np.ndarray]:
    return ort.InferenceSession(graph, providers=CPU).run(None, feed)


def test_the_rewritten_ensemble_gives_the_same_numbers_with_standard_operators(bundle) -> None:
    model = tensor_graph(onnx.load_from_string(bundle.graph))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= CUDA_OPS, sorted(ops - CUDA_OPS)
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    holdout = bundle.holdout()
    x = holdout.features()
    feed = {
        "features": x,
        "window": holdout.windows(bundle.manifest.window),
        "weights": np.random.default_rng(3).random((len(x), 4)).astype(np.float32) + 0.01,
    }
    for a, b in zip(_run(bundle.graph, feed), _run(model.SerializeToString(), feed), strict=True):
        assert np.abs(a - b).max() <= 1e-5


def _forest(mode: str, transform: str = "NONE", label_read: bool = False) -> onnx.ModelProto:
    """Two trees over 3 features, 3 classes, every internal node in ``mode``."""
    # tree 0: node0 f0 ? node1 : node2; node1 f1 ? leaf3 : leaf4; node2 leaf. tree 1: stump.
    tree = [0, 0, 0, 0, 0, 1, 1, 1]
    ids = [0, 1, 2, 3, 4, 0, 1, 2]
    modes = [mode, mode, "LEAF", "LEAF", "LEAF", mode, "LEAF", "LEAF"]
    feats = [0, 1, 0, 0, 0, 2, 0, 0]
    values = [0.5, 2.0, 0, 0, 0, 1.0, 0, 0]
    true_ids = [1, 3, 0, 0, 0, 1, 0, 0]
    false_ids = [2, 4, 0, 0, 0, 2, 0, 0]
    leaves = [(0, 2), (0, 3), (0, 4), (1, 1), (1, 2)]
    c_tree, c_node, c_id, c_w = [], [], [], []
    for k, (t, n) in enumerate(leaves):
        for c in range(3):
            c_tree.append(t), c_node.append(n), c_id.append(c), c_w.append(0.1 * k + 0.2 * c)
    node = helper.make_node(
        "TreeEnsembleClassifier", ["features"], ["label", "probabilities"], domain="ai.onnx.ml",
        nodes_treeids=tree, nodes_nodeids=ids, nodes_modes=modes, nodes_featureids=feats,
        nodes_values=values, nodes_truenodeids=true_ids, nodes_falsenodeids=false_ids,
        class_treeids=c_tree, class_nodeids=c_node, class_ids=c_id, class_weights=c_w,
        classlabels_int64s=[0, 1, 2], post_transform=transform, base_values=[0.05, -0.1, 0.0],
    )  # fmt: skip
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])]
    if label_read:
        outputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]))
    graph = helper.make_graph(
        [node], "forest",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])], outputs,
    )  # fmt: skip
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)],
        ir_version=8,
    )


MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transform", ["NONE", "SOFTMAX", "LOGISTIC"])
def test_each_branch_mode_and_transform_matches_onnx_runtime(mode: str, transform: str) -> None:
    model = _forest(mode, transform)
    rng = np.random.default_rng(0)
    # Values on the thresholds too, where LEQ and LT (EQ and NEQ) part ways.
    x = rng.choice([0.0, 0.5, 1.0, 2.0, 3.0], size=(400, 3)).astype(np.float32)
    x[:100] += rng.normal(0, 0.3, (100, 3)).astype(np.float32)
    feed = {"features": x}
    (want,) = _run(model.SerializeToString(), feed)
    got = _run(tensor_graph(model).SerializeToString(), feed)[0]
    assert np.abs(want - got).max() <= 1e-6


def test_what_it_cannot_rewrite_is_refused_by_name() -> None:
    mixed = _forest("BRANCH_LEQ")
    modes = next(a for a in mixed.graph.node[0].attribute if a.name == "nodes_modes")
    modes.strings[1] = b"BRANCH_LT"
    with pytest.raises(TensorGraphError, match="branch modes"):
        tensor_graph(mixed)
    with pytest.raises(TensorGraphError, match="label output 'label' is read"):
        tensor_graph(_forest("BRANCH_LEQ", label_read=True))
    normalizer = _forest("BRANCH_LEQ")
    normalizer.graph.node[0].op_type = "Normalizer"
    with pytest.raises(TensorGraphError, match="no tensor rewrite for Normalizer"):
        tensor_graph(normalizer)


def test_a_cuda_request_checks_the_rewrite_before_serving_it(bundle, monkeypatch) -> None:
    # This build has no CUDA: pretend it has, so the whole path runs up to the session,
    # which ONNX Runtime then starts on the CPU; the runtime must say so, not pretend.
    real = ort.get_available_providers
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real()])
    session, reasons = rt._device_session(bundle, "cuda", 1)
    assert session.get_providers() == CPU
    assert reasons and "CUDA requested but the session runs on CPUExecutionProvider" in reasons[0]

    def broken(model: onnx.ModelProto) -> onnx.ModelProto:
        out = tensor_graph(model)
        thresholds = next(i for i in out.graph.initializer if i.name.endswith("thresholds"))
        values = onnx.numpy_helper.to_array(thresholds) + 1.0  # every split moved
        thresholds.CopyFrom(onnx.numpy_helper.from_array(values, thresholds.name))
        return out

    monkeypatch.setattr("tapereader.core.models.tensor_graph.tensor_graph", broken)
    session, reasons = rt._device_session(bundle, "cuda", 1)
    assert session.get_providers() == CPU
    assert "CUDA graph differs on the CPU" in reasons[0]
