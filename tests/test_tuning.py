"""The hyper-parameter search: seeded, bounded, never worse than the defaults on validation."""

from __future__ import annotations

import time

import pytest

from tests.helpers import learner_inputs
from winnow.models.base import FitContext, make_learner
from winnow.tuning import tune


@pytest.fixture(scope="module")
def data():
    return learner_inputs(500, seed=2)


def _ctx(cards):
    return FitContext(seed=5, threads=1, cat_cardinalities=cards)


def test_lightgbm_search_is_seeded_and_keeps_the_best(data):
    train, valid, cards = data
    a = tune("lightgbm", train, valid, _ctx(cards), seconds=None, trials=4)
    b = tune("lightgbm", train, valid, _ctx(cards), seconds=None, trials=4)
    assert a.params == b.params and a.best_value == b.best_value
    assert a.trials == 4 and a.best_value >= a.default_value
    assert a.best_value == max(a.history)
    # the parameters found build a working learner
    learner = make_learner("lightgbm", **a.params).fit(train, valid, _ctx(cards))
    assert learner.predict_logit(valid).shape == (len(valid),)
    assert set(a.to_json()) >= {"params", "best_valid_auc_pr", "trials", "pruned", "seconds"}


def test_deep_search_runs_and_reports(data):
    train, valid, cards = data
    res = tune("deep", train, valid, _ctx(cards), seconds=None, trials=2)
    assert res.trials == 2 and isinstance(res.params["hidden"], tuple)
    assert res.best_value >= res.default_value


def test_search_stops_at_its_time_limit(data):
    train, valid, cards = data
    t0 = time.monotonic()
    res = tune("lightgbm", train, valid, _ctx(cards), seconds=3.0, trials=None)
    # generous: one trial may finish after the limit, but the search does not go on
    assert time.monotonic() - t0 < 30
    assert res.trials >= 1


def test_hopeless_trials_are_pruned(data):
    """Reports reach Optuna's pruner: with many trials, some stop early."""
    train, valid, cards = data
    res = tune("lightgbm", train, valid, _ctx(cards), seconds=None, trials=16)
    assert res.pruned >= 1
