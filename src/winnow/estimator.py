"""``WinnowClassifier``: the screener as a scikit-learn estimator.

>>> from sklearn.model_selection import cross_val_score
>>> from winnow import WinnowClassifier
>>> clf = WinnowClassifier(time_limit=60)
>>> cross_val_score(clf, X, y, scoring="average_precision")  # doctest: +SKIP

``fit(X, y)`` takes the features and the labels apart, as scikit-learn does (``Screener.fit``
takes one table with the target inside); X may be a pandas or Polars frame, a pyarrow table or
any 2-D array. The larger of the two classes' sorted values (``classes_[1]``) is the high-value
class, scikit-learn's ``pos_label`` convention. ``predict_proba`` gives the screener's
calibrated probabilities, ``decision_function`` their log-odds, ``predict`` the class at
probability 0.5 or, given a ``budget``, at the screener's fitted threshold (the screen), and
``score`` accuracy like every scikit-learn classifier (use ``scoring="average_precision"`` to
judge a screen). ``save``/``load`` go through winnow's artifact, so a fitted estimator is also
an artifact ``winnow serve`` can serve; pickling (joblib's parallel search) stays in memory.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from winnow.config import Budget, ScreenConfig
from winnow.errors import DataError
from winnow.fit_stages import MIN_POSITIVES
from winnow.io.readers import DEFAULT_BATCH_ROWS, open_source
from winnow.screener import Screener

_TARGET = "__winnow_target__"


def _frame_like(X: Any) -> bool:
    mod = type(X).__module__
    return mod.startswith(("pandas", "polars", "pyarrow"))


def _arrow(X: Any) -> pa.Table:
    """A frame-like X as an Arrow table (a Polars LazyFrame is collected)."""
    if type(X).__name__ == "LazyFrame":
        X = X.collect()
    if isinstance(X, pa.RecordBatch):
        return pa.Table.from_batches([X])
    if isinstance(X, pa.Table):
        return X
    if type(X).__module__.startswith("polars"):
        return X.to_arrow()
    return pa.Table.from_pandas(X, preserve_index=False)


class WinnowClassifier(ClassifierMixin, BaseEstimator):
    """winnow's screener with scikit-learn's estimator API (binary classification).

    Parameters
    ----------
    preset : ``"balanced"`` (the default portfolio), ``"fast"`` or ``"best"``.
    models : portfolio members (e.g. ``["lightgbm", "linear"]``); None = the preset's.
    time_limit : seconds for the whole fit; None = no limit.
    budget : None: ``predict`` is the class of probability >= 0.5, as for every scikit-learn
        classifier; a share (0 < f < 1) or count (>= 1) of records one acts on: ``predict`` marks
        the records at or above the threshold that budget sets on the validation rows (the screen).
    text : text columns as ``"tfidf"``, ``"encoder"`` (the sentence encoder) or ``"both"``.
    live_model : ``"fast"`` (members charged for their scoring cost) or ``"full"``.
    folds : cross-fitting folds on small data; None = the preset's.
    threads : threads for fitting and scoring; 0 = all cores.
    random_state : an int fixes every result; None or a ``RandomState`` draws the seed.
    """

    def __init__(
        self,
        *,
        preset: str = "balanced",
        models: list[str] | None = None,
        time_limit: float | None = None,
        budget: float | None = None,
        text: str = "tfidf",
        live_model: str = "fast",
        folds: int | None = None,
        threads: int = 0,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.preset = preset
        self.models = models
        self.time_limit = time_limit
        self.budget = budget
        self.text = text
        self.live_model = live_model
        self.folds = folds
        self.threads = threads
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------------ the table winnow reads
    def _table(self, X: Any, *, reset: bool) -> pa.Table:
        """X as an Arrow table whose columns have the names the fit saw."""
        if _frame_like(X):
            if type(X).__name__ == "LazyFrame":
                X = X.collect()
            table = _arrow(X)
            if table.num_rows == 0:
                raise ValueError("X has 0 samples; a minimum of 1 is required")
            validate_data(self, X, reset=reset, skip_check_array=True)
            names = [str(c) for c in table.column_names]
            if reset and not all(isinstance(c, str) for c in table.column_names):
                names = [f"x{i}" for i in range(table.num_columns)]
            elif not reset and getattr(self, "feature_names_in_", None) is None:
                names = [f"x{i}" for i in range(table.num_columns)]  # fitted on an array: by position
            return table.rename_columns(names)
        arr = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite="allow-nan")
        fitted = getattr(self, "feature_names_in_", None)
        names = list(fitted) if fitted is not None else [f"x{i}" for i in range(arr.shape[1])]
        import pandas as pd

        frame = pd.DataFrame(arr, columns=names)
        if arr.dtype == object:
            frame = frame.infer_objects()
        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise ValueError(f"X holds values winnow cannot read as a table: {e}") from e

    def _config(self) -> ScreenConfig:
        rs = self.random_state
        seed = int(rs) if isinstance(rs, numbers.Integral) else int(check_random_state(rs).randint(2**31 - 1))
        return ScreenConfig.build(
            target=_TARGET,
            positive=["1"],
            preset=self.preset,
            models=self.models,
            time_limit=self.time_limit,
            budget=Budget.parse(self.budget),  # None: the screener's default 5%
            text=self.text,
            live_model=self.live_model,
            folds=self.folds,
            threads=self.threads,
            seed=seed,
        )

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> WinnowClassifier:
        """Fit the screener on features ``X`` and labels ``y``; returns self."""
        table = self._table(X, reset=True)
        y = column_or_1d(y, warn=True)
        if len(y) != table.num_rows:
            raise ValueError(f"X has {table.num_rows} samples but y has {len(y)}")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) != 2 or type_of_target(y) != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is "
                f"{type_of_target(y)} ({len(classes)} classes): WinnowClassifier screens for one "
                "class; for several, fit one per class (sklearn.multiclass.OneVsRestClassifier)"
            )
        rarer = int(min((y == classes[0]).sum(), (y == classes[1]).sum()))
        if rarer < 2 * MIN_POSITIVES:
            raise ValueError(
                f"y has only {rarer} samples of its rarer class; WinnowClassifier needs at least "
                f"{2 * MIN_POSITIVES} of each class for an honest train / validation / test split"
            )
        if _TARGET in table.column_names:
            raise ValueError(f"X may not have a column named {_TARGET!r}")
        target = pa.array((y == classes[1]).astype(np.int8))
        self.screener_ = Screener(self._config()).fit(table.append_column(_TARGET, target))
        self.classes_ = classes
        self.threshold_ = 0.5 if self.budget is None else float(self.screener_.threshold_.value)
        return self

    # ------------------------------------------------------------------ predicting
    def _positive_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "screener_")
        table = self._table(X, reset=False)
        source = open_source(table)
        parts = []
        for row, batch in source.numbered_batches(DEFAULT_BATCH_ROWS):
            sb = self.screener_.score_batch(batch, first_row=row)
            if sb.rejects:
                r = sb.rejects[0]
                raise DataError(
                    f"{len(sb.rejects)} record(s) of X cannot be scored, e.g. {r.describe()}",
                    column=r.column,
                    hint="Use NaN for an unknown value; Screener.screen sends such records to a "
                    "rejects file.",
                )
            parts.append(sb.scores)
        return np.concatenate(parts) if parts else np.zeros(0)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n, 2)`` probabilities of ``classes_[0]`` and ``classes_[1]`` (the high-value class)."""
        p = self._positive_proba(X)
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the high-value class (positive: more likely ``classes_[1]``)."""
        p = np.clip(self._positive_proba(X), 1e-15, 1 - 1e-15)
        return np.log(p) - np.log1p(-p)

    def predict(self, X: Any) -> np.ndarray:
        """``classes_[1]`` where the probability reaches ``threshold_`` (0.5, or the budget's),
        else ``classes_[0]``."""
        p = self._positive_proba(X)
        return self.classes_[(p >= self.threshold_).astype(np.int64)]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, sign_key: str | Path | None = None) -> Path:
        """Write the fitted estimator as a winnow artifact (also servable by ``winnow serve``)."""
        check_is_fitted(self, "screener_")
        names = getattr(self, "feature_names_in_", None)
        self.screener_.estimator_ = {
            "params": self.get_params(),
            "classes": self.classes_.tolist(),
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
        }
        return self.screener_.save(path, sign_key=sign_key)

    @classmethod
    def load(cls, path: str | Path, *, verify_key: str | Path | None = None) -> WinnowClassifier:
        """Load an estimator written by :meth:`save` (checksums, and the signature if given)."""
        from winnow.errors import ArtifactError

        screener = Screener.load(path, verify_key=verify_key)
        meta = getattr(screener, "estimator_", None)
        if not meta:
            raise ArtifactError(
                path, "it was not saved by WinnowClassifier", hint="Use winnow.Screener.load for it."
            )
        est = cls(**meta["params"])
        est.screener_ = screener
        est.classes_ = np.asarray(meta["classes"])
        est.threshold_ = 0.5 if est.budget is None else float(screener.threshold_.value)
        est.n_features_in_ = int(meta["n_features_in"])
        if meta["feature_names_in"] is not None:
            est.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        return est
