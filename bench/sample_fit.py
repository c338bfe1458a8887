"""Fitting on a stratified sample (`winnow fit --sample-rows N`): AUC-PR, calibration and fit cost
against the sample size.

Data: the widened NYC flights of `bench/scale.py` (336,776 rows, 48 feature columns, 8.6% of
flights arrive 60+ minutes late), split once 80/20 by a seeded permutation. Each run fits
`--preset fast` on the 80% part as a Parquet file, either on every row or on a stratified
reservoir sample of N rows (every late flight up to N/2, the rest uniform), then scores the 20%
part. Reported: held-out AUC-PR and recall in the top 10%, mean predicted probability against
the held-out late rate (did the sample correction work?), the share of held-out rows above the
artifact's threshold (budget: top 5%), fit seconds and the fitting process's peak RSS.

    python bench/sample_fit.py --sizes 10000 30000 100000 0     # 0 = every row
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "sample_fit"
sys.path.insert(0, str(ROOT / "bench"))


def one(size: int, seed: int) -> dict:
    """Fit and evaluate in this (child) process; returns the metrics."""
    from sklearn.metrics import average_precision_score

    from winnow import Screener

    train, test = OUT / "train.parquet", OUT / "test.parquet"
    opts = {"sample_rows": size} if size else {}
    t0 = time.perf_counter()
    task = {"target": "late", "positive": ["true"], "preset": "fast", "seed": seed, "budget": 0.05}
    s = Screener().fit(str(train), **task, **opts)
    fit_s = time.perf_counter() - t0
    t = pq.read_table(test)
    y = np.asarray(t.column("late").to_pylist(), dtype=bool)
    p = s.score(t)
    k = int(np.ceil(0.1 * len(y)))
    top = np.argsort(-p, kind="stable")[:k]
    return {
        "size": size,
        "seed": seed,
        "rows_fitted": s.summary_["rows_used"],
        "auc_pr": float(average_precision_score(y, p)),
        "recall_top10": float(y[top].sum() / y.sum()),
        "mean_p": float(np.mean(p)),
        "late_rate": float(y.mean()),
        "selected_at_threshold": float(np.mean(p >= s.threshold_.value)),
        "fit_seconds": fit_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "sample": s.metrics_.get("sample"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--one", type=int, nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    import scale

    OUT.mkdir(parents=True, exist_ok=True)
    wide = scale.OUT / "wide.parquet"
    if not wide.exists():
        scale.OUT.mkdir(parents=True, exist_ok=True)
        pq.write_table(scale.wide_flights(), wide)
    t = pq.read_table(wide)
    order = np.random.default_rng(0).permutation(t.num_rows)
    cut = int(0.8 * t.num_rows)
    pq.write_table(t.take(np.sort(order[:cut])), OUT / "train.parquet")
    pq.write_table(t.take(np.sort(order[cut:])), OUT / "test.parquet")
    rows = []
    for seed in args.seeds:
        for size in args.sizes:
            load = os.getloadavg()
            res = subprocess.run(
                [sys.executable, __file__, "--one", str(size), str(seed)],
                capture_output=True,
                text=True,
                check=True,
            )
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            rec["load_at_start"] = load
            rows.append(rec)
            print(json.dumps(rec), flush=True)
    (OUT / "sample_fit.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "| sample | rows fitted | AUC-PR | recall@top10% | mean p / late rate | above threshold (5%) "
        "| fit s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = f"{r['size']:,}" if r["size"] else "every row"
        lines.append(
            f"| {name} | {r['rows_fitted']:,} | {r['auc_pr']:.4f} | {r['recall_top10']:.3f} | "
            f"{r['mean_p']:.4f} / {r['late_rate']:.4f} | {r['selected_at_threshold']:.3f} | "
            f"{r['fit_seconds']:.1f} | {r['peak_rss_mib']:,.0f} |"
        )
    (OUT / "sample_fit.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
