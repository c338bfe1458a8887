"""Quality benchmark: winnow's presets against LightGBM (default and tuned), logistic regression and AutoML.

For every task in ``bench/tasks.py`` and every seed, the labelled rows are split once into a
stratified 80% train / 20% test part (``sklearn.model_selection.train_test_split``, random state
= the seed). On the same rows and the same feature columns (``--methods``):

* **fast / balanced / best**: ``Screener().fit(train, **task_options, seed=seed, preset=...)``,
  then ``.score(test)``; ``best`` also gets ``time_limit=--time-limit`` (its whole fit, Optuna
  search included). winnow makes its own inner split of the train part (its test part and k-fold
  cross-fitting or a validation part); nothing of the outer test part is shown to it.
* **PRESET+MEMBER[+MEMBER...]** (e.g. ``balanced+lightgbm_rf``): the preset with extra portfolio
  members, ``Screener().fit(..., preset=PRESET, models=[preset's members..., MEMBER, ...])``: to
  measure a candidate member before it joins a preset. Reported as "winnow PRESET+MEMBER".
* **lightgbm**: ``lightgbm.LGBMClassifier(n_jobs=2)`` with default parameters; string columns as
  pandas ``category`` dtype (categories from the train part).
* **lightgbm_tuned**: the same features; an Optuna (TPE) search of the usual LightGBM parameters
  for ``--time-limit`` seconds (``study.optimize(timeout=...)``; the first trial is LightGBM's
  defaults) on an inner stratified 80/20 split of the train part, each trial early-stopped on the
  inner validation part and scored by its AUC-PR there; then a refit on the whole train part with
  the best parameters and that trial's early-stopped number of rounds. Written here, independent
  of winnow's own tuning code.
* **catboost**: ``catboost.CatBoostClassifier`` with default parameters (``thread_count`` as
  LightGBM's ``n_jobs``); the LightGBM baselines' features, categorical columns as CatBoost's own
  categorical features (a missing value as its own level).
* **logreg**: median impute (+ missing indicators) and standard scale numerics, one-hot
  categoricals (``min_frequency=10``, infrequent/unseen levels pooled),
  ``LogisticRegression(max_iter=2000)``.
* **automl**: run in its own environment by ``bench/automl/run_autogluon.py`` on the splits this
  script exports (``--export-splits DIR``), with the same ``--time-limit``; its results file is
  merged with ``--automl-results FILE``. A task/seed without an entry is reported as not run.

Column roles for the two baselines are decided from the train part with simple rules (numbers,
booleans and datetimes are numeric; strings of numbers are numeric; long multi-word strings are
free text; strings with a distinct value on >= 90% of rows are ID-like and left out; other
strings are categorical). Free text cannot be a category, so the logistic regression gets a
TF-IDF of it (words, 1-2 grams, min_df=2) and LightGBM gets its length in characters and words
(what winnow's preprocessing derives from text too).

Metrics on the outer test part: AUC-PR (average precision), recall among the top 10% of test
rows by score (ties at the cut shared out proportionally), ROC-AUC; fit seconds are wall-clock
seconds of the fit call (preprocessing and any search included). Inference latency, from a pandas
frame of raw test records to probabilities (each method's own preprocessing included): batch =
the median of 3 passes over the whole test part, in seconds per row; single record = the median
of 50 calls with a one-row frame (after one warm-up call). Tables show medians over seeds.

    python bench/quality.py                      # balanced, lightgbm, logreg; all tasks, seeds 0 1 2
    python bench/quality.py --tasks cdnow --seeds 0
    python bench/quality.py --export-splits /tmp/splits --methods      # only write the splits
    python bench/quality.py --methods fast balanced best lightgbm lightgbm_tuned automl \\
        --time-limit 60 --automl-results bench/out/automl.json --out bench/out/quality_optimise
    # more seeds later, reusing the runs already in --out/quality.json:
    python bench/quality.py ... --seeds 0 1 2 3 4 --resume
    # a candidate member on top of a preset, against the preset's earlier runs:
    python bench/quality.py --methods balanced+lightgbm_rf --tasks nyc_flights_2013 --threads 1 \
        --time-limit 60 --out bench/out/screen
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tasks as task_defs

OUT = Path(__file__).resolve().parent / "out"
PRESETS = ("fast", "balanced", "best")
METHODS = (*PRESETS, "lightgbm", "lightgbm_tuned", "catboost", "logreg", "automl")
DEFAULT_METHODS = ("balanced", "lightgbm", "logreg")
LABELS = {
    "fast": "winnow fast",
    "balanced": "winnow balanced",
    "best": "winnow best",
    "lightgbm": "LightGBM",
    "lightgbm_tuned": "LightGBM tuned",
    "catboost": "CatBoost",
    "logreg": "LogReg",
    "automl": "AutoML",
}


def base_method(method: str) -> str:
    """``balanced+lightgbm_rf`` -> ``balanced``; a plain method is its own base."""
    return method.split("+", 1)[0]


def extra_members(method: str) -> list[str]:
    """The members a ``PRESET+MEMBER...`` method adds to its preset's."""
    return method.split("+")[1:]


def is_winnow(method: str) -> bool:
    """A winnow preset, plain or with extra members."""
    return base_method(method) in PRESETS


def is_method(name: str) -> bool:
    return name in METHODS or (is_winnow(name) and bool(extra_members(name)))


def label_of(method: str) -> str:
    extra = extra_members(method)
    return LABELS[base_method(method)] + "".join(f"+{m}" for m in extra)


def method_arg(value: str) -> str:
    """argparse type of ``--methods``: a known method or ``PRESET+MEMBER[+MEMBER...]``."""
    if value in METHODS:
        return value
    if is_winnow(value) and extra_members(value):
        from winnow.config import MODEL_NAMES

        bad = [m for m in extra_members(value) if m not in MODEL_NAMES]
        if not bad:
            return value
        raise argparse.ArgumentTypeError(f"{value}: unknown members {bad}; known: {' '.join(MODEL_NAMES)}")
    raise argparse.ArgumentTypeError(f"{value}: not one of {' '.join(METHODS)} nor PRESET+MEMBER")


TOP_FRACTION = 0.10
TEST_FRACTION = 0.20
#: threads of the LightGBM baselines (``--threads`` changes it and winnow's)
THREADS = 2
#: winnow's ``threads`` option; None = its default (all cores)
WINNOW_THREADS: int | None = None
BATCH_REPEATS = 3
SINGLE_CALLS = 50
#: median-over-seeds keys of every method
MEDIAN_KEYS = (
    "auc_pr",
    "recall_top10",
    "roc_auc",
    "fit_seconds",
    "batch_seconds_per_row",
    "single_record_seconds",
)

Predict = Callable[[pd.DataFrame], np.ndarray]


# ---------------------------------------------------------------------------- labels
def make_y(df: pd.DataFrame, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str]:
    """0/1 labels for every row, the mask of rows whose label is known, and the rule as text.

    Written independently of winnow's ``make_labels`` (and cross-checked against it) so the
    benchmark does not grade winnow with winnow's own label code.
    """
    col = df[options["target"]]
    known = col.notna().to_numpy().copy()
    if options.get("positive") is not None:
        wanted = options["positive"]
        wanted = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
        as_text = col.map(
            lambda v: (
                None if pd.isna(v) else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
            )
        )
        y = as_text.isin(wanted).to_numpy()
        rule = f"{options['target']} in {wanted}"
    else:
        q = float(options["top_fraction"])
        v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        known &= np.isfinite(v)
        cutoff = float(np.quantile(v[known], 1 - q, method="higher"))
        y = v >= cutoff
        rule = f"top {q:.0%} of {options['target']} (>= {cutoff:g}, cutoff on all rows)"
    return (y & known).astype(np.int64), known, rule


def check_labels_against_winnow(
    df: pd.DataFrame, options: dict[str, Any], y: np.ndarray, known: np.ndarray
) -> str | None:
    """Compare our labels with winnow's ``make_labels`` on the full table; a message if they differ."""
    import pyarrow as pa

    from winnow.target import make_labels

    positive = options.get("positive")
    if positive is not None and not isinstance(positive, list):
        positive = [str(positive)]
    labels = make_labels(
        pa.Table.from_pandas(df, preserve_index=False),
        options["target"],
        positive=positive,
        top_fraction=options.get("top_fraction"),
    )
    same_known = bool(np.array_equal(labels.known, known))
    diff = int((labels.y.astype(np.int64)[known] != y[known]).sum())
    if not same_known or diff:
        return f"labels differ from winnow.target.make_labels: {diff} rows, known masks equal={same_known}"
    return None


# ---------------------------------------------------------------------------- metrics
def recall_at_fraction(y: np.ndarray, s: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Recall when the top ``ceil(fraction * n)`` scores are selected; ties at the cut shared out."""
    n = len(y)
    pos = int(y.sum())
    if not pos or not n:
        return float("nan")
    k = max(1, math.ceil(fraction * n))
    order = np.sort(s)[::-1]
    t = order[k - 1]
    above = s > t
    tied = s == t
    need = k - int(above.sum())
    hits = float(y[above].sum()) + need * float(y[tied].sum()) / max(int(tied.sum()), 1)
    return hits / pos


def score_metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    s = np.asarray(s, dtype=np.float64)
    n_nan = int(np.isnan(s).sum())
    s = np.where(np.isnan(s), -np.inf, s)
    s = np.where(np.isneginf(s), np.nanmin(s[np.isfinite(s)]) - 1 if np.isfinite(s).any() else 0.0, s)
    return {
        "auc_pr": float(average_precision_score(y, s)),
        "recall_top10": float(recall_at_fraction(y, s)),
        "roc_auc": float(roc_auc_score(y, s)),
        "unscored_rows": n_nan,
    }


# ---------------------------------------------------------------------------- baseline features
def _looks_like_text(s: pd.Series) -> bool:
    sample = s.dropna().astype(str)
    if sample.empty:
        return False
    sample = sample.sample(min(len(sample), 2000), random_state=0)
    words = sample.str.count(r"\s+") + 1
    return bool(sample.str.len().mean() >= 30 and words.mean() >= 5 and sample.nunique() / len(sample) >= 0.3)


def baseline_roles(train: pd.DataFrame, features: list[str]) -> dict[str, str]:
    """``num`` / ``cat`` / ``text`` / ``drop`` for each feature column, from the train part."""
    roles: dict[str, str] = {}
    for c in features:
        s = train[c]
        if (
            pd.api.types.is_bool_dtype(s)
            or pd.api.types.is_numeric_dtype(s)
            or pd.api.types.is_datetime64_any_dtype(s)
        ):
            roles[c] = "num" if s.notna().any() else "drop"
            continue
        present = s.dropna().astype(str)
        present = present[present.str.strip() != ""]
        if present.empty:
            roles[c] = "drop"
        elif pd.to_numeric(present, errors="coerce").notna().mean() >= 0.98:
            roles[c] = "num"
        elif _looks_like_text(present):
            roles[c] = "text"
        elif present.nunique() / len(present) >= 0.9 and len(present) >= 50:
            roles[c] = "drop"
        else:
            roles[c] = "cat"
    return roles


def _num(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = (s - pd.Timestamp(0, tz=getattr(s.dt, "tz", None))).dt.total_seconds()
        return out.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    return pd.to_numeric(s.astype("object"), errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def _as_category_text(s: pd.Series) -> pd.Series:
    def norm(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return np.nan
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return s.astype("object").map(norm)


class LightGBMFrames:
    """The LightGBM baselines' features, learnt from the train part and applied to any frame."""

    def __init__(self, train: pd.DataFrame, roles: dict[str, str]) -> None:
        self.roles = dict(roles)
        self.categories = {
            c: pd.Index(sorted(_as_category_text(train[c]).dropna().unique()))
            for c, r in roles.items()
            if r == "cat"
        }

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for c, r in self.roles.items():
            if r == "num":
                out[c] = _num(frame[c])
            elif r == "cat":
                cats = self.categories[c]
                b = _as_category_text(frame[c])
                out[c] = pd.Categorical(b.where(b.isin(cats)), categories=cats)  # unseen -> missing
            elif r == "text":
                t = frame[c].fillna("").astype(str)
                out[f"{c}__chars"] = t.str.len().to_numpy(dtype=np.float64)
                out[f"{c}__words"] = t.str.split().str.len().fillna(0).to_numpy(dtype=np.float64)
        return pd.DataFrame(out, index=frame.index)


def lightgbm_frames(
    train: pd.DataFrame, test: pd.DataFrame, roles: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = LightGBMFrames(train, roles)
    return frames.transform(train), frames.transform(test)


def fit_lightgbm(
    train: pd.DataFrame, y: np.ndarray, roles: dict[str, str], seed: int
) -> tuple[Predict, float, dict[str, Any]]:
    import lightgbm as lgb

    t0 = time.perf_counter()
    frames = LightGBMFrames(train, roles)
    xtr = frames.transform(train)
    model = lgb.LGBMClassifier(n_jobs=THREADS, random_state=seed, verbose=-1)
    model.fit(xtr, y)
    seconds = time.perf_counter() - t0

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(frames.transform(frame))[:, 1]

    return predict, seconds, {"features": int(xtr.shape[1])}


def fit_catboost(
    train: pd.DataFrame, y: np.ndarray, roles: dict[str, str], seed: int
) -> tuple[Predict, float, dict[str, Any]]:
    """CatBoost with its default parameters: the LightGBM baselines' features, categorical
    columns given to CatBoost as its own categorical features (a missing value as its own
    level), text as its length in characters and words."""
    from catboost import CatBoostClassifier

    t0 = time.perf_counter()
    frames = LightGBMFrames(train, roles)

    def features(frame: pd.DataFrame) -> pd.DataFrame:
        x = frames.transform(frame)
        for c in frames.categories:
            x[c] = x[c].astype("object").where(x[c].notna(), "__missing__").astype(str)
        return x

    xtr = features(train)
    model = CatBoostClassifier(
        thread_count=THREADS, random_seed=seed, verbose=False, allow_writing_files=False
    )
    model.fit(xtr, y, cat_features=list(frames.categories))
    seconds = time.perf_counter() - t0

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(features(frame))[:, 1]

    return predict, seconds, {"features": int(xtr.shape[1])}


#: LightGBM's own defaults, the tuned baseline's first trial
LGB_DEFAULTS = {
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 20,
    "colsample_bytree": 1.0,
    "subsample": 1.0,
    "reg_lambda": 1e-8,
    "reg_alpha": 1e-8,
    "min_split_gain": 0.0,
}
LGB_MAX_ROUNDS = 3000
LGB_STOPPING_ROUNDS = 50


def _lgb_space(trial: Any) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 200, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 10.0, log=True),
        "min_split_gain": trial.suggest_float("min_split_gain", 0.0, 1.0),
    }


def _lgb_params(p: dict[str, Any], seed: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "verbosity": -1,
        "num_threads": THREADS,
        "seed": seed,
        "metric": "average_precision",
        **p,
        # bagging only when it samples: subsample < 1 with subsample_freq 1
        "subsample_freq": 1 if p["subsample"] < 1.0 else 0,
    }


def fit_lightgbm_tuned(
    train: pd.DataFrame, y: np.ndarray, roles: dict[str, str], seed: int, time_limit: float
) -> tuple[Predict, float, dict[str, Any]]:
    """Optuna TPE search on an inner 80/20 split, early stopping, refit on the whole train part."""
    import lightgbm as lgb
    import optuna
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import train_test_split

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    frames = LightGBMFrames(train, roles)
    x = frames.transform(train)
    itr, iva = train_test_split(np.arange(len(x)), test_size=0.2, stratify=y, random_state=seed)
    d_tr = lgb.Dataset(x.iloc[itr], y[itr], params={"feature_pre_filter": False}, free_raw_data=False)
    d_va = lgb.Dataset(x.iloc[iva], y[iva], reference=d_tr, free_raw_data=False)
    x_va, y_va = x.iloc[iva], y[iva]
    deadline = t0 + time_limit

    def past_deadline(env: Any) -> None:
        # a trial other than the first (the defaults) that runs past the time limit is pruned
        if env.iteration % 10 == 0 and time.perf_counter() > deadline:
            raise optuna.TrialPruned(f"time limit reached at round {env.iteration}")

    def objective(trial: Any) -> float:
        params = _lgb_params(_lgb_space(trial), seed)
        callbacks = [lgb.early_stopping(LGB_STOPPING_ROUNDS, verbose=False)]
        if trial.number > 0:
            callbacks.append(past_deadline)
        booster = lgb.train(
            params, d_tr, num_boost_round=LGB_MAX_ROUNDS, valid_sets=[d_va], callbacks=callbacks
        )
        rounds = max(int(booster.best_iteration or booster.current_iteration()), 1)
        trial.set_user_attr("rounds", rounds)
        return float(average_precision_score(y_va, booster.predict(x_va, num_iteration=rounds)))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(LGB_DEFAULTS)
    study.optimize(objective, timeout=max(time_limit - (time.perf_counter() - t0), 1.0))
    search_seconds = time.perf_counter() - t0
    best = study.best_trial
    rounds = int(best.user_attrs["rounds"])
    params = _lgb_params(dict(best.params), seed)
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=rounds)
    seconds = time.perf_counter() - t0
    states = [t.state for t in study.trials]
    info = {
        "features": int(x.shape[1]),
        "trials": len(study.trials),
        "complete_trials": sum(s == optuna.trial.TrialState.COMPLETE for s in states),
        "pruned_trials": sum(s == optuna.trial.TrialState.PRUNED for s in states),
        "best_trial": best.number,
        "best_inner_auc_pr": round(float(best.value), 5),
        "default_inner_auc_pr": round(float(study.trials[0].value), 5)
        if study.trials[0].value is not None
        else None,
        "best_params": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in best.params.items()},
        "rounds": rounds,
        "search_seconds": round(search_seconds, 2),
        "time_limit": time_limit,
    }

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return booster.predict(frames.transform(frame))

    return predict, seconds, info


def fit_logreg(
    train: pd.DataFrame, y: np.ndarray, roles: dict[str, str], seed: int
) -> tuple[Predict, float, dict[str, Any]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def frame(df: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c, r in roles.items():
            if r == "num":
                out[c] = _num(df[c])
            elif r == "cat":
                out[c] = _as_category_text(df[c]).fillna("__missing__").astype(object)
            elif r == "text":
                out[c] = df[c].fillna("").astype(str).astype(object)
        return pd.DataFrame(out)

    t0 = time.perf_counter()
    num = [c for c, r in roles.items() if r == "num"]
    cat = [c for c, r in roles.items() if r == "cat"]
    text = [c for c, r in roles.items() if r == "text"]
    parts: list[tuple[str, Any, Any]] = []
    if num:
        parts.append(
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                num,
            )
        )
    if cat:
        parts.append(("cat", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=10), cat))
    for c in text:
        parts.append((f"text_{c}", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), c))
    model = Pipeline([("prep", ColumnTransformer(parts)), ("lr", LogisticRegression(max_iter=2000))])
    xtr = frame(train)
    model.fit(xtr, y)
    seconds = time.perf_counter() - t0
    n_features = int(model.named_steps["lr"].coef_.shape[1])

    def predict(df: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(frame(df))[:, 1]

    return predict, seconds, {"features": n_features}


def fit_winnow(
    train: pd.DataFrame, options: dict[str, Any], seed: int, method: str, time_limit: float | None
) -> tuple[Predict, float, dict[str, Any]]:
    from winnow import Screener
    from winnow.models.portfolio import PRESETS as WINNOW_PRESETS

    preset = base_method(method)
    extra: dict[str, Any] = {"time_limit": time_limit} if time_limit is not None else {}
    if extra_members(method):
        members = [*WINNOW_PRESETS[preset].members, *extra_members(method)]
        extra["models"] = list(dict.fromkeys(members))
    if WINNOW_THREADS is not None:
        extra["threads"] = WINNOW_THREADS
    t0 = time.perf_counter()
    screener = Screener().fit(train, **options, seed=seed, preset=preset, **extra)
    seconds = time.perf_counter() - t0
    m = screener.metrics_
    portfolio = m.get("portfolio", {}) or {}
    tuning = m.get("tuning")
    info = {
        "preset": preset,
        "extra_members": extra_members(method),
        "time_limit": time_limit,
        "fusion_weights": dict(
            zip(screener.fusion_.names, [round(v, 3) for v in screener.fusion_.weights], strict=True)
        ),
        "members": list(portfolio.get("members", {})),
        "member_fit_seconds": portfolio.get("fit_seconds"),
        "folds": portfolio.get("folds"),
        "tuning": tuning,
        "inner_split": m.get("split"),
        "inner_test_auc_pr": {
            "winnow": m["winnow"].get("auc_pr"),
            **{n: r.get("auc_pr") for n, r in m.get("models", {}).items()},
        },
        "inner_oof_auc_pr": m.get("oof", {}).get("auc_pr"),
        "warnings": list(screener.warnings_),
        "used_columns": screener.input_columns,
        "dropped_columns": [s.name for s in screener.specs_ if not s.used],
        "roles": {s.name: s.role.value for s in screener.specs_},
        "summary": screener.summary_,
    }

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return screener.score(frame)

    return predict, seconds, info


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.levelname}: {record.getMessage()[:300]}")


# ---------------------------------------------------------------------------- latency
def timed_scoring(predict: Predict, x: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores of the whole frame and the inference latency of ``predict``.

    Batch: ``BATCH_REPEATS`` passes over all of ``x`` (the first pass gives the scores), median
    seconds per row. Single record: one warm-up call, then ``SINGLE_CALLS`` calls with one-row
    frames (the first rows of ``x``), median and 90th percentile seconds per call.
    """
    batch = []
    t = time.perf_counter()
    scores = np.asarray(predict(x), dtype=np.float64)
    batch.append(time.perf_counter() - t)
    for _ in range(BATCH_REPEATS - 1):
        t = time.perf_counter()
        predict(x)
        batch.append(time.perf_counter() - t)
    rows = [x.iloc[[i]] for i in range(min(SINGLE_CALLS, len(x)))]
    predict(rows[0])  # warm-up
    single = []
    for row in rows:
        t = time.perf_counter()
        predict(row)
        single.append(time.perf_counter() - t)
    return scores, {
        "batch_seconds": round(float(np.median(batch)), 4),
        "batch_seconds_per_row": float(np.median(batch)) / max(len(x), 1),
        "single_record_seconds": float(np.median(single)),
        "single_record_p90_seconds": float(np.quantile(single, 0.9)),
        "single_record_calls": len(single),
    }


# ---------------------------------------------------------------------------- one task
def split_id(tr: np.ndarray, te: np.ndarray) -> str:
    """Fingerprint of a split (row positions of both parts), checked when results are merged."""
    h = hashlib.sha256()
    h.update(np.sort(np.asarray(tr, dtype=np.int64)).tobytes())
    h.update(b"|")
    h.update(np.sort(np.asarray(te, dtype=np.int64)).tobytes())
    return h.hexdigest()[:16]


def export_split(
    root: Path,
    name: str,
    seed: int,
    train: pd.DataFrame,
    test: pd.DataFrame,
    y_tr: np.ndarray,
    y_te: np.ndarray,
    features: list[str],
    roles: dict[str, str],
    split: str,
) -> None:
    """Write one task/seed split for tools run outside this process (e.g. an AutoML baseline).

    ``root/<task>/seed<seed>/{train,test}.parquet`` hold the feature columns plus ``__label__``
    (0/1); ``meta.json`` lists the features, the baselines' column roles and the split's
    fingerprint.
    """
    d = root / name / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    for part, frame, y in (("train", train, y_tr), ("test", test, y_te)):
        out = frame[features].copy()
        out["__label__"] = y.astype(np.int64)
        out.to_parquet(d / f"{part}.parquet", index=False)
    meta = {
        "task": name,
        "seed": seed,
        "features": features,
        "roles": roles,
        "label": "__label__",
        "split_id": split,
        "train_rows": len(train),
        "test_rows": len(test),
        "test_positives": int(y_te.sum()),
    }
    (d / "meta.json").write_text(json.dumps(meta, indent=2))


def automl_entry(automl: dict[str, Any] | None, name: str, seed: int, split: str) -> dict[str, Any]:
    """The external AutoML result for one task/seed, or an error entry saying why there is none."""
    if automl is None:
        return {"error": "not run: no --automl-results file given", "not_run": True}
    entry = automl.get("results", {}).get(name, {}).get(str(seed))
    if entry is None:
        return {"error": "not run: no entry in the AutoML results file", "not_run": True}
    entry = dict(entry)
    if entry.get("split_id") != split:
        return {"error": f"split mismatch: AutoML ran on split {entry.get('split_id')}, this run {split}"}
    return entry


def run_task(
    name: str,
    seeds: list[int],
    methods: list[str],
    log: Any,
    *,
    time_limit: float,
    export: Path | None = None,
    automl: dict[str, Any] | None = None,
    previous: dict[int, dict[str, Any]] | None = None,
    fit: bool = True,
) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    t_load = time.perf_counter()
    df, options = task_defs.TASKS[name]()
    df = df.reset_index(drop=True)
    y_all, known, rule = make_y(df, options)
    label_check = check_labels_against_winnow(df, options, y_all, known)
    df, y_all = df[known].reset_index(drop=True), y_all[known]
    target, id_col = options["target"], options.get("id")
    features = [c for c in df.columns if c not in (target, id_col)]
    result: dict[str, Any] = {
        "task": name,
        "options": options,
        "label_rule": rule,
        "label_check": label_check,
        "note": task_defs.NOTES.get(name, ""),
        "rows": len(df),
        "positives": int(y_all.sum()),
        "positive_rate": float(y_all.mean()),
        "features": features,
        "load_seconds": round(time.perf_counter() - t_load, 2),
        "runs": [],
    }
    log(
        f"[{name}] {len(df):,} rows, {int(y_all.sum()):,} positives ({y_all.mean():.2%}), "
        f"{len(features)} feature columns"
    )
    for seed in seeds:
        tr, te = train_test_split(
            np.arange(len(df)), test_size=TEST_FRACTION, stratify=y_all, random_state=seed
        )
        train, test = df.iloc[tr].reset_index(drop=True), df.iloc[te].reset_index(drop=True)
        y_tr, y_te = y_all[tr], y_all[te]
        x_te = test.drop(columns=[target])
        roles = baseline_roles(train, features)
        split = split_id(tr, te)
        if export is not None:
            export_split(export, name, seed, train, test, y_tr, y_te, features, roles, split)
            log(f"[{name}] seed {seed}: split written under {export / name}")
        old = (previous or {}).get(seed)
        if old is not None and old.get("split_id") != split:
            log(f"[{name}] seed {seed}: previous run was on another split, not reused")
            old = None
        run: dict[str, Any] = {
            "seed": seed,
            "split_id": split,
            "train_rows": len(tr),
            "test_rows": len(te),
            "test_positives": int(y_te.sum()),
            "baseline_roles": roles,
        }
        if old is not None:
            run.update({k: v for k, v in old.items() if is_method(k)})
        for method in methods:
            if method == "automl":
                run[method] = automl_entry(automl, name, seed, split)
                continue
            if old is not None and method in old and "error" not in old[method]:
                log(f"[{name}] seed {seed} {method}: reused from the previous run")
                continue
            if not fit:
                run[method] = {"error": "not run (--merge-only: no earlier run to reuse)", "not_run": True}
                continue
            run[method] = run_method(method, train, y_tr, x_te, y_te, roles, options, seed, time_limit)
            r = run[method]
            if "error" in r:
                log(f"[{name}] seed {seed} {method} FAILED: {r['error']}")
            else:
                log(
                    f"[{name}] seed {seed} {method:14s} AUC-PR {r['auc_pr']:.4f} "
                    f"recall@10% {r['recall_top10']:.3f} fit {r['fit_seconds']:7.1f}s "
                    f"batch {r['batch_seconds_per_row'] * 1e6:8.1f}us/row "
                    f"single {r['single_record_seconds'] * 1e3:7.2f}ms"
                    + (f"  weights {r['fusion_weights']}" if is_winnow(method) else "")
                    + (f"  trials {r['trials']}" if method == "lightgbm_tuned" else "")
                )
        result["runs"].append(run)
    result["median"] = medians(result["runs"], methods)
    return result


def run_method(
    method: str,
    train: pd.DataFrame,
    y_tr: np.ndarray,
    x_te: pd.DataFrame,
    y_te: np.ndarray,
    roles: dict[str, str],
    options: dict[str, Any],
    seed: int,
    time_limit: float,
) -> dict[str, Any]:
    """Fit one method, score the test part, time its inference; a failure is returned as a result."""
    caught: list[str] = []
    handler = _ListHandler(caught)
    logger = logging.getLogger("winnow")
    logger.addHandler(handler)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load = [round(v, 2) for v in os.getloadavg()]
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            if is_winnow(method):
                limit = time_limit if base_method(method) == "best" else None
                predict, sec, info = fit_winnow(train, options, seed, method, limit)
            elif method == "lightgbm":
                predict, sec, info = fit_lightgbm(train, y_tr, roles, seed)
            elif method == "catboost":
                predict, sec, info = fit_catboost(train, y_tr, roles, seed)
            elif method == "lightgbm_tuned":
                predict, sec, info = fit_lightgbm_tuned(train, y_tr, roles, seed, time_limit)
            elif method == "logreg":
                predict, sec, info = fit_logreg(train, y_tr, roles, seed)
            else:
                raise ValueError(f"unknown method {method!r}")
            scores, latency = timed_scoring(predict, x_te)
    except Exception as e:  # keep going: a failure is a result too
        return {
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(),
            "started": started,
        }
    finally:
        logger.removeHandler(handler)
    py_warnings = sorted({f"{x.category.__name__}: {str(x.message)[:300]}" for x in w})
    return {
        **score_metrics(y_te, scores),
        "fit_seconds": round(sec, 2),
        **latency,
        "started": started,
        "load_average_at_start": load,
        **info,
        "log_records": caught,
        "python_warnings": py_warnings,
    }


def medians(runs: list[dict[str, Any]], methods: list[str]) -> dict[str, dict[str, Any]]:
    """Medians over the seeds on which every method ran, so all methods share the same splits;
    if there is no such seed, over each method's own runs (the ``seeds`` count then differs)."""
    common = [r for r in runs if all(m in r and "error" not in r[m] for m in methods)]
    out = {}
    for m in methods:
        ok = [r[m] for r in (common or runs) if m in r and "error" not in r[m]]
        out[m] = {k: _median([r.get(k) for r in ok]) for k in MEDIAN_KEYS}
        out[m]["seeds"] = len(ok)
    return out


def _median(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.median(vals)) if vals else None


# ---------------------------------------------------------------------------- report
def _rank(values: dict[str, float]) -> dict[str, float]:
    """1 = highest AUC-PR; ties share the average rank."""
    order = pd.Series(values, dtype=np.float64).rank(ascending=False, method="average")
    return {m: float(order[m]) for m in values}


def summarise(results: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    """Average ranks by AUC-PR and the two targets, over the methods that ran everywhere."""
    if not results or not methods:
        return {}
    available = {m: all(r["median"].get(m, {}).get("auc_pr") is not None for r in results) for m in methods}
    ranked = [m for m in methods if available[m]]
    task_ranks: dict[str, list[float]] = {m: [] for m in ranked}
    seed_ranks: dict[str, list[float]] = {m: [] for m in ranked}
    for r in results:
        if len(ranked) >= 2:
            for m, v in _rank({m: r["median"][m]["auc_pr"] for m in ranked}).items():
                task_ranks[m].append(v)
        for run in r["runs"]:
            if len(ranked) >= 2 and all(m in run and "error" not in run[m] for m in ranked):
                for m, v in _rank({m: run[m]["auc_pr"] for m in ranked}).items():
                    seed_ranks[m].append(v)
    out: dict[str, Any] = {
        "tasks": len(results),
        "ranked_methods": ranked,
        "left_out_of_ranking": [m for m in methods if not available[m]],
        "average_rank_auc_pr": {m: (float(np.mean(v)) if v else None) for m, v in task_ranks.items()},
        "seed_level_average_rank_auc_pr": {
            m: (float(np.mean(v)) if v else None) for m, v in seed_ranks.items()
        },
        "seed_level_runs_ranked": len(next(iter(seed_ranks.values()), [])),
    }
    others = [m for m in methods if not is_winnow(m)]
    out["presets_ge_best_other"] = {}
    for p in (m for m in methods if is_winnow(m)):
        wins = []
        for r in results:
            v = r["median"][p]["auc_pr"]
            rest = [r["median"][m]["auc_pr"] for m in others if r["median"][m]["auc_pr"] is not None]
            if v is not None and rest and v >= max(rest):
                wins.append(r["task"])
        out["presets_ge_best_other"][p] = wins
    if "balanced" in methods and "lightgbm_tuned" in methods:
        ar = out["average_rank_auc_pr"]
        tasks_won = [
            r["task"]
            for r in results
            if None not in (r["median"]["balanced"]["auc_pr"], r["median"]["lightgbm_tuned"]["auc_pr"])
            and r["median"]["balanced"]["auc_pr"] > r["median"]["lightgbm_tuned"]["auc_pr"]
        ]
        pairs = [
            (run["balanced"]["auc_pr"], run["lightgbm_tuned"]["auc_pr"])
            for r in results
            for run in r["runs"]
            if "error" not in run.get("balanced", {"error": 1})
            and "error" not in run.get("lightgbm_tuned", {"error": 1})
        ]
        out["target_balanced_vs_tuned_lightgbm"] = {
            "balanced_average_rank": ar.get("balanced"),
            "lightgbm_tuned_average_rank": ar.get("lightgbm_tuned"),
            "met": (
                ar.get("balanced") is not None
                and ar.get("lightgbm_tuned") is not None
                and ar["balanced"] < ar["lightgbm_tuned"]
            ),
            "balanced_higher_median_auc_pr_on": tasks_won,
            "seed_level_balanced_higher": sum(a > b for a, b in pairs),
            "seed_level_pairs": len(pairs),
        }
    if "balanced" in methods and "automl" in methods:
        rows = []
        for r in results:
            b, a = r["median"]["balanced"], r["median"]["automl"]
            if b["auc_pr"] is None or a["auc_pr"] is None:
                rows.append({"task": r["task"], "compared": False})
                continue

            def ratio(k: str, b: dict = b, a: dict = a) -> float | None:
                return b[k] / a[k] if b.get(k) is not None and a.get(k) else None

            rows.append(
                {
                    "task": r["task"],
                    "compared": True,
                    "balanced_auc_pr": b["auc_pr"],
                    "automl_auc_pr": a["auc_pr"],
                    "difference": b["auc_pr"] - a["auc_pr"],
                    "relative": b["auc_pr"] / a["auc_pr"],
                    "within_1pct": b["auc_pr"] >= 0.99 * a["auc_pr"],
                    "batch_latency_ratio": ratio("batch_seconds_per_row"),
                    "single_latency_ratio": ratio("single_record_seconds"),
                }
            )
        done = [x for x in rows if x["compared"]]
        out["target_balanced_vs_automl"] = {
            "rule": "balanced median AUC-PR >= 0.99 x AutoML median AUC-PR (relative), per task",
            "per_task": rows,
            "tasks_compared": len(done),
            "tasks_within_1pct": [x["task"] for x in done if x["within_1pct"]],
            "median_batch_latency_ratio": _median([x["batch_latency_ratio"] for x in done]),
            "median_single_latency_ratio": _median([x["single_latency_ratio"] for x in done]),
        }
    return out


def _f(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def _scaled(v: float | None, factor: float, spec: str) -> str:
    return "—" if v is None else format(v * factor, spec)


def markdown(report: dict[str, Any]) -> str:
    meta, results, summ = report["meta"], report["results"], report.get("summary", {})
    methods: list[str] = meta["methods"]
    label = {m: label_of(m) for m in methods}
    if "automl" in methods and meta.get("automl"):
        label["automl"] = meta["automl"].get("label", LABELS["automl"])
    lines = [
        "# winnow quality benchmark",
        "",
        f"Command: `{meta['command']}`",
    ]
    if meta.get("reused"):
        lines += [
            "",
            "Runs reused from earlier commands (each method's start time and load average are in the JSON):",
        ]
        for u in meta["reused"]:
            lines.append(
                f"- `{u['command']}`: started {u['started']}, {(u['total_seconds'] or 0) / 60:.1f} min, "
                f"load average {u['load_average_start']} at the start, {u['load_average_end']} at the end"
                + (f"; winnow source sha256 {u['winnow_source']['sha256']}" if u.get("winnow_source") else "")
            )
    else:
        for prev in meta.get("previous_commands", []):
            lines.append(f"(runs reused from an earlier command: `{prev}`)")
    lines += [
        "",
        f"Run {meta['started']} on {meta['machine']}; total {meta['total_seconds'] / 60:.1f} min. "
        + (
            f"winnow {meta['versions']['winnow']}, source sha256 {meta['winnow_source']['sha256']} "
            f"(newest file {meta['winnow_source']['newest_file']}). "
            if "winnow_source" in meta
            else ""
        )
        + (
            f"Load average (1/5/15 min) {meta['load_average_start']} at the start, "
            f"{meta.get('load_average_end')} at the end. "
            if "load_average_start" in meta
            else ""
        )
        + f"Seeds {', '.join(map(str, meta['seeds']))}; "
        f"stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} "
        "train/test split per seed, the same rows and feature columns for every method. "
        f"Time limit (winnow best, LightGBM tuned, AutoML): {meta['time_limit']:g} s. "
        + (
            f"Threads: {meta['threads']} for winnow (`threads={meta['threads']}`) and LightGBM. "
            if meta.get("threads") is not None
            else "Threads: winnow's default (all cores), LightGBM n_jobs=2. "
        )
        + "Medians over the seeds on which every method ran (column seeds). "
        "Fit seconds and latencies are wall-clock on this machine, under whatever "
        "else it was running.",
    ]
    am = meta.get("automl")
    if "automl" in methods:
        if am:
            lines += [
                "",
                f"AutoML: {am.get('label')} ({am.get('framework')} {am.get('version')}), "
                f"`{am.get('fit_call', '')}`; run separately: `{am.get('command', '')}`, "
                + (f"num_cpus={am['num_cpus']}, " if am.get("num_cpus") is not None else "")
                + f"started {am.get('started')}, load average {am.get('load_average_start')} at its start "
                f"and "
                f"{am.get('load_average_end')} at its end; time limit {am.get('time_limit')} s"
                + (
                    " (**differs from this run's**)"
                    if am.get("time_limit") is not None and float(am["time_limit"]) != meta["time_limit"]
                    else ""
                )
                + ".",
            ]
        else:
            lines += ["", "AutoML: no results file given; reported as not run."]
    lines += ["", "## AUC-PR (median over seeds; best in bold)", ""]
    lines += [
        "| task | rows | pos. | " + " | ".join(label[m] for m in methods) + " |",
        "|---|---:|---:|" + "---:|" * len(methods),
    ]
    for r in results:
        med = r["median"]
        vals = {m: med[m]["auc_pr"] for m in methods}
        best = max((v for v in vals.values() if v is not None), default=None)
        cells = []
        for m in methods:
            s = _f(vals[m], ".3f")
            if vals[m] is not None and best is not None and vals[m] >= best - 1e-12:
                s = f"**{s}**"
            cells.append(s)
        lines.append(
            f"| {r['task']} | {r['rows']:,} | {r['positive_rate']:.1%} | " + " | ".join(cells) + " |"
        )
    if summ.get("average_rank_auc_pr"):
        ar, sr = summ["average_rank_auc_pr"], summ["seed_level_average_rank_auc_pr"]
        lines.append(
            "| **average rank** (1 = best) | | | "
            + " | ".join(_f(ar.get(m), ".2f") if m in ar else "—" for m in methods)
            + " |"
        )
        lines.append(
            "| average rank per task and seed | | | "
            + " | ".join(_f(sr.get(m), ".2f") if m in sr else "—" for m in methods)
            + " |"
        )
    lines += [
        "",
        "## Per task and method (medians over seeds)",
        "",
        "Latency: batch = scoring the whole test part (a pandas frame of raw records, each method's own "
        f"preprocessing included), µs per row, median of {BATCH_REPEATS} passes; single = one-record frame, "
        f"ms per call, median of {SINGLE_CALLS} calls.",
        "",
        "| task | method | AUC-PR | recall@top10% | ROC-AUC | fit s | batch µs/row | single ms | seeds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for m in methods:
            v = r["median"][m]
            lines.append(
                f"| {r['task']} | {label[m]} | {_f(v['auc_pr'], '.4f')} | {_f(v['recall_top10'], '.3f')} | "
                f"{_f(v['roc_auc'], '.4f')} | {_f(v['fit_seconds'], '.1f')} | "
                f"{_scaled(v['batch_seconds_per_row'], 1e6, '.1f')} | "
                f"{_scaled(v['single_record_seconds'], 1e3, '.2f')} | {v['seeds']} |"
            )
    lines += ["", "## Summary", ""]
    if summ.get("average_rank_auc_pr"):
        ar = summ["average_rank_auc_pr"]
        lines.append(
            f"- Average rank by median AUC-PR over {summ['tasks']} tasks (1 = best of "
            f"{len(summ['ranked_methods'])}): "
            + ", ".join(f"{label[m]} {_f(ar[m], '.2f')}" for m in sorted(ar, key=lambda k: ar[k] or 99))
            + "."
            + (
                f" Left out of the ranking (not run on every task): "
                f"{', '.join(label[m] for m in summ['left_out_of_ranking'])}."
                if summ["left_out_of_ranking"]
                else ""
            )
        )
    for p, wins in summ.get("presets_ge_best_other", {}).items():
        lines.append(
            f"- {label[p]}: median AUC-PR >= every non-winnow method's on "
            f"{len(wins)} of {summ['tasks']} tasks" + (f" ({', '.join(wins)})" if wins else "") + "."
        )
    ta = summ.get("target_balanced_vs_tuned_lightgbm")
    if ta:
        lines.append(
            f"- **Target (a), balanced beats a tuned LightGBM on average rank: "
            f"{'MET' if ta['met'] else 'NOT MET'}** — average rank {_f(ta['balanced_average_rank'], '.2f')} "
            f"vs {_f(ta['lightgbm_tuned_average_rank'], '.2f')}; balanced has the higher median AUC-PR on "
            f"{len(ta['balanced_higher_median_auc_pr_on'])} of {summ['tasks']} tasks"
            + (
                f" ({', '.join(ta['balanced_higher_median_auc_pr_on'])})"
                if ta["balanced_higher_median_auc_pr_on"]
                else ""
            )
            + f", and on {ta['seed_level_balanced_higher']} of {ta['seed_level_pairs']} task/seed runs."
        )
    tb = summ.get("target_balanced_vs_automl")
    if tb:
        n_in = len(tb["tasks_within_1pct"])
        lines += [
            f"- **Target (b), balanced within 1% of {label['automl']} AUC-PR (relative: balanced >= 0.99 × "
            f"AutoML, per task): {n_in} of {tb['tasks_compared']} tasks compared"
            + (f" ({', '.join(tb['tasks_within_1pct'])})" if tb["tasks_within_1pct"] else "")
            + f"**; median latency ratio balanced / {label['automl']}: batch "
            f"{_f(tb['median_batch_latency_ratio'], '.3f')}, single record "
            f"{_f(tb['median_single_latency_ratio'], '.3f')}.",
            "",
            f"| task | balanced AUC-PR | {label['automl']} AUC-PR | difference | balanced / AutoML "
            "| within 1% | batch latency ratio | single-record latency ratio |",
            "|---|---:|---:|---:|---:|---|---:|---:|",
        ]
        for x in tb["per_task"]:
            if not x["compared"]:
                lines.append(f"| {x['task']} | not compared (a method did not run) | | | | | | |")
                continue
            lines.append(
                f"| {x['task']} | {x['balanced_auc_pr']:.4f} | {x['automl_auc_pr']:.4f} | "
                f"{x['difference']:+.4f} | {x['relative']:.3f} | {'yes' if x['within_1pct'] else 'no'} | "
                f"{_f(x['batch_latency_ratio'], '.3f')} | {_f(x['single_latency_ratio'], '.3f')} |"
            )
    lines += [
        "",
        "## Per seed (AUC-PR)",
        "",
        "| task | seed | " + " | ".join(label[m] for m in methods) + " |",
        "|---|---:|" + "---:|" * len(methods),
    ]
    for r in results:
        for run in r["runs"]:
            cells = []
            for m in methods:
                x = run.get(m, {"error": "not run", "not_run": True})
                cells.append(
                    "not run" if x.get("not_run") else "error" if "error" in x else f"{x['auc_pr']:.4f}"
                )
            lines.append(f"| {r['task']} | {run['seed']} | " + " | ".join(cells) + " |")
    details = [m for m in methods if is_winnow(m) or m == "lightgbm_tuned"]
    if details:
        lines += [
            "",
            "## Fitted models per seed",
            "",
            "| task | seed | method | fit s | details |",
            "|---|---:|---|---:|---|",
        ]
        for r in results:
            for run in r["runs"]:
                for m in details:
                    x = run.get(m, {})
                    if "error" in x or not x:
                        continue
                    if m == "lightgbm_tuned":
                        d = (
                            f"{x['trials']} trials ({x['pruned_trials']} pruned), "
                            f"best #{x['best_trial']}; inner "
                            f"AUC-PR best {x['best_inner_auc_pr']} vs defaults {x['default_inner_auc_pr']}; "
                            f"{x['rounds']} rounds; "
                            + ", ".join(
                                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in x["best_params"].items()
                            )
                        )
                    else:
                        w = ", ".join(f"{k} {v:.2f}" for k, v in x.get("fusion_weights", {}).items())
                        split = x.get("inner_split") or {}
                        d = f"weights {w}; {x.get('folds')} folds; inner {split.get('mode', '')}"
                        tuning = x.get("tuning") or []
                        if isinstance(tuning, dict):
                            tuning = [{"kind": k, **v} for k, v in tuning.items() if isinstance(v, dict)]
                        for t in tuning:
                            if isinstance(t, dict) and "trials" in t:
                                d += (
                                    f"; tuned {t.get('kind')}: {t['trials']} trials, valid AUC-PR "
                                    f"{t.get('best_valid_auc_pr')} vs default {t.get('default_valid_auc_pr')}"
                                )
                    lines.append(
                        f"| {r['task']} | {run['seed']} | {label[m]} | {x['fit_seconds']:.1f} | {d} |"
                    )
    lines += ["", "## Tasks", ""]
    for r in results:
        lines.append(f"- **{r['task']}**: {r['note']}. {r['rows']:,} rows, {r['positives']:,} positives.")
        if r.get("label_check"):
            lines.append(f"  - label check: {r['label_check']}")
        if not r["runs"]:
            continue
        run0 = r["runs"][0]
        special = {k: v for k, v in run0["baseline_roles"].items() if v in ("text", "drop")}
        if special:
            lines.append(f"  - baselines: {', '.join(f'{k} = {v}' for k, v in special.items())}")
        w = next((run0[p] for p in methods if is_winnow(p) and "roles" in run0.get(p, {})), None)
        if w:
            nonnum = {k: v for k, v in w["roles"].items() if v not in ("numeric",)}
            lines.append(
                f"  - winnow roles (non-numeric): {', '.join(f'{k} = {v}' for k, v in nonnum.items())}"
            )
        ours = [p for p in methods if is_winnow(p)]
        msgs = sorted({x for run in r["runs"] for p in ours for x in run.get(p, {}).get("warnings", [])})
        for x in msgs:
            lines.append(f"  - winnow warning: {x}")
        for m in methods:
            pyw = sorted({x for run in r["runs"] for x in run.get(m, {}).get("python_warnings", [])})
            for x in pyw:
                lines.append(f"  - Python warning ({label[m]}): {x.splitlines()[0][:200]}")
        for run in r["runs"]:
            for m in methods:
                x = run.get(m, {})
                if "error" in x:
                    lines.append(f"  - seed {run['seed']} {label[m]}: {x['error'].splitlines()[0][:300]}")
    lines += [
        "",
        f"Methods: `LGBMClassifier(n_jobs={THREADS})` with default parameters (string columns as pandas "
        "category); LightGBM tuned = the same features, an Optuna TPE search (first trial = defaults) "
        "of learning_rate, num_leaves, min_child_samples, colsample_bytree, subsample (+ subsample_freq 1), "
        "reg_lambda, reg_alpha, min_split_gain on an inner stratified 80/20 split of the train part, "
        f"early stopping ({LGB_STOPPING_ROUNDS} rounds, at most {LGB_MAX_ROUNDS}), objective inner AUC-PR, "
        "for the time limit, then a refit on the whole train part with the best parameters and rounds; "
        "`LogisticRegression(max_iter=2000)` after median impute with missing indicators + standard "
        "scaling of numerics and one-hot categoricals (min_frequency=10). Free-text columns: TF-IDF (1-2 "
        "grams, min_df=2) for the logistic regression, character and word counts for LightGBM. winnow: "
        "`Screener().fit(train, **options, seed=seed, preset=...)` (`best` with `time_limit`); it holds out "
        "its own inner test part (20% of the train part) for its report, then refits the models it uses "
        "on all of the train part, like the baselines (80% of the labelled rows). AutoML gets the same "
        "feature columns as raw values and does its own preprocessing.",
        "",
    ]
    return "\n".join(lines)


def source_fingerprint(package: Path) -> dict[str, str]:
    """sha256 over winnow's .py files and the newest file time: src/ changes while we run."""
    h = hashlib.sha256()
    newest = 0.0
    for f in sorted(package.rglob("*.py")):
        h.update(str(f.relative_to(package)).encode())
        h.update(f.read_bytes())
        newest = max(newest, f.stat().st_mtime)
    return {
        "sha256": h.hexdigest()[:16],
        "newest_file": datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "winnow's presets against LightGBM (default, tuned), logistic regression and AutoML "
            "on the shared data sets."
        ),
        epilog="Writes OUT/quality.json and OUT/quality.md; prints the markdown.",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="split/model seeds (default: 0 1 2)"
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(task_defs.TASKS),
        choices=list(task_defs.TASKS),
        metavar="TASK",
        help=f"tasks to run (default: all): {' '.join(task_defs.TASKS)}",
    )
    parser.add_argument(
        "--methods",
        nargs="*",
        default=list(DEFAULT_METHODS),
        type=method_arg,
        metavar="METHOD",
        help=f"methods (default: {' '.join(DEFAULT_METHODS)}): {' '.join(METHODS)}; "
        "PRESET+MEMBER[+MEMBER...] = the preset with extra members (e.g. balanced+lightgbm_rf); "
        "none = only --export-splits",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit of winnow best, LightGBM tuned and AutoML, the same for all three (default: 60)",
    )
    parser.add_argument(
        "--automl-results",
        type=Path,
        default=None,
        metavar="FILE",
        help="results of bench/automl/run_autogluon.py (JSON keyed by task and seed) for method automl",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: bench/out)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="threads for winnow (its `threads` option) and the LightGBM baselines; default: winnow's "
        "default (all cores) and 2 for LightGBM. On a machine loaded by other work, 1 avoids thread "
        "oversubscription",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        nargs="+",
        default=[],
        metavar="FILE",
        help="quality.json files of earlier runs whose task/seed/method runs are reused (same split, "
        "same --time-limit), like --resume",
    )
    parser.add_argument(
        "--merge-only",
        action="store_true",
        help="fit nothing: report the runs of --reuse/--resume (and --automl-results); "
        "the others are reported as not run",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse the task/seed/method runs already in OUT/quality.json (same split) instead of "
        "fitting them again, e.g. to add seeds",
    )
    parser.add_argument(
        "--export-splits",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write every task/seed split to DIR (for baselines run in another environment)",
    )
    args = parser.parse_args(argv)
    if not args.methods and args.export_splits is None:
        parser.error("no --methods and no --export-splits: nothing to do")
    # fixed order (a PRESET+MEMBER method after its preset), no duplicates
    methods = sorted(dict.fromkeys(args.methods), key=lambda m: (METHODS.index(base_method(m)), m.count("+")))
    global THREADS, WINNOW_THREADS
    if args.threads is not None:
        THREADS = WINNOW_THREADS = args.threads

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = "python bench/quality.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    started = datetime.now(UTC)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - t0:8.1f}s {msg}", file=sys.stderr, flush=True)

    if not methods:
        for name in args.tasks:
            run_task(name, args.seeds, [], log, time_limit=args.time_limit, export=args.export_splits)
        log(f"splits written under {args.export_splits}")
        return 0

    import catboost
    import lightgbm
    import optuna
    import sklearn

    import winnow

    args.out.mkdir(parents=True, exist_ok=True)
    automl = None
    if args.automl_results is not None:
        if args.automl_results.exists():
            automl = json.loads(args.automl_results.read_text())
        else:
            log(f"AutoML results {args.automl_results} not found: automl reported as not run")
            automl = {"meta": None, "results": {}}
    previous: dict[str, dict[int, dict[str, Any]]] = {}
    previous_commands: list[str] = []
    reuse = list(args.reuse)
    if args.resume and (args.out / "quality.json").exists():
        reuse.insert(0, args.out / "quality.json")
    reused_meta = []
    for f in reuse:
        old = json.loads(f.read_text())
        reused_meta.append(
            {
                "file": str(f),
                **{
                    k: old["meta"].get(k)
                    for k in (
                        "command",
                        "started",
                        "total_seconds",
                        "load_average_start",
                        "load_average_end",
                        "winnow_source",
                    )
                },
            }
        )
        previous_commands += [*old["meta"].get("previous_commands", []), old["meta"]["command"]]
        if old["meta"].get("time_limit") != args.time_limit:
            parser.error(f"{f}: its run used --time-limit {old['meta'].get('time_limit')}")
        if old["meta"].get("threads") != args.threads:
            parser.error(f"{f}: its run used --threads {old['meta'].get('threads')}")
        for r in old["results"]:
            for run in r["runs"]:
                previous.setdefault(r["task"], {}).setdefault(run["seed"], {}).update(
                    {k: v for k, v in run.items() if not is_method(k) or "error" not in v}
                )
    previous_commands = list(dict.fromkeys(previous_commands))
    meta: dict[str, Any] = {
        "command": command.strip(),
        "previous_commands": previous_commands,
        "reused": reused_meta,
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "versions": {
            "winnow": winnow.__version__,
            "lightgbm": lightgbm.__version__,
            "catboost": catboost.__version__,
            "optuna": optuna.__version__,
            "sklearn": sklearn.__version__,
            "pandas": pd.__version__,
        },
        "winnow_source": source_fingerprint(Path(winnow.__file__).parent),
        "seeds": args.seeds,
        "tasks": args.tasks,
        "methods": methods,
        "time_limit": args.time_limit,
        "threads": args.threads,
        "automl": (automl or {}).get("meta"),
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }
    results: list[dict[str, Any]] = []
    report: dict[str, Any] = {"meta": meta, "results": results}

    def write(final: bool = False) -> None:
        meta["total_seconds"] = round(time.perf_counter() - t0, 1)
        if final:
            meta["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
        report["summary"] = summarise(results, methods)
        (args.out / "quality.json").write_text(json.dumps(report, indent=2, default=str))
        if final:
            (args.out / "quality.md").write_text(markdown(report))

    for name in args.tasks:
        results.append(
            run_task(
                name,
                args.seeds,
                methods,
                log,
                time_limit=args.time_limit,
                export=args.export_splits,
                automl=automl,
                previous=previous.get(name),
                fit=not args.merge_only,
            )
        )
        write()
    write(final=True)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
