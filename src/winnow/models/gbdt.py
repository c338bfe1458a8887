"""LightGBM, with native categorical handling and missing values, early-stopped on validation."""

from __future__ import annotations

from typing import Any

import numpy as np

from winnow.errors import NotFittedError
from winnow.models.base import FitContext, Inputs, Learner

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "min_data_per_group": 50,
    "max_cat_to_onehot": 8,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}


def is_random_forest(params: dict[str, Any]) -> bool:
    """Random-forest mode (``boosting="rf"``): trees are averaged, not summed."""
    mode = params.get("boosting", params.get("boosting_type", params.get("boost", "gbdt")))
    return str(mode) in ("rf", "random_forest")


def tree_matrix(x: Inputs) -> np.ndarray:
    """Numeric features then categorical codes, as LightGBM's float32 input."""
    return np.hstack([x.m.num, x.m.cat.astype(np.float32)])


class LightGBMLearner(Learner):
    """Gradient-boosted trees; ``max_rounds`` caps boosting, early stopping picks the count."""

    name = "lightgbm"

    def __init__(
        self, *, params: dict[str, Any] | None = None, max_rounds: int = 3000, early_stopping: int = 100
    ) -> None:
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.max_rounds = max_rounds
        self.early_stopping = early_stopping
        self.booster_: Any = None
        self.threads = 1

    def fit(
        self, train: Inputs, valid: Inputs | None, ctx: FitContext, rounds: int | None = None
    ) -> LightGBMLearner:
        import lightgbm as lgb

        n_num = train.m.num.shape[1]
        cats = list(range(n_num, n_num + train.m.cat.shape[1]))
        self.threads = ctx.threads
        params = {**self.params, "seed": ctx.seed, "num_threads": ctx.threads}
        dtrain = lgb.Dataset(tree_matrix(train), label=train.y, categorical_feature=cats, free_raw_data=True)
        callbacks: list[Any] = [_deadline_callback(ctx)]
        valid_sets = []
        if valid is not None and rounds is None:
            dvalid = lgb.Dataset(
                tree_matrix(valid), label=valid.y, reference=dtrain, categorical_feature=cats
            )
            valid_sets = [dvalid]
            # early stopping watches the log-loss; AUC-PR is only computed for a search's reports
            first = ctx.report is not None
            if first:
                params["metric"] = ["binary_logloss", "average_precision"]
                callbacks.append(_report_callback(ctx))
            callbacks.append(lgb.early_stopping(self.early_stopping, first_metric_only=first, verbose=False))
        self.booster_ = lgb.train(
            params,
            dtrain,
            num_boost_round=rounds or self.max_rounds,
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        best = self.booster_.best_iteration or self.booster_.current_iteration()
        self.best_rounds_ = int(max(best, 1))
        if valid_sets:
            # keep only the trees early stopping chose
            self.booster_ = lgb.Booster(model_str=self.booster_.model_to_string(num_iteration=best))
        return self

    def _raw_scale(self) -> float:
        # LightGBM's raw score of a random forest is the sum of its trees' outputs (its
        # probabilities use the average): dividing by the tree count gives the log-odds
        if is_random_forest(self.params):
            return 1.0 / max(self.booster_.current_iteration(), 1)
        return 1.0

    def predict_logit(self, x: Inputs) -> np.ndarray:
        if self.booster_ is None:
            raise NotFittedError(type(self).__name__)
        z = self.booster_.predict(tree_matrix(x), raw_score=True, num_threads=self.threads)
        return np.asarray(z, dtype=np.float64) * self._raw_scale()

    def inference_cost(self) -> float:
        # ~6 ns per node visited (the mean leaf depth summed over trees), plus a fixed 0.3 us
        trees = self.booster_.dump_model()["tree_info"]
        return 0.3 + 0.006 * sum(_mean_leaf_depth(t["tree_structure"]) for t in trees)

    def contributions(self, x: Inputs) -> np.ndarray:
        """Per-feature log-odds contributions (SHAP values), (n, p + q); bias dropped."""
        c = self.booster_.predict(tree_matrix(x), pred_contrib=True, num_threads=self.threads)
        return np.asarray(c)[:, :-1] * self._raw_scale()

    def feature_importance(self) -> np.ndarray:
        return np.asarray(self.booster_.feature_importance("gain"), dtype=np.float64)

    def state(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        cfg = {"params": self.params, "best_rounds": self.best_rounds_}
        return cfg, {"txt": self.booster_.model_to_string().encode()}

    @classmethod
    def from_state(cls, config: dict[str, Any], files: dict[str, bytes]) -> LightGBMLearner:
        import lightgbm as lgb

        obj = cls(params=config["params"])
        obj.best_rounds_ = config.get("best_rounds")
        obj.booster_ = lgb.Booster(model_str=files["txt"].decode())
        return obj


def _mean_leaf_depth(node: dict[str, Any]) -> float:
    """Mean depth of a dumped tree's leaves (what one row visits on average, unweighted)."""
    depths, stack = [], [(node, 0)]
    while stack:
        n, d = stack.pop()
        if "leaf_value" in n or "left_child" not in n:
            depths.append(d)
        else:
            stack += [(n["left_child"], d + 1), (n["right_child"], d + 1)]
    return float(np.mean(depths))


def _report_callback(ctx: FitContext, every: int = 10) -> Any:
    def callback(env: Any) -> None:
        if (env.iteration + 1) % every == 0:
            for _data, metric, value, _higher in env.evaluation_result_list:
                if metric == "average_precision":
                    ctx.report((env.iteration + 1) // every, float(value))  # type: ignore[misc]

    callback.order = 40  # type: ignore[attr-defined]
    return callback


def _deadline_callback(ctx: FitContext) -> Any:
    def callback(env: Any) -> None:
        if ctx.seconds_left() <= 0:
            import lightgbm as lgb

            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    callback.order = 30  # type: ignore[attr-defined]
    return callback
