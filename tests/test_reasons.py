"""Reason codes: additive contributions, named by the user's columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.helpers import make_frame
from winnow.config import Role
from winnow.models.base import Inputs
from winnow.reasons import format_value, reason_codes, source_contributions
from winnow.schema import coerce


@pytest.fixture(scope="module")
def prepared(fitted):
    """(the typed rows, their model inputs)."""
    raw = pa.Table.from_pandas(make_frame(200, seed=12), preserve_index=False)
    typed = coerce(raw, fitted.specs_)
    m = fitted.prep_.transform(typed.table, fitted.specs_)
    return typed.table, Inputs(m=m, dense=fitted.prep_.dense(m))


def test_contributions_are_per_source_column(fitted, prepared):
    _, x = prepared
    sources, contrib = source_contributions(fitted.prep_, fitted.learners_, fitted.fusion_, x)
    # a date's parts and a number's missing flag count for their own column
    assert sources == ["spend", "visits", "member", "signup", "region"]
    assert contrib.shape == (200, 5)


def test_contributions_add_up_to_the_fused_logit(fitted, prepared):
    _, x = prepared
    _, contrib = source_contributions(fitted.prep_, fitted.learners_, fitted.fusion_, x)
    logits = {n: fitted.learners_[n].predict_logit(x) for n in fitted.fusion_.names}
    fused = fitted.fusion_.a * fitted.fusion_.fused_logit(logits)
    gap = contrib.sum(axis=1) - fused
    assert np.ptp(gap) < 1e-6  # equal up to one constant (biases and intercepts)


def test_reasons_are_the_largest_positive_contributions(fitted, prepared):
    raw, x = prepared
    sources, contrib = source_contributions(fitted.prep_, fitted.learners_, fitted.fusion_, x)
    codes = reason_codes(fitted.prep_, fitted.learners_, fitted.fusion_, x, raw, top=3)
    assert len(codes) == 200
    for i, row in enumerate(codes):
        positive = sorted(((c, s) for s, c in zip(sources, contrib[i], strict=True) if c > 0), reverse=True)
        assert [r.split("=")[0] for r in row] == [s for _, s in positive[:3]]
        for r, (c, _) in zip(row, positive, strict=False):
            assert r.endswith(f"(+{c:.2f})")


def test_reason_shows_the_typed_value(fitted, prepared):
    raw, x = prepared
    codes = reason_codes(fitted.prep_, fitted.learners_, fitted.fusion_, x, raw, top=5)
    region = raw.column("region").to_pylist()
    for i, row in enumerate(codes):
        for r in row:
            if r.startswith("region="):
                assert r.startswith(f"region={region[i]} ")


def test_empty_batch(fitted, prepared):
    raw, x = prepared
    idx = np.zeros(0, dtype=np.int64)
    assert (
        reason_codes(fitted.prep_, fitted.learners_, fitted.fusion_, x.take(idx), raw.take(pa.array(idx)))
        == []
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "missing"),
        (float("nan"), "missing"),
        (1234.56789, "1235"),
        (0.000123456, "0.0001235"),
        (7.0, "7"),
        (123456.0, "123456"),
        ("x" * 50, "x" * 37 + "..."),
    ],
)
def test_value_formatting(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("value", "role", "text"),
    [
        (1.0, Role.BOOLEAN, "true"),
        (0.0, Role.BOOLEAN, "false"),
        (86_400.0 * 365, Role.DATETIME, "1971-01-01"),
        (86_400.0 * 365 + 3_600 * 5 + 7, Role.DATETIME, "1971-01-01T05:00:07"),
        (3.0, Role.NUMERIC, "3"),
        ("north", Role.CATEGORICAL, "north"),
    ],
)
def test_values_are_shown_by_their_role(value, role, text):
    """A record reads the same in a reason whether it came as text (CSV, Redis) or typed."""
    assert format_value(value, role) == text
