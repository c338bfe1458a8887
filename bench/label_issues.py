"""Label errors: how well `winnow fit --drop-label-issues` finds flipped labels, against cleanlab.

For every task in ``bench/tasks.py`` (flights: the seeded 100,000-row sample of ``tasks.py``),
each seed and each noise rate (5% and 20%):

1. the labelled rows are split 80/20 (stratified, random state = the seed); the 20% test part
   keeps its true labels;
2. ``rate`` of the training rows get their label flipped (a seeded uniform choice: symmetric
   noise);
3. out-of-fold probabilities of the noisy training labels come from
   ``winnow.quality.label_issues.out_of_fold`` (5 folds, LightGBM + linear; preprocessing fitted
   on the training part). On the *same* probabilities:
   - winnow's ``find_label_issues`` (``prune_by_noise_rate``, the default, and ``confident_joint``);
   - cleanlab's ``cleanlab.filter.find_label_issues(labels, pred_probs)`` with its defaults;
   precision and recall of the flagged rows against the flipped ones;
4. AUC-PR on the clean test part of ``Screener().fit(train, preset="fast")`` fitted on: the clean
   labels (the ceiling), the noisy labels, the noisy labels with ``drop_label_issues=True``
   (winnow's own pipeline, which runs its own cross-validation inside its training part), and the
   noisy labels without the rows cleanlab flagged.

    python bench/label_issues.py                          # all tasks, seed 0
    python bench/label_issues.py --tasks resume_callbacks --seeds 0 1 2
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
OUT = ROOT / "bench" / "out" / "label_issues"
RATES = (0.05, 0.2)


def _pr(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((flagged & truth).sum())
    return {
        "flagged": int(flagged.sum()),
        "precision": tp / max(int(flagged.sum()), 1),
        "recall": tp / max(int(truth.sum()), 1),
    }


def _oof(train: pd.DataFrame, label: str, id_col: str | None, seed: int) -> np.ndarray:
    import pyarrow as pa

    from winnow.models.base import Inputs
    from winnow.prep.preprocessor import Preprocessor
    from winnow.quality.label_issues import out_of_fold
    from winnow.schema import coerce, infer_schema

    t = pa.Table.from_pandas(train, preserve_index=False)
    specs = infer_schema(t, target=label, id_column=id_col)
    typed = coerce(t, specs).table
    prep = Preprocessor().fit(typed, specs)
    m = prep.transform(typed, specs)
    y = train[label].astype(int).to_numpy()
    return out_of_fold(
        Inputs(m, prep.dense(m)), y, seed=seed, threads=1, cat_cardinalities=tuple(prep.cardinalities())
    )


def _auc_pr(train: pd.DataFrame, test: pd.DataFrame, options: dict[str, Any], **extra: Any) -> float:
    from sklearn.metrics import average_precision_score

    from winnow import Screener

    s = Screener().fit(train, preset="fast", threads=1, **options, **extra)
    return float(average_precision_score(test["__y"], s.score(test.drop(columns=["__y"]))))


def run_one(task: str, seed: int) -> list[dict[str, Any]]:
    from cleanlab.filter import find_label_issues as cleanlab_find
    from quality import make_y
    from sklearn.model_selection import train_test_split
    from tasks import TASKS

    from winnow.quality.label_issues import find_label_issues

    table, options = TASKS[task]()
    y, known, _ = make_y(table, options)
    df = table[known].drop(columns=[options["target"]]).reset_index(drop=True)
    y = y[known]
    label = "__label"
    df[label] = y.astype(str)
    fit_options = {"target": label, "positive": "1", "id": options.get("id"), "seed": seed}
    tr, te = train_test_split(np.arange(len(df)), test_size=0.2, stratify=y, random_state=seed)
    test = df.iloc[te].drop(columns=[label]).assign(__y=y[te])
    rows = []
    clean_auc = _auc_pr(df.iloc[tr], test, fit_options)
    for rate in RATES:
        rng = np.random.default_rng(1000 + seed)
        flip = np.zeros(len(tr), bool)
        flip[rng.choice(len(tr), round(rate * len(tr)), replace=False)] = True
        y_noisy = np.where(flip, 1 - y[tr], y[tr])
        train = df.iloc[tr].copy()
        train[label] = y_noisy.astype(str)
        t0 = time.monotonic()
        p = _oof(train, label, options.get("id"), seed)
        oof_s = time.monotonic() - t0
        t0 = time.monotonic()
        ours = find_label_issues(y_noisy, p)
        ours_s = time.monotonic() - t0
        ours_cj = find_label_issues(y_noisy, p, method="confident_joint")
        t0 = time.monotonic()
        theirs = cleanlab_find(y_noisy, np.column_stack([1 - p, p]))
        theirs_s = time.monotonic() - t0
        noisy_auc = _auc_pr(train, test, fit_options)
        dropped_auc = _auc_pr(train, test, fit_options, drop_label_issues=True)
        cleanlab_auc = _auc_pr(train.iloc[np.flatnonzero(~theirs)], test, fit_options)
        row = {
            "task": task,
            "seed": seed,
            "noise": rate,
            "train_rows": len(tr),
            "flipped": int(flip.sum()),
            "positives_train": int(y[tr].sum()),
            "oof_seconds": round(oof_s, 2),
            "winnow": _pr(ours.issue, flip),
            "winnow_confident_joint": _pr(ours_cj.issue, flip),
            "cleanlab": _pr(theirs, flip),
            "find_seconds": {"winnow": round(ours_s, 4), "cleanlab": round(theirs_s, 4)},
            "auc_pr": {
                "clean_labels": clean_auc,
                "noisy": noisy_auc,
                "noisy_drop_label_issues": dropped_auc,
                "noisy_minus_cleanlab": cleanlab_auc,
            },
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _median(rows: list[dict], *path: str) -> float:
    vals = []
    for r in rows:
        v: Any = r
        for k in path:
            v = v[k]
        vals.append(v)
    return float(np.median(vals))


def report(rows: list[dict]) -> str:
    lines = [
        "| task | noise | flipped | winnow P | winnow R | winnow cj P | winnow cj R | cleanlab P "
        "| cleanlab R | AUC-PR clean | noisy | --drop-label-issues | minus cleanlab's |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["noise"]), []).append(r)
    for (task, rate), rs in groups.items():
        lines.append(
            f"| {task} | {rate:.0%} | {_median(rs, 'flipped'):,.0f} "
            f"| {_median(rs, 'winnow', 'precision'):.3f} | {_median(rs, 'winnow', 'recall'):.3f} "
            f"| {_median(rs, 'winnow_confident_joint', 'precision'):.3f} "
            f"| {_median(rs, 'winnow_confident_joint', 'recall'):.3f} "
            f"| {_median(rs, 'cleanlab', 'precision'):.3f} | {_median(rs, 'cleanlab', 'recall'):.3f} "
            f"| {_median(rs, 'auc_pr', 'clean_labels'):.4f} | {_median(rs, 'auc_pr', 'noisy'):.4f} "
            f"| {_median(rs, 'auc_pr', 'noisy_drop_label_issues'):.4f} "
            f"| {_median(rs, 'auc_pr', 'noisy_minus_cleanlab'):.4f} |"
        )
    return "\n".join(lines) + f"\n\nmedians over seeds {sorted({r['seed'] for r in rows})}\n"


def main() -> None:
    from task_runner import main as run

    run(__doc__, OUT, "label_issues", run_one, report)


if __name__ == "__main__":
    main()
