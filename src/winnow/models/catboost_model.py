"""CatBoost: oblivious trees with ordered target statistics for categorical codes, early-stopped.

Its categorical handling is the point of having it beside LightGBM: each categorical code is
encoded by target statistics computed in a random order (CatBoost's "ordered boosting"), plus
combinations of categories, which is a different bias from LightGBM's category partitions.
The model is stored in CatBoost's own binary format (``cbm``), never pickle.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np

from winnow.errors import NotFittedError
from winnow.models.base import FitContext, Inputs, Learner
from winnow.models.catboost_apply import ObliviousApplier, UnsupportedModel, model_spec

DEFAULT_PARAMS: dict[str, Any] = {
    "loss_function": "Logloss",
    "learning_rate": 0.08,
    "depth": 6,
    "l2_leaf_reg": 3.0,
    "one_hot_max_size": 8,
    "border_count": 254,
}


def catboost_frame(x: Inputs) -> Any:
    """Numeric features (float32) then categorical codes (int64) as a frame CatBoost reads."""
    import pandas as pd

    cols: dict[str, Any] = {f"n{j}": x.m.num[:, j] for j in range(x.m.num.shape[1])}
    cols.update({f"c{j}": x.m.cat[:, j] for j in range(x.m.cat.shape[1])})
    return pd.DataFrame(cols, index=pd.RangeIndex(len(x)))


_CODE_TEXT = np.array([], dtype=object)

#: calls of up to this many rows may be scored by the numpy applier (bench/catboost_apply.py)
FEW_ROWS = 16
#: calls of each applier timed to choose between them
FASTER_OF_CALLS = 9


def _features_data(x: Inputs) -> Any:
    """The rows as CatBoost's ``FeaturesData``: float32 numbers and the categorical codes as the
    text CatBoost made of them when it was fitted from a frame (``3`` -> ``"3"``).

    Scoring's fast path: no frame and no ``Pool`` per call (a one-row call took 2 ms that way,
    0.2 ms this way) and the codes become text by a lookup table instead of a conversion per
    value; the predictions are the same to the last bit (tests/models/test_catboost.py).
    """
    from catboost import FeaturesData

    global _CODE_TEXT
    cat = x.m.cat
    top = int(cat.max()) + 1 if cat.size else 0
    if top > len(_CODE_TEXT):
        _CODE_TEXT = np.array([str(i) for i in range(max(top, 2 * len(_CODE_TEXT), 1024))], dtype=object)
    return FeaturesData(
        num_feature_data=np.ascontiguousarray(x.m.num, dtype=np.float32),
        cat_feature_data=_CODE_TEXT[cat] if cat.shape[1] else None,
    )


class CatBoostLearner(Learner):
    """CatBoost classifier; ``max_rounds`` caps the trees, early stopping picks the count."""

    name = "catboost"

    def __init__(
        self, *, params: dict[str, Any] | None = None, max_rounds: int = 2000, early_stopping: int = 100
    ) -> None:
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.max_rounds = max_rounds
        self.early_stopping = early_stopping
        self.model_: Any = None
        self.threads = 1
        self._paths: Any = None  # ObliviousPaths, built on the first call of contributions
        self._applier: Any = None  # ObliviousApplier, or False where CatBoost's is the faster
        self._applier_rows = 0  # calls of up to this many rows take the numpy applier
        self._spec_cache: dict[str, Any] | None = None

    def _pool(self, x: Inputs, with_label: bool) -> Any:
        from catboost import Pool

        n_num = x.m.num.shape[1]
        cats = list(range(n_num, n_num + x.m.cat.shape[1]))
        return Pool(catboost_frame(x), label=x.y if with_label else None, cat_features=cats)

    def fit(
        self, train: Inputs, valid: Inputs | None, ctx: FitContext, rounds: int | None = None
    ) -> CatBoostLearner:
        from catboost import CatBoostClassifier

        self.threads = ctx.threads
        model = CatBoostClassifier(
            **self.params,
            iterations=rounds or self.max_rounds,
            random_seed=ctx.seed,
            thread_count=ctx.threads,
            allow_writing_files=False,
            verbose=False,
        )
        eval_set = None
        if valid is not None and rounds is None:
            eval_set = self._pool(valid, with_label=True)
        model.fit(
            self._pool(train, with_label=True),
            eval_set=eval_set,
            early_stopping_rounds=self.early_stopping if eval_set is not None else None,
            use_best_model=eval_set is not None,
            callbacks=[_Deadline(ctx)],
        )
        self.model_ = model
        # what was read from an earlier model is stale
        self._paths = self._applier = self._spec_cache = None
        self._applier_rows = 0
        # with an eval set and use_best_model the model keeps only the trees up to the best one
        self.best_rounds_ = int(max(model.tree_count_, 1))
        return self

    def inference_cost(self) -> float:
        # oblivious trees: ~2.5 ns per level, plus a fixed 0.5 us
        depth = int(self.model_.get_all_params().get("depth", 6)) if self.model_ is not None else 6
        return 0.5 + 0.0025 * depth * int(self.model_.tree_count_ if self.model_ is not None else 0)

    def predict_logit(self, x: Inputs) -> np.ndarray:
        if self.model_ is None:
            raise NotFittedError(type(self).__name__)
        applier = self._few_rows(x)
        if applier is not None:
            return applier.raw(x.m.num, x.m.cat)
        return np.asarray(self._raw(_features_data(x)), dtype=np.float64).reshape(-1)

    def _few_rows(self, x: Inputs) -> ObliviousApplier | None:
        """The numpy applier for a call of ``len(x)`` rows, where it is the faster one.

        CatBoost's own applier costs about 0.2 ms a call however few the rows; the numpy one
        costs little for trees on numbers and single categories, more for many combinations of
        categories and more per row. Both give the same bits, so which one runs is decided
        once, on the first call of up to ``FEW_ROWS`` rows, by timing both on one row and on
        ``FEW_ROWS`` rows of that call: the numpy applier takes calls of up to the row count
        where the two cost lines cross."""
        if len(x) > FEW_ROWS or len(x) == 0:
            return None
        if self._applier is None:
            self._applier, self._applier_rows = self._faster_applier(x)
        return self._applier if self._applier and len(x) <= self._applier_rows else None

    def _faster_applier(self, x: Inputs) -> tuple[ObliviousApplier | bool, int]:
        try:
            applier = ObliviousApplier(self._spec())
        except UnsupportedModel:
            return False, 0
        costs = []
        for n in (1, FEW_ROWS):
            part = x.take(np.arange(n) % len(x))
            features = _features_data(part)
            ours, theirs = [], []
            for _ in range(FASTER_OF_CALLS):
                t0 = time.perf_counter()
                applier.raw(part.m.num, part.m.cat)
                t1 = time.perf_counter()
                self._raw(features)
                ours.append(t1 - t0)
                theirs.append(time.perf_counter() - t1)
            costs.append(float(np.median(ours)) - float(np.median(theirs)))
        # the numpy applier's extra cost over CatBoost's, a line through (1, d1), (FEW_ROWS, d16)
        d1, d16 = costs
        if d1 >= 0:
            return False, 0
        if d16 < 0:
            return applier, FEW_ROWS
        return applier, int(1 + (FEW_ROWS - 1) * d1 / (d1 - d16))

    def _spec(self) -> dict[str, Any]:
        """The model's JSON export, made once for the numpy applier and the path table."""
        if self._spec_cache is None:
            self._spec_cache = model_spec(self.model_)
        return self._spec_cache

    def _raw(self, features: Any) -> Any:
        """Raw scores of ``features``: the pool and the prediction ``CatBoost.predict`` makes,
        without its per-call checks of the model and its parameters (a quarter of scoring one
        row); the public ``predict`` where this CatBoost lacks that method's signature."""
        from catboost import Pool

        try:
            pool = Pool(features, thread_count=self.threads)
            return self.model_._base_predict(pool, "RawFormulaVal", 0, 0, self.threads, False, "CPU")
        except (AttributeError, TypeError):
            return self.model_.predict(features, prediction_type="RawFormulaVal", thread_count=self.threads)

    def contributions(self, x: Inputs) -> np.ndarray:
        """Per-feature log-odds contributions (n, p + q) along each row's path in every tree
        (:mod:`winnow.models.catboost_paths`); they add up to the logit minus a constant."""
        from catboost import Pool

        from winnow.models.catboost_paths import ObliviousPaths

        if self.model_ is None:
            raise NotFittedError(type(self).__name__)
        if self._paths is None:
            self._paths = ObliviousPaths.of(self.model_, x.m.num.shape[1], x.m.cat.shape[1], self._spec())
        applier = self._few_rows(x)
        if applier is not None:
            leaves = applier.leaves(x.m.num, x.m.cat)
        else:
            pool = Pool(_features_data(x), thread_count=self.threads)
            leaves = self.model_.calc_leaf_indexes(pool, thread_count=self.threads)
        return self._paths.contributions(np.asarray(leaves).reshape(len(x), -1))

    def feature_importance(self) -> np.ndarray:
        return np.asarray(self.model_.get_feature_importance(), dtype=np.float64)

    def state(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        if self.model_ is None:
            raise NotFittedError(type(self).__name__)
        fd, path = tempfile.mkstemp(suffix=".cbm")
        os.close(fd)
        try:
            self.model_.save_model(path, format="cbm")
            with open(path, "rb") as f:
                blob = f.read()
        finally:
            os.unlink(path)
        cfg = {"params": self.params, "best_rounds": self.best_rounds_}
        return cfg, {"cbm": blob}

    @classmethod
    def from_state(cls, config: dict[str, Any], files: dict[str, bytes]) -> CatBoostLearner:
        from catboost import CatBoostClassifier

        obj = cls(params=config["params"])
        obj.best_rounds_ = config.get("best_rounds")
        obj.model_ = CatBoostClassifier()
        obj.model_.load_model(blob=files["cbm"], format="cbm")
        return obj


class _Deadline:
    """CatBoost callback: stop adding trees once the fit's deadline has passed."""

    def __init__(self, ctx: FitContext) -> None:
        self.ctx = ctx

    def after_iteration(self, info: Any) -> bool:
        return self.ctx.seconds_left() > 0
