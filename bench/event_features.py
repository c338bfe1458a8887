"""Entity tables from raw event logs: generated features, the sequence encoder and both, against
hand-written features, on the same cut, label and held-out rows.

Logs:
- ``cdnow``: the CDNOW purchase log (shipped with winnow); cut 1997-10-01, label = top 10% of
  the next 39 weeks' spend, history 39 weeks. ``hand`` = the demo's hand-written features
  (``bench/tasks.py``'s ``cdnow_hand_features``, what the demo used before the event-log
  builder; also the quality benchmark's ``cdnow`` task).
- ``flights``: NYC 2013 flights per aircraft (tail number; ../shared/data); cut 2013-10-01,
  label = top 10% of the next 30 days' summed arrival delay (minutes). ``hand`` = a few
  obvious per-aircraft aggregates written by hand (flights, mean and summed delays, the last
  30 days' delays), in the spirit of what a user would write.

Variants (each a default ``winnow fit``, preset and time limit as given, seeds as given):
``hand``; ``generated`` (``--entity ... --as-of ...``); ``sequence`` (the GRU's out-of-fold
score alone, evaluated on the same held-out rows); ``both`` (generated + ``--sequence``).
Metrics on the fit's held-out test rows (the same rows for every variant: same entities in the
same order, same labels, same seeded split): AUC-PR and recall in the top 10%.

    python bench/event_features.py --logs cdnow flights --seeds 0 1 2 --time-limit 60 \
        --out bench/out/event_features.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))

LOGS: dict[str, dict[str, Any]] = {
    "cdnow": dict(
        entity="customer_id", time="date", as_of=["1997-10-01"], target="sum(amount)",
        label_window="39w", windows=["4w", "13w", "26w"], history="39w", baseline="amount_sum_39w",
    ),
    "flights": dict(
        entity="tailnum", time="time_hour", as_of=["2013-10-01"], target="sum(arr_delay)",
        label_window="30d", event_columns=["dep_delay", "arr_delay", "air_time", "distance", "carrier",
                                           "origin", "dest"], baseline="arr_delay_sum_30d",
    ),
}  # fmt: skip


def flights_log() -> pa.Table:
    import pyarrow.parquet as pq

    t = pq.read_table(DATA / "nyc_flights_2013.parquet")
    return t.filter(t.column("tailnum").is_valid())


def hand_table(name: str, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The hand-written table and its fit options (same label, same rows as the generated one)."""
    if name == "cdnow":
        from tasks import cdnow_hand_table

        return cdnow_hand_table(), dict(target="future_spend", id="customer_id", baseline="past_spend")
    f = flights_log().to_pandas()
    f["t"] = pd.to_datetime(f["time_hour"]).dt.tz_localize(None)
    cut = pd.Timestamp("2013-10-01")
    past, fut = f[f["t"] < cut], f[(f["t"] >= cut) & (f["t"] < cut + pd.Timedelta(days=30))]
    g = past.groupby("tailnum")
    recent = past[past["t"] >= cut - pd.Timedelta(days=30)].groupby("tailnum")
    t = pd.DataFrame(
        {
            "flights": g.size(),
            "mean_dep_delay": g["dep_delay"].mean(),
            "mean_arr_delay": g["arr_delay"].mean(),
            "total_arr_delay": g["arr_delay"].sum(),
            "flights_30d": recent.size(),
            "arr_delay_30d": recent["arr_delay"].sum(),
            "mean_distance": g["distance"].mean(),
            "main_carrier": g["carrier"].agg(lambda s: s.mode().iloc[0]),
            "days_since_last": (cut - g["t"].max()).dt.days,
        }
    ).fillna({"flights_30d": 0, "arr_delay_30d": 0.0})
    t["future_delay"] = fut.groupby("tailnum")["arr_delay"].sum().reindex(t.index).fillna(0.0)
    t = t.reset_index().sort_values("tailnum").reset_index(drop=True)
    return t, dict(target="future_delay", id="tailnum", baseline="arr_delay_30d")


def source(name: str) -> Any:
    if name == "cdnow":
        from winnow.datasets.cdnow import transactions_path

        return transactions_path()
    return flights_log()


def _metrics(s: Any, seconds: float) -> dict[str, Any]:
    m = s.metrics_
    return {
        "auc_pr": m["winnow"]["auc_pr"],
        "recall_top10": m["winnow"]["budget"]["recall"],
        "rule_auc_pr": m["rule"]["auc_pr"],
        "seconds": round(seconds, 1),
        "features": len(s.input_columns),
    }


def run(name: str, seed: int, common: dict[str, Any]) -> dict[str, Any]:
    from winnow import Screener
    from winnow.config import ScreenConfig
    from winnow.events.build import training_table
    from winnow.events.sequence import SCORE
    from winnow.fit_helpers import split_rows
    from winnow.metrics import screening_report
    from winnow.target import make_labels

    out: dict[str, Any] = {}
    spec = LOGS[name]
    opts = {**common, "seed": seed, "top_fraction": 0.1, "budget": 0.1}
    table, hand_opts = hand_table(name, seed)
    t0 = time.monotonic()
    out["hand"] = _metrics(Screener().fit(table, **opts, **hand_opts), time.monotonic() - t0)
    t0 = time.monotonic()
    gen = Screener().fit(source(name), **opts, **spec)
    out["generated"] = _metrics(gen, time.monotonic() - t0)
    t0 = time.monotonic()
    both = Screener().fit(source(name), **opts, **spec, sequence=True)
    out["both"] = _metrics(both, time.monotonic() - t0)
    # the encoder alone: its out-of-fold score on the same held-out rows
    cfg = ScreenConfig.build(**opts, **spec, sequence=True)
    t0 = time.monotonic()
    tt, _ = training_table(source(name), cfg)
    seconds = time.monotonic() - t0
    y = make_labels(tt, cfg.target, top_fraction=0.1).y
    _, test, _ = split_rows(y, cfg, None)
    assert np.array_equal(y[test], both.evaluation_["y"]), "held-out rows differ from the fit's"
    k = both.metrics_["winnow"]["budget"]["k"]
    rep = screening_report(y[test], tt.column(SCORE).to_numpy()[test], budget_k=k, probabilities=False)
    out["sequence"] = {
        "auc_pr": rep["auc_pr"],
        "recall_top10": rep["budget"]["recall"],
        "seconds": round(seconds, 1),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", nargs="+", default=list(LOGS), choices=list(LOGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--preset", default="balanced")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "event_features.json")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    common = {"time_limit": args.time_limit, "preset": args.preset}
    for name in args.logs:
        for seed in args.seeds:
            key = f"{name}/{seed}"
            if key in results:
                continue
            results[key] = run(name, seed, common)
            print(key, json.dumps(results[key]), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
    print("\n| log | variant | AUC-PR | recall@10% | fit s |\n|---|---|---:|---:|---:|")
    for name in args.logs:
        for variant in ("hand", "generated", "sequence", "both"):
            rows = [results[f"{name}/{s}"][variant] for s in args.seeds if f"{name}/{s}" in results]
            if rows:
                ap_ = np.mean([r["auc_pr"] for r in rows])
                rc = np.mean([r["recall_top10"] for r in rows])
                sec = np.median([r["seconds"] for r in rows])
                print(f"| {name} | {variant} | {ap_:.4f} | {rc:.3f} | {sec:.0f} |")


if __name__ == "__main__":
    main()
