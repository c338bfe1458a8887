"""One contract, every portfolio member (the scikit-learn "common tests" idea).

Each member (every entry of ``portfolio.MEMBERS``: a learner kind with its own parameters):
``fit`` returns self, same seed gives the same predictions, ``state``/``from_state`` round trip
predicts identically, inputs are not mutated, one row scores as it does in a batch, an unfitted
learner raises ``NotFittedError``, and it learns the synthetic signal. Each kind: a
keyword-only constructor.
"""

from __future__ import annotations

import copy
import inspect
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.helpers import learner_inputs
from winnow.errors import NotFittedError
from winnow.models.base import FitContext, Learner, learner_class, make_learner
from winnow.models.portfolio import MEMBERS

# small settings per kind so the whole contract runs in seconds
SMALL = {
    "lightgbm": {"max_rounds": 200, "early_stopping": 20},
    "linear": {},
    "deep": {"hidden": (32, 16), "max_epochs": 6, "patience": 2},
    "catboost": {"max_rounds": 200, "early_stopping": 20},
}
KINDS = list(SMALL)
LEARNERS = list(MEMBERS)  # every member, under its own parameters


def _make(name: str) -> Learner:
    member = MEMBERS[name]
    return member.make(**SMALL[member.kind])


@pytest.fixture(scope="module")
def data():
    return learner_inputs(400, seed=0)


def _ctx(cards, seed: int = 0) -> FitContext:
    return FitContext(seed=seed, threads=1, cat_cardinalities=cards)


def _fit(name: str, data, seed: int = 0, rounds: int | None = None) -> Learner:
    train, valid, cards = data
    return _make(name).fit(train, None if rounds else valid, _ctx(cards, seed), rounds)


@pytest.fixture(scope="module", params=LEARNERS)
def fitted_learner(request, data):
    return request.param, _fit(request.param, data)


def test_registry_covers_every_model():
    kinds = {m.kind for m in MEMBERS.values()}
    assert set(KINDS) == kinds  # every trainable kind has small settings for the contract below
    assert len(LEARNERS) == 7
    for name in kinds:
        cls = learner_class(name)
        assert issubclass(cls, Learner) and cls.name == name
    with pytest.raises(ValueError, match="unknown model"):
        make_learner("forest")


@pytest.mark.parametrize("name", KINDS)
def test_constructor_is_keyword_only_and_stores_parameters(name):
    cls = learner_class(name)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert params, "hyper-parameters are constructor arguments"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    with pytest.raises(TypeError):
        cls(1)  # positional hyper-parameters are refused


@pytest.mark.parametrize("name", LEARNERS)
def test_fit_returns_self(name, data):
    train, valid, cards = data
    learner = _make(name)
    assert learner.fit(train, valid, _ctx(cards)) is learner
    assert isinstance(learner.best_rounds_, int) and learner.best_rounds_ >= 1


def test_predictions_are_finite_log_odds_that_rank(fitted_learner, data):
    name, learner = fitted_learner
    _, valid, _ = data
    z = learner.predict_logit(valid)
    assert z.shape == (len(valid),) and z.dtype == np.float64
    assert np.isfinite(z).all()
    assert roc_auc_score(valid.y, z) > 0.7, f"{name} did not learn the synthetic signal"


@pytest.mark.parametrize("name", LEARNERS)
def test_same_seed_same_predictions(name, data):
    _, valid, _ = data
    a, b = _fit(name, data, seed=3), _fit(name, data, seed=3)
    np.testing.assert_array_equal(a.predict_logit(valid), b.predict_logit(valid))


def test_state_round_trip_predicts_identically(fitted_learner, data):
    name, learner = fitted_learner
    _, valid, _ = data
    config, files = learner.state()
    # the config goes into the JSON manifest, the payloads are plain bytes (never pickle)
    config = json.loads(json.dumps(config))
    assert files and all(isinstance(v, bytes) for v in files.values())
    assert not any(v.startswith(b"\x80") for v in files.values()), "payload looks like a pickle"
    again = learner_class(MEMBERS[name].kind).from_state(config, files)
    np.testing.assert_array_equal(again.predict_logit(valid), learner.predict_logit(valid))
    assert again.best_rounds_ == learner.best_rounds_


@pytest.mark.parametrize("name", LEARNERS)
def test_inputs_are_not_mutated(name, data):
    train, valid, cards = data
    before = copy.deepcopy((train, valid))
    learner = _make(name).fit(train, valid, _ctx(cards))
    learner.predict_logit(valid)
    for now, then in zip((train, valid), before, strict=True):
        np.testing.assert_array_equal(now.m.num, then.m.num)
        np.testing.assert_array_equal(now.m.cat, then.m.cat)
        np.testing.assert_array_equal(now.dense, then.dense)
        np.testing.assert_array_equal(now.y, then.y)


@pytest.mark.parametrize("name", LEARNERS)
def test_refit_with_fixed_rounds(name, data):
    _, valid, _ = data
    learner = _fit(name, data, rounds=2)
    assert learner.best_rounds_ == 2 or name == "linear"
    assert np.isfinite(learner.predict_logit(valid)).all()


def test_prediction_is_row_independent(fitted_learner, data):
    # scoring a row alone or inside a batch gives the same log-odds
    _, learner = fitted_learner
    _, valid, _ = data
    whole = learner.predict_logit(valid)
    singles = np.concatenate([learner.predict_logit(valid.take(np.array([i]))) for i in range(10)])
    np.testing.assert_allclose(singles, whole[:10], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", LEARNERS)
def test_unfitted_learner_raises_not_fitted(name, data):
    _, valid, _ = data
    with pytest.raises(NotFittedError):
        _make(name).predict_logit(valid)


def test_inference_cost_follows_the_model_structure():
    """Structural cost estimates: more trees cost more; a network costs more than a linear model."""
    from tests.helpers import fit_options, make_frame
    from winnow import Screener

    s = Screener().fit(make_frame(400, seed=5), **fit_options(models=["lightgbm", "linear", "tabm"]))
    cost = {n: m.inference_cost() for n, m in s.learners_.items()}
    assert all(c > 0 for c in cost.values())
    assert cost["tabm"] > cost["linear"]
    lgb = s.learners_["lightgbm"]
    import lightgbm

    fewer = lightgbm.Booster(model_str=lgb.booster_.model_to_string(num_iteration=1))
    one_tree = type(lgb)(params=lgb.params)
    one_tree.booster_ = fewer
    assert one_tree.inference_cost() < cost["lightgbm"] or lgb.booster_.num_trees() == 1
