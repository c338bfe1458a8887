"""The numbers behind the charts agree with winnow.metrics on the held-out rows."""

from __future__ import annotations

import numpy as np
import pytest

from winnow.metrics import at_budget
from winnow.report import curves, svg


def test_curves_agree_with_top_k_metrics(ruled) -> None:
    y, s = ruled.evaluation_["y"], ruled.evaluation_["score"]
    r = curves.Ranking.of(y, s)
    n, pos = len(y), int(y.sum())
    gx, gy = curves.gain_curve(r)
    assert (gx[0], gy[0]) == (0.0, 0.0) and gx[-1] == 1.0 and gy[-1] == pytest.approx(1.0)
    assert np.all(np.diff(gy) >= 0)
    for k in r.cut_points():
        assert r.hits[k - 1] == at_budget(y, s, int(k))["recall"] * pos
    rec, prec = curves.pr_curve(r)
    assert prec[-1] == pytest.approx(pos / n) and rec[-1] == pytest.approx(1.0)
    lx, ly = curves.lift_curve(r)
    assert lx[0] >= 0.01 and ly[-1] == pytest.approx(1.0)


def test_ties_share_one_point_and_long_curves_are_thinned() -> None:
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.9])
    r = curves.Ranking.of(y, s)
    assert r.cut_points().tolist() == [2, 5, 6]
    rng = np.random.default_rng(0)
    big = curves.Ranking.of(rng.random(10_000) < 0.1, rng.random(10_000))
    x, _ = curves.gain_curve(big)
    assert len(x) <= curves.MAX_POINTS + 2


def test_calibration_bins_and_histograms(ruled) -> None:
    y, s = ruled.evaluation_["y"], ruled.evaluation_["score"]
    bins = curves.calibration_bins(y, s)
    assert len(bins) == 10 and sum(b.rows for b in bins) == len(y)
    assert [b.mean_predicted for b in bins] == sorted(b.mean_predicted for b in bins)
    assert sum(b.observed * b.rows for b in bins) == pytest.approx(y.sum())
    edges, neg, pos = curves.class_histograms(y, s)
    assert len(edges) == len(neg) + 1 and sum(neg) == pytest.approx(1) and sum(pos) == pytest.approx(1)


def test_budget_row_is_the_metrics_at_budget(ruled) -> None:
    y, s = ruled.evaluation_["y"], ruled.evaluation_["score"]
    row = curves.budget_row(y, s, 0.1)
    m = at_budget(y, s, row.k)
    assert (row.precision, row.recall, row.lift) == (m["precision"], m["recall"], m["lift"])
    assert row.k == ruled.metrics_["winnow"]["lift_curve"]["0.1"]["k"]


def test_axis_helpers() -> None:
    assert svg.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert svg.nice_ticks(0, 8.4)[-1] <= 8.4
    assert svg.nice_upper(0.43) == 0.5 and svg.nice_upper(7.2) == 8
    assert svg.pct(0.1) == "10%" and svg.pct(0.0125) == "1.25%"
