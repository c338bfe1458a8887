"""Hyper-parameter search with Optuna under a time limit, hopeless trials pruned early.

One study per tunable kind (LightGBM, the deep network) on one train/validation split (the first
cross-fitting fold on small data). The objective is validation average precision (AUC-PR), the
metric screening cares about; the learners report it while they train (LightGBM every 10 rounds,
the network every epoch) and Optuna's median pruner stops a trial that is behind the median of
earlier trials at the same step. The sampler is TPE with the fit's seed.

Determinism: with ``trials`` set, the search runs exactly that many trials (the same seed gives
the same parameters); with only a time limit the number of trials depends on the machine's speed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from winnow.models.base import FitContext, Inputs, make_learner

log = logging.getLogger("winnow")


@dataclass
class TuneResult:
    """The best parameters found for one kind and what the search did."""

    kind: str
    params: dict[str, Any]
    best_value: float
    default_value: float
    trials: int
    pruned: int
    seconds: float
    history: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": self.params,
            "best_valid_auc_pr": round(self.best_value, 5),
            "default_valid_auc_pr": round(self.default_value, 5),
            "trials": self.trials,
            "pruned": self.pruned,
            "seconds": round(self.seconds, 2),
        }


def _lightgbm_space(trial: Any) -> dict[str, Any]:
    return {
        "params": {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 5, 200, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
            "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
        }
    }


def _deep_space(trial: Any) -> dict[str, Any]:
    width = trial.suggest_categorical("width", [64, 128, 256, 512])
    depth = trial.suggest_int("depth", 1, 3)
    return {
        "lr": trial.suggest_float("lr", 3e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [128, 256, 512, 1024]),
        "hidden": tuple([width] * depth),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "dim": trial.suggest_categorical("dim", [8, 16, 32]),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
        "patience": trial.suggest_int("patience", 4, 10),
    }


SPACES = {"lightgbm": _lightgbm_space, "deep": _deep_space}


def _ap(y: np.ndarray, z: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, z))


def tune(
    kind: str,
    train: Inputs,
    valid: Inputs,
    ctx: FitContext,
    *,
    seconds: float | None,
    trials: int | None,
    defaults: dict[str, Any] | None = None,
) -> TuneResult:
    """Search ``kind``'s parameters on (train, valid); the default parameters are trial 0.

    Stops after ``trials`` trials, or when ``seconds`` run out (a running trial is cut by the
    learners' own deadline), whichever comes first.
    """
    from winnow.extras import require

    require("optuna")  # the 'tune' extra
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.monotonic()
    end = None if seconds is None else t0 + seconds
    if ctx.deadline is not None:
        end = ctx.deadline if end is None else min(end, ctx.deadline)
    y_valid = valid.y
    assert y_valid is not None
    space = SPACES[kind]

    def objective(trial: optuna.Trial) -> float:
        params = space(trial)
        trial.set_user_attr("params", _jsonable(params))

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        tctx = FitContext(
            seed=ctx.seed,
            threads=ctx.threads,
            deadline=end,
            cat_cardinalities=ctx.cat_cardinalities,
            report=report,
        )
        learner = make_learner(kind, **params).fit(train, valid, tctx)
        value = _ap(y_valid, learner.predict_logit(valid))
        return value if math.isfinite(value) else 0.0

    sampler = optuna.samplers.TPESampler(seed=ctx.seed, n_startup_trials=min(8, trials or 8))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=5)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.enqueue_trial(_default_point(kind))

    def stop_when_out_of_time(study: optuna.Study, _trial: Any) -> None:
        if end is not None and end - time.monotonic() < 1.0:
            study.stop()

    remaining = None if end is None else max(end - time.monotonic(), 0.0)
    study.optimize(
        objective,
        n_trials=trials,
        timeout=None if trials is not None else remaining,
        callbacks=[stop_when_out_of_time],
        gc_after_trial=False,
    )
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    if not done:
        return TuneResult(kind, dict(defaults or {}), 0.0, 0.0, len(study.trials), len(pruned), 0.0)
    best = max(done, key=lambda t: (t.value, -t.number))
    default = next((t for t in done if t.number == 0), None)
    result = TuneResult(
        kind=kind,
        params=_from_json(kind, best.user_attrs["params"]),
        best_value=float(best.value),  # type: ignore[arg-type]
        default_value=float(default.value) if default is not None else float("nan"),  # type: ignore[arg-type]
        trials=len(study.trials),
        pruned=len(pruned),
        seconds=time.monotonic() - t0,
        history=[float(t.value) for t in done],  # type: ignore[arg-type]
    )
    log.info(
        "tuned %s: validation AUC-PR %.4f (defaults %.4f) after %d trials (%d pruned) in %.0fs",
        kind,
        result.best_value,
        result.default_value,
        result.trials,
        result.pruned,
        result.seconds,
    )
    return result


def _default_point(kind: str) -> dict[str, Any]:
    """The learner's default parameters as a point of the search space (trial 0)."""
    if kind == "lightgbm":
        from winnow.models.gbdt import DEFAULT_PARAMS as P

        keys = ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "bagging_fraction")
        return {**{k: P[k] for k in keys}, "lambda_l2": P["lambda_l2"], "cat_smooth": P["cat_smooth"]}
    return {
        "width": 256,
        "depth": 2,
        "lr": 1e-3,
        "batch_size": 512,
        "dropout": 0.15,
        "dim": 16,
        "weight_decay": 1e-4,
        "patience": 6,
    }


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}


def _from_json(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    if kind == "deep" and "hidden" in params:
        return {**params, "hidden": tuple(params["hidden"])}
    return dict(params)
