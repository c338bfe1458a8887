"""LightGBM learner: early stopping, contributions, categorical codes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import learner_inputs
from winnow.models.base import FitContext
from winnow.models.gbdt import DEFAULT_PARAMS, LightGBMLearner, tree_matrix


@pytest.fixture(scope="module")
def data():
    return learner_inputs(400, seed=0)


@pytest.fixture(scope="module")
def model(data):
    train, valid, cards = data
    return LightGBMLearner(max_rounds=300, early_stopping=20).fit(
        train, valid, FitContext(seed=0, threads=1, cat_cardinalities=cards)
    )


def test_tree_matrix_is_numbers_then_codes(data):
    train, _, _ = data
    x = tree_matrix(train)
    assert x.shape == (len(train), train.m.num.shape[1] + train.m.cat.shape[1])
    np.testing.assert_array_equal(x[:, -1], train.m.cat[:, -1].astype(np.float32))


def test_early_stopping_keeps_only_the_chosen_trees(model):
    assert 1 <= model.best_rounds_ < 300
    assert model.booster_.current_iteration() == model.best_rounds_


def test_contributions_add_up_to_the_logit(model, data):
    _, valid, _ = data
    contrib = model.contributions(valid)
    full = model.booster_.predict(tree_matrix(valid), pred_contrib=True)
    assert contrib.shape == (len(valid), full.shape[1] - 1)
    np.testing.assert_allclose(contrib.sum(axis=1) + full[:, -1], model.predict_logit(valid), atol=1e-6)


def test_feature_importance_per_feature(model, data):
    train, _, _ = data
    imp = model.feature_importance()
    assert imp.shape == (train.m.num.shape[1] + train.m.cat.shape[1],)
    assert imp.sum() > 0


def test_user_params_override_defaults():
    m = LightGBMLearner(params={"num_leaves": 7})
    assert m.params["num_leaves"] == 7
    assert m.params["objective"] == DEFAULT_PARAMS["objective"]


def test_deadline_stops_boosting(data):
    import time

    train, _, cards = data
    ctx = FitContext(seed=0, threads=1, cat_cardinalities=cards, deadline=time.monotonic() - 1)
    m = LightGBMLearner(max_rounds=500).fit(train, None, ctx, rounds=500)
    assert m.booster_.current_iteration() < 500
