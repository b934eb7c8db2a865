"""The ensemble runtime on a bundle trained from real ticks: it serves or it refuses."""

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

from tapereader.core.features.spec import SPEC
from tapereader.core.models.bundle import (
    GRAPH,
    MANIFEST,
    REGIMES,
    BundleError,
    file_digests,
    load_bundle,
)
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


# predict_one: the per-tick path (preallocated buffer, one-sum finiteness check).


def test_predict_one_matches_batch_for_every_input_layout(runtime, holdout, trained) -> None:
    t = trained.manifest.window
    x, w = holdout.features()[:48], holdout.windows(t)[:48]
    batch = runtime.predict(x, w)
    # A SignalActor's window is a view of a ring buffer: float64 and not contiguous.
    ring = np.zeros((2 * t + 3, x.shape[1]), dtype=np.float64)
    for i in (0, 5, 47):
        ring[3 : 3 + t] = w[i]
        view = ring[3 : 3 + t]
        strided = np.repeat(w[i], 2, axis=0)[::2]  # same values, row stride doubled
        for row, window in (
            (x[i], w[i]),
            (x[i].astype(np.float64), view),
            (x[i], strided),
            (list(x[i]), w[i].tolist()),
            (x[i], _read_only(w[i])),  # no compiled variant: the numpy path
        ):
            one = runtime.predict_one(row, window)
            assert one.members.shape == (1, 4, 3) and one.ensemble.shape == (1, 3)
            assert one.confidence.shape == (1,) and one.weights.shape == (1, 4)
            assert np.abs(one.members[0] - batch.members[i]).max() < 1e-6
            assert np.abs(one.ensemble[0] - batch.ensemble[i]).max() < 1e-6
            assert abs(float(one.confidence[0]) - float(batch.confidence[i])) < 1e-6
            assert one.regime[0] == batch.regime[i]
            assert np.array_equal(one.weights[0], batch.weights[i])
            assert one.provider == CPU and one.model_version == trained.manifest.model_version


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def test_predict_one_refuses_bad_inputs(runtime, holdout, trained) -> None:
    x, w = holdout.features()[3], holdout.windows(trained.manifest.window)[3]
    for bad_row, bad_window in (
        (x[:-1], w),
        (x, w[1:]),
        (x, w[:, :-1]),
        (x[None, :], w),
        (x, w[None]),
    ):
        with pytest.raises(EnsembleInputError, match="shape"):
            runtime.predict_one(bad_row, bad_window)
    with pytest.raises(EnsembleInputError, match="floating point"):
        runtime.predict_one(x.astype(np.int64), w)
    with pytest.raises(EnsembleInputError, match="not arrays"):
        runtime.predict_one(x, [[1.0, 2.0], [3.0]])
    with pytest.raises(EnsembleInputError, match="floating point"):
        runtime.predict_one(x, w.astype(np.int32))
    for value in (np.nan, np.inf, -np.inf):
        row = x.copy()
        row[4] = value
        with pytest.raises(EnsembleInputError, match="1 in the row, 0 in the window"):
            runtime.predict_one(row, w)
        window = w.astype(np.float64)
        window[0, 7] = value
        with pytest.raises(EnsembleInputError, match="0 in the row, 1 in the window"):
            runtime.predict_one(x, window)
    # inf and -inf together: their sum is NaN, still refused.
    window = w.copy()
    window[1, 1], window[2, 2] = np.inf, -np.inf
    with pytest.raises(EnsembleInputError, match="non-finite"):
        runtime.predict_one(x, window)
    # Finite in float64 but not in float32 (what the graph would see): refused too.
    row = x.astype(np.float64)
    row[0] = 1e300
    with pytest.raises(EnsembleInputError, match="1 in the row, 0 in the window"):
        runtime.predict_one(row, w)
    # With warnings as errors (numpy warns about inf - inf and overflowing casts) it is still
    # an input error, on the compiled path and on the numpy one (float16, read-only arrays).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(EnsembleInputError, match="non-finite"):
            runtime.predict_one(x, window)
        with pytest.raises(EnsembleInputError, match="non-finite"):
            runtime.predict_one(row, w)
        frozen = window.copy()
        frozen.flags.writeable = False
        with pytest.raises(EnsembleInputError, match="non-finite"):
            runtime.predict_one(x, frozen)
        half = np.clip(w, -6e4, 6e4).astype(np.float16)
        half[2, 3] = np.nan
        with pytest.raises(EnsembleInputError, match="0 in the row, 1 in the window"):
            runtime.predict_one(np.clip(x, -6e4, 6e4).astype(np.float16), half)
    # A refused call leaves nothing behind: the next good call gives the batch numbers.
    good = runtime.predict_one(x, w)
    ref = runtime.predict(x[None], w[None])
    assert np.abs(good.ensemble - ref.ensemble).max() < 1e-6


def test_predict_one_huge_finite_values_are_not_called_non_finite(runtime, holdout, trained):
    # Finite float32 values whose float32 sum overflows are finite: whatever the model makes
    # of such a row, it is not an input error.
    x, w = holdout.features()[3].copy(), holdout.windows(trained.manifest.window)[3].copy()
    col = trained.manifest.feature_names.index("stoch_k_14")
    x[col] = w[-1, col] = w[-2, col] = 3e38
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.float32(x[col]) + np.float32(w[-1, col]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pred = runtime.predict_one(x, w)
    except EnsembleFailure:
        return  # the graph's output was refused: allowed, never a default
    assert np.isfinite(pred.ensemble).all()


def test_predict_one_results_are_not_reused(runtime, holdout, trained) -> None:
    t = trained.manifest.window
    x, w = holdout.features()[:2], holdout.windows(t)[:2]
    first = runtime.predict_one(x[0], w[0])
    kept = (first.members.copy(), first.ensemble.copy(), first.confidence.copy())
    kept_weights = first.weights.copy()
    runtime.predict_one(x[1], w[1])
    runtime.set_regime_weights(int(first.regime[0]), np.array([0.1, 0.2, 0.3, 0.4]))
    assert np.array_equal(first.members, kept[0]) and np.array_equal(first.ensemble, kept[1])
    assert np.array_equal(first.confidence, kept[2])
    assert np.array_equal(first.weights, kept_weights)  # what was used, not what is now set
    again = runtime.predict_one(x[0], w[0])
    assert np.allclose(again.weights[0], [0.1, 0.2, 0.3, 0.4])
    # The weights are replaced, never written in place: a direct write is refused.
    with pytest.raises(ValueError, match="read-only"):
        runtime.regime_weights[0, 0] = 1.0


def test_predict_one_prediction_is_a_plain_prediction(runtime, holdout, trained) -> None:
    from dataclasses import asdict, fields

    from tapereader.core.models.runtime import Prediction

    # predict_one fills a new Prediction's dict directly (cheaper than the frozen __init__):
    # it must be the very same kind of object, with every field and nothing else.
    x, w = holdout.features()[0], holdout.windows(trained.manifest.window)[0]
    one = runtime.predict_one(x, w)
    assert type(one) is Prediction
    assert set(vars(one)) == {f.name for f in fields(Prediction)}
    same = Prediction(**{f.name: getattr(one, f.name) for f in fields(Prediction)})
    assert asdict(one).keys() == asdict(same).keys() and repr(one) == repr(same)
    assert one.regime_names() == [REGIMES[int(one.regime[0])]]
    with pytest.raises(AttributeError):
        one.provider = "other"  # type: ignore[misc]  # still frozen


class _Session:
    """A real session's metadata with a replaced ``run`` (no ``_sess``: the runtime uses
    ``run``)."""

    def __init__(self, real, run) -> None:
        self._real, self.run = real, run

    def get_inputs(self):
        return self._real.get_inputs()

    def get_outputs(self):
        return self._real.get_outputs()

    def get_providers(self):
        return self._real.get_providers()


def test_predict_one_session_failure_and_bad_output_are_failures(runtime, holdout, trained):
    from dataclasses import replace

    x, w = holdout.features()[0], holdout.windows(trained.manifest.window)[0]

    def boom(*_args):
        raise RuntimeError("device lost")

    broken = replace(runtime, session=_Session(runtime.session, boom))
    with pytest.raises(EnsembleFailure, match="session run failed: device lost"):
        broken.predict_one(x, w)
    good = runtime.session.run(
        None,
        {"features": x[None], "window": w[None], "weights": np.full((1, 4), 0.25, np.float32)},
    )
    nan_member = good[0].copy()
    nan_member[0, 1, 1] = np.nan
    outputs = {
        "nan member": (nan_member, good[1], good[2]),
        "zero ensemble": (good[0], good[1] * 0, good[2]),
        "confidence above 1": (good[0], good[1], good[2] + 1.5),
        "negative confidence": (good[0], good[1], good[2] - 2),
    }
    outputs["float64 with a NaN"] = tuple(o.astype(np.float64) for o in outputs["nan member"])
    outputs["two rows"] = tuple(np.concatenate([o, o]) for o in good)
    for name, out in outputs.items():
        bad = replace(runtime, session=_Session(runtime.session, lambda *_a, o=out: list(o)))
        with pytest.raises(EnsembleFailure, match="not a probability"):
            bad.predict_one(x, w)
            pytest.fail(name)
    # Outputs of another float type are not compiled for: the general check accepts them.
    wide = tuple(o.astype(np.float64) for o in good)
    ok = replace(runtime, session=_Session(runtime.session, lambda *_a: list(wide)))
    assert ok.predict_one(x, w).ensemble.dtype == np.float64
