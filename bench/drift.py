"""Drift and retraining on the NYC flights of 2013: train on January-June, screen July-December.

Task: flights arriving >= 60 minutes late, from what is known before departure (the leaky
columns of bench/tasks.py dropped; year, month and time_hour dropped too, so the model cannot
extrapolate the calendar and drift shows in the other inputs; the day of the month stays).
Flights without an arrival delay (cancelled/diverted) are left out.

* **static**: one screener fitted on January-June; each later month is monitored with
  ``Screener.monitor`` (drift against the training reference) and scored against its real labels.
* **retrained**: before each month, a screener fitted on every earlier month (January to the
  month before), i.e. retrained with each month's labels as they arrive.

Both use the same preset (``--preset``, default fast) and seed. Writes bench/out/drift.md/.json.

    python bench/drift.py
    python bench/drift.py --preset balanced --months 7 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nyc_flights_2013.parquet"
OUT = ROOT / "bench" / "out"
LEAKY = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
CALENDAR = ["year", "month", "time_hour"]
BUDGET = 0.1


def load() -> pd.DataFrame:
    df = pd.read_parquet(DATA)
    df = df[df["arr_delay"].notna()].copy()
    df["late_60"] = (df["arr_delay"] >= 60).astype("int64")
    return df.drop(columns=LEAKY)


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score

    k = max(1, int(np.ceil(BUDGET * len(y))))
    top = np.argsort(-p, kind="stable")[:k]
    return {
        "auc_pr": float(average_precision_score(y, p)),
        "precision_at_10pct": float(y[top].mean()),
        "recall_at_10pct": float(y[top].sum() / max(y.sum(), 1)),
    }


def fit(frame: pd.DataFrame, preset: str, seed: int) -> Any:
    from winnow import Screener

    return Screener().fit(
        frame.drop(columns=["month"]), target="late_60", positive="1", budget=BUDGET, preset=preset, seed=seed
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--months", type=int, nargs="+", default=[7, 8, 9, 10, 11, 12])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    t0 = time.perf_counter()
    df = load()
    keep = [c for c in df.columns if c not in CALENDAR or c == "month"]
    df = df[keep]

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - t0:7.1f}s {msg}", file=sys.stderr, flush=True)

    report: dict[str, Any] = {
        "command": "python bench/drift.py " + " ".join(sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "preset": args.preset,
        "months": [],
    }
    train = df[df["month"] <= 6]
    log(f"fitting the static screener on January-June ({len(train):,} flights)")
    t = time.perf_counter()
    static = fit(train, args.preset, args.seed)
    report["static_fit_seconds"] = round(time.perf_counter() - t, 1)
    report["static_train_rows"] = len(train)
    for m in args.months:
        month = df[df["month"] == m]
        x = month.drop(columns=["month", "late_60"])
        y = month["late_60"].to_numpy()
        drift = static.monitor(x, window=len(x))
        p_static = static.score(x)
        row: dict[str, Any] = {
            "month": m,
            "flights": len(month),
            "late_rate": float(y.mean()),
            "static": metrics(y, p_static),
            "drift": {
                "max_feature_psi_net": max(f["psi"] - f["psi_noise"] for f in drift["features"]),
                "worst_feature": drift["summary"]["worst_feature"],
                "features_major": drift["summary"]["features_major"],
                "features_moderate": drift["summary"]["features_moderate"],
                "score_psi": drift["score"]["psi"],
                "selection_rate": drift["selection"]["rate"],
                "expected_selection_rate": drift["selection"]["expected_rate"],
            },
        }
        if m == min(args.months) and m == 7:
            row["retrained"] = row["static"]
            row["retrained_train_rows"] = len(train)
        else:
            earlier = df[df["month"] < m]
            log(f"month {m}: retraining on January-{m - 1} ({len(earlier):,} flights)")
            t = time.perf_counter()
            model = fit(earlier, args.preset, args.seed)
            row["retrain_fit_seconds"] = round(time.perf_counter() - t, 1)
            row["retrained"] = metrics(y, model.score(x))
            row["retrained_train_rows"] = len(earlier)
        log(
            f"month {m}: static AUC-PR {row['static']['auc_pr']:.4f}, retrained "
            f"{row['retrained']['auc_pr']:.4f}; max PSI {row['drift']['max_feature_psi_net']:.3f} "
            f"({row['drift']['worst_feature']}), score PSI {row['drift']['score_psi']:.3f}"
        )
        report["months"].append(row)
    report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "drift.json").write_text(json.dumps(report, indent=2))
    md = markdown(report)
    (args.out / "drift.md").write_text(md)
    print(md)
    return 0


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Drift and retraining: NYC flights 2013, trained on January-June",
        "",
        f"Command: `{r['command'].strip()}`",
        "",
        f"Run {r['started']} on {r['machine']}; preset {r['preset']}; total {r['total_seconds']:.0f}s; "
        f"load average {r['load_average_start']} at the start, {r['load_average_end']} at the end. "
        f"Static screener: {r['static_train_rows']:,} flights (January-June), "
        f"fitted in {r['static_fit_seconds']}s. "
        f"Label: arrival >= 60 min late; budget: the top {BUDGET:.0%} of each month's flights.",
        "",
        "| month | flights | late | max feature PSI (net of noise) | worst feature "
        "| features major / moderate | score PSI | selection rate (expected) | AUC-PR static "
        "| AUC-PR retrained | precision@10% static | retrained | retrained on |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in r["months"]:
        d, s, t = m["drift"], m["static"], m["retrained"]
        lines.append(
            f"| {m['month']} | {m['flights']:,} | {m['late_rate']:.1%} | {d['max_feature_psi_net']:.3f} | "
            f"{d['worst_feature']} | {d['features_major']} / {d['features_moderate']} | "
            f"{d['score_psi']:.3f} | "
            f"{d['selection_rate']:.1%} ({d['expected_selection_rate']:.1%}) | {s['auc_pr']:.3f} | "
            f"{t['auc_pr']:.3f} | {s['precision_at_10pct']:.3f} | {t['precision_at_10pct']:.3f} | "
            f"{m['retrained_train_rows']:,} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
