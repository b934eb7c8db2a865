"""The ensemble runtime on a bundle trained from real ticks: it serves or it refuses."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from tapereader.core.features.spec import SPEC
from tapereader.core.models.bundle import GRAPH, MANIFEST, BundleError, file_digests, load_bundle
from tapereader.core.models.runtime import (
    CPU,
    EnsembleFailure,
    EnsembleInputError,
    EnsembleRuntime,
)


@pytest.fixture
def runtime(trained) -> EnsembleRuntime:
    return EnsembleRuntime.open(trained.path, feature_spec_hash=SPEC.hash)


@pytest.fixture
def holdout(trained):
    return load_bundle(trained.path).holdout()


def test_serves_the_holdout_exactly_as_evaluated(runtime, holdout, trained) -> None:
    window = trained.manifest.window
    pred = runtime.predict(holdout.features(), holdout.windows(window))
    assert runtime.status.state == "ready" and runtime.providers == (CPU,) and pred.provider == CPU
    assert pred.members.shape == (len(holdout.labels), 4, 3)
    p = pred.ensemble[np.arange(len(holdout.labels)), holdout.labels].astype(np.float64)
    # The manifest's test log-loss was computed from the same graph with the same weights.
    assert -np.mean(np.log(p)) == pytest.approx(trained.manifest.metrics["test_log_loss"], abs=1e-6)
    assert np.allclose(pred.ensemble.sum(1), 1, atol=1e-5)
    assert set(np.unique(pred.regime)) <= {0, 1, 2}


def test_batch_one_equals_batch_n(runtime, holdout, trained) -> None:
    w = holdout.windows(trained.manifest.window)[:64]
    x = holdout.features()[:64]
    batch = runtime.predict(x, w)
    for i in (0, 17, 63):
        one = runtime.predict_one(x[i], w[i])
        assert np.abs(one.members[0] - batch.members[i]).max() < 1e-6
        assert np.abs(one.ensemble[0] - batch.ensemble[i]).max() < 1e-6
        assert one.confidence[0] == pytest.approx(batch.confidence[i], abs=1e-6)


def test_confidence_is_agreement(runtime, holdout, trained) -> None:
    x, w = holdout.features()[:32], holdout.windows(trained.manifest.window)[:32]
    only_lr = np.tile(np.array([1, 0, 0, 0], np.float32), (32, 1))
    pred = runtime.predict(x, w, weights=only_lr)
    # One member with all the weight agrees with itself: confidence 1, ensemble = that member.
    assert np.allclose(pred.confidence, 1.0, atol=1e-6)
    assert np.allclose(pred.ensemble, pred.members[:, 0], atol=1e-6)
    mixed = runtime.predict(x, w, weights=np.full((32, 4), 0.25, np.float32))
    tv = 0.5 * np.abs(mixed.members - mixed.ensemble[:, None, :]).sum(-1).mean(1)
    assert np.allclose(mixed.confidence, 1 - tv, atol=1e-5)


def test_regime_weights_are_used(runtime, holdout, trained) -> None:
    x, w = holdout.features()[:16], holdout.windows(trained.manifest.window)[:16]
    runtime.set_regime_weights(0, np.array([0, 0, 0, 1.0]))
    runtime.set_regime_weights(1, np.array([0, 0, 0, 1.0]))
    runtime.set_regime_weights(2, np.array([0, 0, 0, 1.0]))
    pred = runtime.predict(x, w)
    assert np.allclose(pred.ensemble, pred.members[:, 3], atol=1e-6)
    with pytest.raises(ValueError):
        runtime.set_regime_weights(0, np.array([0.5, 0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="regime must be"):
        runtime.set_regime_weights(-1, np.array([0, 0, 0, 1.0]))


def test_bad_inputs_raise_never_default(runtime, holdout, trained) -> None:
    x, w = holdout.features()[:4], holdout.windows(trained.manifest.window)[:4]
    with pytest.raises(EnsembleInputError, match="shape"):
        runtime.predict(x[:, :-1], w)
    with pytest.raises(EnsembleInputError, match="shape"):
        runtime.predict(x, w[:, 1:])
    bad = x.copy()
    bad[2, 5] = np.nan
    with pytest.raises(EnsembleInputError, match="non-finite"):
        runtime.predict(bad, w)
    with pytest.raises(EnsembleInputError):
        runtime.predict(x.astype(np.int64), w)
    with pytest.raises(EnsembleInputError):
        runtime.predict(x[:3], w)
    with pytest.raises(EnsembleInputError):
        runtime.predict(x, w, weights=np.zeros((4, 4), np.float32))


def test_cuda_request_on_this_machine_is_reported_not_hidden(trained) -> None:
    runtime = EnsembleRuntime.open(trained.path, feature_spec_hash=SPEC.hash, device="cuda")
    import onnxruntime as ort

    if "CUDAExecutionProvider" in runtime.providers:  # a real GPU: then it must be ready
        assert runtime.status.state == "ready"
        return
    assert runtime.status.state == "degraded"
    assert "CUDA requested" in runtime.status.reasons[0]
    assert runtime.providers == (CPU,)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(EnsembleFailure, match="CUDA"):
            EnsembleRuntime.open(
                trained.path, feature_spec_hash=SPEC.hash, device="cuda", require_device=True
            )


def test_refuses_other_feature_spec(trained) -> None:
    with pytest.raises(BundleError, match="feature spec"):
        EnsembleRuntime.open(trained.path, feature_spec_hash="0123456789abcdef")


def test_refuses_tampered_or_incomplete_bundle(bundle_copy: Path) -> None:
    graph = bundle_copy / GRAPH
    data = bytearray(graph.read_bytes())
    data[-10] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum"):
        EnsembleRuntime.open(bundle_copy, feature_spec_hash=SPEC.hash)
    graph.unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(bundle_copy)
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(bundle_copy.parent / "nowhere")


def _rewrite(folder: Path, graph: bytes, **manifest_changes) -> None:
    (folder / GRAPH).write_bytes(graph)
    manifest = json.loads((folder / MANIFEST).read_text())
    digests = file_digests(folder)
    manifest |= {"files": digests, "sha256": digests[GRAPH], **manifest_changes}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_failing_or_mismatched_graph_is_an_error(bundle_copy: Path) -> None:
    # A checksum-valid file that is not a graph: the session cannot start.
    _rewrite(bundle_copy, b"not an onnx graph")
    with pytest.raises(EnsembleFailure, match="session"):
        EnsembleRuntime.open(bundle_copy, feature_spec_hash=SPEC.hash)


def test_manifest_width_disagreeing_with_graph_is_refused(trained, bundle_copy: Path) -> None:
    model = onnx.load(trained.path / GRAPH)
    names = trained.manifest.feature_names
    _rewrite(bundle_copy, model.SerializeToString(), feature_names=[*names, "extra"])
    with pytest.raises(EnsembleFailure, match="disagree"):
        EnsembleRuntime.open(bundle_copy, feature_spec_hash=SPEC.hash)


def test_output_that_is_not_a_probability_is_a_failure() -> None:
    from tapereader.core.models.runtime import _check_probabilities

    members = np.full((2, 4, 3), 1 / 3, np.float32)
    ensemble = np.full((2, 3), 1 / 3, np.float32)
    conf = np.ones(2, np.float32)
    _check_probabilities("v", members, ensemble, conf)
    for broken in (np.where(members == members, np.nan, members), members * 0):
        with pytest.raises(EnsembleFailure, match="not a probability"):
            _check_probabilities("v", broken, ensemble, conf)
    with pytest.raises(EnsembleFailure):
        _check_probabilities("v", members, ensemble, conf * 1.5)


def test_silent_cuda_fallback_is_detected(trained, monkeypatch) -> None:
    # onnxruntime-gpu on a machine without a usable GPU lists CUDA as available, then gives
    # a CPU-only session without an error. Simulate exactly that: the provider is "available"
    # but the session cannot use it.
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", CPU])
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):  # ORT's own note, then CPU
        runtime = EnsembleRuntime.open(trained.path, feature_spec_hash=SPEC.hash, device="cuda")
    assert runtime.providers == (CPU,)
    assert runtime.status.state == "degraded"
    assert "session runs on CPUExecutionProvider" in runtime.status.reasons[0]
    with pytest.raises(EnsembleFailure, match="session runs on"), pytest.warns(UserWarning):
        EnsembleRuntime.open(
            trained.path, feature_spec_hash=SPEC.hash, device="cuda", require_device=True
        )
