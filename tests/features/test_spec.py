"""The feature spec: columns, units, warm-ups, and a hash that changes only on purpose."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from tapereader.core.features import kernel as k
from tapereader.core.features.spec import SPEC, FeatureSpec, FeatureSpecMismatch

from .conftest import Replay

# Changing this literal is a decision: a new spec means models trained on the old one stop
# loading. Bump SPEC_VERSION with it and say why in docs/FEATURES.md.
GOLDEN_HASH = "a493d6b62e9d19de"


def test_spec_describes_the_kernel_row() -> None:
    assert SPEC.names == k.FEATURE_NAMES
    assert len(SPEC.features) == k.N_FEATURES >= 25
    assert len(set(SPEC.names)) == len(SPEC.names)
    assert all(f.unit and f.description for f in SPEC.features)
    assert SPEC.warmup == k.WARMUP
    assert SPEC.index("rsi_14") == k.F_RSI


def test_hash_is_golden_and_identical_in_a_fresh_process() -> None:
    assert SPEC.hash == GOLDEN_HASH
    code = "from tapereader.core.features.spec import SPEC; print(SPEC.hash)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == SPEC.hash


@pytest.mark.parametrize(
    "change",
    [
        lambda s: dataclasses.replace(s, version="2"),
        lambda s: dataclasses.replace(s, features=s.features[::-1]),
        lambda s: dataclasses.replace(s, features=s.features[:-1]),
        lambda s: dataclasses.replace(
            s, features=(dataclasses.replace(s.features[0], unit="bps"), *s.features[1:])
        ),
        lambda s: dataclasses.replace(s, params={**s.params, "rate_tau_s": 1.0}),
    ],
)
def test_anything_that_changes_a_column_changes_the_hash(change) -> None:
    assert change(SPEC).hash != SPEC.hash


def test_prose_does_not_change_the_hash() -> None:
    reworded = tuple(dataclasses.replace(f, description="reworded") for f in SPEC.features)
    assert FeatureSpec(SPEC.version, reworded, SPEC.params).hash == SPEC.hash


def test_check_refuses_another_spec() -> None:
    SPEC.check(SPEC.hash)
    with pytest.raises(FeatureSpecMismatch, match="retrain"):
        SPEC.check("0123456789abcdef")


def test_to_dict_is_json_and_names_the_hash() -> None:
    d = json.loads(json.dumps(SPEC.to_dict()))
    assert d["hash"] == SPEC.hash
    assert [f["name"] for f in d["features"]] == list(SPEC.names)


def test_each_warm_up_is_when_the_kernel_first_defines_the_column(oanda: Replay) -> None:
    """On real quotes: NaN before the stated warm-up (in periods), finite from it on."""
    rows = oanda.period_rows[: 2 * k.WARMUP]
    features = oanda.frame.features[rows]
    for j, f in enumerate(SPEC.features):
        periods = np.arange(1, len(rows) + 1)
        assert np.isnan(features[periods < f.warmup, j]).all(), f.name
        assert np.isfinite(features[periods >= f.warmup, j]).all(), f.name
    status = oanda.frame.status[rows]
    assert (status[: k.WARMUP - 1] == k.STATUS_WARMING).all()
    assert (status[k.WARMUP - 1 :] == k.STATUS_READY).all()
