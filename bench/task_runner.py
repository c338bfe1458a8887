"""The shared driver of the per-task benchmarks: arguments, resumable results, the report file.

``main(doc, out, name, run_one, report)`` parses ``--tasks/--seeds/--out``, runs
``run_one(task, seed)`` for every pair not yet in ``OUT/results.jsonl`` (one JSON line per result
row, appended as each pair finishes, so an interrupted run resumes), then writes
``OUT/<name>.md`` with ``report(rows)`` and the load averages.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

Rows = list[dict[str, Any]]


def main(
    doc: str, out: Path, name: str, run_one: Callable[[str, int], Rows], report: Callable[[Rows], str]
) -> None:
    from tasks import TASKS

    logging.getLogger("winnow").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--out", type=Path, default=out)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    rows: Rows = []
    done = set()
    if results.exists():
        for line in results.read_text().splitlines():
            r = json.loads(line)
            rows.append(r)
            done.add((r["task"], r["seed"]))
    load = os.getloadavg()
    for task in args.tasks:
        for seed in args.seeds:
            if (task, seed) in done:
                continue
            new = run_one(task, seed)
            with open(results, "a") as fh:
                for r in new:
                    fh.write(json.dumps(r) + "\n")
            rows += new
    rows = [r for r in rows if r["task"] in args.tasks and r["seed"] in args.seeds]
    text = report(rows) + f"load average at the start {load}, at the end {os.getloadavg()}\n"
    (args.out / f"{name}.md").write_text(text)
    print(text)
