"""Fusion: greedy ensemble weights on out-of-fold logits, then Platt scaling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from winnow.models.fusion import MAX_LOSS, MAX_RELATIVE_LOSS, Fusion, fit_fusion, prune_for_cost


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


def test_isotonic_calibration_when_the_data_allow_and_it_wins():
    """A score whose true probability is not a sigmoid of it: isotonic wins, the ranking stays."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=20_000)
    p_true = np.where(z > 1.0, 0.6, np.where(z > -0.5, 0.15, 0.02))  # a staircase
    y = (rng.random(z.size) < p_true).astype(np.int64)
    f = fit_fusion(y, {"m": z})
    assert f.calibration == "isotonic"
    assert f.calibration_log_loss["isotonic"] < f.calibration_log_loss["platt"]
    p = f.probability({"m": z})
    # strictly increasing in the fused logit: no ties created, same ranking as the model
    order = np.argsort(z)
    assert (np.diff(p[order]) > 0).all()
    # closer to the truth than a sigmoid can be
    top = z > 1.5
    assert abs(p[top].mean() - 0.6) < 0.03
    again = Fusion.from_json(json.loads(json.dumps(f.to_json())))
    np.testing.assert_array_equal(again.probability({"m": z}), p)


def test_platt_on_small_data_and_old_manifests_load(logits):
    y, z = logits
    small = fit_fusion(y[:300], {k: v[:300] for k, v in z.items()})
    assert small.calibration == "platt" and small.calibration_log_loss is None
    # a fusion saved before calibration choices existed
    old = {"names": ["a"], "weights": [1.0], "centers": [0.0], "scales": [1.0], "a": 1.0, "b": 0.0}
    f = Fusion.from_json(old)
    assert f.calibration == "platt"
    assert f.probability({"a": np.array([0.0])})[0] == pytest.approx(0.5)


# ---------------------------------------------------------------- cost-aware selection
@pytest.fixture(scope="module")
def portfolio():
    """A strong cheap member, an expensive near-copy of it and a weak but independent member."""
    rng = np.random.default_rng(1)
    y = (rng.random(4000) < 0.2).astype(np.int64)
    signal = 2.0 * y + rng.normal(size=y.size)
    logits = {
        "cheap": signal + 0.1 * rng.normal(size=y.size),
        "costly_copy": signal + 0.1 * rng.normal(size=y.size),
        "other": 1.5 * y + rng.normal(size=y.size),
    }
    return y, logits


def test_pruning_drops_an_expensive_member_that_does_not_pay(portfolio):
    y, z = portfolio
    full = fit_fusion(y, z)
    assert full.weights[1] > 0  # the full selection uses the expensive copy
    fast, report = prune_for_cost(y, z, full, {"cheap": 1.0, "costly_copy": 20.0, "other": 1.0})
    assert fast.weights[fast.names.index("costly_copy")] == 0
    assert report.dropped == ["costly_copy"]
    assert report.cost_kept < report.cost_full
    # the accuracy given up stays inside the budget earned by the cost saved
    budget = min(MAX_LOSS, MAX_RELATIVE_LOSS * report.auc_pr_full)
    assert report.auc_pr_full - report.auc_pr_kept <= budget
    assert report.to_json()["dropped"] == ["costly_copy"]


def test_pruning_keeps_a_member_that_carries_the_ranking(portfolio):
    y, z = portfolio
    only_good = {"good": z["cheap"], "weak": 0.3 * y + np.random.default_rng(2).normal(size=y.size)}
    full = fit_fusion(y, only_good)
    # the good member is by far the most expensive, yet dropping it would lose most of the AUC-PR
    fast, report = prune_for_cost(y, only_good, full, {"good": 100.0, "weak": 1.0})
    assert fast.weights[fast.names.index("good")] > 0
    assert "good" not in report.dropped


def test_pruning_is_deterministic_and_never_empties_the_fusion(portfolio):
    y, z = portfolio
    full = fit_fusion(y, z)
    costs = {"cheap": 5.0, "costly_copy": 5.0, "other": 5.0}
    a, _ = prune_for_cost(y, z, full, costs)
    b, _ = prune_for_cost(y, z, full, costs)
    assert a.weights == b.weights
    assert sum(a.weights) == pytest.approx(1.0)


def test_allowed_restricts_the_selection(portfolio):
    y, z = portfolio
    f = fit_fusion(y, z, allowed=["other"])
    assert f.weights == [0.0, 0.0, 1.0]
