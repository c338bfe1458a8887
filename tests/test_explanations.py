"""Explanations from every member: contributions add up to the logit, member by member and fused."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.helpers import fit_options, make_frame
from winnow.models.base import explains_as
from winnow.models.fusion import Fusion
from winnow.reasons import _sources, explain, member_contributions

ALL_SEVEN = ["lightgbm", "lightgbm_xt", "lightgbm_rf", "linear", "deep", "tabm", "catboost"]
#: integrated gradients (32 midpoints) against the network's exact logit, on the member's scale
IG_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def seven():
    from winnow import Screener

    frame = make_frame(500, seed=7)
    s = Screener().fit(frame, **fit_options(models=ALL_SEVEN, live_model="full"))
    new = make_frame(120, seed=8).drop(columns=["churn", "future_spend"])
    x, _ = s.prepare(pa.Table.from_pandas(new, preserve_index=False))
    return s, x


def test_every_member_is_attributed(seven):
    s, _ = seven
    assert sorted(s.learners_) == sorted(ALL_SEVEN)
    kinds = {explains_as(learner) for learner in s.learners_.values()}
    assert kinds == {"lightgbm", "linear", "deep", "catboost"}


@pytest.mark.parametrize("member", ALL_SEVEN)
def test_each_member_adds_up_to_its_logit(seven, member):
    s, x = seven
    learner = s.learners_[member]
    pos = {c: i for i, c in enumerate(_sources(s.prep_))}
    out, expected = member_contributions(s.prep_, learner, x, pos)
    gap = learner.predict_logit(x) - (out.sum(1) + expected)
    tolerance = IG_TOLERANCE if explains_as(learner) == "deep" else 1e-9
    assert np.abs(gap).max() <= tolerance, (member, np.abs(gap).max())
    assert np.abs(out).sum() > 0  # the member does explain something


def test_fused_explanation_adds_up_and_matches_the_score(seven):
    s, x = seven
    f = s.fusion_
    equal = Fusion(f.names, [1 / len(f.names)] * len(f.names), f.centers, f.scales, a=f.a, b=f.b)
    logits = {n: s.learners_[n].predict_logit(x) for n in f.names}
    e = explain(s.prep_, s.learners_, equal, x)
    np.testing.assert_allclose(e.contributions.sum(1) + e.base + e.residual, e.logit, atol=1e-9)
    platt = equal.calibrate(equal.fused_logit(logits))
    np.testing.assert_allclose(1 / (1 + np.exp(-e.logit)), platt, rtol=1e-9)
    assert np.ptp(e.base) == 0  # one base value for every row
    # the networks carry 2/7 of the weight: their integration error is all that is left over
    assert np.abs(e.residual).max() <= IG_TOLERANCE * f.a * max(2 / 7 / sc for sc in f.scales)
    assert e.sources == [c for c in _sources(s.prep_)]


def test_screener_explain_gives_every_row_and_adds_up(seven):
    s, _ = seven
    new = make_frame(60, seed=9).drop(columns=["churn", "future_spend"])
    t = s.explain(new)
    contrib = [c for c in t.column_names if c.startswith("contribution_")]
    assert t.column_names[:5] == ["row", "customer_id", "logit", "base", "residual"]
    inputs = ("spend", "visits", "region", "member", "signup")
    assert sorted(contrib) == sorted(f"contribution_{c}" for c in inputs)
    total = sum(t.column(c).to_numpy() for c in [*contrib, "base", "residual"])
    np.testing.assert_allclose(total, t.column("logit").to_numpy(), atol=1e-9)
    p = s.score(new)
    if s.fusion_.calibration == "platt" and not s.fusion_.log_odds_shift:
        np.testing.assert_allclose(1 / (1 + np.exp(-t.column("logit").to_numpy())), p, rtol=1e-9)
    frame = s.explain(new, output="auto")
    assert len(frame) == 60 and frame["customer_id"].tolist() == new["customer_id"].tolist()
