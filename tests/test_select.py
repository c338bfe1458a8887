"""Budgets into counts and thresholds; exact global top-k over a stream."""

from __future__ import annotations

import math

import numpy as np
import pytest

from winnow.config import Budget
from winnow.select import ScoreLog, Threshold, TopK, budget_count, threshold_for, top_k_rows


@pytest.mark.parametrize(
    ("budget", "n", "k"),
    [
        (Budget(fraction=0.05), 599, 30),  # ceil(29.95)
        (Budget(fraction=0.05), 600, 30),
        (Budget(fraction=0.05), 10, 1),
        (Budget(fraction=0.5), 0, 0),
        (Budget(count=25), 600, 25),
        (Budget(count=1000), 600, 600),
        (Budget(min_precision=0.9), 600, None),
    ],
)
def test_budget_count(budget, n, k):
    assert budget_count(budget, n) == k


class TestTopK:
    def test_rank_order_and_ties(self):
        s = np.array([0.2, 0.9, 0.5, 0.9, 0.1])
        assert top_k_rows(s, 3).tolist() == [1, 3, 2]

    def test_nan_is_never_selected(self):
        s = np.array([np.nan, 0.3, np.nan, 0.1])
        assert top_k_rows(s, 3).tolist() == [1, 3]

    def test_zero_and_empty(self):
        assert top_k_rows(np.array([0.5]), 0).size == 0
        assert top_k_rows(np.zeros(0), 5).size == 0

    def test_matches_a_full_sort(self):
        rng = np.random.default_rng(0)
        s = np.round(rng.random(5000), 3)  # many ties
        s[rng.random(5000) < 0.1] = np.nan
        for k in (1, 17, 400, 4999):
            valid = np.flatnonzero(~np.isnan(s))
            expected = valid[np.lexsort((valid, -s[valid]))][:k]
            assert top_k_rows(s, k).tolist() == expected.tolist()


def test_score_log_keeps_every_score_in_order():
    log = ScoreLog()
    log.add(np.array([0.1, 0.2]))
    log.add(np.array([0.3]))
    assert log.n == 3
    np.testing.assert_allclose(log.all(), [0.1, 0.2, 0.3], rtol=1e-6)
    assert ScoreLog().all().size == 0


class TestThreshold:
    def test_fraction_budget(self):
        scores = np.linspace(1, 0, 100, endpoint=False)  # 1.0, 0.99, ..., 0.01
        y = np.zeros(100, int)
        y[[0, 2, 4, 50]] = 1
        t = threshold_for(Budget(fraction=0.05), scores, y, population=1000)
        assert t.value == pytest.approx(scores[4])
        assert t.fraction == pytest.approx(0.05)
        assert t.expected_precision == pytest.approx(3 / 5)
        assert t.expected_recall == pytest.approx(3 / 4)
        assert t.note == ""

    def test_count_budget_is_read_against_the_population(self):
        scores = np.linspace(1, 0, 100, endpoint=False)
        y = np.zeros(100, int)
        y[:3] = 1
        # 100 of a population of 1,000 is 10%: the top 10 validation rows
        t = threshold_for(Budget(count=100), scores, y, population=1000)
        assert t.value == pytest.approx(scores[9])
        assert t.fraction == pytest.approx(0.1)

    def test_ties_at_the_threshold_are_all_selected(self):
        scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
        y = np.array([1, 0, 1, 0, 0])
        t = threshold_for(Budget(fraction=0.4), scores, y, population=5)
        assert t.value == 0.5 and t.fraction == pytest.approx(0.8)
        assert t.expected_precision == pytest.approx(2 / 4)

    def test_min_precision(self):
        scores = np.linspace(1, 0, 200, endpoint=False)
        y = np.zeros(200, int)
        y[:40] = 1
        y[40:200:4] = 1  # precision falls after the top 40
        t = threshold_for(Budget(min_precision=0.9), scores, y, population=200)
        assert t.expected_precision >= 0.9
        k = round(t.fraction * 200)
        assert k >= 40 and t.note == ""

    def test_unreachable_precision_is_noted(self):
        rng = np.random.default_rng(0)
        scores = rng.random(300)
        y = (rng.random(300) < 0.1).astype(int)
        t = threshold_for(Budget(min_precision=0.99), scores, y, population=300)
        assert "no threshold reaches precision 99%" in t.note
        assert 0 < t.fraction <= 1

    def test_to_json(self):
        t = Threshold(0.5, 0.1, 0.8, 0.3, "n")
        assert Threshold(**t.to_json()) == t


def test_fraction_rounding_is_ceil():
    assert budget_count(Budget(fraction=0.1), 33) == math.ceil(3.3)


class TestStreamingTopK:
    """The bounded pass-1 selection is the exact top-k of the whole stream."""

    def test_same_rows_as_a_full_sort_with_ties_nan_and_pruning(self):
        rng = np.random.default_rng(0)
        scores = np.round(rng.random(300_000), 3)  # many ties
        scores[rng.random(300_000) < 0.01] = np.nan
        for capacity, k in ((50, 50), (50, 7), (None, 1000)):
            top = TopK(capacity)
            for start in range(0, len(scores), 10_000):
                top.add(start, scores[start : start + 10_000])
            rows, got = top.top(k)
            assert rows.tolist() == top_k_rows(scores, k).tolist()
            np.testing.assert_array_equal(got, scores[rows])

    def test_memory_stays_bounded(self):
        top = TopK(100)
        rng = np.random.default_rng(1)
        for start in range(0, 2_000_000, 50_000):
            top.add(start, rng.random(50_000))
            assert top._held <= 2 * 32_768 + 50_000
        assert top.top(100)[0].size == 100
        with pytest.raises(ValueError):
            top.top(101)

    def test_pinned_scores_are_remembered_nan_is_not(self):
        top = TopK(1)
        top.pin(np.array([5, 6]), np.array([0.3, np.nan]))
        assert top.pinned == {5: 0.3}
