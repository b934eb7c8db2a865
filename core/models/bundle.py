"""A model bundle on disk: the merged ONNX graph, its held-out data and a manifest.

Layout of one bundle folder::

    manifest.json   the Manifest below (msgspec JSON)
    ensemble.onnx   one graph: inputs features [N, F], window [N, T, F], weights [N, 4];
                    outputs members [N, 4, 3], ensemble [N, 3], confidence [N]
    holdout.npz     the held-out rows the bundle was evaluated on (promotion re-scores them)

Every file is listed in ``Manifest.files`` with its SHA-256; :func:`load_bundle` refuses a
bundle whose bytes differ from what was recorded, so a half-copied or edited model never runs.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

MANIFEST = "manifest.json"
GRAPH = "ensemble.onnx"
HOLDOUT = "holdout.npz"
MEMBERS: tuple[str, ...] = ("lr", "rf", "xgb", "lstm")
CLASSES: tuple[str, ...] = ("down", "flat", "up")
REGIMES: tuple[str, ...] = ("trending", "ranging", "volatile")


class BundleError(Exception):
    """A bundle is missing, incomplete, corrupted or does not fit the caller."""


class RegimeRuleSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Thresholds deciding the regime from a feature row (fitted on training data)."""

    volatility_feature: str
    volatility_threshold: float
    trend_feature: str
    trend_scale_feature: str
    trend_threshold: float


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to trust and feed a bundle, written at training time."""

    model_version: str
    created_ns: int
    feature_spec_hash: str
    feature_names: list[str]
    window: int
    members: list[str]
    classes: list[str]
    weights: list[float]
    regime_weights: dict[str, list[float]]
    regime_rule: RegimeRuleSpec
    temperatures: list[float]
    instrument_id: str
    data_start_ns: int
    data_end_ns: int
    holdout_start_ns: int
    holdout_end_ns: int
    label_definition: str
    label_params: dict[str, float | int | str]
    dataset_params: dict[str, float | int | str]
    metrics: dict[str, float]
    sha256: str
    files: dict[str, str]
    onnx_opset: int
    trainer: dict[str, str] = {}

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


@dataclass(frozen=True)
class Holdout:
    """Consecutive held-out rows: ``rows`` [M, F] float32; samples are rows ``index``.

    The LSTM window of sample ``i`` is ``rows[i - T + 1 : i + 1]``, so the first ``T - 1``
    rows are context only. Storing rows instead of windows keeps the file T times smaller.
    """

    rows: np.ndarray
    index: np.ndarray
    labels: np.ndarray

    def windows(self, window: int) -> np.ndarray:
        """The [n, T, F] window tensor of every sample."""
        offsets = np.arange(-window + 1, 1)
        return np.ascontiguousarray(self.rows[self.index[:, None] + offsets[None, :]])

    def features(self) -> np.ndarray:
        """The [n, F] row of every sample."""
        return np.ascontiguousarray(self.rows[self.index])


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its folder, manifest and the graph's bytes."""

    path: Path
    manifest: Manifest
    graph: bytes

    def holdout(self) -> Holdout:
        """The held-out rows stored with the bundle (checksum verified at load)."""
        with np.load(self.path / HOLDOUT) as data:
            return Holdout(data["rows"], data["index"], data["labels"])


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_holdout(path: Path, holdout: Holdout) -> None:
    """Write ``holdout.npz`` into the bundle folder ``path``."""
    with (path / HOLDOUT).open("wb") as f:
        np.savez(f, rows=holdout.rows, index=holdout.index, labels=holdout.labels)


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` (pretty, so ``models show`` and a human can read it)."""
    (path / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2))


def file_digests(path: Path) -> dict[str, str]:
    """SHA-256 of the graph and the held-out data in a bundle folder."""
    return {name: sha256_file(path / name) for name in (GRAPH, HOLDOUT)}


def read_manifest(path: Path) -> Manifest:
    """The manifest of a bundle folder, decoded and validated (no checksum check)."""
    try:
        return msgspec.json.decode((path / MANIFEST).read_bytes(), type=Manifest)
    except FileNotFoundError as exc:
        raise BundleError(f"{path}: no {MANIFEST}: not a model bundle") from exc
    except msgspec.ValidationError as exc:
        raise BundleError(f"{path / MANIFEST}: invalid manifest: {exc}") from exc


def load_bundle(path: str | Path, *, feature_spec_hash: str | None = None) -> Bundle:
    """Load and verify a bundle; checks every file's checksum and, if given, the feature spec.

    Raises :class:`BundleError` naming the file and the problem; nothing is half-loaded.
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    for name, expected in manifest.files.items():
        file = folder / name
        if not file.is_file():
            raise BundleError(f"{folder}: {name} is missing")
        actual = sha256_file(file)
        if actual != expected:
            raise BundleError(
                f"{file}: checksum mismatch (manifest {expected[:12]}..., file {actual[:12]}...): "
                "the bundle was modified or copied incompletely"
            )
    if manifest.files.get(GRAPH) != manifest.sha256:
        raise BundleError(f"{folder}: manifest sha256 does not match its {GRAPH} entry")
    if feature_spec_hash is not None and feature_spec_hash != manifest.feature_spec_hash:
        raise BundleError(
            f"{folder}: model {manifest.model_version} expects feature spec "
            f"{manifest.feature_spec_hash!r}, but the engine computes {feature_spec_hash!r}"
        )
    _check_shape(folder, manifest)
    return Bundle(folder, manifest, (folder / GRAPH).read_bytes())


def _check_shape(folder: Path, m: Manifest) -> None:
    n = len(m.members)
    if tuple(m.members) != MEMBERS or tuple(m.classes) != CLASSES:
        raise BundleError(f"{folder}: members {m.members} / classes {m.classes} not supported")
    if len(m.weights) != n or len(m.temperatures) != n or m.window < 1 or not m.feature_names:
        raise BundleError(f"{folder}: manifest weights/temperatures/window inconsistent")
    if set(m.regime_weights) != set(REGIMES) or any(len(w) != n for w in m.regime_weights.values()):
        raise BundleError(f"{folder}: regime weights must give {n} weights for each of {REGIMES}")
