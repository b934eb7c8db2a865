"""Market regime from a feature row: trending, ranging or volatile.

Volatile wins when the recent return volatility is above a training-set quantile; otherwise
the row is trending when the recent move is large against that volatility (a t-statistic of
the drift), else ranging. The thresholds are fitted on training data and stored in the bundle.
"""

import math
from dataclasses import dataclass

import numpy as np

from .bundle import REGIMES, RegimeRuleSpec

TRENDING, RANGING, VOLATILE = 0, 1, 2
VOLATILITY_FEATURE = "volatility_20"
TREND_FEATURE = "momentum_10_rel"
TREND_HORIZON = 10  # periods the momentum spans: its noise is volatility * sqrt(10)
_SQRT_HORIZON = math.sqrt(TREND_HORIZON)


@dataclass(frozen=True)
class RegimeRule:
    """A fitted rule bound to column positions of one feature layout."""

    spec: RegimeRuleSpec
    vol_col: int
    trend_col: int
    scale_col: int

    @classmethod
    def bind(cls, spec: RegimeRuleSpec, feature_names: list[str] | tuple[str, ...]) -> "RegimeRule":
        """Resolve the spec's feature names to columns; KeyError names a missing feature."""
        names = list(feature_names)
        cols = []
        for name in (spec.volatility_feature, spec.trend_feature, spec.trend_scale_feature):
            if name not in names:
                raise KeyError(f"regime rule needs feature {name!r}, absent from the row layout")
            cols.append(names.index(name))
        return cls(spec, *cols)

    def classify(self, rows: np.ndarray) -> np.ndarray:
        """Regime index (0 trending, 1 ranging, 2 volatile) of each row of [N, F]."""
        rows = np.atleast_2d(rows)
        vol = rows[:, self.vol_col].astype(np.float64)
        trend = _trend_stat(rows[:, self.trend_col], rows[:, self.scale_col])
        out = np.where(trend > self.spec.trend_threshold, TRENDING, RANGING)
        return np.where(vol > self.spec.volatility_threshold, VOLATILE, out).astype(np.int8)

    def classify_one(self, row: np.ndarray) -> int:
        """The regime of one row, in plain Python floats (same rule as :meth:`classify`)."""
        s = self.spec
        if float(row[self.vol_col]) > s.volatility_threshold:
            return VOLATILE
        move = abs(float(row[self.trend_col]))
        scale = float(row[self.scale_col]) * _SQRT_HORIZON
        trend = move / scale if scale > 0 else math.inf if move > 0 else 0.0
        return TRENDING if trend > s.trend_threshold else RANGING

    def name(self, regime: int) -> str:
        return REGIMES[regime]


def _trend_stat(move: np.ndarray, vol: np.ndarray) -> np.ndarray:
    scale = np.asarray(vol, dtype=np.float64) * _SQRT_HORIZON
    move = np.abs(np.asarray(move, dtype=np.float64))
    # Zero volatility with a zero move is no trend; with a move it is an infinite t-stat.
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(scale > 0, move / scale, np.where(move > 0, np.inf, 0.0))
    return stat


def fit_regime_rule(
    rows: np.ndarray,
    feature_names: list[str] | tuple[str, ...],
    *,
    volatile_quantile: float = 0.8,
    trend_quantile: float = 0.7,
) -> RegimeRuleSpec:
    """Thresholds from training rows: the top ``1 - volatile_quantile`` by volatility are
    volatile; of the rest, the top ``1 - trend_quantile`` by drift t-statistic are trending."""
    names = list(feature_names)
    vol = rows[:, names.index(VOLATILITY_FEATURE)].astype(np.float64)
    vol_threshold = float(np.quantile(vol, volatile_quantile))
    calm = vol <= vol_threshold
    trend = _trend_stat(rows[calm, names.index(TREND_FEATURE)], vol[calm])
    finite = trend[np.isfinite(trend)]
    trend_threshold = float(np.quantile(finite, trend_quantile)) if finite.size else 0.0
    return RegimeRuleSpec(
        volatility_feature=VOLATILITY_FEATURE,
        volatility_threshold=vol_threshold,
        trend_feature=TREND_FEATURE,
        trend_scale_feature=VOLATILITY_FEATURE,
        trend_threshold=trend_threshold,
    )
