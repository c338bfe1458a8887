"""The model portfolio: named members, and the presets that choose among them.

A *member* is a learner kind with fixed hyper-parameters under its own name; a screener fuses
the out-of-fold predictions of its members (:mod:`winnow.models.fusion`). Diversity is the
point: boosted trees with two different inductive biases, a random forest, CatBoost (ordered
target statistics for categories), a linear model that wins on text and small tables, a deep
network, and a TabM-style network that trains ``k`` MLPs in one.

Presets (``--preset``):

* ``fast``: LightGBM and the linear model, 3 folds. Seconds on 10k rows.
* ``balanced`` (default): adds the extra-trees LightGBM, the TabM network, LightGBM in
  random-forest mode and CatBoost. Minutes.
* ``best``: the five original members (not the random forest or CatBoost), then searches the
  hyper-parameters of LightGBM and of the deep network with Optuna for the time limit's worth
  (``--time-limit``, default 10 min), and adds the tuned models to the portfolio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from winnow.config import MODEL_NAMES, TUNABLE
from winnow.models.base import Learner, make_learner


@dataclass(frozen=True)
class Member:
    """A learner kind with fixed hyper-parameters; ``cost`` is its relative fit time."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    cost: float = 1.0

    def make(self, **extra: Any) -> Learner:
        return make_learner(self.kind, **{**self.params, **extra})


MEMBERS: dict[str, Member] = {
    "lightgbm": Member("lightgbm", cost=1.0),
    # randomised split points, smaller and more regularised trees: a different bias to fuse
    "lightgbm_xt": Member(
        "lightgbm",
        {
            "params": {
                "extra_trees": True,
                "num_leaves": 15,
                "feature_fraction": 0.5,
                "learning_rate": 0.08,
                "min_data_in_leaf": 40,
            }
        },
        cost=0.8,
    ),
    # random-forest mode: deep trees on row/column subsamples, averaged rather than boosted
    "lightgbm_rf": Member(
        "lightgbm",
        {
            "params": {
                "boosting": "rf",
                "bagging_fraction": 0.632,
                "bagging_freq": 1,
                "feature_fraction": 0.6,
                "num_leaves": 255,
                "min_data_in_leaf": 5,
                "lambda_l2": 0.0,
            },
            "max_rounds": 500,
            "early_stopping": 50,
        },
        cost=1.5,
    ),
    "linear": Member("linear", cost=0.3),
    "deep": Member("deep", cost=2.5),
    "tabm": Member("deep", {"k": 4, "hidden": (128, 128), "dropout": 0.1}, cost=2.5),
    "catboost": Member("catboost", cost=2.0),
}

assert tuple(MEMBERS) == MODEL_NAMES, "config.MODEL_NAMES lists the members"


@dataclass(frozen=True)
class Preset:
    members: tuple[str, ...]
    tune: tuple[str, ...] = ()
    folds: int = 5
    #: default time limit in seconds when the user gives none (None = unbounded)
    time_limit: float | None = None


PRESETS: dict[str, Preset] = {
    "fast": Preset(("lightgbm", "linear"), folds=3),
    "balanced": Preset(("lightgbm", "lightgbm_xt", "linear", "tabm", "lightgbm_rf", "catboost")),
    "best": Preset(("lightgbm", "lightgbm_xt", "linear", "deep", "tabm"), tune=TUNABLE, time_limit=600.0),
}


#: trials per searched kind when neither a time limit nor a trial count bounds the search
DEFAULT_TRIALS = 30


@dataclass(frozen=True)
class Plan:
    """What one fit runs: members, searched kinds, folds and the time limit."""

    members: tuple[str, ...]
    tune: tuple[str, ...]
    folds: int
    time_limit: float | None
    trials: int | None


def plan_for(
    preset: str,
    models: list[str] | None,
    tune: list[str] | None,
    folds: int | None,
    time_limit: float | None,
    trials: int | None,
) -> Plan:
    """The preset's choices, overridden by whatever the user set explicitly."""
    p = PRESETS[preset]
    tuned = tuple(tune) if tune is not None else p.tune
    limit = time_limit if time_limit is not None else p.time_limit
    if tuned and limit is None and trials is None:
        trials = DEFAULT_TRIALS
    return Plan(tuple(models) if models else p.members, tuned, folds or p.folds, limit, trials)


def member(name: str, tuned: dict[str, dict[str, Any]] | None = None) -> Member:
    """The member called ``name``; ``<kind>_tuned`` members take their parameters from ``tuned``."""
    if name in MEMBERS:
        return MEMBERS[name]
    kind = name.removesuffix("_tuned")
    if name.endswith("_tuned") and kind in TUNABLE and tuned and kind in tuned:
        return Member(kind, tuned[kind], cost=MEMBERS[kind].cost)
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MEMBERS)}")
