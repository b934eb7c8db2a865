"""The compiled evaluator against ONNX Runtime on the same graphs: real bundles, synthetic
tree ensembles, refused graphs, and the runtime's compiled engine."""

import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from tapereader.core.features.spec import SPEC
from tapereader.core.models.bundle import load_bundle
from tapereader.core.models.compiled import (
    COMPILED_PROVIDER,
    PARITY_TOLERANCE,
    CompiledEnsemble,
    CompiledGraphError,
    CompiledParityError,
    check_parity,
)
from tapereader.core.models.runtime import CPU, EnsembleFailure, EnsembleRuntime
from tapereader.replay import export


@pytest.fixture(scope="module")
def bundle(trained):
    return load_bundle(trained.path)


@pytest.fixture(scope="module")
def rows(bundle):
    h = bundle.holdout()
    x, w = h.features(), h.windows(bundle.manifest.window)
    rng = np.random.default_rng(3)
    weights = rng.dirichlet(np.ones(4), size=len(x)).astype(np.float32)
    return x, w, weights


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=[CPU])


def _ort(model, x, w, weights):
    return _session(model).run(None, {"features": x, "window": w, "weights": weights})


def test_tolerance_is_the_exports() -> None:
    assert PARITY_TOLERANCE == export.PARITY_TOLERANCE


def test_parity_on_held_out_rows_batch_and_one(bundle, rows) -> None:
    x, w, weights = rows
    model = onnx.load_from_string(bundle.graph)
    assert any(n.op_type == "Pow" for n in model.graph.node)  # temperatures != 1 here
    compiled = CompiledEnsemble.from_bytes(bundle.graph, "ensemble.onnx")
    expected = _ort(model, x, w, weights)
    got = compiled.predict(x, w, weights)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == np.float32 and a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-5
    for i in range(0, len(x), max(1, len(x) // 50)):
        one = compiled.predict_one(x[i], w[i], weights[i])
        assert [o.shape for o in one] == [(1, 4, 3), (1, 3), (1,)]
        for a, b in zip(one, expected, strict=True):
            assert np.abs(a[0] - b[i]).max() <= 1e-5
    parity = check_parity(compiled, _session(model), x, w, weights)
    assert set(parity) == {"members", "ensemble", "confidence"}
    assert max(parity.values()) <= 1e-5


def test_parity_without_the_power_node(bundle, rows) -> None:
    # Every temperature 1: merge writes no Pow; the reshape reads the clip directly.
    model = onnx.load_from_string(bundle.graph)
    (pow_node,) = [n for n in model.graph.node if n.op_type == "Pow"]
    for node in model.graph.node:
        node.input[:] = [pow_node.input[0] if i == pow_node.output[0] else i for i in node.input]
    model.graph.node.remove(pow_node)
    x, w, weights = rows
    compiled = CompiledEnsemble.from_model(model)
    expected = _ort(model, x, w, weights)
    for a, b in zip(compiled.predict(x, w, weights), expected, strict=True):
        assert np.abs(a - b).max() <= 1e-5
    with_pow = CompiledEnsemble.from_bytes(bundle.graph).predict(x, w, weights)
    assert np.abs(with_pow[0] - expected[0]).max() > 1e-4  # the power does change members


def test_a_wrong_evaluator_fails_the_parity_check(bundle, rows, monkeypatch) -> None:
    x, w, weights = rows
    compiled = CompiledEnsemble.from_bytes(bundle.graph)
    real = CompiledEnsemble.predict

    def off(self, *args):
        members, ensemble, confidence = real(self, *args)
        return members, ensemble + 2e-5, confidence

    monkeypatch.setattr(CompiledEnsemble, "predict", off)
    with pytest.raises(CompiledParityError, match="ensemble by 2"):
        check_parity(compiled, _session(onnx.load_from_string(bundle.graph)), x, w, weights)


# Synthetic tree ensembles in place of the random forest's node, compared with ONNX Runtime
# on member 1 (the random forest's calibrated probabilities).

MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def _random_trees(rng, x: np.ndarray, n_trees: int, depth: int, post: str, base: bool) -> dict:
    """Full binary trees; thresholds are values of the rows (so EQ/NEQ and the boundaries
    of LEQ/LT/GTE/GT are really hit), leaves vote for random classes with signed weights."""
    attrs: dict[str, list] = {
        k: []
        for k in [
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "class_treeids",
            "class_nodeids",
            "class_ids",
            "class_weights",
        ]
    }
    for t in range(n_trees):
        n_internal = 2**depth - 1
        for node in range(2 ** (depth + 1) - 1):
            attrs["nodes_treeids"].append(t)
            attrs["nodes_nodeids"].append(node)
            if node < n_internal:
                f = int(rng.integers(x.shape[1]))
                attrs["nodes_featureids"].append(f)
                attrs["nodes_values"].append(float(x[rng.integers(len(x)), f]))
                attrs["nodes_modes"].append(MODES[(t + node) % len(MODES)])
                attrs["nodes_truenodeids"].append(2 * node + 1)
                attrs["nodes_falsenodeids"].append(2 * node + 2)
                attrs["nodes_missing_value_tracks_true"].append(int(rng.integers(2)))
            else:
                attrs["nodes_featureids"].append(0)
                attrs["nodes_values"].append(0.0)
                attrs["nodes_modes"].append("LEAF")
                attrs["nodes_truenodeids"].append(0)
                attrs["nodes_falsenodeids"].append(0)
                attrs["nodes_missing_value_tracks_true"].append(0)
                for c in rng.choice(3, size=int(rng.integers(1, 4)), replace=False):
                    attrs["class_treeids"].append(t)
                    attrs["class_nodeids"].append(node)
                    attrs["class_ids"].append(int(c))
                    attrs["class_weights"].append(float(rng.normal(0.3, 0.5)))
    attrs["classlabels_int64s"] = [0, 1, 2]
    attrs["post_transform"] = post
    if base:
        attrs["base_values"] = [float(v) for v in rng.normal(0, 0.5, 3)]
    return attrs


def _replace_rf(model: onnx.ModelProto, attrs: dict) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    (node,) = [n for n in model.graph.node if n.name == "rf__TreeEnsembleClassifier"]
    del node.attribute[:]
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    return model


@pytest.mark.parametrize(
    ("post", "base", "nan"),
    [
        ("NONE", False, False),
        ("NONE", True, True),
        ("LOGISTIC", True, False),
        ("SOFTMAX", True, True),
        ("SOFTMAX", False, False),
        ("SOFTMAX_ZERO", False, True),
    ],
)
def test_synthetic_tree_ensembles_match_onnxruntime(bundle, rows, post, base, nan) -> None:
    x, w, weights = (a[:300] for a in rows)
    # A fixed seed per case: hash() of a str tuple changes with every interpreter.
    rng = np.random.default_rng(zlib.crc32(repr((post, base, nan)).encode()))
    attrs = _random_trees(rng, x, n_trees=7, depth=4, post=post, base=base)
    model = _replace_rf(onnx.load_from_string(bundle.graph), attrs)
    if nan:  # missing values: the other members turn NaN too, the trees must not
        x = x.copy()
        x[rng.random(x.shape) < 0.2] = np.nan
    compiled = CompiledEnsemble.from_model(model)
    expected = _ort(model, x, w, weights)[0][:, 1]
    got = compiled.predict(x, w, weights)[0][:, 1]
    assert np.isfinite(expected).all()
    assert np.abs(got - expected).max() <= 1e-6
    for i in range(0, len(x), 37):
        one = compiled.predict_one(x[i], w[i], weights[i])[0][0, 1]
        assert np.abs(one - expected[i]).max() <= 1e-6
    # The trees must really branch: different rows, different probabilities.
    assert len(np.unique(expected.round(6), axis=0)) > 10


def test_missing_value_tracking_decides_the_branch(bundle, rows) -> None:
    # One stump on feature 0: NaN goes left only when tracked; with x < t both go left.
    x, w, weights = (a[:4] for a in rows)
    results = []
    for track in (0, 1):
        attrs = {
            "nodes_treeids": [0, 0, 0],
            "nodes_nodeids": [0, 1, 2],
            "nodes_featureids": [0, 0, 0],
            "nodes_values": [1e9, 0.0, 0.0],
            "nodes_modes": ["BRANCH_LEQ", "LEAF", "LEAF"],
            "nodes_truenodeids": [1, 0, 0],
            "nodes_falsenodeids": [2, 0, 0],
            "nodes_missing_value_tracks_true": [track, 0, 0],
            "class_treeids": [0, 0],
            "class_nodeids": [1, 2],
            "class_ids": [0, 2],
            "class_weights": [0.9, 0.9],
            "classlabels_int64s": [0, 1, 2],
            "post_transform": "SOFTMAX",
        }
        model = _replace_rf(onnx.load_from_string(bundle.graph), attrs)
        xn = x.copy()
        xn[:2, 0] = np.nan
        expected = _ort(model, xn, w, weights)[0][:, 1]
        got = CompiledEnsemble.from_model(model).predict(xn, w, weights)[0][:, 1]
        assert np.abs(got - expected).max() <= 1e-6
        results.append(got)
    assert np.argmax(results[0][0]) == 2 and np.argmax(results[1][0]) == 0  # NaN rows
    assert np.argmax(results[0][3]) == 0 and np.argmax(results[1][3]) == 0  # finite rows


# Graphs the evaluator does not implement are refused by name.


def test_unknown_node_is_refused_by_name(bundle) -> None:
    model = onnx.load_from_string(bundle.graph)
    model.graph.node.append(helper.make_node("Relu", ["features"], ["stray"], name="stray_relu"))
    with pytest.raises(CompiledGraphError, match=r"Relu 'stray_relu'.*not part of the ensemble"):
        CompiledEnsemble.from_model(model, "ensemble.onnx")


def test_unsupported_op_attribute_and_transform_are_refused(bundle) -> None:
    model = onnx.load_from_string(bundle.graph)
    softmax = next(n for n in model.graph.node if n.output[0] == "lstm__probabilities")
    softmax.op_type = "LogSoftmax"
    with pytest.raises(CompiledGraphError, match="LogSoftmax is not supported"):
        CompiledEnsemble.from_model(model)
    model = onnx.load_from_string(bundle.graph)
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    lstm.attribute.append(helper.make_attribute("clip", 3.0))
    with pytest.raises(CompiledGraphError, match=r"LSTM.*attribute 'clip' is not supported"):
        CompiledEnsemble.from_model(model)
    model = onnx.load_from_string(bundle.graph)
    trees = next(n for n in model.graph.node if n.name == "xgb__TreeEnsembleClassifier")
    for a in trees.attribute:
        if a.name == "post_transform":
            a.s = b"PROBIT"
    with pytest.raises(CompiledGraphError, match=r"xgb__TreeEnsembleClassifier.*PROBIT"):
        CompiledEnsemble.from_model(model)
    model = onnx.load_from_string(bundle.graph)
    init = next(t for t in model.graph.initializer if t.name == "members_shape")
    init.CopyFrom(numpy_helper.from_array(np.array([-1, 12], np.int64), "members_shape"))
    with pytest.raises(CompiledGraphError, match=r"Reshape.*not supported"):
        CompiledEnsemble.from_model(model)


# The runtime's compiled engine.


def test_runtime_compiled_engine_equals_onnxruntime_engine(trained, rows) -> None:
    ort_rt = EnsembleRuntime.open(trained.path, feature_spec_hash=SPEC.hash)
    comp_rt = EnsembleRuntime.open(trained.path, feature_spec_hash=SPEC.hash, engine="compiled")
    assert comp_rt.status.state == "ready" and comp_rt.status.reasons == ()
    assert comp_rt.providers == (CPU,)  # the session (it serves predict batches)
    assert max(comp_rt.parity.values()) <= 1e-5 and ort_rt.parity == {}
    x, w, _ = rows
    for i in range(0, len(x), max(1, len(x) // 40)):
        a, b = comp_rt.predict_one(x[i], w[i]), ort_rt.predict_one(x[i], w[i])
        assert a.provider == COMPILED_PROVIDER and b.provider == CPU
        assert np.abs(a.members - b.members).max() <= 1e-5
        assert np.abs(a.ensemble - b.ensemble).max() <= 1e-5
        assert np.abs(a.confidence - b.confidence).max() <= 1e-5
        assert a.regime[0] == b.regime[0] and np.array_equal(a.weights, b.weights)
        strided = np.repeat(w[i].astype(np.float64), 2, axis=0)[::2]
        c = comp_rt.predict_one(x[i].astype(np.float64), strided)
        assert np.array_equal(c.ensemble, a.ensemble)
    assert comp_rt.predict(x[:8], w[:8]).provider == CPU  # batches: ONNX Runtime, said so
    bad = x[0].copy()
    bad[3] = np.nan
    from tapereader.core.models.runtime import EnsembleInputError

    with pytest.raises(EnsembleInputError, match="1 in the row"):
        comp_rt.predict_one(bad, w[0])
    comp_rt.set_regime_weights(0, np.array([0, 0, 0, 1.0]))
    comp_rt.set_regime_weights(1, np.array([0, 0, 0, 1.0]))
    comp_rt.set_regime_weights(2, np.array([0, 0, 0, 1.0]))
    one = comp_rt.predict_one(x[0], w[0])
    assert np.abs(one.ensemble[0] - one.members[0, 3]).max() <= 1e-6


def test_runtime_compiled_engine_refuses_cuda_and_parity_failure(trained, monkeypatch) -> None:
    with pytest.raises(ValueError, match="CPU only"):
        EnsembleRuntime.open(
            trained.path, feature_spec_hash=SPEC.hash, engine="compiled", device="cuda"
        )
    with pytest.raises(ValueError, match="engine must be"):
        EnsembleRuntime.open(trained.path, feature_spec_hash=SPEC.hash, engine="tvm")  # type: ignore[arg-type]
    real = CompiledEnsemble.predict

    def off(self, *args):
        members, ensemble, confidence = real(self, *args)
        return members, ensemble, confidence - 1e-3

    monkeypatch.setattr(CompiledEnsemble, "predict", off)
    with pytest.raises(EnsembleFailure, match=r"confidence by 1.00e-03"):
        EnsembleRuntime.open(trained.path, feature_spec_hash=SPEC.hash, engine="compiled")


def test_runtime_compiled_engine_refuses_a_graph_it_cannot_read(trained, bundle_copy) -> None:
    from tests.models.test_runtime import _rewrite

    model = onnx.load(trained.path / "ensemble.onnx")
    model.graph.node.append(helper.make_node("Relu", ["features"], ["stray"], name="stray"))
    _rewrite(bundle_copy, model.SerializeToString())
    EnsembleRuntime.open(bundle_copy, feature_spec_hash=SPEC.hash)  # ONNX Runtime serves it
    with pytest.raises(EnsembleFailure, match=r"compiled engine: .*Relu 'stray'"):
        EnsembleRuntime.open(bundle_copy, feature_spec_hash=SPEC.hash, engine="compiled")
