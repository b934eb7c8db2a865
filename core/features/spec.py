"""The feature specification a model records, so it is never fed features it was not trained on.

The spec names every column of the kernel's row with its unit and warm-up, and carries the
kernel's parameters. Its :attr:`FeatureSpec.hash` is a digest of everything that changes
what a column means (names, order, units, warm-ups, parameters, version) and nothing that
does not (prose), so two processes agree on it byte for byte.
"""

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import kernel as k

SPEC_VERSION = "1"
PERIOD_RULE = "quote"  # one accepted quote or book top closes one period (docs/FEATURES.md)


class FeatureSpecMismatch(ValueError):
    """A model was trained on a different feature spec than the one computing its input."""


@dataclass(frozen=True, slots=True)
class FeatureDef:
    """One column: its name, unit, periods until defined, and a one-line definition."""

    name: str
    unit: str
    warmup: int
    description: str


@dataclass(frozen=True)
class FeatureSpec:
    """Ordered feature columns plus the kernel parameters that define them."""

    version: str
    features: tuple[FeatureDef, ...]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(f.unit for f in self.features)

    @property
    def warmup(self) -> int:
        """Periods after which every column is defined (the row's status turns ready)."""
        return max(f.warmup for f in self.features)

    def index(self, name: str) -> int:
        """Column of ``name`` in the row."""
        return self.names.index(name)

    def canonical(self) -> str:
        """The JSON the hash is taken over (sorted keys, no whitespace)."""
        body = {
            "version": self.version,
            "features": [[f.name, f.unit, f.warmup] for f in self.features],
            "params": self.params,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @cached_property
    def hash(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`canonical`."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Everything a model bundle should store about its inputs."""
        return {
            "version": self.version,
            "hash": self.hash,
            "features": [
                {"name": f.name, "unit": f.unit, "warmup": f.warmup, "description": f.description}
                for f in self.features
            ],
            "params": dict(self.params),
        }

    def check(self, expected_hash: str) -> None:
        """Raise :class:`FeatureSpecMismatch` unless ``expected_hash`` is this spec's hash."""
        if expected_hash != self.hash:
            raise FeatureSpecMismatch(
                f"model expects feature spec {expected_hash!r}, but the kernel computes "
                f"spec {self.hash!r} (version {self.version}); retrain or use the matching "
                "tapereader version"
            )


_FRACTION = "fraction"  # dimensionless ratio, e.g. 1e-4 = 1 basis point
_DEFS = {
    "ret_1": ("fraction", 2, "mid / previous mid - 1"),
    "sma_5_dev": (_FRACTION, 5, "mid / mean of the last 5 mids - 1"),
    "sma_20_dev": (_FRACTION, 20, "mid / mean of the last 20 mids - 1"),
    "volatility_20": ("fraction per period", 21, "population std of the last 20 ret_1"),
    "range_20": (_FRACTION, 20, "(max - min of the last 20 mids) / mid"),
    "volume_last": ("base quantity", 1, "traded size in the last closed period"),
    "volume_mean_5": ("base quantity", 5, "mean traded size of the last 5 periods"),
    "volume_sum_60": ("base quantity", 60, "traded size of the last 60 periods"),
    "volume_ratio_20": ("ratio", 20, "volume_last / mean of the last 20 periods' volume"),
    "volume_volatility_20": ("ratio", 20, "std / mean of the last 20 periods' volume"),
    "spread_rel": (_FRACTION, 1, "(ask - bid) / mid of the last quote"),
    "tob_imbalance": ("[-1, 1]", 1, "(bid size - ask size) / (bid size + ask size)"),
    "microprice_dev": (_FRACTION, 1, "(size-weighted microprice - mid) / mid"),
    "depth_imbalance": ("[-1, 1]", 1, "(bid depth - ask depth) / sum over the top levels"),
    "trade_flow_imbalance": ("[-1, 1]", 0, "signed / total size of the last 20 trades"),
    "trade_intensity": ("trades per second", 0, "trades, exponentially weighted (tau 5 s)"),
    "quote_intensity": ("quotes per second", 0, "periods, exponentially weighted (tau 5 s)"),
    "rsi_14": ("[0, 100]", 15, "Wilder's RSI over 14 periods"),
    "macd_rel": (_FRACTION, 26, "(EMA12 - EMA26) / mid"),
    "macd_signal_rel": (_FRACTION, 34, "EMA9 of (EMA12 - EMA26), / mid"),
    "bollinger_pctb_20": ("ratio", 20, "(mid - lower band) / band width, bands mean +- 2 std"),
    "stoch_k_14": ("[0, 100]", 14, "100 (mid - min14) / (max14 - min14)"),
    "williams_r_14": ("[-100, 0]", 14, "-100 (max14 - mid) / (max14 - min14)"),
    "cci_20": ("CCI points", 20, "(mid - mean20) / (0.015 mean absolute deviation)"),
    "atr_14_rel": (_FRACTION, 15, "Wilder's ATR(14) of the mid / mid"),
    "momentum_10_rel": (_FRACTION, 11, "(mid - mid 10 periods ago) / mid"),
    "roc_10": ("percent", 11, "100 (mid / mid 10 periods ago - 1)"),
}

# The kernel owns the column order; the spec must describe exactly those columns.
if tuple(_DEFS) != k.FEATURE_NAMES:
    raise ImportError("feature spec and kernel disagree on the feature columns")

SPEC = FeatureSpec(
    version=SPEC_VERSION,
    features=tuple(FeatureDef(name, *_DEFS[name]) for name in k.FEATURE_NAMES),
    params={
        "period": PERIOD_RULE,
        "sma_short": k.SMA_SHORT,
        "window": k.WINDOW,
        "volume_sum": k.VOLUME_SUM,
        "rsi": k.RSI_N,
        "atr": k.ATR_N,
        "stoch": k.STOCH_N,
        "macd": [k.MACD_FAST, k.MACD_SLOW, k.MACD_SIGNAL],
        "momentum": k.MOMENTUM_N,
        "bollinger_k": k.BOLLINGER_K,
        "cci_scale": k.CCI_SCALE,
        "flow_trades": k.FLOW_TRADES,
        "rate_tau_s": k.RATE_TAU_S,
        "depth_levels": k.DEPTH_LEVELS,
        "flat_eps": k.FLAT_EPS,
    },
)
"""The one spec the kernel computes."""

if SPEC.warmup != k.WARMUP:
    raise ImportError("feature spec warm-up disagrees with the kernel's WARMUP")
