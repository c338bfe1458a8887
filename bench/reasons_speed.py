"""Reason codes' cost: path contributions (what winnow uses) against exact TreeSHAP, per member.

For every LightGBM member of an artifact: µs per row of LightGBM's TreeSHAP (``pred_contrib``)
and of :class:`winnow.models.gbdt.PathTable` on the same prepared rows (one thread, after a
first call that builds the table), whether both add up to the same totals, and how often they
agree on a row's top column and top-3 columns.

    python bench/scale.py --rows 10000000 --commands floor     # builds the artifact and the data
    python bench/reasons_speed.py bench/out/scale/screener_default \\
        bench/out/scale/flights_10000000/part-00000.parquet --rows 2000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow.parquet as pq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("artifact")
    ap.add_argument("data", help="a Parquet file with the artifact's input columns")
    ap.add_argument("--rows", type=int, default=2000)
    args = ap.parse_args()

    from winnow.models.gbdt import LightGBMLearner, tree_matrix
    from winnow.screener import Screener

    s = Screener.load(args.artifact)
    s.set_threads(1)
    table = pq.ParquetFile(args.data).read_row_group(0).slice(0, args.rows)
    x, _ = s.prepare(table)
    print(f"{len(x):,} rows of {args.data}, one thread")
    print(
        "| member | trees | TreeSHAP µs/row | path µs/row | speed-up | same totals | same top column "
        "| top-3 overlap |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in s.learners_.items():
        if not isinstance(m, LightGBMLearner):
            continue
        features = tree_matrix(x)
        t0 = time.perf_counter()
        shap = m.booster_.predict(features, pred_contrib=True, num_threads=1)[:, :-1] * m._raw_scale()
        t_shap = time.perf_counter() - t0
        m.contributions(x)  # builds the path table
        t0 = time.perf_counter()
        path = m.contributions(x)
        t_path = time.perf_counter() - t0
        top_s, top_p = np.argsort(-shap, axis=1)[:, :3], np.argsort(-path, axis=1)[:, :3]
        same = float(np.mean(top_s[:, 0] == top_p[:, 0]))
        overlap = float(np.mean([len(set(a) & set(b)) / 3 for a, b in zip(top_s, top_p, strict=True)]))
        totals = bool(np.allclose(shap.sum(axis=1), path.sum(axis=1), atol=1e-6))
        n, trees = len(x), m.booster_.current_iteration()
        print(
            f"| {name} | {trees} | {1e6 * t_shap / n:,.0f} | {1e6 * t_path / n:.1f} | "
            f"{t_shap / t_path:,.0f}x | {totals} | {same:.2f} | {overlap:.2f} |"
        )


if __name__ == "__main__":
    main()
