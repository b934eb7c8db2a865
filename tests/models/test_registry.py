"""The registry: versions on disk, an atomic active pointer, promotion by rule, events."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tapereader.core.events import ModelPromoted, ModelRejected, ModelRolledBack, ModelTrained
from tapereader.core.models.bundle import GRAPH, MANIFEST, BundleError, file_digests, load_bundle
from tapereader.core.models.registry import Registry, RegistryError, holdout_log_loss
from tapereader.core.store import EventStore
from tapereader.replay.export import member_graphs, merge

from .conftest import OANDA_ID


def derive(trained, folder: Path, version: str, temperature_factor: float) -> Path:
    """A copy of the trained bundle whose graph calibrates with scaled temperatures."""
    target = folder / version
    shutil.copytree(trained.path, target)
    m = trained.manifest
    graphs = member_graphs(trained.members, m.n_features, m.window)
    temps = np.array(m.temperatures) * temperature_factor
    (target / GRAPH).write_bytes(merge(graphs, temps, m.n_features, m.window).SerializeToString())
    manifest = json.loads((target / MANIFEST).read_text())
    digests = file_digests(target)
    manifest |= {
        "model_version": version,
        "files": digests,
        "sha256": digests[GRAPH],
        "temperatures": list(temps),
        "created_ns": m.created_ns + 1,
    }
    (target / MANIFEST).write_text(json.dumps(manifest))
    return target


def events(store: EventStore) -> list:
    return [r.event for r in store.read()]


def test_lifecycle_with_events(trained, tmp_path: Path) -> None:
    worse = derive(trained, tmp_path / "staged", "oanda-flat", 6.0)
    with EventStore.open(tmp_path / "events.db") as store:
        reg = Registry(tmp_path / "registry", store)
        reg.add(worse)
        reg.add(trained.path)
        assert {m.model_version for m in reg.versions()} == {"oanda-small", "oanda-flat"}
        assert reg.active(OANDA_ID) is None
        # Flattened probabilities (hotter calibration) are worse on the same rows.
        holdout = reg.load("oanda-small").holdout()
        good = holdout_log_loss(reg.load("oanda-small"), holdout)
        bad = holdout_log_loss(reg.load("oanda-flat"), holdout)
        assert good < bad

        # The first model must beat the training class prior on its held-out rows.
        first = reg.promote("oanda-small")
        assert first.promoted, first.reason
        assert first.incumbent_score is None and "class-prior" in first.reason
        assert reg.active(OANDA_ID) == "oanda-small"
        # A worse candidate is rejected on the same rows and nothing changes.
        rejected = reg.promote("oanda-flat")
        assert not rejected.promoted and reg.active(OANDA_ID) == "oanda-small"
        assert rejected.candidate_score == pytest.approx(bad)
        assert rejected.incumbent_score == pytest.approx(good)
        # Rollback is a manual override to any stored version.
        back = reg.rollback("oanda-flat", "test")
        assert reg.active(OANDA_ID) == "oanda-flat" and back.from_version == "oanda-small"
        again = reg.promote("oanda-small")
        assert again.promoted and reg.active(OANDA_ID) == "oanda-small"
        # An identical copy is not better: rejected.
        twin = derive(trained, tmp_path / "staged", "oanda-twin", 1.0)
        reg.add(twin)
        same = reg.promote("oanda-twin")
        assert not same.promoted and "does not beat" in same.reason

        kinds = [type(e) for e in events(store)]
        assert kinds == [
            ModelTrained,
            ModelTrained,
            ModelPromoted,
            ModelRejected,
            ModelRolledBack,
            ModelPromoted,
            ModelTrained,
            ModelRejected,
        ]
        trained_event = events(store)[1]
        assert trained_event.model_version == "oanda-small"
        assert trained_event.sha256 == trained.manifest.sha256
        assert trained_event.feature_spec_hash == trained.manifest.feature_spec_hash
        assert trained_event.metrics["test_log_loss"] == pytest.approx(
            trained.manifest.metrics["test_log_loss"]
        )


def test_refusals(trained, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    reg.add(trained.path)
    with pytest.raises(RegistryError, match="already stored"):
        reg.add(trained.path)
    with pytest.raises(RegistryError, match="no model version"):
        reg.promote("nope")
    with pytest.raises(RegistryError, match="nothing is active"):
        reg.rollback("oanda-small")
    with pytest.raises(RegistryError, match="invalid version"):
        reg.path("../escape")
    # A stored bundle damaged on disk is refused at promotion; nothing changes.
    graph = reg.path("oanda-small") / GRAPH
    graph.write_bytes(graph.read_bytes()[:-1])
    with pytest.raises(BundleError, match="checksum"):
        reg.promote("oanda-small")
    assert reg.active(OANDA_ID) is None and not reg.pointer(OANDA_ID).exists()
    assert not [p for p in (tmp_path / "registry" / "versions").iterdir() if p.name.startswith(".")]


class FailingStore:
    def append(self, events):
        raise OSError("disk full")


def test_switch_is_undone_when_the_event_cannot_be_written(trained, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    reg.add(trained.path)
    assert reg.promote("oanda-small").promoted
    twin = derive(trained, tmp_path / "staged", "oanda-flat", 6.0)
    reg.add(twin)
    reg.store = FailingStore()
    with pytest.raises(OSError, match="disk full"):
        reg.rollback("oanda-flat")
    assert reg.active(OANDA_ID) == "oanda-small"
    assert load_bundle(reg.path("oanda-flat")).manifest.model_version == "oanda-flat"


def test_instruments_have_their_own_active_model(trained, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    reg.add(trained.path)
    assert reg.promote("oanda-small").promoted
    other = derive(trained, tmp_path / "staged", "other-instrument", 1.0)
    manifest = json.loads((other / MANIFEST).read_text())
    (other / MANIFEST).write_text(json.dumps(manifest | {"instrument_id": "EUR/USD.FXCM"}))
    reg.add(other)
    decision = reg.promote("other-instrument")
    # Judged against its own instrument's (empty) slot, i.e. the class prior, never against
    # the EUR/USD.OANDA model.
    assert decision.incumbent_score is None and "class-prior" in decision.reason
    assert reg.active(OANDA_ID) == "oanda-small"
    assert reg.active_versions() == {OANDA_ID: "oanda-small", "EUR/USD.FXCM": "other-instrument"}
