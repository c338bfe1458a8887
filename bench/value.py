"""What `winnow value` is worth: train on the top-valued x% against a random x% of the same size.

For every task in ``bench/tasks.py`` (flights: the seeded 100,000-row sample) and seed, the
labelled rows are split 80/20 (stratified, random state = the seed). Two versions of the 80%
training part:

* ``as is``: the rows as they come;
* ``raw``: what collected data looks like: 10% of the labels flipped at random, plus perturbed
  near-duplicate copies of 20% of the rows (numbers + N(0, 0.01 SD), a new id), so the part is
  redundant and noisy.

``winnow.quality.value.record_values`` scores the training part; for x in 10%, 25% and 50%,
``Screener(preset="fast")`` is fitted on the top-valued x% and on random x% samples of the same
size (the median of 3 seeded draws), and on every row; AUC-PR on the clean 20% test part.

    python bench/value.py                        # all tasks, seed 0
    python bench/value.py --tasks imdb_movies --seeds 0 1
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
OUT = ROOT / "bench" / "out" / "value"
FRACTIONS = (0.1, 0.25, 0.5)
RANDOM_DRAWS = 3


def _raw(train: pd.DataFrame, label: str, id_col: str | None, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 99)
    df = train.copy()
    flip = rng.choice(len(df), int(0.1 * len(df)), replace=False)
    df.iloc[flip, df.columns.get_loc(label)] = np.where(df[label].iloc[flip] == "1", "0", "1")
    src = rng.choice(len(df), int(0.2 * len(df)), replace=False)
    cp = df.iloc[src].copy()
    for c in cp.columns:
        if c in (label, id_col):
            continue
        if pd.api.types.is_numeric_dtype(cp[c]) and not pd.api.types.is_bool_dtype(cp[c]):
            sd = float(df[c].std()) if df[c].notna().any() else 0.0
            cp[c] = cp[c] + rng.normal(0, 0.01 * sd, len(cp))
    if id_col:
        cp[id_col] = (
            [f"copy-{i}" for i in range(len(cp))]
            if df[id_col].dtype == object
            else (df[id_col].max() + 1 + np.arange(len(cp)))
        )
    return pd.concat([df, cp], ignore_index=True)


def _auc(train: pd.DataFrame, test: pd.DataFrame, y_test: np.ndarray, options: dict[str, Any]) -> float:
    from sklearn.metrics import average_precision_score

    from winnow import Screener
    from winnow.errors import DataError

    try:
        s = Screener().fit(train, preset="fast", threads=1, **options)
    except DataError:  # too few of a class in a small subset
        return float("nan")
    return float(average_precision_score(y_test, s.score(test)))


def run_one(task: str, seed: int) -> list[dict[str, Any]]:
    from quality import make_y
    from sklearn.model_selection import train_test_split
    from tasks import TASKS

    from winnow.quality.value import record_values

    table, options = TASKS[task]()
    y, known, _ = make_y(table, options)
    df = table[known].drop(columns=[options["target"]]).reset_index(drop=True)
    y = y[known]
    label = "__label"
    df[label] = y.astype(str)
    id_col = options.get("id")
    fit_options = {"target": label, "positive": "1", "id": id_col, "seed": seed}
    tr, te = train_test_split(np.arange(len(df)), test_size=0.2, stratify=y, random_state=seed)
    test = df.iloc[te].drop(columns=[label]).reset_index(drop=True)
    y_test = y[te]
    rows = []
    for version in ("as is", "raw"):
        train = df.iloc[tr].reset_index(drop=True)
        if version == "raw":
            train = _raw(train, label, id_col, seed)
        t0 = time.monotonic()
        values = record_values(train, target=label, positive=["1"], id_column=id_col, seed=seed)
        value_s = time.monotonic() - t0
        order = values.column("row").to_numpy()  # input rows, highest value first
        result: dict[str, Any] = {
            "task": task,
            "seed": seed,
            "version": version,
            "train_rows": len(train),
            "value_seconds": round(value_s, 1),
            "flagged_noise": int(sum(values.column("label_noise").to_pylist())),
            "flagged_redundant": int(sum(values.column("redundancy").to_pylist())),
            "all_rows": _auc(train, test, y_test, fit_options),
        }
        for x in FRACTIONS:
            n = round(x * len(train))
            top = _auc(train.iloc[np.sort(order[:n])], test, y_test, fit_options)
            rng = np.random.default_rng(seed + int(x * 1000))
            rand = [
                _auc(train.iloc[np.sort(rng.choice(len(train), n, replace=False))], test, y_test, fit_options)
                for _ in range(RANDOM_DRAWS)
            ]
            result[f"top_{x:g}"] = top
            result[f"random_{x:g}"] = float(np.nanmedian(rand))
        print(json.dumps(result), flush=True)
        rows.append(result)
    return rows


def report(rows: list[dict]) -> str:
    head = "| task | training part | rows | all rows | " + " | ".join(
        f"top {x:.0%} | random {x:.0%}" for x in FRACTIONS
    )
    lines = [head + " |", "|---|---|---:|---:|" + "---:|---:|" * len(FRACTIONS)]
    keys = list(dict.fromkeys((r["task"], r["version"]) for r in rows))
    wins = total = 0
    for task, version in keys:
        rs = [r for r in rows if r["task"] == task and r["version"] == version]
        med = {
            k: float(np.nanmedian([r[k] for r in rs]))
            for k in rs[0]
            if k.startswith(("top_", "random_", "all"))
        }
        cells = []
        for x in FRACTIONS:
            a, b = med[f"top_{x:g}"], med[f"random_{x:g}"]
            wins += a > b
            total += 1
            cells.append(f"{'**' if a > b else ''}{a:.4f}{'**' if a > b else ''} | {b:.4f}")
        lines.append(
            f"| {task} | {version} | {rs[0]['train_rows']:,} | {med['all_rows']:.4f} | "
            + " | ".join(cells)
            + " |"
        )
    seeds = sorted({r["seed"] for r in rows})
    return (
        "\n".join(lines)
        + f"\n\ntop-valued beats random in {wins} of {total} cells; medians over seeds {seeds}\n"
    )


def main() -> None:
    from task_runner import main as run

    run(__doc__, OUT, "value", run_one, report)


if __name__ == "__main__":
    main()
