"""Portfolio members and presets: every member fits, the presets resolve, user choices win."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import learner_inputs
from winnow.config import MODEL_NAMES
from winnow.models.base import FitContext
from winnow.models.portfolio import DEFAULT_TRIALS, MEMBERS, PRESETS, member, plan_for


@pytest.fixture(scope="module")
def data():
    return learner_inputs(300, seed=1)


def test_catalogue_matches_the_config_names():
    assert tuple(MEMBERS) == MODEL_NAMES
    for preset in PRESETS.values():
        assert set(preset.members) <= set(MEMBERS)


@pytest.mark.parametrize("name", list(MEMBERS))
def test_every_member_fits_and_predicts_finite_logits(data, name):
    train, valid, cards = data
    extra = {"max_epochs": 3} if MEMBERS[name].kind == "deep" else {}
    learner = (
        member(name).make(**extra).fit(train, valid, FitContext(seed=0, threads=1, cat_cardinalities=cards))
    )
    z = learner.predict_logit(valid)
    assert z.shape == (len(valid),) and np.isfinite(z).all()
    assert learner.name == MEMBERS[name].kind


def test_presets_resolve_and_user_choices_win():
    fast = plan_for("fast", None, None, None, None, None)
    assert fast.members == ("lightgbm", "linear") and fast.folds == 3 and not fast.tune
    balanced = plan_for("balanced", None, None, None, None, None)
    assert {"lightgbm_rf", "catboost"} <= set(balanced.members) and balanced.folds == 5
    best = plan_for("best", None, None, None, None, None)
    assert best.tune == ("lightgbm", "deep") and best.time_limit == 600.0
    own = plan_for("best", ["linear"], [], 4, 30.0, 2)
    assert own.members == ("linear",) and own.tune == () and own.folds == 4
    assert (own.time_limit, own.trials) == (30.0, 2)
    # a search with neither a time limit nor a trial count is bounded by a default trial count
    assert plan_for("balanced", None, ["lightgbm"], None, None, None).trials == DEFAULT_TRIALS


def test_tuned_members_take_the_searched_parameters():
    m = member("lightgbm_tuned", {"lightgbm": {"params": {"num_leaves": 7}}})
    assert m.kind == "lightgbm" and m.make().params["num_leaves"] == 7
    with pytest.raises(ValueError, match="unknown model"):
        member("lightgbm_tuned")
    with pytest.raises(ValueError, match="unknown model"):
        member("forest")


def test_new_members_fit_save_load_and_score_identically(tmp_path):
    """The random-forest LightGBM and CatBoost members inside a screener: saved (LightGBM text,
    CatBoost's own cbm, both checksummed), loaded, and scoring exactly as before."""
    import json

    from tests.helpers import fit_options, make_frame
    from winnow import Screener

    frame = make_frame(400, seed=3)
    s = Screener().fit(frame, **fit_options(models=["lightgbm_rf", "catboost", "linear"]))
    assert s.fusion_.names == ["lightgbm_rf", "catboost", "linear"]
    path = s.save(tmp_path / "screener")
    assert (path / "models" / "lightgbm_rf.txt").exists() and (path / "models" / "catboost.cbm").exists()
    manifest = json.loads((path / "manifest.json").read_text())
    assert {n: e["kind"] for n, e in manifest["models"].items()} == {
        "lightgbm_rf": "lightgbm",
        "catboost": "catboost",
        "linear": "linear",
    }
    loaded = Screener.load(path)
    test = make_frame(150, seed=4)
    np.testing.assert_array_equal(loaded.score(test), s.score(test))
    for name in ("lightgbm_rf", "catboost"):
        a, b = loaded.learners_[name], s.learners_[name]
        assert a.best_rounds_ == b.best_rounds_
