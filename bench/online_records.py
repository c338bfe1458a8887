"""One record at a time, in process: what the service and the stream worker pay per record.

For each ``ARTIFACT=DATA`` pair, ``--calls`` records (the rows of DATA in turn, as Python dicts,
as the service parses them from JSON) are scored one per call through ``Screener.score_one``
(the Python API's one record), through ``OnlineScorer.score_records`` with the artifact's
threshold (most records not selected: no reasons) and with threshold 0 (every record selected:
reasons too), and as one-row Arrow tables through ``Screener.score_batch``. Median and p99 per
call, one model thread, after a warm-up.
Run it under two versions (``PYTHONPATH=/tmp/old/src``, see bench/same_scores.py) on the same
machine one after the other to compare.

    python bench/online_records.py ART=DATA ... [--calls 1000] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def _times(fn: Any, items: list[Any]) -> dict[str, float]:
    for item in items[:50]:
        fn(item)
    t = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        t.append(time.perf_counter() - t0)
    return {"median_ms": 1e3 * float(np.median(t)), "p99_ms": 1e3 * float(np.quantile(t, 0.99))}


def measure(artifact: str, data: str, calls: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from winnow import Screener
    from winnow.online import OnlineScorer

    s = Screener.load(artifact)
    s.set_threads(1)
    table = pq.read_table(data)
    rows = [table.slice(i % table.num_rows, 1) for i in range(calls)]
    records = [r.to_pylist()[0] for r in rows]
    scorer = OnlineScorer(s)
    return {
        "record, Screener.score_one": _times(s.score_one, records),
        "record, artifact threshold": _times(lambda r: scorer.score_records([r]), records),
        "record, selected (reasons)": _times(lambda r: scorer.score_records([r], threshold=0.0), records),
        "one-row table, score_batch": _times(s.score_batch, rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="ARTIFACT=DATA")
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = {}
    for pair in args.pairs:
        artifact, data = pair.split("=", 1)
        out[Path(artifact).name] = res = measure(artifact, data, args.calls)
        for path, r in res.items():
            name = Path(artifact).name
            print(f"{name:30s} {path:28s} median {r['median_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
