"""LightGBM, with native categorical handling and missing values, early-stopped on validation."""

from __future__ import annotations

import threading
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


class OneRowPredictor:
    """LightGBM's single-row prediction with its configuration set up once
    (``LGBM_BoosterPredictForMatSingleRowFast``): ``Booster.predict`` parses its parameters and
    sets up a prediction per call, three quarters of the cost of scoring one row. Raw scores,
    the same to the last bit as ``Booster.predict`` (tests/models/test_gbdt.py)."""

    def __init__(self, booster: Any, columns: int, threads: int) -> None:
        import ctypes

        from lightgbm.basic import _LIB, _c_str, _safe_call  # the C API LightGBM's own wrapper calls

        self._lib, self._check, self._ctypes = _LIB, _safe_call, ctypes
        # the predictor holds the booster, which must outlive the handle
        self.booster, self.columns, self.threads = booster, columns, threads
        self._handle = ctypes.c_void_p()
        raw_score, float32 = 1, 0  # C_API_PREDICT_RAW_SCORE, C_API_DTYPE_FLOAT32
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(raw_score),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(float32),
                ctypes.c_int32(columns),
                _c_str(f"num_threads={threads}"),
                ctypes.byref(self._handle),
            )
        )
        self._out = np.zeros(1, dtype=np.float64)
        self._out_len = ctypes.c_int64()
        self._lock = threading.Lock()  # one output buffer per predictor

    def predict(self, row: np.ndarray) -> np.ndarray:
        """Raw score of one float32 row, shape (1,)."""
        ct = self._ctypes
        data = np.ascontiguousarray(row, dtype=np.float32)
        with self._lock:
            self._check(
                self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    self._handle,
                    data.ctypes.data_as(ct.c_void_p),
                    ct.byref(self._out_len),
                    self._out.ctypes.data_as(ct.POINTER(ct.c_double)),
                )
            )
            return self._out.copy()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None and self._handle.value:
            self._lib.LGBM_FastConfigFree(self._handle)


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
        self._paths: PathTable | None = None  # built on the first contributions() call
        self._one_row: OneRowPredictor | None = None

    def fit(
        self, train: Inputs, valid: Inputs | None, ctx: FitContext, rounds: int | None = None
    ) -> LightGBMLearner:
        import lightgbm as lgb

        n_num = train.m.num.shape[1]
        cats = list(range(n_num, n_num + train.m.cat.shape[1]))
        self.threads = ctx.threads
        self._paths = None
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
        m = tree_matrix(x)
        if len(m) == 1:
            z = self._single(m.shape[1]).predict(m)
        else:
            z = self.booster_.predict(m, raw_score=True, num_threads=self.threads)
        return np.asarray(z, dtype=np.float64) * self._raw_scale()

    def _single(self, columns: int) -> OneRowPredictor:
        one = self._one_row
        if (
            one is None
            or one.booster is not self.booster_
            or (one.columns, one.threads)
            != (
                columns,
                self.threads,
            )
        ):
            one = self._one_row = OneRowPredictor(self.booster_, columns, self.threads)
        return one

    def inference_cost(self) -> float:
        # ~6 ns per node visited (the mean leaf depth summed over trees), plus a fixed 0.3 us
        trees = self.booster_.dump_model()["tree_info"]
        return 0.3 + 0.006 * sum(_mean_leaf_depth(t["tree_structure"]) for t in trees)

    def contributions(self, x: Inputs) -> np.ndarray:
        """Per-feature log-odds contributions along the decision paths, (n, p + q); bias dropped.

        See :func:`path_contributions`: they add up to the logit minus the same bias as
        LightGBM's SHAP values, at the cost of one prediction rather than TreeSHAP's.
        """
        if self._paths is None:
            self._paths = PathTable.of(self.booster_)
        return self._paths.contributions(self.booster_, tree_matrix(x), self.threads) * self._raw_scale()

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


class PathTable:
    """Each leaf's contribution to every feature along its path from the root, for all trees.

    At every split, the change of the expected output (the training-count-weighted mean of the
    leaf values below a node) from the node to the child a row goes to is credited to the
    split's feature (Saabas' decomposition, what XGBoost calls ``approx_contribs``). The
    contributions of a row then add up to its raw score minus the trees' expected outputs,
    which is also the bias of LightGBM's SHAP values; they differ from SHAP values in how a
    feature's effect is shared with the features split on above it. Scoring them costs a leaf
    lookup (as fast as a prediction) and one sparse product, against TreeSHAP's
    O(leaves x depth^2) per tree and row: 18 ms a row for a 202-tree, 255-leaf forest
    (bench/reasons_speed.py).
    """

    def __init__(self, table: Any, offsets: np.ndarray) -> None:
        self.table, self.offsets = table, offsets

    @classmethod
    def of(cls, booster: Any) -> PathTable:
        import scipy.sparse as sp

        n_features = booster.num_feature()
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        offsets: list[int] = []
        base = 0
        for tree in booster.dump_model()["tree_info"]:
            offsets.append(base)
            root = tree["tree_structure"]
            expected = _expected_values(root)
            stack: list[tuple[dict[str, Any], list[tuple[int, float]]]] = [(root, [])]
            while stack:
                node, path = stack.pop()
                if "left_child" not in node:  # a leaf (a one-leaf tree has no index)
                    leaf = base + int(node.get("leaf_index", 0))
                    for f, d in path:
                        rows.append(leaf)
                        cols.append(f)
                        vals.append(d)
                    continue
                f, here = int(node["split_feature"]), expected[id(node)]
                for child in (node["left_child"], node["right_child"]):
                    stack.append((child, [*path, (f, expected[id(child)] - here)]))
            base += int(tree["num_leaves"])
        # duplicates (a feature split on twice along a path) are summed by the conversion
        table = sp.csr_matrix((vals, (rows, cols)), shape=(base, n_features), dtype=np.float64)
        return cls(table, np.asarray(offsets, dtype=np.int64))

    def contributions(self, booster: Any, features: np.ndarray, threads: int) -> np.ndarray:
        """(n, features) contributions of each row, on the booster's raw-score scale."""
        import scipy.sparse as sp

        n = features.shape[0]
        if n == 0 or not len(self.offsets):
            return np.zeros((n, self.table.shape[1]))
        leaves = np.asarray(booster.predict(features, pred_leaf=True, num_threads=threads), dtype=np.int64)
        leaves = leaves.reshape(n, -1)
        t = leaves.shape[1]
        hits = sp.csr_matrix(
            (np.ones(n * t), (leaves + self.offsets[None, :t]).ravel(), np.arange(0, n * t + 1, t)),
            shape=(n, self.table.shape[0]),
        )
        return np.asarray((hits @ self.table).toarray())


def _expected_values(root: dict[str, Any]) -> dict[int, float]:
    """Training-count-weighted mean leaf value below each node of a dumped tree, by ``id``."""
    out: dict[int, float] = {}
    sums: dict[int, tuple[float, float]] = {}
    stack: list[tuple[dict[str, Any], bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if "left_child" not in node:
            value = float(node.get("leaf_value", 0.0))
            count = float(node.get("leaf_count", 0) or 0)
            sums[id(node)] = (value * count, count)
            out[id(node)] = value
            continue
        if not done:
            stack += [(node, True), (node["left_child"], False), (node["right_child"], False)]
            continue
        (a, ca), (b, cb) = sums[id(node["left_child"])], sums[id(node["right_child"])]
        total = ca + cb
        sums[id(node)] = (a + b, total)
        if total > 0:
            out[id(node)] = (a + b) / total
        else:  # no training counts recorded: the plain mean of the two sides
            out[id(node)] = 0.5 * (out[id(node["left_child"])] + out[id(node["right_child"])])
    return out


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
