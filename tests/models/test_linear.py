"""Logistic regression learner: C chosen on validation, O(features) scoring."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import learner_inputs
from winnow.models.base import FitContext
from winnow.models.linear import C_GRID, LinearLearner, _design


@pytest.fixture(scope="module")
def data():
    return learner_inputs(400, seed=0)


@pytest.fixture(scope="module")
def model(data):
    train, valid, cards = data
    return LinearLearner().fit(train, valid, FitContext(threads=1, cat_cardinalities=cards))


def test_c_is_chosen_from_the_grid(model):
    assert model.C_ in C_GRID
    assert model.best_rounds_ == C_GRID.index(model.C_) + 1


def test_rounds_carry_the_grid_index(data):
    train, _, cards = data
    m = LinearLearner().fit(train, None, FitContext(cat_cardinalities=cards), rounds=1)
    assert m.C_ == C_GRID[0]


def test_fixed_c(data):
    train, valid, cards = data
    m = LinearLearner(C=0.5).fit(train, valid, FitContext(cat_cardinalities=cards))
    assert m.C_ == 0.5


def test_scoring_equals_the_one_hot_model(model, data):
    _, valid, cards = data
    X = _design(valid, cards)
    coef = np.concatenate([model.coef_dense_, *model.coef_cat_])
    np.testing.assert_allclose(X @ coef + model.intercept_, model.predict_logit(valid), atol=1e-10)


def test_contributions_add_up_to_the_logit(model, data):
    _, valid, _ = data
    dense, cat = model.contributions(valid)
    const = model.intercept_ + sum(w.mean() for w in model.coef_cat_)
    np.testing.assert_allclose(dense.sum(1) + cat.sum(1) + const, model.predict_logit(valid), atol=1e-10)


def test_unseen_category_code_uses_the_rare_weight(model, data):
    _, valid, _ = data
    x = valid.take(np.array([0, 0]))
    x.m.cat[1, 0] = 1  # rare/unseen
    z = model.predict_logit(x)
    assert z[1] - z[0] == pytest.approx(model.coef_cat_[0][1] - model.coef_cat_[0][x.m.cat[0, 0]])
