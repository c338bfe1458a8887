"""Where scoring time goes: seconds per stage for a 100k-row batch and for one record.

For each task in ``bench/tasks.py`` (seed 0, stratified 80/20 split like ``bench/quality.py``):
fit the default screener on the train part (``--time-limit``, default 60 s), replicate the test
part's raw rows to ``--rows`` (default 100,000) and time, on that one Arrow table:

* **typing**: ``winnow.schema.coerce`` (the raw table to the schema's types, rejects found);
* **preprocessing**: ``Preprocessor.transform`` and the dense view;
* **each member**: its ``predict_logit`` (every member the *full* selection weights, before
  ``live_model="fast"`` drops the ones that do not pay for their cost);
* **fusion** and **calibration**: the fused logit, then the calibrated probability;
* **selection**: the top 5% (``numpy.argpartition``, what the batch path does);
* **reasons**: reason codes for the selected 5% (TreeSHAP and linear contributions).

``read`` is the Parquet read of the same rows from a file. One record: the same stages on a
one-row table, median and p99 over ``--calls`` calls after a warm-up. Every figure is the median
of ``--repeats`` runs. Ratios in the table are shares of the full path's total. The whole
``Screener.score_batch`` is timed twice: with the live (fast) fusion the fit chose, and with the
full selection's weights put in its place (same members, same standardisation).

    python bench/profile_stages.py                       # all six tasks
    python bench/profile_stages.py --tasks resume_callbacks --time-limit 30
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tasks as task_defs

OUT = Path(__file__).resolve().parent / "out" / "profile_stages"


def _median_time(fn: Any, repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), result


def stage_times(screener: Any, table: pa.Table, repeats: int, with_reasons: bool) -> dict[str, float]:
    """Seconds of each scoring stage on ``table`` (medians of ``repeats`` runs)."""
    from winnow.models.base import Inputs
    from winnow.schema import coerce

    out: dict[str, float] = {}
    out["typing"], typed = _median_time(lambda: coerce(table, screener.specs_), repeats)
    out["preprocessing"], x = _median_time(
        lambda: (lambda m: Inputs(m=m, dense=screener.prep_.dense(m)))(
            screener.prep_.transform(typed.table, screener.specs_)
        ),
        repeats,
    )
    fusion = full_fusion(screener)
    logits = {}
    for name, w in zip(fusion.names, fusion.weights, strict=True):
        if w:
            out[f"member {name}"], logits[name] = _median_time(
                lambda name=name: screener.learners_[name].predict_logit(x), repeats
            )
        else:
            logits[name] = np.zeros(len(x))
    out["fusion"], z = _median_time(lambda: fusion.fused_logit(logits), repeats)
    out["calibration"], p = _median_time(lambda: fusion.calibrate(z), repeats)
    k = max(1, int(0.05 * len(p)))
    out["selection (top 5%)"], top = _median_time(lambda: np.argpartition(-p, k - 1)[:k], repeats)
    if with_reasons:
        idx = np.sort(top)
        out["reasons (top 5%)"], _ = _median_time(
            lambda: screener.reasons(x.take(idx), typed.table.take(pa.array(idx))), 1
        )
    return out


def full_fusion(screener: Any) -> Any:
    """The live fusion with the full selection's weights (``metrics_["live"]["full_weights"]``)."""
    full = screener.metrics_["live"]["full_weights"]
    return dataclasses.replace(screener.fusion_, weights=[full[n] for n in screener.fusion_.names])


def _with_fusion(screener: Any, live: str) -> None:
    screener.fusion_ = screener.live_fusion_ if live == "fast" else full_fusion(screener)


def one_record(screener: Any, table: pa.Table, calls: int) -> dict[str, Any]:
    """Per-stage median seconds for one-row tables, and the whole call's median and p99."""
    rows = [table.slice(i % table.num_rows, 1) for i in range(calls)]
    stage_times(screener, rows[0], 1, with_reasons=False)  # warm-up
    per_stage: dict[str, list[float]] = {}
    for row in rows:
        for k, v in stage_times(screener, row, 1, with_reasons=False).items():
            per_stage.setdefault(k, []).append(v)
    totals = {}
    for live in ("fast", "full"):
        _with_fusion(screener, live)
        screener.score_batch(rows[0])
        t_all = []
        for row in rows:
            t = time.perf_counter()
            screener.score_batch(row)
            t_all.append(time.perf_counter() - t)
        totals[live] = {
            "median_ms": 1e3 * float(np.median(t_all)),
            "p99_ms": 1e3 * float(np.quantile(t_all, 0.99)),
        }
    _with_fusion(screener, "fast")
    return {"stages_ms": {k: 1e3 * float(np.median(v)) for k, v in per_stage.items()}, "score_batch": totals}


def profile_task(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import quality
    from quality import baseline_roles, fit_lightgbm, make_y

    quality.THREADS = args.threads or 2  # the LightGBM baseline gets the screener's threads
    from sklearn.model_selection import train_test_split

    from winnow import Screener

    df, options = task_defs.TASKS[name]()
    y, known, _ = make_y(df.reset_index(drop=True), options)
    df = df.reset_index(drop=True)[known].reset_index(drop=True)
    tr, te = train_test_split(np.arange(len(df)), test_size=0.2, random_state=0, stratify=y[known])
    train = df.iloc[tr]
    test = df.iloc[te].drop(columns=[options["target"]])
    t0 = time.perf_counter()
    screener = Screener().fit(train, **options, seed=0, time_limit=args.time_limit, threads=args.threads)
    fit_s = time.perf_counter() - t0
    screener.live_fusion_ = screener.fusion_
    raw = pa.Table.from_pandas(test, preserve_index=False)
    reps = -(-args.rows // raw.num_rows)
    big = pa.concat_tables([raw] * reps).slice(0, args.rows).combine_chunks()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.parquet"
        pq.write_table(big, path)
        read_s, _ = _median_time(lambda: pq.read_table(path), args.repeats)
    stages = stage_times(screener, big, args.repeats, with_reasons=True)
    stages = {"read (Parquet)": read_s, **stages}
    whole = {}
    for live in ("fast", "full"):
        _with_fusion(screener, live)
        whole[live], _ = _median_time(lambda: screener.score_batch(big), args.repeats)
    _with_fusion(screener, "fast")
    # the same raw rows as a pandas frame: Screener.score against LightGBM defaults'
    # predict_proba (its own pandas-categorical preprocessing included), in this one run
    frame = big.to_pandas()
    features = [c for c in train.columns if c not in (options["target"], options.get("id"))]
    lgb_predict, _, _ = fit_lightgbm(train[features], y[known][tr], baseline_roles(train, features), seed=0)
    lgb_predict(frame.head(1000))
    lgb_s, _ = _median_time(lambda: lgb_predict(frame), args.repeats)
    screener.score(frame.head(1000))
    winnow_s, _ = _median_time(lambda: screener.score(frame), args.repeats)
    single = one_record(screener, raw, args.calls)
    weights = screener.metrics_["live"]["full_weights"]
    return {
        "task": name,
        "rows": big.num_rows,
        "fit_seconds": round(fit_s, 1),
        "fusion_weights": {k: round(v, 3) for k, v in weights.items()},
        "live_weights": dict(zip(screener.fusion_.names, screener.fusion_.weights, strict=True)),
        "live": screener.metrics_.get("live"),
        "batch_seconds": stages,
        "score_batch_seconds": whole,
        "frame_seconds": {"winnow score": winnow_s, "lightgbm defaults predict_proba": lgb_s},
        "one_record": single,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        full = sum(v for k, v in r["batch_seconds"].items() if not k.startswith(("live", "read", "reasons")))
        lines += [
            f"### {r['task']} ({r['rows']:,} rows; full selection's weights "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["fusion_weights"].items() if v)
            + "; live (fast) weights "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["live_weights"].items() if v)
            + ")",
            "",
            "| stage | 100k batch s | share of full path | one record ms |",
            "|---|---:|---:|---:|",
        ]
        single = r["one_record"]["stages_ms"]
        for k, v in r["batch_seconds"].items():
            share = f"{v / full:.0%}" if not k.startswith(("live", "read", "reasons")) else "-"
            lines.append(f"| {k} | {v:.3f} | {share} | {single.get(k, float('nan')):.3f} |")
        sb = r["score_batch_seconds"]
        one = r["one_record"]["score_batch"]
        fs = r["frame_seconds"]
        lines += [
            "",
            f"`score_batch` whole: fast {sb['fast']:.3f} s ({r['rows'] / sb['fast']:,.0f} rows/s), "
            f"full {sb['full']:.3f} s ({r['rows'] / sb['full']:,.0f} rows/s); one record: fast "
            f"median {one['fast']['median_ms']:.2f} ms / p99 {one['fast']['p99_ms']:.2f} ms, full "
            f"median {one['full']['median_ms']:.2f} ms / p99 {one['full']['p99_ms']:.2f} ms.",
            "",
            f"From a pandas frame: `Screener.score` {r['rows'] / fs['winnow score']:,.0f} rows/s, "
            f"LightGBM defaults {r['rows'] / fs['lightgbm defaults predict_proba']:,.0f} rows/s: "
            f"**{fs['lightgbm defaults predict_proba'] / fs['winnow score']:.2f}x**.",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(task_defs.TASKS))
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.tasks:
        print(f"== {name}", flush=True)
        r = profile_task(name, args)
        results.append(r)
        (args.out / "profile.json").write_text(json.dumps(results, indent=1))
        print(markdown([r]), flush=True)
    load = os.getloadavg()
    text = markdown(results) + f"\nLoad average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.\n"
    (args.out / "profile.md").write_text(text)


if __name__ == "__main__":
    main()
