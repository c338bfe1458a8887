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


@pytest.fixture(scope="module")
def forest(data):
    from winnow.models.portfolio import MEMBERS

    train, valid, cards = data
    ctx = FitContext(seed=0, threads=1, cat_cardinalities=cards)
    return MEMBERS["lightgbm_rf"].make(max_rounds=150, early_stopping=20).fit(train, valid, ctx)


class TestRandomForestMode:
    """The ``lightgbm_rf`` member: LightGBM with ``boosting="rf"`` (trees averaged, not summed)."""

    def test_member_is_a_random_forest(self):
        from winnow.models.gbdt import is_random_forest
        from winnow.models.portfolio import MEMBERS

        assert is_random_forest(MEMBERS["lightgbm_rf"].make().params)
        assert not is_random_forest(MEMBERS["lightgbm"].make().params)
        assert is_random_forest({"boosting_type": "random_forest"})

    def test_logit_is_the_log_odds_of_the_averaged_trees(self, forest, data):
        _, valid, _ = data
        p = forest.booster_.predict(tree_matrix(valid))  # LightGBM averages the trees here
        np.testing.assert_allclose(1 / (1 + np.exp(-forest.predict_logit(valid))), p, rtol=1e-9)

    def test_early_stopping_keeps_the_chosen_trees(self, forest):
        assert 1 <= forest.best_rounds_ <= 150
        assert forest.booster_.current_iteration() == forest.best_rounds_

    def test_contributions_add_up_to_the_logit(self, forest, data):
        _, valid, _ = data
        contrib = forest.contributions(valid)
        bias = forest.booster_.predict(tree_matrix(valid), pred_contrib=True)[:, -1]
        bias = bias / forest.booster_.current_iteration()
        np.testing.assert_allclose(contrib.sum(axis=1) + bias, forest.predict_logit(valid), atol=1e-6)

    def test_refit_with_rounds_grows_that_many_trees(self, forest, data):
        train, valid, cards = data
        ctx = FitContext(seed=0, threads=1, cat_cardinalities=cards)
        again = LightGBMLearner(params=forest.params).fit(train, None, ctx, rounds=forest.best_rounds_)
        assert again.booster_.current_iteration() == forest.best_rounds_
        z = again.predict_logit(valid)
        assert np.isfinite(z).all() and np.abs(z).max() < 20  # averaged, not a sum over trees


def test_path_contributions_follow_each_split(data):
    """A hand-checkable case: one split on feature 0; the row's side gets the whole change."""
    from winnow.models.base import FitContext
    from winnow.models.gbdt import PathTable

    train, _, _ = data
    m = LightGBMLearner(params={"num_leaves": 2, "learning_rate": 1.0, "bagging_fraction": 1.0}, max_rounds=1)
    m.fit(train, None, FitContext(seed=0), rounds=1)
    tree = m.booster_.dump_model()["tree_info"][0]["tree_structure"]
    left, right = tree["left_child"], tree["right_child"]
    mean = (left["leaf_value"] * left["leaf_count"] + right["leaf_value"] * right["leaf_count"]) / (
        left["leaf_count"] + right["leaf_count"]
    )
    table = PathTable.of(m.booster_).table.toarray()
    f = tree["split_feature"]
    assert table[left["leaf_index"], f] == pytest.approx(left["leaf_value"] - mean)
    assert table[right["leaf_index"], f] == pytest.approx(right["leaf_value"] - mean)
    assert np.count_nonzero(table) == 2  # nothing credited to the features not split on


@pytest.mark.parametrize("boosting", ["gbdt", "rf"])
def test_one_row_scores_equal_the_batch_to_the_last_bit(data, boosting):
    """One row goes through LightGBM's single-row fast path; the scores do not move."""
    from concurrent.futures import ThreadPoolExecutor

    train, valid, cards = data
    params = {} if boosting == "gbdt" else {"boosting": "rf", "bagging_fraction": 0.7}
    m = LightGBMLearner(params=params, max_rounds=60, early_stopping=10).fit(
        train, valid, FitContext(seed=0, threads=1, cat_cardinalities=cards)
    )
    batch = m.predict_logit(valid)
    rows = [valid.take(np.array([i])) for i in range(len(valid))]
    one = np.concatenate([m.predict_logit(r) for r in rows])
    np.testing.assert_array_equal(one, batch)
    with ThreadPoolExecutor(4) as pool:  # one predictor shared by threads
        np.testing.assert_array_equal(np.concatenate(list(pool.map(m.predict_logit, rows))), batch)
    m.threads = 2  # a new thread count sets the predictor up again
    np.testing.assert_array_equal(m.predict_logit(rows[3]), batch[3:4])
    assert m._one_row is not None and m._one_row.threads == 2
