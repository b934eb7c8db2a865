"""Export: four members, one merged graph, parity with the natives checked at export."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tapereader.core.models.bundle import GRAPH, MEMBERS
from tapereader.replay.export import PARITY_TOLERANCE, ExportParityError, check_parity, export


def test_parity_was_checked_and_recorded(trained) -> None:
    m = trained.manifest.metrics
    for name in (*MEMBERS, "ensemble", "confidence"):
        assert 0 <= m[f"parity_{name}"] <= PARITY_TOLERANCE


def test_one_graph_with_the_documented_interface(trained) -> None:
    model = onnx.load(trained.path / GRAPH)
    assert [i.name for i in model.graph.input] == ["features", "window", "weights"]
    assert [o.name for o in model.graph.output] == ["members", "ensemble", "confidence"]
    ops = {n.op_type for n in model.graph.node}
    # All four members live in this one graph: linear, tree ensembles and the LSTM.
    assert {"LinearClassifier", "TreeEnsembleClassifier", "LSTM"} <= ops
    assert sum(n.op_type == "TreeEnsembleClassifier" for n in model.graph.node) == 2


def test_members_run_separately_agree_with_merged(trained) -> None:
    holdout = trained_holdout(trained)
    x, w = holdout.features()[:200], holdout.windows(trained.manifest.window)[:200]
    exported = export(trained.members, x, w)
    merged = ort.InferenceSession(
        exported.merged.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    weights = np.tile(trained.members.weights.astype(np.float32), (len(x), 1))
    got = merged.run(["members"], {"features": x, "window": w, "weights": weights})[0]
    raw = trained.members.raw_probabilities(x, w)
    for i, name in enumerate(MEMBERS):
        s = ort.InferenceSession(
            exported.members[name].SerializeToString(), providers=["CPUExecutionProvider"]
        )
        feed = {"window": w} if name == "lstm" else {"features": x}
        outs = s.run(None, feed)
        prob = outs[-1] if name != "lstm" else outs[0]
        assert np.abs(prob - raw[:, i]).max() < 1e-5
        if trained.members.temperatures[i] == 1.0:
            assert np.abs(got[:, i] - prob).max() < 1e-5


def test_parity_check_catches_a_graph_that_differs(trained) -> None:
    holdout = trained_holdout(trained)
    x, w = holdout.features()[:300], holdout.windows(trained.manifest.window)[:300]
    exported = export(trained.members, x, w)
    members = trained.members
    saved = members.temperatures.copy()
    try:
        members.temperatures = saved * 1.5  # the natives change, the graph does not
        with pytest.raises(ExportParityError, match="differs"):
            check_parity(exported.merged, members, x, w)
    finally:
        members.temperatures = saved


def trained_holdout(trained):
    from tapereader.core.models.bundle import load_bundle

    return load_bundle(trained.path).holdout()


def test_merged_graph_is_lean(trained) -> None:
    # At batch 1 each node costs about a microsecond: the converters' extra nodes (an L1
    # normaliser after a softmax, the LSTM's initial-state construction and output
    # reshuffling) are not in the graph, and the combination is 11 nodes (12 with a Pow).
    model = onnx.load(trained.path / GRAPH)
    ops = [n.op_type for n in model.graph.node]
    assert not {"Normalizer", "ConstantOfShape", "Shape", "Gather", "Einsum"} & set(ops)
    assert ops.count("LSTM") == 1 and ops.count("Transpose") == 1
    assert len(ops) <= 4 + 8 + 12  # LR 2, RF 1, XGB 1; LSTM 8; combination <= 12


def test_temperatures_other_than_one_are_in_the_graph(trained) -> None:
    holdout = trained_holdout(trained)
    x, w = holdout.features()[:300], holdout.windows(trained.manifest.window)[:300]
    members = trained.members
    saved = members.temperatures.copy()
    try:
        members.temperatures = np.array([0.8, 1.3, 1.0, 2.0])
        exported = export(members, x, w)  # raises ExportParityError when the graph differs
    finally:
        members.temperatures = saved
    assert "Pow" in {n.op_type for n in exported.merged.graph.node}
    assert max(exported.parity.values()) <= PARITY_TOLERANCE


def test_hand_written_lstm_matches_torch_on_extreme_inputs(trained) -> None:
    # Inputs far outside the training range exercise the clip at +-CLAMP standard deviations.
    import torch

    from tapereader.replay.export import member_graphs

    m = trained.manifest
    graph = member_graphs(trained.members, m.n_features, m.window)["lstm"]
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    base = trained_holdout(trained).windows(m.window)[:64]
    windows = (base * rng.choice([1.0, 1e3, -1e3], size=base.shape)).astype(np.float32)
    with torch.no_grad():
        native = trained.members.lstm(torch.from_numpy(windows)).numpy()
    (got,) = session.run(None, {"window": windows})
    assert np.abs(got - native).max() < 1e-5
