"""Fusion: greedy ensemble weights on out-of-fold logits, then Platt scaling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from winnow.models.fusion import Fusion, fit_fusion


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.2).astype(np.int64)
    good = 2.5 * y + rng.normal(size=y.size)
    noise = rng.normal(size=y.size) * 3
    return y, {"good": good, "noise": noise}


def test_weights_favour_the_better_model(logits):
    y, z = logits
    f = fit_fusion(y, z)
    assert f.names == ["good", "noise"]
    assert sum(f.weights) == pytest.approx(1.0)
    assert f.weights[0] > 0.8


def test_fused_score_is_a_calibrated_probability(logits):
    y, z = logits
    f = fit_fusion(y, z)
    p = f.probability(z)
    assert ((p > 0) & (p < 1)).all()
    assert p.mean() == pytest.approx(y.mean(), abs=0.01)  # Platt scaling matches the base rate
    assert average_precision_score(y, p) >= average_precision_score(y, z["good"]) - 0.01


def test_fusion_of_one_model_keeps_its_ranking(logits):
    y, z = logits
    f = fit_fusion(y, {"good": z["good"]})
    assert f.weights == [1.0]
    p = f.probability({"good": z["good"]})
    assert (np.argsort(p, kind="stable") == np.argsort(z["good"], kind="stable")).all()


def test_formula():
    f = Fusion(["a", "b"], [0.25, 0.75], [1.0, -1.0], [2.0, 4.0], a=2.0, b=-1.0)
    za, zb = np.array([3.0]), np.array([7.0])
    fused = 0.25 * (3 - 1) / 2 + 0.75 * (7 + 1) / 4
    assert f.fused_logit({"a": za, "b": zb})[0] == pytest.approx(fused)
    assert f.probability({"a": za, "b": zb})[0] == pytest.approx(1 / (1 + np.exp(-(2 * fused - 1))))


def test_json_round_trip(logits):
    y, z = logits
    f = fit_fusion(y, z)
    again = Fusion.from_json(json.loads(json.dumps(f.to_json())))
    np.testing.assert_array_equal(again.probability(z), f.probability(z))


def test_constant_logits_do_not_divide_by_zero():
    y = np.array([0, 1, 0, 1])
    f = fit_fusion(y, {"c": np.zeros(4), "v": np.array([0.0, 1.0, 0.0, 1.0])})
    assert np.isfinite(f.probability({"c": np.zeros(4), "v": np.array([0.0, 1.0, 0.0, 1.0])})).all()
