"""What explanations cost and how exact they are: CatBoost path contributions against CatBoost's
own SHAP values, and the networks' integrated gradients by number of points.

1. CatBoost (the member of ``--artifact``, default the résumé task's default fit): time per row
   of ``CatBoostLearner.contributions`` (path contributions) and of
   ``get_feature_importance(type="ShapValues")`` on 1, 100 and 2,000 rows (best of 3 calls), how
   far each row's sum is from its logit, and how often the top column agrees.
2. Networks: a ``deep`` + ``tabm`` fit on the synthetic churn table (3,000 rows, seed 3); for
   8, 16, 32 and 64 points, the largest gap between a row's contributions + base and its logit.

    python bench/explanations.py [--artifact DIR] [--data PARQUET]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def catboost_part(artifact: Path, data: Path) -> list[str]:
    from catboost import Pool

    from winnow import Screener
    from winnow.models.catboost_model import _features_data

    s = Screener.load(artifact)
    s.set_threads(1)
    cb = s.learners_["catboost"]
    table = pq.read_table(data).slice(0, 2000)
    x, _ = s.prepare(table.select([c for c in table.column_names if c in s.input_columns]))
    lines = [
        "| rows | path contributions µs/row | CatBoost SHAP µs/row "
        "| max abs(sum + base - logit): path | SHAP |",
        "|---:|---:|---:|---:|---:|",
    ]
    logit = cb.predict_logit(x)
    for n in (1, 100, 2000):
        xs = x.take(np.arange(n))
        t_path = _best(lambda xs=xs: cb.contributions(xs))
        t_shap = _best(
            lambda xs=xs: cb.model_.get_feature_importance(
                data=Pool(_features_data(xs)), type="ShapValues", thread_count=1
            )
        )
        path = cb.contributions(xs)
        shap = cb.model_.get_feature_importance(
            data=Pool(_features_data(xs)), type="ShapValues", thread_count=1
        )
        gap_path = np.abs(path.sum(1) + cb._paths.expected - logit[:n]).max()
        gap_shap = np.abs(shap.sum(1) - logit[:n]).max()
        lines.append(
            f"| {n:,} | {t_path / n * 1e6:,.1f} | {t_shap / n * 1e6:,.1f} | {gap_path:.1e} | {gap_shap:.1e} |"
        )
    path, shap = (
        cb.contributions(x),
        cb.model_.get_feature_importance(data=Pool(_features_data(x)), type="ShapValues"),
    )
    agree = float((path.argmax(1) == shap[:, :-1].argmax(1)).mean())
    corr = float(np.corrcoef(path.ravel(), shap[:, :-1].ravel())[0, 1])
    lines.append("")
    lines.append(
        f"Top column the same as SHAP's: {agree:.1%} of {len(x):,} rows; "
        f"correlation of all values {corr:.3f}."
    )
    return lines


def network_part() -> list[str]:
    from tests.helpers import fit_options, make_frame
    from winnow import Screener

    frame = make_frame(3000, seed=3)
    s = Screener().fit(frame, **fit_options(models=["deep", "tabm"], live_model="full"))
    new = make_frame(500, seed=8).drop(columns=["churn", "future_spend"])
    x, _ = s.prepare(pa.Table.from_pandas(new, preserve_index=False))
    lines = [
        "| member | points | max abs gap | mean abs gap | logit range | ms per 500 rows |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("deep", "tabm"):
        net = s.learners_[name]
        logit, base = net.predict_logit(x), net.expected_logit()
        for steps in (8, 16, 32, 64):
            t0 = time.perf_counter()
            dense, cat = net.contributions(x, steps=steps)
            ms = (time.perf_counter() - t0) * 1e3
            gap = np.abs(logit - (dense.sum(1) + cat.sum(1) + base))
            lines.append(
                f"| {name} | {steps} | {gap.max():.4f} | {gap.mean():.4f} | {np.ptp(logit):.1f} | {ms:,.0f} |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifact", type=Path, default=REPO / "bench" / "out" / "resume_default_fast")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "resume_callbacks.parquet")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "explanations.md")
    a = ap.parse_args()
    lines = ["### CatBoost", "", *catboost_part(a.artifact, a.data), "", "### Networks", "", *network_part()]
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
