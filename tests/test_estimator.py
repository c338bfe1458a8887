"""WinnowClassifier: scikit-learn's estimator checks, GridSearchCV, Pipeline, frames, artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from tests.helpers import make_frame
from winnow import Screener, WinnowClassifier
from winnow.errors import ArtifactError, DataError

_TINY = (
    "fits on 10-30 rows, fewer than the 10 rows of each class winnow needs for an honest "
    "train / validation / test split (fit raises ValueError naming the counts)"
)
#: every check scikit-learn runs that WinnowClassifier is expected to fail, with the reason
EXPECTED_FAILED = {
    "check_classifier_data_not_an_array": _TINY,
    "check_dict_unchanged": _TINY,
    "check_dont_overwrite_parameters": _TINY,
    "check_estimators_fit_returns_self": _TINY,
    "check_estimators_overwrite_params": _TINY,
    "check_f_contiguous_array_estimator": _TINY,
    "check_fit2d_1feature": _TINY + "; the check wants a message about 1 feature",
    "check_fit2d_predict1d": _TINY,
    "check_methods_sample_order_invariance": _TINY,
    "check_methods_subset_invariance": _TINY,
    "check_n_features_in_after_fitting": _TINY,
    "check_readonly_memmap_input": _TINY,
}


@parametrize_with_checks(
    [WinnowClassifier(models=["linear"])],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
    xfail_strict=True,  # a check that starts passing must leave the list
)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=600, n_features=8, n_informative=4, weights=[0.8], random_state=3)


def test_params_clone_and_defaults():
    est = WinnowClassifier(time_limit=30, budget=0.1)
    assert est.get_params()["time_limit"] == 30 and est.get_params()["preset"] == "balanced"
    twin = clone(est.set_params(models=["linear"]))
    assert twin.get_params() == est.get_params() and twin is not est


def test_fit_predict_decision_function(xy):
    X, y = xy
    est = WinnowClassifier(models=["linear"], random_state=1).fit(X, y)
    assert est.classes_.tolist() == [0, 1] and est.n_features_in_ == 8
    assert not hasattr(est, "feature_names_in_")
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    d = est.decision_function(X)
    np.testing.assert_allclose(1 / (1 + np.exp(-d)), proba[:, 1], rtol=1e-9, atol=1e-12)
    assert (est.predict(X) == (proba[:, 1] >= 0.5)).all() and est.score(X, y) > 0.8
    # the same seed, the same fit
    again = WinnowClassifier(models=["linear"], random_state=1).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), proba)


def test_a_budget_makes_predict_the_screen(xy):
    X, y = xy
    est = WinnowClassifier(models=["linear"], budget=0.05).fit(X, y)
    assert est.threshold_ == est.screener_.threshold_.value  # set on the validation rows
    assert est.screener_.threshold_.fraction == 0.05
    p = est.predict_proba(X)[:, 1]
    assert (est.predict(X) == (p >= est.threshold_)).all() and est.threshold_ != 0.5


def test_label_values_and_positive_class(xy):
    X, y = xy
    labels = np.where(y == 1, "spender", "browser")  # sorted: browser < spender
    est = WinnowClassifier(models=["linear"]).fit(X, labels)
    assert est.classes_.tolist() == ["browser", "spender"]
    p = est.predict_proba(X)[:, 1]
    assert p[labels == "spender"].mean() > p[labels == "browser"].mean()
    assert set(est.predict(X)) <= {"browser", "spender"}


def test_refusals(xy):
    X, y = xy
    with pytest.raises(ValueError, match="Only binary classification"):
        WinnowClassifier(models=["linear"]).fit(X, np.arange(len(y)) % 3)
    with pytest.raises(ValueError, match="only 4 samples of its rarer class"):
        WinnowClassifier(models=["linear"]).fit(X[:40], np.r_[np.ones(4), np.zeros(36)])
    est = WinnowClassifier(models=["linear"]).fit(X, y)
    with pytest.raises(ValueError, match="X has 7 features, but WinnowClassifier is expecting 8"):
        est.predict(X[:, :7])


def test_frames_keep_names_and_types():
    data = make_frame(800, seed=5)
    y = (data.pop("churn") == "yes").to_numpy()
    X = data.drop(columns=["future_spend"])
    est = WinnowClassifier(models=["lightgbm", "linear"], random_state=0).fit(X, y)
    assert est.feature_names_in_.tolist() == list(X.columns)
    p = est.predict_proba(X)[:, 1]
    import polars as pl

    np.testing.assert_array_equal(est.predict_proba(pl.from_pandas(X))[:, 1], p)
    np.testing.assert_array_equal(est.predict_proba(pl.from_pandas(X).lazy())[:, 1], p)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(X.rename(columns={"spend": "amount"}))
    bad = X.head(3).assign(spend=["lots", "1", "2"])
    with pytest.raises(DataError, match="record 0, column 'spend'"):
        est.predict(bad)


def test_pipeline_cross_val_score_and_grid_search(xy):
    X, y = xy
    pipe = make_pipeline(StandardScaler(), WinnowClassifier(models=["linear"]))
    scores = cross_val_score(pipe, X, y, cv=3, scoring="average_precision")
    assert scores.shape == (3,) and (scores > 0.5).all()
    grid = GridSearchCV(
        WinnowClassifier(random_state=0),
        {"models": [["linear"], ["lightgbm"]]},
        cv=3,
        scoring="average_precision",
    ).fit(X, y)
    assert grid.best_params_["models"] in (["linear"], ["lightgbm"])
    assert len(grid.cv_results_["mean_test_score"]) == 2
    assert grid.best_estimator_.predict_proba(X).shape == (600, 2)


def test_save_and_load_through_the_artifact(xy, tmp_path):
    X, y = xy
    est = WinnowClassifier(models=["linear"], budget=0.1).fit(X, np.where(y == 1, "yes", "no"))
    est.save(tmp_path / "clf")
    back = WinnowClassifier.load(tmp_path / "clf")
    assert back.get_params() == est.get_params() and back.classes_.tolist() == ["no", "yes"]
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    # the folder is an ordinary artifact: the Screener (and `winnow serve`) read it
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
    np.testing.assert_array_equal(Screener.load(tmp_path / "clf").score(frame), est.predict_proba(X)[:, 1])
    plain = Screener().fit(frame.assign(t=y), target="t", positive="1", models=["linear"])
    plain.save(tmp_path / "plain")
    with pytest.raises(ArtifactError, match="not saved by WinnowClassifier"):
        WinnowClassifier.load(tmp_path / "plain")
