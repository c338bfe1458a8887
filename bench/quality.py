"""Quality benchmark: winnow's default fit against LightGBM defaults and logistic regression.

For every task in ``bench/tasks.py`` and every seed, the labelled rows are split once into a
stratified 80% train / 20% test part (``sklearn.model_selection.train_test_split``, random state
= the seed). On the same rows and the same feature columns:

* **winnow**: ``Screener().fit(train, **task_options, seed=seed)``, then ``.score(test)``.
  winnow makes its own inner split of the train part (its test part and k-fold cross-fitting or
  a validation part); nothing of the outer test part is shown to it.
* **LightGBM**: ``lightgbm.LGBMClassifier(n_jobs=2)`` with default parameters; string columns as
  pandas ``category`` dtype (categories from the train part).
* **logistic regression**: median impute (+ missing indicators) and standard scale numerics,
  one-hot categoricals (``min_frequency=10``, infrequent/unseen levels pooled),
  ``LogisticRegression(max_iter=2000)``.

Column roles for the two baselines are decided from the train part with simple rules (numbers,
booleans and datetimes are numeric; strings of numbers are numeric; long multi-word strings are
free text; strings with a distinct value on >= 90% of rows are ID-like and left out; other
strings are categorical). Free text cannot be a category, so the logistic regression gets a
TF-IDF of it (words, 1-2 grams, min_df=2) and LightGBM gets its length in characters and words
(what winnow's preprocessing derives from text too).

Metrics on the outer test part: AUC-PR (average precision), recall among the top 10% of test
rows by score (ties at the cut shared out proportionally), ROC-AUC; fit seconds are wall-clock
seconds of the fit call (preprocessing included). Tables show medians over seeds.

    python bench/quality.py                      # all tasks, seeds 0 1 2
    python bench/quality.py --tasks cdnow --seeds 0
"""

from __future__ import annotations

import argparse
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tasks as task_defs

OUT = Path(__file__).resolve().parent / "out"
METHODS = ("winnow", "lightgbm", "logreg")
LABELS = {"winnow": "winnow", "lightgbm": "LightGBM", "logreg": "LogReg"}
TOP_FRACTION = 0.10
TEST_FRACTION = 0.20
THREADS = 2


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


def lightgbm_frames(
    train: pd.DataFrame, test: pd.DataFrame, roles: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    xtr, xte = {}, {}
    for c, r in roles.items():
        if r == "num":
            xtr[c], xte[c] = _num(train[c]), _num(test[c])
        elif r == "cat":
            a, b = _as_category_text(train[c]), _as_category_text(test[c])
            cats = pd.Index(sorted(a.dropna().unique()))
            xtr[c] = pd.Categorical(a, categories=cats)
            xte[c] = pd.Categorical(b.where(b.isin(cats)), categories=cats)  # unseen -> missing
        elif r == "text":
            for frame, out in ((train, xtr), (test, xte)):
                t = frame[c].fillna("").astype(str)
                out[f"{c}__chars"] = t.str.len().to_numpy(dtype=np.float64)
                out[f"{c}__words"] = t.str.split().str.len().fillna(0).to_numpy(dtype=np.float64)
    return pd.DataFrame(xtr), pd.DataFrame(xte)


def fit_lightgbm(
    train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame, roles: dict[str, str], seed: int
) -> tuple[np.ndarray, float, dict[str, Any]]:
    import lightgbm as lgb

    t0 = time.perf_counter()
    xtr, xte = lightgbm_frames(train, test, roles)
    model = lgb.LGBMClassifier(n_jobs=THREADS, random_state=seed, verbose=-1)
    model.fit(xtr, y)
    seconds = time.perf_counter() - t0
    return model.predict_proba(xte)[:, 1], seconds, {"features": int(xtr.shape[1])}


def fit_logreg(
    train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame, roles: dict[str, str], seed: int
) -> tuple[np.ndarray, float, dict[str, Any]]:
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
    return model.predict_proba(frame(test))[:, 1], seconds, {"features": n_features}


def fit_winnow(
    train: pd.DataFrame, test: pd.DataFrame, options: dict[str, Any], seed: int
) -> tuple[np.ndarray, float, dict[str, Any]]:
    from winnow import Screener

    caught: list[str] = []
    handler = _ListHandler(caught)
    logger = logging.getLogger("winnow")
    logger.addHandler(handler)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            screener = Screener().fit(train, **options, seed=seed)
            seconds = time.perf_counter() - t0
            scores = screener.score(test.drop(columns=[options["target"]]))
    finally:
        logger.removeHandler(handler)
    py_warnings = sorted({f"{x.category.__name__}: {str(x.message)[:300]}" for x in w})
    m = screener.metrics_
    info = {
        "fusion_weights": dict(
            zip(screener.fusion_.names, [round(v, 3) for v in screener.fusion_.weights], strict=True)
        ),
        "inner_split": m.get("split"),
        "inner_test_auc_pr": {
            "winnow": m["winnow"].get("auc_pr"),
            **{n: r.get("auc_pr") for n, r in m.get("models", {}).items()},
        },
        "inner_oof_auc_pr": m.get("oof", {}).get("auc_pr"),
        "warnings": list(screener.warnings_),
        "log_records": caught,
        "python_warnings": py_warnings,
        "used_columns": screener.input_columns,
        "dropped_columns": [s.name for s in screener.specs_ if not s.used],
        "roles": {s.name: s.role.value for s in screener.specs_},
        "summary": screener.summary_,
    }
    return scores, seconds, info


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.levelname}: {record.getMessage()[:300]}")


# ---------------------------------------------------------------------------- one task
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
) -> None:
    """Write one task/seed split for tools run outside this process (e.g. an AutoML baseline).

    ``root/<task>/seed<seed>/{train,test}.parquet`` hold the feature columns plus ``__label__``
    (0/1); ``meta.json`` lists the features and the baselines' column roles.
    """
    d = root / name / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    for part, frame, y in (("train", train, y_tr), ("test", test, y_te)):
        out = frame[features].copy()
        out["__label__"] = y.astype(np.int64)
        out.to_parquet(d / f"{part}.parquet", index=False)
    meta = {"task": name, "seed": seed, "features": features, "roles": roles, "label": "__label__"}
    (d / "meta.json").write_text(json.dumps(meta, indent=2))


def run_task(name: str, seeds: list[int], log: Any, export: Path | None = None) -> dict[str, Any]:
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
        roles = baseline_roles(train, features)
        if export is not None:
            export_split(export, name, seed, train, test, y_tr, y_te, features, roles)
            log(f"[{name}] seed {seed}: split written under {export / name}")
        run: dict[str, Any] = {
            "seed": seed,
            "train_rows": len(tr),
            "test_rows": len(te),
            "test_positives": int(y_te.sum()),
            "baseline_roles": roles,
        }
        for method in METHODS:
            try:
                if method == "winnow":
                    s, sec, info = fit_winnow(train, test, options, seed)
                elif method == "lightgbm":
                    s, sec, info = fit_lightgbm(train, y_tr, test, roles, seed)
                else:
                    s, sec, info = fit_logreg(train, y_tr, test, roles, seed)
                run[method] = {**score_metrics(y_te, s), "fit_seconds": round(sec, 2), **info}
                log(
                    f"[{name}] seed {seed} {method:8s} AUC-PR {run[method]['auc_pr']:.4f} "
                    f"recall@10% {run[method]['recall_top10']:.3f} fit {sec:7.1f}s"
                    + (f"  weights {info['fusion_weights']}" if method == "winnow" else "")
                )
            except Exception as e:  # keep going: a failure is a result too
                run[method] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
                log(f"[{name}] seed {seed} {method} FAILED: {type(e).__name__}: {e}")
        result["runs"].append(run)
    result["median"] = {
        m: {
            k: _median([r[m].get(k) for r in result["runs"] if "error" not in r[m]])
            for k in ("auc_pr", "recall_top10", "roc_auc", "fit_seconds")
        }
        for m in METHODS
    }
    return result


def _median(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.median(vals)) if vals else None


# ---------------------------------------------------------------------------- report
def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    wins, ranks, per_seed_wins, per_seed_total = [], {m: [] for m in METHODS}, 0, 0
    for r in results:
        med = {m: r["median"][m]["auc_pr"] for m in METHODS}
        if all(v is not None for v in med.values()):
            if med["winnow"] >= max(med["lightgbm"], med["logreg"]):
                wins.append(r["task"])
            order = pd.Series(med).rank(ascending=False, method="average")
            for m in METHODS:
                ranks[m].append(float(order[m]))
        for run in r["runs"]:
            if all("error" not in run[m] for m in METHODS):
                per_seed_total += 1
                per_seed_wins += run["winnow"]["auc_pr"] >= max(
                    run["lightgbm"]["auc_pr"], run["logreg"]["auc_pr"]
                )
    n_tasks = len(ranks["winnow"])
    return {
        "tasks_compared": n_tasks,
        "winnow_auc_pr_ge_best_baseline": len(wins),
        "winnow_wins_on": wins,
        "average_rank_auc_pr": {m: (float(np.mean(v)) if v else None) for m, v in ranks.items()},
        "seed_level_wins": per_seed_wins,
        "seed_level_runs": per_seed_total,
    }


def _f(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def markdown(report: dict[str, Any]) -> str:
    meta, results, summ = report["meta"], report["results"], report["summary"]
    lines = [
        "# winnow quality benchmark",
        "",
        f"Command: `{meta['command']}`",
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
        "Medians over seeds. Fit seconds are wall-clock on this machine, under whatever else it was running.",
        "",
        "| task | rows | pos. | AUC-PR winnow | LightGBM | LogReg "
        "| recall@top10% winnow | LightGBM | LogReg | fit s winnow | LightGBM | LogReg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        med = r["median"]
        ap = {m: med[m]["auc_pr"] for m in METHODS}
        best = max((v for v in ap.values() if v is not None), default=None)

        def cell(
            m: str, key: str, spec: str, bold_best: bool = False, med: dict = med, best: float | None = best
        ) -> str:
            v = med[m][key]
            s = _f(v, spec)
            if bold_best and v is not None and best is not None and v >= best - 1e-12:
                s = f"**{s}**"
            return s

        lines.append(
            f"| {r['task']} | {r['rows']:,} | {r['positive_rate']:.1%} | "
            + " | ".join(cell(m, "auc_pr", ".3f", True) for m in METHODS)
            + " | "
            + " | ".join(cell(m, "recall_top10", ".3f") for m in METHODS)
            + " | "
            + " | ".join(cell(m, "fit_seconds", ".1f") for m in METHODS)
            + " |"
        )
    ar = summ["average_rank_auc_pr"]
    lines += [
        "",
        f"**Summary.** winnow's median AUC-PR >= max(LightGBM default, logistic regression) on "
        f"**{summ['winnow_auc_pr_ge_best_baseline']} of {summ['tasks_compared']}** tasks"
        + (f" ({', '.join(summ['winnow_wins_on'])})" if summ["winnow_wins_on"] else "")
        + f"; per task and seed {summ['seed_level_wins']} of {summ['seed_level_runs']}. "
        f"Average rank by median AUC-PR (1 = best of 3): "
        + ", ".join(f"{LABELS[m]} {_f(ar[m], '.2f')}" for m in METHODS)
        + ".",
        "",
        "## Per seed (AUC-PR)",
        "",
        "| task | seed | winnow | LightGBM | LogReg "
        "| winnow fusion weights (lightgbm/linear/deep) | winnow inner split |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        for run in r["runs"]:
            w = run["winnow"]
            weights = (
                "/".join(f"{v:.2f}" for v in w.get("fusion_weights", {}).values())
                if "error" not in w
                else "error"
            )
            split = w.get("inner_split", {}) or {}
            lines.append(
                f"| {r['task']} | {run['seed']} | "
                + " | ".join(
                    _f(run[m].get("auc_pr"), ".4f") if "error" not in run[m] else "error" for m in METHODS
                )
                + f" | {weights} | {split.get('mode', '')}, "
                f"train {split.get('train', '')} / test {split.get('test', '')} |"
            )
    lines += ["", "## Tasks", ""]
    for r in results:
        lines.append(f"- **{r['task']}**: {r['note']}. {r['rows']:,} rows, {r['positives']:,} positives.")
        if r.get("label_check"):
            lines.append(f"  - label check: {r['label_check']}")
        run0 = r["runs"][0]
        roles = run0["baseline_roles"]
        special = {k: v for k, v in roles.items() if v in ("text", "drop")}
        if special:
            lines.append(f"  - baselines: {', '.join(f'{k} = {v}' for k, v in special.items())}")
        w = run0.get("winnow", {})
        if "dropped_columns" in w:
            nonnum = {k: v for k, v in w["roles"].items() if v not in ("numeric",)}
            lines.append(
                f"  - winnow roles (non-numeric): {', '.join(f'{k} = {v}' for k, v in nonnum.items())}"
            )
        msgs = sorted({m for run in r["runs"] for m in run.get("winnow", {}).get("warnings", [])})
        for m in msgs:
            lines.append(f"  - winnow warning: {m}")
        pyw = sorted({m for run in r["runs"] for m in run.get("winnow", {}).get("python_warnings", [])})
        for m in pyw:
            lines.append(f"  - Python warning during winnow fit/score: {m}")
        for run in r["runs"]:
            for m in METHODS:
                if "error" in run[m]:
                    lines.append(f"  - seed {run['seed']} {m} FAILED: {run[m]['error']}")
    lines += [
        "",
        "Baselines: `LGBMClassifier(n_jobs=2)` with default parameters (string columns as pandas "
        "category); `LogisticRegression(max_iter=2000)` after median impute with missing indicators "
        "+ standard scaling of numerics and one-hot categoricals (min_frequency=10). Free-text "
        "columns: TF-IDF (1-2 grams, min_df=2) for the logistic regression, character and word "
        "counts for LightGBM. winnow: `Screener().fit(train, **options, seed=seed)` with its defaults; "
        "it holds out its own inner test part (20% of the train part) for its report, then refits the "
        "models it uses on all of the train part, like the baselines (80% of the labelled rows).",
        "",
    ]
    return "\n".join(lines)


def source_fingerprint(package: Path) -> dict[str, str]:
    """sha256 over winnow's .py files and the newest file time: src/ changes while we run."""
    import hashlib

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
            "winnow's default fit against LightGBM defaults and logistic regression on the shared data sets."
        ),
        epilog="Writes bench/out/quality.json and bench/out/quality.md; prints the markdown table.",
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
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: bench/out)")
    parser.add_argument(
        "--export-splits",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write every task/seed split to DIR (for baselines run in another environment)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python bench/quality.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    started = datetime.now(UTC)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - t0:8.1f}s {msg}", file=sys.stderr, flush=True)

    import lightgbm
    import sklearn

    import winnow

    meta = {
        "command": command.strip(),
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "versions": {
            "winnow": winnow.__version__,
            "lightgbm": lightgbm.__version__,
            "sklearn": sklearn.__version__,
            "pandas": pd.__version__,
        },
        "winnow_source": source_fingerprint(Path(winnow.__file__).parent),
        "seeds": args.seeds,
        "tasks": args.tasks,
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }
    results: list[dict[str, Any]] = []
    report: dict[str, Any] = {"meta": meta, "results": results}
    for name in args.tasks:
        results.append(run_task(name, args.seeds, log, args.export_splits))
        meta["total_seconds"] = round(time.perf_counter() - t0, 1)
        report["summary"] = summarise(results)
        (args.out / "quality.json").write_text(json.dumps(report, indent=2, default=str))
    meta["total_seconds"] = round(time.perf_counter() - t0, 1)
    meta["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    report["summary"] = summarise(results)
    (args.out / "quality.json").write_text(json.dumps(report, indent=2, default=str))
    md = markdown(report)
    (args.out / "quality.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
