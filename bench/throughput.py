"""Batch throughput: rows/s and peak RSS of `winnow screen` / `winnow score` on replicated flights.

Baseline in the same run: a plain loop a user would write, pandas + LightGBM `predict` over
Parquet row batches (a LightGBM model with as many trees as winnow's, categories as pandas
categoricals), writing the top rows.

    python bench/throughput.py --rows 1000000 10000000 --repeats 3

Every command runs as its own process under /usr/bin/time so peak RSS is the whole process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nyc_flights_2013.parquet"
OUT = ROOT / "bench" / "out"
LEAKY = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
CATS = ["carrier", "tailnum", "origin", "dest", "time_hour"]


def flights_table() -> pa.Table:
    t = pq.read_table(DATA)
    late = pa.compute.greater_equal(t["arr_delay"], 60)
    return t.drop_columns(LEAKY).append_column("late", late)


def replicate(t: pa.Table, rows: int, path: Path) -> Path:
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    t = t.drop_columns(["late"])
    with pq.ParquetWriter(path, t.schema, compression="zstd") as w:
        done = 0
        while done < rows:
            part = t.slice(0, min(t.num_rows, rows - done))
            w.write_table(part, row_group_size=100_000)
            done += part.num_rows
    return path


def timed(cmd: list[str]) -> dict:
    """Run under GNU time; returns wall seconds and peak RSS (MiB)."""
    with tempfile.NamedTemporaryFile(suffix=".time") as tf:
        t0 = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", tf.name, *cmd], check=True, stdout=subprocess.DEVNULL
        )
        wall = time.perf_counter() - t0
        rss_kb = int(Path(tf.name).read_text().strip().splitlines()[-1])
    return {"seconds": wall, "peak_rss_mib": rss_kb / 1024}


def baseline_run(model: Path, data: Path, out: Path, fraction: float) -> None:
    """The plain loop: pandas batches -> LightGBM predict -> keep scores -> write the top rows."""
    import lightgbm as lgb
    import pandas as pd

    booster = lgb.Booster(model_file=str(model))
    cats = json.loads(model.with_suffix(".cats.json").read_text())
    pf = pq.ParquetFile(data)
    scores = []
    for batch in pf.iter_batches(batch_size=65_536):
        df = batch.to_pandas()
        for c, levels in cats.items():
            df[c] = pd.Categorical(df[c], categories=levels)
        scores.append(booster.predict(df, num_threads=os.cpu_count()))
    s = np.concatenate(scores)
    k = int(np.ceil(fraction * len(s)))
    top = np.argpartition(-s, k - 1)[:k]
    pq.write_table(pq.read_table(data).take(np.sort(top)), out)


def prepare(args: argparse.Namespace) -> tuple[Path, Path, int]:
    import lightgbm as lgb

    OUT.mkdir(parents=True, exist_ok=True)
    train = flights_table()
    train_path = OUT / "flights_train.parquet"
    pq.write_table(train, train_path)
    art = OUT / "flights_screener"
    if not (art / "manifest.json").exists():
        subprocess.run(
            [
                str(Path(sys.executable).with_name("winnow")),
                "fit",
                str(train_path),
                "--target",
                "late",
                "--positive",
                "true",
                "--time-limit",
                str(args.fit_time_limit),
                "--out",
                str(art),
                "--quiet",
            ],
            check=True,
        )
    man = json.loads((art / "manifest.json").read_text())
    trees = man["models"]["lightgbm"]["config"]["best_rounds"]
    model = OUT / "flights_baseline.txt"
    if not model.exists():
        df = train.to_pandas()
        y = df.pop("late").fillna(False).astype(int)
        cats = {}
        for c in CATS:
            df[c] = df[c].astype("category")
            cats[c] = list(df[c].cat.categories)
        clf = lgb.LGBMClassifier(n_estimators=trees, learning_rate=0.05, n_jobs=os.cpu_count(), verbose=-1)
        clf.fit(df, y)
        clf.booster_.save_model(str(model))
        model.with_suffix(".cats.json").write_text(json.dumps(cats))
    return art, model, trees


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--fit-time-limit", type=float, default=300)
    ap.add_argument(
        "--big-only",
        default="winnow screen --reasons 0",
        help="above 2M rows run only the commands whose name starts with this ('' = all)",
    )
    ap.add_argument("--baseline-run", nargs=3, metavar=("MODEL", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_run:
        baseline_run(
            Path(args.baseline_run[0]), Path(args.baseline_run[1]), Path(args.baseline_run[2]), args.fraction
        )
        return
    art, model, trees = prepare(args)
    winnow = [str(Path(sys.executable).with_name("winnow"))]
    t = flights_table()
    results = []
    for rows in args.rows:
        data = replicate(t, rows, OUT / f"flights_{rows}.parquet")
        runs = {
            "winnow screen (top 5%, reasons)": [
                *winnow,
                "screen",
                str(art),
                str(data),
                "--out",
                str(OUT / "sel.parquet"),
                "--budget",
                str(args.fraction),
                "-q",
            ],
            "winnow screen --reasons 0": [
                *winnow,
                "screen",
                str(art),
                str(data),
                "--out",
                str(OUT / "sel.parquet"),
                "--budget",
                str(args.fraction),
                "--reasons",
                "0",
                "-q",
            ],
            "winnow score (every row)": [
                *winnow,
                "score",
                str(art),
                str(data),
                "--out",
                str(OUT / "scores.parquet"),
                "-q",
            ],
            "pandas + LightGBM predict loop": [
                sys.executable,
                __file__,
                "--fraction",
                str(args.fraction),
                "--baseline-run",
                str(model),
                str(data),
                str(OUT / "base.parquet"),
            ],
        }
        repeats = args.repeats if rows <= 2_000_000 else 1
        if rows > 2_000_000 and args.big_only:
            runs = {k: v for k, v in runs.items() if k.startswith(args.big_only)}
        for name, cmd in runs.items():
            samples = [timed(cmd) for _ in range(repeats)]
            sec = statistics.median(s["seconds"] for s in samples)
            rss = max(s["peak_rss_mib"] for s in samples)
            results.append(
                {
                    "rows": rows,
                    "command": name,
                    "runs": repeats,
                    "median_seconds": sec,
                    "rows_per_second": rows / sec,
                    "peak_rss_mib": rss,
                }
            )
            print(
                f"{rows:>11,} {name:34s} {sec:8.1f}s {rows / sec:>10,.0f} rows/s {rss:7.0f} MiB", flush=True
            )
    lines = [
        "# Batch throughput (replicated NYC flights, 14 input columns)",
        "",
        f"Command: `python bench/throughput.py --rows {' '.join(map(str, args.rows))} "
        f"--repeats {args.repeats} --fit-time-limit {args.fit_time_limit:g}`; {os.cpu_count()} cores; "
        f"LightGBM trees: {trees} (the baseline loop uses a LightGBM model with as many trees).",
        "",
        "| rows | command | runs | median s | rows/s | peak RSS MiB | rows/s vs baseline (1M) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        base = next((b for b in results if b["command"].startswith("pandas")), None)
        ratio = f"{r['rows_per_second'] / base['rows_per_second']:.2f}x" if base else "-"
        lines.append(
            f"| {r['rows']:,} | {r['command']} | {r['runs']} | {r['median_seconds']:.1f} | "
            f"{r['rows_per_second']:,.0f} | {r['peak_rss_mib']:.0f} | {ratio} |"
        )
    (OUT / "throughput.md").write_text("\n".join(lines) + "\n")
    (OUT / "throughput.json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
