"""Screening metrics, checked against hand computations and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from winnow.metrics import (
    BUDGET_FRACTIONS,
    at_budget,
    expected_at_fraction,
    expected_calibration_error,
    screening_report,
    top_k_mask,
)


def test_top_k_mask_breaks_ties_by_position():
    s = np.array([0.5, 0.9, 0.5, 0.1, 0.5])
    assert top_k_mask(s, 2).tolist() == [True, True, False, False, False]
    assert top_k_mask(s, 3).tolist() == [True, True, True, False, False]
    assert top_k_mask(s, 0).sum() == 0
    assert top_k_mask(s, 99).all()


def test_at_budget_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    r = at_budget(y, s, 3)
    assert r["k"] == 3
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["lift"] == pytest.approx((2 / 3) / 0.3)


def test_at_budget_without_positives():
    r = at_budget(np.zeros(4), np.arange(4.0), 2)
    assert r == {"k": 2, "precision": 0.0, "recall": 0.0, "lift": 0.0}


def test_ece_by_hand():
    y = np.array([0, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 0.95])
    # bin [0, .1): observed 0.5, predicted 0.05; bin [.9, 1]: observed 1.0, predicted 0.95
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)


def test_ece_of_perfect_calibration_is_zero():
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.1).astype(int)
    p = 1 / (1 + np.exp(-(2 * y + rng.normal(size=1000) - 2)))
    return y, p


def test_report_matches_sklearn(scored):
    y, p = scored
    r = screening_report(y, p, budget_k=50)
    assert r["rows"] == 1000 and r["positives"] == y.sum()
    assert r["positive_rate"] == pytest.approx(y.mean())
    assert r["auc_pr"] == pytest.approx(average_precision_score(y, p))
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert r["log_loss"] == pytest.approx(log_loss(y, p))
    assert r["precision_at_k"] == pytest.approx(at_budget(y, p, int(y.sum()))["precision"])
    assert r["budget"] == at_budget(y, p, 50)
    assert set(r["lift_curve"]) == {f"{f:g}" for f in BUDGET_FRACTIONS}
    assert r["lift_curve"]["0.1"] == at_budget(y, p, 100)
    assert 0 <= r["ece"] <= 1


def test_rank_only_scores_skip_probability_metrics(scored):
    y, p = scored
    r = screening_report(y, p * 1000, probabilities=False)
    assert "log_loss" not in r and "ece" not in r and "budget" not in r
    assert r["auc_pr"] == pytest.approx(average_precision_score(y, p))


@pytest.mark.parametrize("y", [np.zeros(5), np.ones(5), np.zeros(0)])
def test_one_class_reports_a_note(y):
    r = screening_report(y, np.linspace(0, 1, len(y)))
    assert r["note"] == "metrics need both classes" and "auc_pr" not in r


class TestExpectedAtFraction:
    def _data(self, n=2_000, seed=0):
        rng = np.random.default_rng(seed)
        y = (rng.random(n) < 0.1).astype(np.int64)
        return y, y * 0.3 + rng.random(n)

    def test_point_values_are_the_held_out_rows_own(self):
        y, s = self._data()
        e = expected_at_fraction(y, s, 0.05)
        ref = at_budget(y, s, 100)
        assert e["fraction"] == 0.05 and e["rows"] == 2_000 and e["level"] == 0.9
        assert e["precision"]["value"] == pytest.approx(ref["precision"], abs=1e-4)
        assert e["lift_over_random"]["value"] == pytest.approx(ref["lift"], abs=1e-4)
        for key in ("precision", "lift_over_random"):
            assert e[key]["low"] <= e[key]["value"] <= e[key]["high"]
            assert e[key]["low"] < e[key]["high"]  # a real interval from the resamples
        assert "lift_over_rule" not in e

    def test_the_interval_narrows_with_more_rows_and_the_seed_fixes_it(self):
        y, s = self._data(500)
        y2, s2 = self._data(20_000)
        small, big = expected_at_fraction(y, s, 0.1), expected_at_fraction(y2, s2, 0.1)
        width = lambda e: e["precision"]["high"] - e["precision"]["low"]  # noqa: E731
        assert width(big) < width(small) / 3
        assert expected_at_fraction(y, s, 0.1, seed=4) == expected_at_fraction(y, s, 0.1, seed=4)

    def test_lift_over_a_rule_counts_its_ties_at_their_average(self):
        y, s = self._data(4_000)
        coarse = np.zeros(len(y))  # a rule that cannot tell records apart: as good as random
        e = expected_at_fraction(y, s, 0.1, rule=coarse)
        assert e["rule_precision"]["value"] == pytest.approx(y.mean(), abs=0.04)
        assert e["lift_over_rule"]["value"] == pytest.approx(e["lift_over_random"]["value"], rel=0.35)
        perfect = expected_at_fraction(y, s, 0.05, rule=y.astype(float))
        assert perfect["rule_precision"]["value"] == 1.0
        assert perfect["lift_over_rule"]["value"] == pytest.approx(perfect["precision"]["value"])
