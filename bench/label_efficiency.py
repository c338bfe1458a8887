"""Label efficiency: AUC-PR with 50, 200, 1,000 and all labels, SCARF-pretrained deep net vs not vs LightGBM.

For every task in ``bench/tasks.py`` and seed: the labelled rows are split 80/20 (stratified,
random state = the seed); the 80% part is the pool (at most 20,000 rows, a seeded sample), the
20% part the test set (at most 20,000 rows). For each label count n (50, 200, 1,000, all of the
pool), n pool rows keep their label (a seeded sample holding at least 10 of each class, the least
a winnow fit accepts) and the rest of the pool has its label removed. Three fits per n, all
``Screener().fit(..., threads=1)``:

* ``tabm``: the TabM-style network alone (``models=["tabm"]``), random initialisation;
* ``tabm+pretrain``: the same with ``pretrain=True``: its encoder first learns SCARF on the
  labelled and the unlabelled pool rows (the test rows are never seen);
* ``lightgbm``: LightGBM alone (``models=["lightgbm"]``), labelled rows only.

AUC-PR on the test set.

    python bench/label_efficiency.py                       # all tasks, seed 0
    python bench/label_efficiency.py --tasks imdb_movies --seeds 0 1
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
OUT = ROOT / "bench" / "out" / "label_efficiency"
SIZES = (50, 200, 1000, 0)  # 0 = every pool row
POOL_MAX = TEST_MAX = 20_000
MIN_CLASS = 10
METHODS = {
    "tabm": {"models": ["tabm"]},
    "tabm+pretrain": {"models": ["tabm"], "pretrain": True},
    "lightgbm": {"models": ["lightgbm"]},
}


def _labelled(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if n == 0 or n >= len(y):
        return np.arange(len(y))
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    first = np.concatenate(
        [rng.choice(pos, MIN_CLASS, replace=False), rng.choice(neg, MIN_CLASS, replace=False)]
    )
    rest = rng.choice(np.setdiff1d(np.arange(len(y)), first), n - len(first), replace=False)
    return np.sort(np.concatenate([first, rest]))


def run_one(task: str, seed: int) -> list[dict[str, Any]]:
    from quality import make_y
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import train_test_split
    from tasks import TASKS

    from winnow import Screener

    table, options = TASKS[task]()
    y_all, known, _ = make_y(table, options)
    df = table[known].drop(columns=[options["target"]]).reset_index(drop=True)
    y_all = y_all[known]
    rng = np.random.default_rng(seed)
    pool_i, test_i = train_test_split(np.arange(len(df)), test_size=0.2, stratify=y_all, random_state=seed)
    if len(pool_i) > POOL_MAX:
        pool_i = np.sort(rng.choice(pool_i, POOL_MAX, replace=False))
    if len(test_i) > TEST_MAX:
        test_i = np.sort(rng.choice(test_i, TEST_MAX, replace=False))
    pool, y_pool = df.iloc[pool_i].reset_index(drop=True), y_all[pool_i]
    test, y_test = df.iloc[test_i].reset_index(drop=True), y_all[test_i]
    label = "__label"
    rows = []
    for n in SIZES:
        keep = _labelled(y_pool, n, np.random.default_rng(seed + 11))
        lab = np.full(len(pool), None, dtype=object)
        lab[keep] = y_pool[keep].astype(str)
        for method, extra in METHODS.items():
            train = (
                pool.assign(**{label: lab})
                if extra.get("pretrain")
                else pool.iloc[keep].assign(**{label: y_pool[keep].astype(str)})
            )
            t0 = time.monotonic()
            s = Screener().fit(
                train, target=label, positive="1", id=options.get("id"), seed=seed, threads=1, **extra
            )
            p = s.score(test)
            row = {
                "task": task,
                "seed": seed,
                "labels": len(keep),
                "method": method,
                "unlabelled": int(len(pool) - len(keep)) if extra.get("pretrain") else 0,
                "auc_pr": float(average_precision_score(y_test, p)),
                "fit_seconds": round(time.monotonic() - t0, 1),
                "pretrain": s.metrics_.get("pretrain"),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def report(rows: list[dict]) -> str:
    lines = [
        "| task | labels | tabm | tabm + SCARF pretraining | LightGBM | pretraining gain |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    keys = list(dict.fromkeys((r["task"], r["labels"]) for r in rows))
    gains = []
    for task, n in keys:
        med = {}
        for m in METHODS:
            vals = [r["auc_pr"] for r in rows if r["task"] == task and r["labels"] == n and r["method"] == m]
            med[m] = float(np.median(vals)) if vals else float("nan")
        gain = med["tabm+pretrain"] - med["tabm"]
        gains.append(gain)
        lines.append(
            f"| {task} | {n:,} | {med['tabm']:.4f} | {med['tabm+pretrain']:.4f} | {med['lightgbm']:.4f} "
            f"| {gain:+.4f} |"
        )
    seeds = sorted({r["seed"] for r in rows})
    wins = sum(g > 0 for g in gains)
    return (
        "\n".join(lines)
        + f"\n\npretraining helped in {wins} of {len(gains)} cells; medians over seeds {seeds}\n"
    )


def main() -> None:
    from task_runner import main as run

    run(__doc__, OUT, "label_efficiency", run_one, report)


if __name__ == "__main__":
    main()
