"""The numpy applier of CatBoost's oblivious trees gives CatBoost's own raw scores and leaves,
to the last bit, for every kind of split and CTR a binary model can hold."""

from __future__ import annotations

import numpy as np
import pytest

from winnow.models.catboost_apply import ObliviousApplier, UnsupportedModel, category_hash, model_spec

catboost = pytest.importorskip("catboost")


def _data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 3)).astype(np.float32)
    num[rng.random(n) < 0.15, 1] = np.nan
    cat = np.stack([rng.integers(0, 30, n), rng.integers(0, 5, n), rng.integers(0, 40, n)], axis=1).astype(
        np.int64
    )
    logit = (cat[:, 0] % 5 == cat[:, 2] % 5) * 1.5 + (num[:, 0] > 0) - (cat[:, 1] == 2) * 1.2
    logit = logit + np.nan_to_num(num[:, 1]) * 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-(logit - 1)))).astype(int)
    return num, cat, y


def _features(num: np.ndarray, cat: np.ndarray):
    text = np.array([[str(v) for v in row] for row in cat], dtype=object)
    return catboost.FeaturesData(num_feature_data=num, cat_feature_data=text)


def _fit(num, cat, y, **params):
    model = catboost.CatBoostClassifier(
        iterations=params.pop("iterations", 120),
        depth=6,
        random_seed=0,
        thread_count=1,
        verbose=False,
        allow_writing_files=False,
        **params,
    )
    model.fit(catboost.Pool(_features(num, cat), label=y))
    return model


def _assert_same(model, num: np.ndarray, cat: np.ndarray) -> ObliviousApplier:
    applier = ObliviousApplier(model_spec(model))
    pool = catboost.Pool(_features(num, cat))
    expected = model.predict(pool, prediction_type="RawFormulaVal")
    np.testing.assert_array_equal(applier.raw(num, cat), expected)
    np.testing.assert_array_equal(applier.leaves(num, cat), model.calc_leaf_indexes(pool))
    for i in range(5):  # one row at a time, as the service calls it
        assert applier.raw(num[i : i + 1], cat[i : i + 1])[0] == expected[i]
    return applier


@pytest.fixture(scope="module")
def data():
    return _data()


def test_combinations_one_hot_and_counters_match_catboost_bit_for_bit(data):
    num, cat, y = data
    model = _fit(num, cat, y, iterations=200, one_hot_max_size=8, max_ctr_complexity=4)
    spec = model_spec(model)
    kinds = {e["combination_element"] for c in spec["features_info"]["ctrs"] for e in c["elements"]}
    types = {c["ctr_type"] for c in spec["features_info"]["ctrs"]}
    splits = {s["split_type"] for t in spec["oblivious_trees"] for s in t["splits"] or []}
    # the model exercises every element kind, both CTR types and all three split kinds
    assert kinds == {"cat_feature_value", "float_feature", "cat_feature_exact_value"}
    assert types == {"Borders", "Counter"}
    assert splits == {"FloatFeature", "OneHotFeature", "OnlineCtr"}
    test_num, test_cat, _ = _data(800, seed=1)
    test_cat[::7, 0] = 1234  # a code CatBoost never saw: its CTRs take the prior
    _assert_same(model, test_num, test_cat)


def test_missing_values_sent_right_and_buckets_ctrs(data):
    num, cat, y = data
    model = _fit(num, cat, y, nan_mode="Max", simple_ctr=["Buckets", "Borders"], one_hot_max_size=2)
    spec = model_spec(model)
    assert any(f.get("nan_value_treatment") == "AsTrue" for f in spec["features_info"]["float_features"])
    assert "Buckets" in {c["ctr_type"] for c in spec["features_info"]["ctrs"]}
    _assert_same(model, *_data(500, seed=2)[:2])


def test_numbers_only():
    num, _, y = _data()
    model = catboost.CatBoostClassifier(
        iterations=50, depth=4, verbose=False, thread_count=1, random_seed=0, allow_writing_files=False
    )
    model.fit(num, y)
    applier = ObliviousApplier(model_spec(model))
    np.testing.assert_array_equal(
        applier.raw(num[:300], np.zeros((300, 0), dtype=np.int64)),
        model.predict(num[:300], prediction_type="RawFormulaVal"),
    )


def test_category_hash_is_catboosts():
    # values from CatBoost's own Python export of a model fitted on these texts
    assert category_hash("0") == -1438285038
    assert category_hash("2") == -1284790409
    assert category_hash("3") == 593172586
    assert category_hash("44") == -2059869727
    with pytest.raises(UnsupportedModel):
        category_hash("x" * 17)


def test_a_multiclass_model_is_refused():
    num, cat, _ = _data(600)
    y = cat[:, 1] % 3
    model = catboost.CatBoostClassifier(
        iterations=10,
        depth=3,
        verbose=False,
        thread_count=1,
        loss_function="MultiClass",
        allow_writing_files=False,
    )
    model.fit(catboost.Pool(_features(num, cat), label=y))
    with pytest.raises(UnsupportedModel):
        ObliviousApplier(model_spec(model))


def test_path_contributions_of_combinations_with_numbers_add_up(data):
    """A CTR over a category and a number's border is credited to both columns (it raised a
    KeyError before: only categories were looked for in a combination)."""
    from winnow.models.catboost_paths import ObliviousPaths

    num, cat, y = data
    model = _fit(num, cat, y, iterations=200, max_ctr_complexity=4)
    spec = model_spec(model)
    assert any(
        e["combination_element"] == "float_feature"
        for c in spec["features_info"]["ctrs"]
        for e in c["elements"]
    )
    paths = ObliviousPaths.of(model, num.shape[1], cat.shape[1])
    applier = ObliviousApplier(spec)
    contrib = paths.contributions(applier.leaves(num[:300], cat[:300]))
    np.testing.assert_allclose(
        contrib.sum(axis=1) + paths.expected, applier.raw(num[:300], cat[:300]), atol=1e-9
    )


def test_the_learner_scores_few_rows_the_same_either_way():
    """Both appliers behind CatBoostLearner.predict_logit and contributions give the same bits."""
    from tests.helpers import learner_inputs
    from winnow.models.base import FitContext
    from winnow.models.catboost_model import FEW_ROWS, CatBoostLearner

    train, valid, cards = learner_inputs(400, seed=3)
    learner = CatBoostLearner(max_rounds=80).fit(
        train, valid, FitContext(seed=0, threads=1, cat_cardinalities=cards)
    )
    few = valid.take(np.arange(FEW_ROWS))
    learner._applier = False  # CatBoost's applier
    theirs, their_contrib = learner.predict_logit(few), learner.contributions(few)
    learner._applier, learner._applier_rows = ObliviousApplier(model_spec(learner.model_)), FEW_ROWS
    np.testing.assert_array_equal(learner.predict_logit(few), theirs)
    np.testing.assert_array_equal(learner.contributions(few), their_contrib)
    learner._applier = None  # chosen by timing on the next call: the same bits whichever wins
    np.testing.assert_array_equal(learner.predict_logit(few.take(np.arange(3))), theirs[:3])
    assert learner._applier is not None


def test_a_refit_learner_forgets_the_trees_it_read():
    """The applier, path table and JSON export of a model are dropped when the learner fits again."""
    from tests.helpers import learner_inputs
    from winnow.models.base import FitContext
    from winnow.models.catboost_model import CatBoostLearner

    train, valid, cards = learner_inputs(300, seed=4)
    ctx = FitContext(seed=0, threads=1, cat_cardinalities=cards)
    learner = CatBoostLearner(max_rounds=20).fit(train, None, ctx, rounds=20)
    few = valid.take(np.arange(4))
    learner.predict_logit(few), learner.contributions(few)
    learner.fit(train, None, FitContext(seed=1, threads=1, cat_cardinalities=cards), rounds=35)
    assert learner._applier is None and learner._paths is None and learner._spec_cache is None
    fresh = CatBoostLearner.from_state(*learner.state())
    np.testing.assert_array_equal(learner.predict_logit(few), fresh.predict_logit(few))
