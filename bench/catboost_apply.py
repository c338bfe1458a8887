"""CatBoost's applier against winnow's numpy applier of the same oblivious trees, by rows a call.

For each ``ARTIFACT=DATA`` pair whose artifact has a CatBoost member: the DATA rows are
prepared once (typing and preprocessing) and the member's raw scores are computed for the
first ``n`` rows, ``n`` in ``--rows``, by CatBoost (its ``Pool`` and ``_base_predict``, what
the learner calls) and by :class:`winnow.models.catboost_apply.ObliviousApplier`: median of
``--repeats`` calls each, one thread, and whether the two agree to the last bit. The learner
takes the numpy applier up to ``winnow.models.catboost_model.FEW_ROWS`` rows a call.

    python bench/catboost_apply.py ART=DATA ... [--rows 1 2 4 8 16 32 64 128] [--out r.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def _median_us(fn: Any, repeats: int) -> float:
    fn()
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return 1e6 * float(np.median(t))


def measure(artifact: str, data: str, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    from winnow import Screener
    from winnow.models.catboost_apply import ObliviousApplier, model_spec
    from winnow.models.catboost_model import _features_data

    s = Screener.load(artifact)
    s.set_threads(1)
    learner = s.learners_.get("catboost")
    if learner is None:
        return []
    table = pq.read_table(data).slice(0, max(sizes))
    x, _ = s.prepare(table)
    applier = ObliviousApplier(model_spec(learner.model_))
    rows = []
    for n in sizes:
        part = x.take(np.arange(min(n, len(x))))
        ours = applier.raw(part.m.num, part.m.cat)
        theirs = np.asarray(learner._raw(_features_data(part)), dtype=np.float64).reshape(-1)
        rows.append(
            {
                "artifact": Path(artifact).name,
                "rows": len(part),
                "catboost_us": _median_us(lambda p=part: learner._raw(_features_data(p)), repeats),
                "numpy_us": _median_us(lambda p=part: applier.raw(p.m.num, p.m.cat), repeats),
                "same_bits": bool(np.array_equal(ours, theirs)),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="ARTIFACT=DATA")
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    results = []
    print(f"{'artifact':<28} {'rows':>5} {'CatBoost us':>12} {'numpy us':>9} {'ratio':>6} same bits")
    for pair in args.pairs:
        artifact, data = pair.split("=", 1)
        for r in measure(artifact, data, args.rows, args.repeats):
            results.append(r)
            print(
                f"{r['artifact']:<28} {r['rows']:>5} {r['catboost_us']:>12.1f} {r['numpy_us']:>9.1f} "
                f"{r['catboost_us'] / r['numpy_us']:>5.1f}x {r['same_bits']}",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
