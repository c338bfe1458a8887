"""Fingerprints of deterministic fits, to show that two versions of winnow fit alike.

Four fits with fixed members and no time limit (so nothing depends on the machine's speed): a
synthetic table with every column role (CatBoost, LightGBM, linear; 3 folds), the same with a
top-fraction target and a budget, the résumé callbacks (LightGBM, its random forest, linear)
and 4,000 fine-food reviews (text: linear, LightGBM). For each: a hash of the scores of every
row, the threshold, the fusion weights, the held-out AUC-PR, a hash of all metrics (fit seconds
left out), the fit summary and a hash of the importance. Run it under two versions and compare:

    python bench/same_fit.py --out new.json
    git worktree add /tmp/old <commit>
    PYTHONPATH=/tmp/old/src python bench/same_fit.py --out old.json
    python bench/same_fit.py --compare old.json new.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _digest(obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        return hashlib.sha256(np.asarray(obj, dtype=np.float64).tobytes()).hexdigest()[:16]
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _without_timings(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _without_timings(v) for k, v in d.items() if k != "fit_seconds"}
    if isinstance(d, list):
        return [_without_timings(v) for v in d]
    return d


def cases() -> list[tuple[str, Any, dict[str, Any]]]:
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT))
    from tests.helpers import make_frame

    frame = make_frame(1500, seed=4)
    resume = pq.read_table(DATA / "resume_callbacks.parquet").to_pandas()
    reviews = pq.read_table(DATA / "fine_food_reviews.parquet").slice(0, 4000).to_pandas()
    one = {"folds": 3, "threads": 1}
    return [
        (
            "frame_all_roles",
            frame,
            dict(
                target="churn",
                positive="yes",
                id="customer_id",
                drop=["future_spend"],
                models=["lightgbm", "linear", "catboost"],
                seed=1,
                **one,
            ),
        ),
        (
            "frame_top_fraction_budget",
            frame,
            dict(
                target="future_spend",
                top_fraction=0.15,
                id="customer_id",
                drop=["churn"],
                models=["lightgbm", "linear"],
                seed=2,
                budget=0.1,
                threads=1,
            ),
        ),
        (
            "resume",
            resume,
            dict(
                target="received_callback",
                positive="1",
                models=["lightgbm", "linear", "lightgbm_rf"],
                seed=0,
                **one,
            ),
        ),
        (
            "reviews_text",
            reviews,
            dict(target="score", positive="great", models=["linear", "lightgbm"], seed=0, **one),
        ),
    ]


def fingerprint(data: Any, options: dict[str, Any]) -> dict[str, Any]:
    from winnow import Screener

    s = Screener().fit(data, **options)
    return {
        "scores": _digest(s.score(data)),
        "threshold": s.threshold_.value,
        "weights": [round(w, 12) for w in s.fusion_.weights],
        "auc_pr": s.metrics_["winnow"]["auc_pr"],
        "metrics": _digest(_without_timings(s.metrics_)),
        "summary": {k: v for k, v in s.summary_.items() if k != "fit_seconds"},
        "importance": _digest(s.importance_),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    args = ap.parse_args()
    if args.compare:
        old, new = (json.loads(p.read_text()) for p in args.compare)
        for name in old:
            same = old[name] == new.get(name)
            print(f"{name:28s} {'same' if same else 'DIFFERENT'}")
            if not same:
                for k in old[name]:
                    if old[name][k] != new[name].get(k):
                        print(f"    {k}: {old[name][k]} -> {new[name].get(k)}")
        return
    out = {}
    for name, data, options in cases():
        out[name] = fingerprint(data, options)
        print(name, out[name], flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
