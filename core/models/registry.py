"""The model registry: bundles by version on disk, one active pointer, and their events.

Layout under the registry root::

    versions/<version>/   one verified bundle per version (never modified once added)
    active/<instrument>   the instrument's active version; replaced atomically (os.replace)

Adding a bundle copies it to a hidden staging folder, verifies every checksum there, then
renames it into place: a crash leaves either no version or a complete one. Promotion is a
rule, not a wish: the candidate and the active model of the same instrument are scored on the
*same* held-out rows (the candidate's), and the candidate becomes active only if it is
better; an instrument's first model must beat the training class prior. Each step appends
its domain event.
"""

import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tapereader.core.events import (
    DomainEvent,
    ModelPromoted,
    ModelRejected,
    ModelRolledBack,
    ModelTrained,
    Source,
)
from tapereader.core.store import EventStore

from .bundle import Bundle, BundleError, Holdout, Manifest, load_bundle, read_manifest
from .runtime import EnsembleRuntime

ACTIVE = "active"
VERSIONS = "versions"
METRIC = "log_loss"
PRIOR_METRIC = "prior_test_log_loss"  # the class-prior baseline's log-loss, from training


class RegistryError(Exception):
    """A registry operation was refused (unknown version, duplicate, invalid pointer...)."""


@dataclass(frozen=True)
class Decision:
    """The outcome of a promotion attempt and the event that records it."""

    promoted: bool
    candidate_score: float
    incumbent_score: float | None
    reason: str
    event: DomainEvent


def holdout_log_loss(bundle: Bundle, holdout: Holdout) -> float:
    """The bundle's ensemble log-loss on ``holdout``, run through the real ONNX runtime."""
    runtime = EnsembleRuntime.from_bundle(bundle)
    window = bundle.manifest.window
    pred = runtime.predict(holdout.features(), holdout.windows(window))
    p = np.clip(pred.ensemble[np.arange(len(holdout.labels)), holdout.labels], 1e-15, 1.0)
    return float(-np.mean(np.log(p.astype(np.float64))))


class Registry:
    """Versions on disk plus an optional event store for the lifecycle events."""

    def __init__(
        self, root: str | Path, store: EventStore | None = None, *, run_id: str = ""
    ) -> None:
        self.root = Path(root)
        self.store = store
        self.source = Source(component="model-registry", run_id=run_id or uuid.uuid4().hex[:12])
        (self.root / VERSIONS).mkdir(parents=True, exist_ok=True)

    # --- reading -----------------------------------------------------------------------

    def path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise RegistryError(f"invalid version name {version!r}")
        return self.root / VERSIONS / version

    def versions(self) -> list[Manifest]:
        """Every stored version's manifest, oldest first."""
        out = [
            read_manifest(p)
            for p in (self.root / VERSIONS).iterdir()
            if p.is_dir() and not p.name.startswith(".")
        ]
        return sorted(out, key=lambda m: (m.created_ns, m.model_version))

    def pointer(self, instrument_id: str) -> Path:
        """The file naming ``instrument_id``'s active version."""
        return self.root / ACTIVE / re.sub(r"[^A-Za-z0-9._-]+", "_", instrument_id)

    def active(self, instrument_id: str) -> str | None:
        """The instrument's active version, or None when none was promoted yet."""
        try:
            version = self.pointer(instrument_id).read_text().strip()
        except FileNotFoundError:
            return None
        if not self.path(version).is_dir():
            raise RegistryError(
                f"{self.pointer(instrument_id)} names {version!r}, which is not stored"
            )
        return version

    def active_versions(self) -> dict[str, str]:
        """Every instrument's active version, by instrument id."""
        return {
            m.instrument_id: m.model_version
            for m in self.versions()
            if self.active(m.instrument_id) == m.model_version
        }

    def load(self, version: str, *, feature_spec_hash: str | None = None) -> Bundle:
        """A stored bundle, verified (checksums, and the feature spec when given)."""
        if not self.path(version).is_dir():
            raise RegistryError(f"no model version {version!r} in {self.root}")
        return load_bundle(self.path(version), feature_spec_hash=feature_spec_hash)

    # --- changing ----------------------------------------------------------------------

    def add(self, staged: str | Path) -> Manifest:
        """Store a bundle folder under its version (verified before and after the copy) and
        append ``ModelTrained``."""
        bundle = load_bundle(staged)
        m = bundle.manifest
        target = self.path(m.model_version)
        if target.exists():
            raise RegistryError(f"model version {m.model_version!r} is already stored")
        tmp = self.root / VERSIONS / f".incoming-{m.model_version}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(bundle.path, tmp)
            load_bundle(tmp)  # the copy is what will be served: verify it, not the source
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(target.parent)
        self._append(
            ModelTrained(
                **self._envelope(),
                model_version=m.model_version,
                feature_spec_hash=m.feature_spec_hash,
                data_start_ns=m.data_start_ns,
                data_end_ns=m.data_end_ns,
                label_definition=m.label_definition,
                metrics={k: v for k, v in m.metrics.items() if np.isfinite(v)},
                sha256=m.sha256,
                artifact=str(target.relative_to(self.root)),
            )
        )
        return m

    def promote(self, version: str) -> Decision:
        """Make ``version`` active if it beats the active model on the candidate's held-out
        rows (log-loss, lower is better); otherwise record the rejection. Returns the decision."""
        candidate = self.load(version)
        instrument = candidate.manifest.instrument_id
        incumbent_version = self.active(instrument)
        if incumbent_version == version:
            raise RegistryError(f"{version} is already active")
        holdout = candidate.holdout()
        cand = holdout_log_loss(candidate, holdout)
        inc: float | None = None
        if incumbent_version is None:
            baseline = candidate.manifest.metrics.get(PRIOR_METRIC)
            if baseline is None:
                raise RegistryError(f"{version}: manifest lacks {PRIOR_METRIC}; cannot judge it")
            better = cand < baseline
            reason = f"class-prior log-loss {baseline:.5f} on the same rows"
        else:
            incumbent = self.load(incumbent_version)
            m_i, m_c = incumbent.manifest, candidate.manifest
            if (m_i.feature_spec_hash, m_i.window) != (m_c.feature_spec_hash, m_c.window):
                better, reason = (
                    False,
                    (
                        f"incumbent {incumbent_version} takes other inputs (feature spec "
                        f"{m_i.feature_spec_hash}, window {m_i.window}): "
                        "not comparable on the same rows"
                    ),
                )
            else:
                inc = holdout_log_loss(incumbent, holdout)
                better = cand < inc
                reason = f"incumbent {incumbent_version} log-loss {inc:.5f} on the same rows"
        if not better:
            event = ModelRejected(
                **self._envelope(),
                model_version=version,
                incumbent_version=incumbent_version,
                metric=METRIC,
                candidate_score=cand,
                incumbent_score=inc,
                reason=f"candidate log-loss {cand:.5f} does not beat {reason}",
            )
            self._append(event)
            return Decision(False, cand, inc, event.reason, event)
        event = ModelPromoted(
            **self._envelope(),
            model_version=version,
            previous_version=incumbent_version,
            metric=METRIC,
            candidate_score=cand,
            incumbent_score=inc,
        )
        self._switch(instrument, version, incumbent_version, event)
        return Decision(True, cand, inc, f"candidate log-loss {cand:.5f} beats {reason}", event)

    def rollback(self, version: str, reason: str = "manual rollback") -> ModelRolledBack:
        """Make an earlier stored version active again, after verifying it."""
        instrument = self.load(version).manifest.instrument_id
        current = self.active(instrument)
        if current is None:
            raise RegistryError(f"nothing is active for {instrument}: nothing to roll back from")
        if current == version:
            raise RegistryError(f"{version} is already active")
        event = ModelRolledBack(
            **self._envelope(), model_version=version, from_version=current, reason=reason
        )
        self._switch(instrument, version, current, event)
        return event

    # --- internals ---------------------------------------------------------------------

    def _switch(
        self, instrument: str, version: str, previous: str | None, event: DomainEvent
    ) -> None:
        pointer = self.pointer(instrument)
        pointer.parent.mkdir(exist_ok=True)
        _write_pointer(pointer, version)
        try:
            self._append(event)
        except BaseException:
            # The event is the record of the switch: without it, undo the switch.
            if previous is None:
                pointer.unlink(missing_ok=True)
            else:
                _write_pointer(pointer, previous)
            raise

    def _envelope(self) -> dict[str, object]:
        now = time.time_ns()
        return {"ts_event": now, "ts_init": now, "source": self.source}

    def _append(self, event: DomainEvent) -> None:
        if self.store is not None:
            self.store.append([event])


def _write_pointer(path: Path, version: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    with tmp.open("w") as f:
        f.write(version + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["ACTIVE", "BundleError", "Decision", "Registry", "RegistryError", "holdout_log_loss"]
