"""Fingerprints of every scoring path, to show two versions of winnow score bit for bit alike.

For each ``ARTIFACT=DATA`` pair (an artifact folder and a Parquet file of raw rows), the first
``--rows`` rows are scored through: ``Screener.score_batch`` on the whole table, ``Screener.score``
on it, ``score_batch`` on one-row tables (the in-process single-record path), and
``OnlineScorer.score_records`` one record at a time and as one list (the service's and the stream
worker's core, with threshold 0 so every record gets reasons). Each path's scores are hashed
(sha256 of the float64 bytes) and so are the reasons; run it under two versions and compare the
JSON files:

    python bench/same_scores.py --out new.json ART=DATA ...
    git worktree add /tmp/old <commit>
    PYTHONPATH=/tmp/old/src python bench/same_scores.py --out old.json ART=DATA ...
    python bench/same_scores.py --compare old.json new.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def _digest(values: Any) -> str:
    return hashlib.sha256(np.asarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]


def fingerprints(artifact: str, data: str, rows: int, singles: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from winnow import Screener
    from winnow.online import OnlineScorer

    s = Screener.load(artifact)
    s.set_threads(1)
    table = pq.read_table(data)
    table = table.slice(0, min(rows, table.num_rows))
    part = table.slice(0, min(singles, table.num_rows))
    scorer = OnlineScorer(s)
    records = part.to_pylist()
    one = [scorer.score_records([r], threshold=0.0)[0] for r in records]
    many = scorer.score_records(records, threshold=0.0)

    def scores(results: list[Any]) -> list[float]:
        return [np.nan if r.score is None else r.score for r in results]

    return {
        "score_batch": _digest(s.score_batch(table).scores),
        "score": _digest(s.score(table)),
        "one_row_tables": _digest([s.score_batch(part.slice(i, 1)).scores[0] for i in range(part.num_rows)]),
        "online_one_by_one": _digest(scores(one)),
        "online_as_a_list": _digest(scores(many)),
        "reasons_one_by_one": hashlib.sha256(json.dumps([r.reasons for r in one]).encode()).hexdigest()[:16],
        "reasons_as_a_list": hashlib.sha256(json.dumps([r.reasons for r in many]).encode()).hexdigest()[:16],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="*", help="ARTIFACT=DATA")
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--singles", type=int, default=300, help="rows also scored one at a time")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    args = ap.parse_args()
    if args.compare:
        old, new = (json.loads(p.read_text()) for p in args.compare)
        for task in old:
            for path, digest in old[task].items():
                same = new.get(task, {}).get(path) == digest
                print(f"{task:40s} {path:20s} {'same' if same else 'DIFFERENT'}")
        return
    out = {}
    for pair in args.pairs:
        artifact, data = pair.split("=", 1)
        out[Path(artifact).name] = fingerprints(artifact, data, args.rows, args.singles)
        print(Path(artifact).name, out[Path(artifact).name])
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
