"""What each `winnow optimise` step gains in speed and costs in accuracy, on NYC flights 2013.

A screener (LightGBM + deep network + linear) is fitted on flights (the bench/tasks.py task:
arrival >= 60 min late, pre-departure columns only) and each optimisation is applied on its own,
then all together, measured on held-out flights the screener never saw:

    python bench/optimise_speed.py --fit-rows 30000 --sample-rows 20000 --repeats 5

Every row's baseline (the original screener) is measured in the same call as the optimised
one: batch rows/s of ``Screener.score`` on the sample (median of ``--repeats`` runs) and
single-record latency of ``OnlineScorer.score_records([record], reasons=0)`` (p50/p99 over
``--latency-records`` records, ``--repeats // 2`` passes). One scoring thread throughout.
Writes bench/out/optimise_speed.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

RUNS = [("prune",), ("onnx",), ("quantize",), ("trees",), ("prune", "onnx", "quantize", "trees")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-rows", type=int, default=30_000)
    ap.add_argument("--sample-rows", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--latency-records", type=int, default=200)
    ap.add_argument("--tolerance", type=float, default=0.01)
    args = ap.parse_args()

    from bench.tasks import nyc_flights_2013
    from winnow import Screener
    from winnow.optimise import optimise_screener
    from winnow.optimise.measure import machine

    table, options = nyc_flights_2013()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(table))
    fit_part = table.iloc[order[: args.fit_rows]].reset_index(drop=True)
    sample = table.iloc[order[args.fit_rows : args.fit_rows + args.sample_rows]].reset_index(drop=True)
    t0 = time.perf_counter()
    screener = Screener().fit(
        fit_part, **options, models=["lightgbm", "deep", "linear"], folds=2, threads=2, seed=0
    )
    fit_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = screener.save(Path(tmp) / "flights")
        weights = dict(zip(screener.fusion_.names, screener.fusion_.weights, strict=True))
        rows = []
        load_start = machine()
        for steps in RUNS:
            original = Screener.load(path)
            _, report = optimise_screener(
                original,
                sample,
                steps=list(steps),
                tolerance=args.tolerance,
                repeats=args.repeats,
                latency_records=args.latency_records,
            )
            rows.append({"steps": list(steps), "report": report})
            print(_line(rows[-1]), flush=True)
    result = {
        "task": "nyc_flights_2013 (bench/tasks.py): late_60",
        "fit_rows": args.fit_rows,
        "sample_rows": len(sample),
        "fit_seconds": fit_s,
        "fusion_weights": weights,
        "tolerance": args.tolerance,
        "repeats": args.repeats,
        "latency_records": args.latency_records,
        "machine_start": load_start,
        "machine_end": machine(),
        "runs": rows,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "optimise_speed.json").write_text(json.dumps(result, indent=2, default=float))
    (OUT / "optimise_speed.md").write_text(_markdown(result))
    print(_markdown(result))


def _accepted(report: dict) -> str:
    parts = []
    for s in report["steps"]:
        for m in s["members"]:
            mark = m["member"] if m.get("accepted") else f"{m['member']} refused"
            extra = ""
            if s["step"] == "prune" and m.get("accepted"):
                extra = f" {m['hidden_before']}→{m['hidden_after']}"
            parts.append(f"{s['step']}: {mark}{extra}")
    return "; ".join(parts) or "nothing applied"


def _line(row: dict) -> str:
    r = row["report"]
    b, f, c = r["baseline"]["speed"], r["final"]["speed"], r["final"]["cost"]
    return (
        f"{'+'.join(row['steps'])}: rows/s {b['rows_per_s']:,.0f} -> {f['rows_per_s']:,.0f}, "
        f"p50 {b['latency_ms_p50']:.2f} -> {f['latency_ms_p50']:.2f} ms, "
        f"max|d| {c['max_abs_score_change']:.2g}"
    )


def _markdown(res: dict) -> str:
    busy = res["machine_end"]["busy"] or res["machine_start"]["busy"]
    head = [
        "# winnow optimise: speed gained and accuracy lost per step",
        "",
        f"Task: {res['task']}; fitted on {res['fit_rows']:,} flights (LightGBM + deep + linear, "
        f"fusion weights {', '.join(f'{k} {v:.2f}' for k, v in res['fusion_weights'].items())}), "
        f"measured on {res['sample_rows']:,} other flights. One scoring thread; "
        f"{res['repeats']} repetitions (medians); latency over {res['latency_records']} records "
        "through OnlineScorer.score_records([record], reasons=0). Each row's baseline was measured "
        f"in the same call. Tolerance {res['tolerance']} (largest score change on any row).",
        "",
        f"Machine: {res['machine_start']['cpus']} CPUs, load average (1 min) "
        f"{res['machine_start']['load_average_1m']} at start, {res['machine_end']['load_average_1m']} at end"
        + (" - BUSY: timings are noisy." if busy else "."),
        "",
        "| steps | rows/s before → after | latency p50 ms | latency p99 ms | max abs Δscore | "
        "mean abs Δscore | selected kept | Δ AUC-PR | what was applied |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in res["runs"]:
        r = row["report"]
        b, f, c = r["baseline"]["speed"], r["final"]["speed"], r["final"]["cost"]
        auc = f"{c['auc_pr_change']:+.5f}" if "auc_pr_change" in c else "-"
        head.append(
            f"| {' + '.join(row['steps'])} | {b['rows_per_s']:,.0f} → {f['rows_per_s']:,.0f} "
            f"({f['rows_per_s'] / b['rows_per_s']:.2f}x) | {b['latency_ms_p50']:.2f} → "
            f"{f['latency_ms_p50']:.2f} | {b['latency_ms_p99']:.2f} → {f['latency_ms_p99']:.2f} | "
            f"{c['max_abs_score_change']:.2g} | {c['mean_abs_score_change']:.2g} | "
            f"{c['selected_kept']:.1%} | {auc} | {_accepted(r)} |"
        )
    head += ["", "Member-level timings (predict_logit on the whole sample / one row, ms, median):", ""]
    head += [
        "| run | step | member | batch ms before → after | one row ms before → after |",
        "|---|---|---|---:|---:|",
    ]
    for row in res["runs"]:
        for s in row["report"]["steps"]:
            for m in s["members"]:
                if "member_time_before" in m and "member_time_after" in m:
                    tb, ta = m["member_time_before"], m["member_time_after"]
                    head.append(
                        f"| {'+'.join(row['steps'])} | {s['step']} | {m['member']} | "
                        f"{tb['batch_ms']:.1f} → {ta['batch_ms']:.1f} | "
                        f"{tb['one_row_ms']:.3f} → {ta['one_row_ms']:.3f} |"
                    )
    head.append("")
    return "\n".join(head) + "\n"


if __name__ == "__main__":
    main()
