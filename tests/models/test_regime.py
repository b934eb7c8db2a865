"""Regimes from feature rows, with thresholds fitted on training rows."""

import numpy as np
import pytest

from tapereader.core.features.spec import SPEC
from tapereader.core.models.regime import RANGING, TRENDING, VOLATILE, RegimeRule, fit_regime_rule


def test_regimes_on_real_rows(trained) -> None:
    from tapereader.core.models.bundle import load_bundle

    rows = load_bundle(trained.path).holdout().rows
    spec = fit_regime_rule(rows, SPEC.names, volatile_quantile=0.8, trend_quantile=0.7)
    rule = RegimeRule.bind(spec, SPEC.names)
    r = rule.classify(rows)
    share = np.bincount(r, minlength=3) / len(r)
    assert share[VOLATILE] == pytest.approx(0.2, abs=0.05)
    assert share[TRENDING] == pytest.approx(0.8 * 0.3, abs=0.06)
    vol = rows[:, SPEC.index("volatility_20")]
    assert vol[r == VOLATILE].min() > vol[r != VOLATILE].max() - 1e-12
    assert rule.name(RANGING) == "ranging"


def test_missing_feature_is_refused(trained) -> None:
    with pytest.raises(KeyError, match="volatility_20"):
        RegimeRule.bind(trained.manifest.regime_rule, ["ret_1", "momentum_10_rel"])


def test_scalar_rule_equals_array_rule(trained) -> None:
    from tapereader.core.models.bundle import load_bundle

    rows = load_bundle(trained.path).holdout().rows
    rule = RegimeRule.bind(trained.manifest.regime_rule, SPEC.names)
    assert [rule.classify_one(r) for r in rows] == rule.classify(rows).tolist()
