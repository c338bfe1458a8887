"""Default fits of the shared tasks, saved with their held-out raw rows, for the benches that
score a fitted artifact (bench/online_records.py, bench/same_scores.py).

Each task of ``bench/tasks.py``: the seed-0 stratified 80/20 split of ``bench/quality.py``, the
default ``Screener().fit`` on the 80% (``--time-limit`` seconds, seed 0), saved to
``OUT/art_<task>``; the 20%'s raw rows without the target to ``OUT/test_<task>.parquet``.

    python bench/fit_tasks.py --out bench/out/tasks lending_club resume_callbacks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tasks as task_defs
    from quality import make_y
    from sklearn.model_selection import train_test_split

    from winnow import Screener

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tasks", nargs="*", default=list(task_defs.TASKS))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "tasks")
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.tasks:
        df, options = task_defs.TASKS[name]()
        df = df.reset_index(drop=True)
        y, known, _ = make_y(df, options)
        df = df[known].reset_index(drop=True)
        train, test = train_test_split(np.arange(len(df)), test_size=0.2, random_state=0, stratify=y[known])
        s = Screener().fit(df.iloc[train], **options, seed=0, time_limit=args.time_limit)
        s.save(args.out / f"art_{name}")
        rows = df.iloc[test].drop(columns=[options["target"]])
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), args.out / f"test_{name}.parquet")
        print(name, "saved", flush=True)


if __name__ == "__main__":
    main()
