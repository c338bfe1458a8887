"""CatBoost learner: categorical codes as CatBoost categories, early stopping, native format."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.helpers import learner_inputs
from winnow.models.base import FitContext
from winnow.models.catboost_model import CatBoostLearner, catboost_frame

pytest.importorskip("catboost")


@pytest.fixture(scope="module")
def data():
    return learner_inputs(400, seed=0)


@pytest.fixture(scope="module")
def model(data):
    train, valid, cards = data
    ctx = FitContext(seed=0, threads=1, cat_cardinalities=cards)
    return CatBoostLearner(max_rounds=300, early_stopping=20).fit(train, valid, ctx)


def test_frame_is_numbers_then_integer_codes(data):
    train, _, _ = data
    f = catboost_frame(train)
    p, q = train.m.num.shape[1], train.m.cat.shape[1]
    assert f.shape == (len(train), p + q)
    assert all(f[c].dtype == np.float32 for c in f.columns[:p])
    assert all(f[c].dtype == np.int64 for c in f.columns[p:])


def test_categorical_codes_are_catboost_categories(model, data):
    train, _, _ = data
    p, q = train.m.num.shape[1], train.m.cat.shape[1]
    assert q > 0
    assert list(model.model_.get_cat_feature_indices()) == list(range(p, p + q))


def test_early_stopping_keeps_only_the_chosen_trees(model):
    assert 1 <= model.best_rounds_ < 300
    assert model.model_.tree_count_ == model.best_rounds_


def test_threads_and_seed_are_the_contexts(data):
    train, _, _ = data
    m = CatBoostLearner(max_rounds=30).fit(train, None, FitContext(seed=7, threads=1), rounds=30)
    params = m.model_.get_params()
    assert params["random_seed"] == 7 and params["thread_count"] == 1
    assert m.model_.tree_count_ == 30


def test_native_format_not_pickle(model, data):
    _, valid, _ = data
    cfg, files = model.state()
    assert set(files) == {"cbm"} and files["cbm"][:4] == b"CBM1"
    again = CatBoostLearner.from_state(cfg, files)
    np.testing.assert_array_equal(again.predict_logit(valid), model.predict_logit(valid))


def test_deadline_stops_adding_trees(data):
    train, _, cards = data
    ctx = FitContext(seed=0, threads=1, cat_cardinalities=cards, deadline=time.monotonic() - 1)
    m = CatBoostLearner(max_rounds=500).fit(train, None, ctx, rounds=500)
    assert m.model_.tree_count_ < 500


def test_scoring_fast_path_matches_the_pool_of_the_fit(model, data):
    """``predict_logit`` reads FeaturesData; the frame + Pool path it replaced gives the same bits."""
    _, valid, _ = data
    pooled = model.model_.predict(model._pool(valid, with_label=False), prediction_type="RawFormulaVal")
    np.testing.assert_array_equal(model.predict_logit(valid), np.asarray(pooled, dtype=np.float64))
    one = valid.take(np.array([3]))
    np.testing.assert_array_equal(model.predict_logit(one), model.predict_logit(valid)[3:4])


def test_scoring_fast_path_without_categories(data):
    train, valid, _ = data

    def drop(x):
        return type(x)(m=type(x.m)(x.m.num, x.m.cat[:, :0]), dense=x.dense, y=x.y)

    m = CatBoostLearner(max_rounds=20).fit(drop(train), None, FitContext(seed=0), rounds=20)
    pooled = m.model_.predict(m._pool(drop(valid), with_label=False), prediction_type="RawFormulaVal")
    np.testing.assert_array_equal(m.predict_logit(drop(valid)), np.asarray(pooled, dtype=np.float64))


def test_public_predict_when_the_direct_prediction_is_refused(model, data, monkeypatch):
    """A CatBoost whose internal prediction takes other arguments: the public predict answers."""
    _, valid, _ = data
    direct = model.predict_logit(valid)
    real, calls = model.model_._base_predict, []

    def other_signature(*args):
        calls.append(len(args))
        if len(calls) == 1:
            raise TypeError("_base_predict() takes 6 positional arguments but 7 were given")
        return real(*args)

    monkeypatch.setattr(model.model_, "_base_predict", other_signature)
    np.testing.assert_array_equal(model.predict_logit(valid), direct)
    assert len(calls) == 2  # refused, then the public predict's own call
