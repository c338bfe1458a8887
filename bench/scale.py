"""Scale: rows/s and peak memory of `winnow screen` on the local engine and on Ray, against the
read-only floor and the in-memory predict ceiling, for growing inputs.

Data: NYC flights 2013 (336,776 rows) widened to ~50 columns with derived features (calendar
parts, cyclic hours, route and carrier-airport crosses, per-day and per-route volumes, distance
transforms ...), label "arrived 60+ minutes late" (the delays themselves are dropped: they leak
it), replicated to N rows as a folder of 1M-row Parquet files (row groups of 131,072 rows).
A screener is fitted once on 100,000 rows: the default fit (`winnow fit` with `--time-limit 120`,
one thread), or `--preset fast` with `--fit fast` (earlier runs).

Per size, each command runs as its own process; peak memory is the summed RSS of the process
and all its descendants (Ray's raylet, GCS and workers included), sampled every 0.2 s:

* `floor`: only read every batch of the files with pyarrow (`ParquetFile.iter_batches`);
* `local`: `winnow screen DIR DATA --out OUT --budget 0.01 --reasons 3 --quiet`;
* `local --workers 2`: two scoring threads, one model thread each;
* `ray 1` / `ray 2`: `--engine ray --workers 1|2` on a Ray that winnow starts on this machine.

The ceiling: the fused members' own batch predict on in-memory prepared arrays (65,536-row
batches already through winnow's preprocessing), in rows/s, measured in-process on 1M rows.
A stage breakdown of the local engine on 1M rows (read, preprocess, model, select+write) says
which one dominates.

    python bench/scale.py --rows 1000000 10000000
    python bench/scale.py --rows 100000000 --commands local     # the big one, local only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nyc_flights_2013.parquet"
OUT = ROOT / "bench" / "out" / "scale"
LEAKY = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
FILE_ROWS = 1_000_000
ROW_GROUP = 131_072
WINNOW = str(Path(sys.executable).with_name("winnow"))


def wide_flights() -> pa.Table:
    """The flights with ~50 columns: the original ones (less the leaky delays) and derived ones."""
    import pandas as pd

    df = pq.read_table(DATA).to_pandas()
    late = (df["arr_delay"] >= 60).fillna(False)
    df = df.drop(columns=LEAKY)
    date = pd.to_datetime(dict(year=df.year, month=df.month, day=df.day))
    d = {
        "day_of_week": date.dt.dayofweek,
        "day_of_year": date.dt.dayofyear,
        "week": date.dt.isocalendar().week.astype("int64"),
        "is_weekend": date.dt.dayofweek >= 5,
        "quarter": date.dt.quarter,
        "dep_hour_sin": np.sin(2 * np.pi * df.hour / 24),
        "dep_hour_cos": np.cos(2 * np.pi * df.hour / 24),
        "arr_hour": df.sched_arr_time // 100,
        "arr_minute": df.sched_arr_time % 100,
        "sched_minutes": (
            (df.sched_arr_time // 100 * 60 + df.sched_arr_time % 100)
            - (df.sched_dep_time // 100 * 60 + df.sched_dep_time % 100)
        )
        % 1440,
        "log_distance": np.log1p(df.distance),
        "distance_band": pd.cut(df.distance, [0, 500, 1000, 1500, 2500, 6000]).astype(str),
        "route": df.origin + "-" + df.dest,
        "carrier_origin": df.carrier + "@" + df.origin,
        "carrier_dest": df.carrier + "@" + df.dest,
        "origin_hour": df.origin + "@" + df.hour.astype(str),
        "month_name": date.dt.month_name(),
        "day_name": date.dt.day_name(),
        "tail_prefix": df.tailnum.fillna("").str[:3],
    }
    d["speed_needed"] = df.distance / d["sched_minutes"].replace(0, np.nan)
    df = df.assign(**d)
    day = df.year * 10000 + df.month * 100 + df.day
    for name, keys in {
        "origin_day_flights": ["origin"],
        "carrier_day_flights": ["carrier"],
        "route_day_flights": ["route"],
        "origin_hour_flights": ["origin", "hour"],
        "tail_day_flights": ["tailnum"],
    }.items():
        df[name] = df.groupby([day, *keys], dropna=False)["flight"].transform("size").astype("int64")
    for name, keys in {
        "route_flights": ["route"],
        "tail_flights": ["tailnum"],
        "dest_flights": ["dest"],
    }.items():
        df[name] = df.groupby(keys, dropna=False)["flight"].transform("size").astype("float64")
    df["tail_leg_of_day"] = (
        df.sort_values("sched_dep_time").groupby([day, "tailnum"], dropna=False).cumcount()
    )
    df["hour_carrier_share"] = df["carrier_day_flights"] / df["origin_day_flights"]
    df["evening"] = df.hour >= 17
    df["morning"] = df.hour < 10
    df["long_haul"] = df.distance > 1500
    df["flight_band"] = (df.flight // 500).astype("int64")
    df["late"] = late.values
    return pa.Table.from_pandas(df, preserve_index=False)


def build(rows_list: list[int], fit: str = "default") -> tuple[Path, dict[int, Path]]:
    OUT.mkdir(parents=True, exist_ok=True)
    base_path = OUT / "wide.parquet"
    if not base_path.exists():
        pq.write_table(wide_flights(), base_path)
    base = pq.read_table(base_path)
    art = OUT / ("screener" if fit == "fast" else f"screener_{fit}")
    if not (art / "manifest.json").exists():
        how = ["--preset", "fast"] if fit == "fast" else ["--time-limit", "120", "--threads", "1"]
        train = OUT / "train.parquet"
        pq.write_table(
            base.take(np.random.default_rng(0).choice(base.num_rows, 100_000, replace=False)), train
        )
        subprocess.run(
            [
                WINNOW,
                "fit",
                str(train),
                "--target",
                "late",
                "--positive",
                "true",
                *how,
                "--seed",
                "0",
                "--out",
                str(art),
                "--quiet",
                "--no-report",
            ],
            check=True,
        )
    feats = base.drop_columns(["late"])
    folders = {}
    for rows in rows_list:
        folder = OUT / f"flights_{rows}"
        files = -(-rows // FILE_ROWS)
        if not folder.exists() or len(list(folder.glob("*.parquet"))) != files:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for i in range(files):
                n = min(FILE_ROWS, rows - i * FILE_ROWS)
                idx = np.arange(i * FILE_ROWS, i * FILE_ROWS + n) % feats.num_rows
                pq.write_table(
                    feats.take(idx),
                    folder / f"part-{i:05d}.parquet",
                    row_group_size=ROW_GROUP,
                    compression="zstd",
                )
        folders[rows] = folder
    return art, folders


def run_measured(cmd: list[str]) -> dict:
    """Wall seconds and the peak of the summed RSS of the process tree (sampled every 0.2 s)."""
    import psutil

    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    proc = psutil.Process(p.pid)
    peak = 0
    while p.poll() is None:
        total = 0
        try:
            for q in [proc, *proc.children(recursive=True)]:
                try:
                    total += q.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    err = p.stderr.read() if p.stderr else ""
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {err[-2000:]}")
    return {"seconds": wall, "peak_rss_mib": peak / 2**20}


def floor_read(folder: str) -> None:
    n = 0
    for f in sorted(Path(folder).glob("*.parquet")):
        for b in pq.ParquetFile(f).iter_batches(batch_size=65_536):
            n += b.num_rows
    print(n)


def ceiling_and_stages(art: Path, folder: Path, rows: int = 1_000_000) -> dict:
    """Members' predict on prepared in-memory batches (the ceiling), and where the local engine's
    time goes on ``rows`` rows (read, preprocess, model, the rest)."""
    from winnow import Screener

    s = Screener.load(art)
    stages = {"read": 0.0, "preprocess": 0.0, "model": 0.0}
    prepared = []
    n = 0
    files = sorted(folder.glob("*.parquet"))
    t_all = time.perf_counter()
    for f in files:
        it = pq.ParquetFile(f).iter_batches(batch_size=65_536)
        while True:
            t0 = time.perf_counter()
            b = next(it, None)
            t1 = time.perf_counter()
            stages["read"] += t1 - t0
            if b is None:
                break
            x, _ = s.prepare(b)
            t2 = time.perf_counter()
            for name, w in zip(s.fusion_.names, s.fusion_.weights, strict=True):
                if w:
                    s.learners_[name].predict_logit(x)
            t3 = time.perf_counter()
            stages["preprocess"] += t2 - t1
            stages["model"] += t3 - t2
            prepared.append(x)
            n += b.num_rows
            if n >= rows:
                break
        if n >= rows:
            break
    total = time.perf_counter() - t_all
    # the ceiling: predict only, the arrays already in memory, best of 3
    best = min(
        _timed(
            lambda: [
                s.learners_[m].predict_logit(x)
                for x in prepared
                for m, w in zip(s.fusion_.names, s.fusion_.weights, strict=True)
                if w
            ]
        )
        for _ in range(3)
    )
    members = {m: round(float(w), 3) for m, w in zip(s.fusion_.names, s.fusion_.weights, strict=True)}
    return {
        "rows": n,
        "ceiling_rows_per_s": n / best,
        "stage_seconds": stages,
        "stages_total": total,
        "members": members,
    }


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _screen(*extra: str):
    """The `winnow screen` command line of one engine setting (top 1%, 3 reasons)."""

    def cmd(art: Path, data: Path, out: Path) -> list[str]:
        budget = ["--budget", "0.01", "--quiet"]
        return [WINNOW, "screen", str(art), str(data), "--out", str(out), *budget, *extra]

    return cmd


COMMANDS = {
    "floor": lambda art, data, out: [sys.executable, __file__, "--floor-read", str(data)],
    "local": _screen(),
    "local --reasons 0": _screen("--reasons", "0"),
    "local --workers 2": _screen("--workers", "2"),
    "ray 1": _screen("--engine", "ray", "--workers", "1"),
    "ray 2": _screen("--engine", "ray", "--workers", "2"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=list(COMMANDS))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--fit", choices=["default", "fast"], default="default", help="the artifact's fit")
    ap.add_argument("--floor-read", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor_read:
        floor_read(args.floor_read)
        return
    art, folders = build(args.rows, args.fit)
    results_path = OUT / "scale.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"runs": []}
    first = folders[min(folders)]
    results["ceiling"] = ceiling_and_stages(art, first)
    print(json.dumps(results["ceiling"], indent=1), flush=True)
    check = {}
    for rows, folder in folders.items():
        for name in args.commands:
            out = OUT / f"out_{rows}_{name.replace(' ', '_').replace('-', '')}.parquet"
            runs = []
            for _ in range(args.repeats):
                load = os.getloadavg()
                r = run_measured(COMMANDS[name](art, folder, out))
                runs.append(r)
            sec = statistics.median(r["seconds"] for r in runs)
            rec = {
                "rows": rows,
                "command": name,
                "seconds": sec,
                "rows_per_s": rows / sec,
                "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                "repeats": len(runs),
                "load_at_start": load,
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            if name != "floor":
                t = pq.read_table(out)
                check[(rows, name)] = t
                base = check.get((rows, "local"))
                if base is not None and "reasons 0" in name:
                    base = base.drop_columns([c for c in base.column_names if c.startswith("reason_")])
                rec["identical_to_local"] = None if base is None else bool(base.equals(t))
                rec["selected"] = t.num_rows
            results["runs"] = [x for x in results["runs"] if (x["rows"], x["command"]) != (rows, name)] + [
                rec
            ]
            print(json.dumps(rec), flush=True)
            results_path.write_text(json.dumps(results, indent=1))
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    results_path.write_text(json.dumps(results, indent=1))
    write_md(results)


IDENT = {True: "yes", False: "NO", None: "not compared"}


def write_md(results: dict) -> None:
    c = results["ceiling"]
    lines = [
        "| rows | command | seconds | rows/s | peak MiB (tree) | vs floor | vs ceiling | same as local |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    floors = {r["rows"]: r["rows_per_s"] for r in results["runs"] if r["command"] == "floor"}
    for r in sorted(results["runs"], key=lambda r: (r["rows"], list(COMMANDS).index(r["command"]))):
        fl = floors.get(r["rows"])
        vs_floor = f"{r['rows_per_s'] / fl:.3f}" if fl else ""
        vs_ceiling = f"{r['rows_per_s'] / c['ceiling_rows_per_s']:.2f}"
        same = "" if r["command"] == "floor" else IDENT[r.get("identical_to_local")]
        lines.append(
            f"| {r['rows']:,} | {r['command']} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | "
            f"{r['peak_rss_mib']:,.0f} | {vs_floor} | {vs_ceiling} | {same} |"
        )
    st = c["stage_seconds"]
    tot = sum(st.values())
    lines += [
        "",
        f"Ceiling (fused members' predict on prepared in-memory batches, {c['rows']:,} rows): "
        f"{c['ceiling_rows_per_s']:,.0f} rows/s; members {c['members']}.",
        "Stages of the local engine on the same rows: "
        + ", ".join(f"{k} {v:.1f} s ({v / tot:.0%})" for k, v in st.items()),
    ]
    (OUT / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
