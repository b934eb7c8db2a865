"""Bounded online weight adaptation."""

import itertools

import numpy as np
import pytest

from tapereader.core.models.adaptation import AdaptationConfig, WeightAdapter, project


def _probs(right: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, n)
    p = np.full((n, 4, 3), 1 / 3)
    p[np.arange(n), right, :] = 0.05
    p[np.arange(n), right, y] = 0.9  # member `right` is right, the others know nothing
    return p, y


def test_leans_to_the_member_that_is_right_and_stays_bounded() -> None:
    rng = np.random.default_rng(0)
    cfg = AdaptationConfig(eta=1.0, floor=0.05, cap=0.6, max_step=0.03)
    adapter = WeightAdapter(np.full(4, 0.25), cfg)
    for _ in range(200):
        before = adapter.weights
        rec = adapter.update(*_probs(2, 20, rng))
        after = adapter.weights
        assert np.linalg.norm(after - before) <= cfg.max_step + 1e-12
        assert after.min() >= cfg.floor - 1e-12 and after.max() <= cfg.cap + 1e-12
        assert after.sum() == pytest.approx(1.0, abs=1e-12)
        assert rec.after == pytest.approx(list(after)) and rec.outcomes == 20
    assert adapter.weights[2] == pytest.approx(cfg.cap)  # ran into the cap, not beyond
    # Then another member becomes right: the weights move over, still within bounds.
    for _ in range(200):
        adapter.update(*_probs(0, 20, rng))
    w = adapter.weights
    assert w.argmax() == 0 and w[0] == pytest.approx(cfg.cap)
    assert w[2] == pytest.approx(w[1], abs=1e-4)  # its lead is gone: as good as the rest


def test_projection_is_onto_the_bounded_simplex() -> None:
    w = project(np.array([3.0, -1.0, 0.2, 0.1]), 0.05, 0.7)
    assert w.sum() == pytest.approx(1) and w.min() >= 0.05 - 1e-12 and w.max() <= 0.7 + 1e-12


def test_invalid_configuration_and_inputs_raise() -> None:
    with pytest.raises(ValueError, match="infeasible"):
        WeightAdapter(np.full(4, 0.25), AdaptationConfig(floor=0.3))
    with pytest.raises(ValueError, match="infeasible"):
        WeightAdapter(np.full(4, 0.25), AdaptationConfig(cap=0.2))
    adapter = WeightAdapter(np.full(4, 0.25))
    with pytest.raises(ValueError):
        adapter.update(np.full((3, 4, 3), np.nan), np.zeros(3, int))
    with pytest.raises(ValueError):
        adapter.update(np.full((3, 4, 3), 1 / 3), np.array([0, 1, 3]))
    with pytest.raises(ValueError):
        adapter.update(np.full((3, 2, 3), 1 / 3), np.zeros(3, int))


def test_adapter_drives_the_runtime_on_real_outcomes(trained) -> None:
    from tapereader.core.features.spec import SPEC
    from tapereader.core.models.bundle import REGIMES, load_bundle
    from tapereader.core.models.runtime import EnsembleRuntime

    runtime = EnsembleRuntime.open(trained.path, feature_spec_hash=SPEC.hash)
    h = load_bundle(trained.path).holdout()
    x, w, y = h.features(), h.windows(trained.manifest.window), h.labels.astype(int)
    cfg = AdaptationConfig(eta=0.5, floor=0.05, cap=0.7, max_step=0.05)
    adapters = [
        WeightAdapter(runtime.regime_weights[r], cfg, regime=n) for r, n in enumerate(REGIMES)
    ]
    records = []
    for start in range(0, len(y) - 50, 50):  # outcomes arrive in batches of 50 predictions
        rows = slice(start, start + 50)
        pred = runtime.predict(x[rows], w[rows])
        for r, adapter in enumerate(adapters):
            mine = pred.regime == r
            if mine.any():
                records.append(adapter.update(pred.members[mine], y[rows][mine]))
                runtime.set_regime_weights(r, adapter.weights)
    assert records and all(0.05 - 1e-9 <= v <= 0.7 + 1e-9 for rec in records for v in rec.after)
    final = runtime.predict(x[:10], w[:10])
    expected = np.array([adapters[r].weights for r in final.regime], dtype=np.float32)
    assert np.allclose(final.weights, expected, atol=1e-6)


def test_every_step_is_journaled_as_an_event(tmp_path) -> None:
    from tapereader.core.events import EnsembleWeightsAdapted, Source
    from tapereader.core.models.adaptation import adaptation_event
    from tapereader.core.store import EventStore

    rng = np.random.default_rng(1)
    adapter = WeightAdapter(np.full(4, 0.25), AdaptationConfig(), regime="volatile")
    source = Source(component="SignalActor", run_id="t")
    events = [
        adaptation_event(
            adapter.update(*_probs(1, 16, rng)), model_version="m7", source=source, ts_ns=1_000 + i
        )
        for i in range(5)
    ]
    with EventStore.open(tmp_path / "events.db") as store:
        store.append(events)
        stored = [r.event for r in store.read()]
    assert stored == events and all(isinstance(e, EnsembleWeightsAdapted) for e in stored)
    assert stored[-1].after == pytest.approx(list(adapter.weights))
    assert stored[0].regime == "volatile" and stored[0].outcomes == 16
    # Each step starts where the previous one ended: the log replays the weights.
    assert all(a.after == b.before for a, b in itertools.pairwise(stored))
