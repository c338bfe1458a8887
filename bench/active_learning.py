"""Active learning: a simulated labelling loop, `winnow suggest` against random and pure uncertainty.

For every task in ``bench/tasks.py`` and seed: the labelled rows are split 80/20 (stratified,
random state = the seed); the 80% part is the unlabelled *pool* (at most 20,000 rows, a seeded
sample) whose labels are revealed only when a strategy asks for them, the 20% part (at most
20,000 rows) is the test set. The loop starts from 50 labelled rows drawn at random from the pool
but holding at least 10 of each class (the least a winnow fit accepts), then, per round: fit
``Screener(preset="fast", threads=1)`` on the labelled rows, record AUC-PR and recall in the top
10% on the test set, and ask the strategy for 50 more rows (``winnow.quality.active.suggest``:
``diverse``, ``uncertainty`` or ``random``), up to 500 labels. All three strategies start from
the same 50 rows.

    python bench/active_learning.py                      # all tasks, seed 0
    python bench/active_learning.py --tasks cdnow --seeds 0 1 2
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
OUT = ROOT / "bench" / "out" / "active_learning"
STRATEGIES = ("diverse", "uncertainty", "random")
START, STEP, STOP = 50, 50, 500
POOL_MAX = TEST_MAX = 20_000
MIN_CLASS = 10


def _start(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    first = np.concatenate(
        [rng.choice(pos, MIN_CLASS, replace=False), rng.choice(neg, MIN_CLASS, replace=False)]
    )
    rest = rng.choice(np.setdiff1d(np.arange(len(y)), first), START - len(first), replace=False)
    return np.sort(np.concatenate([first, rest]))


def run_one(task: str, seed: int) -> list[dict[str, Any]]:
    from quality import make_y, recall_at_fraction
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import train_test_split
    from tasks import TASKS

    from winnow import Screener
    from winnow.quality.active import suggest

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
    pool = df.iloc[pool_i].reset_index(drop=True)
    y_pool = y_all[pool_i]
    test = df.iloc[test_i].reset_index(drop=True)
    y_test = y_all[test_i]
    label = "__label"
    fit_options = {"target": label, "positive": "1", "id": options.get("id"), "seed": seed}
    start = _start(y_pool, np.random.default_rng(seed + 7))
    rows = []
    for strategy in STRATEGIES:
        labelled = start.copy()
        curve = []
        t0 = time.monotonic()
        while True:
            train = pool.iloc[labelled].assign(**{label: y_pool[labelled].astype(str)})
            s = Screener().fit(train, preset="fast", threads=1, **fit_options)
            p = s.score(test)
            curve.append(
                {
                    "labels": len(labelled),
                    "positives": int(y_pool[labelled].sum()),
                    "auc_pr": float(average_precision_score(y_test, p)),
                    "recall_top10": float(recall_at_fraction(y_test, p)),
                }
            )
            if len(labelled) >= STOP:
                break
            rest = np.setdiff1d(np.arange(len(pool)), labelled)
            sug = suggest(s, pool.iloc[rest].reset_index(drop=True), STEP, strategy=strategy, seed=seed)
            picked = rest[sug.table.column("row").to_numpy()]
            labelled = np.sort(np.concatenate([labelled, picked]))
        row = {
            "task": task,
            "seed": seed,
            "strategy": strategy,
            "pool": len(pool),
            "pool_positive_rate": float(y_pool.mean()),
            "test": len(test),
            "seconds": round(time.monotonic() - t0, 1),
            "curve": curve,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def report(rows: list[dict]) -> str:
    labels = list(range(START, STOP + 1, STEP))
    out = []
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    out.append("Median AUC-PR on the test part by number of labels (medians over seeds)\n")
    out.append("| task | strategy | " + " | ".join(str(n) for n in labels) + " | mean |")
    out.append("|---|---|" + "---:|" * (len(labels) + 1))
    wins: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    for task in tasks:
        for strategy in STRATEGIES:
            rs = [r for r in rows if r["task"] == task and r["strategy"] == strategy]
            if not rs:
                continue
            vals = [float(np.median([r["curve"][i]["auc_pr"] for r in rs])) for i in range(len(labels))]
            wins[strategy].append(float(np.mean(vals[1:])))
            out.append(
                f"| {task} | {strategy} | "
                + " | ".join(f"{v:.3f}" for v in vals)
                + f" | {np.mean(vals[1:]):.3f} |"
            )
    out.append("\n`mean`: the mean over rounds 100..500 (the rounds after the shared start).\n")
    out.append("| strategy | mean AUC-PR over tasks (rounds 100..500) |")
    out.append("|---|---:|")
    for s in STRATEGIES:
        if wins[s]:
            out.append(f"| {s} | {np.mean(wins[s]):.4f} |")
    seeds = sorted({r["seed"] for r in rows})
    return "\n".join(out) + f"\n\nseeds {seeds}\n"


def main() -> None:
    from task_runner import main as run

    run(__doc__, OUT, "active_learning", run_one, report)


if __name__ == "__main__":
    main()
