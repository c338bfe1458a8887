"""Entity-table build speed and memory on a 10M-event log.

The CDNOW purchase log replicated 144 times with distinct customer ids (10,030,896 purchases,
3.39M customers) is written once to ``bench/out/events_10m.parquet``. Each case runs in its own
process (peak RSS is that process's ``ru_maxrss``):

- ``winnow-parquet``: the product path: the log read in place by DuckDB, the definitions learned
  and every generated feature plus the label built as of 1997-10-01 (the demo's options) and
  written to Parquet by DuckDB (as ``winnow screen --as-of`` does before screening).
- ``winnow-stream``: the same, the log given as an Arrow ``RecordBatchReader`` (the path CSV,
  JSON lines, SQL and frames take: batches streamed into an on-disk DuckDB table first).
- ``duckdb-core`` / ``polars-core``: the engines compared on one aggregate both can run
  streaming: counts, sums, means and maxima of two columns over four windows, recency and
  tenure per customer (Polars ``collect(engine="streaming")``, DuckDB SQL over the Parquet file).

    python bench/event_tables.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "bench" / "out" / "events_10m.parquet"
COPIES = 144
CUT = "1997-10-01"
WINDOWS = (28, 91, 182, 273)


def make_log() -> Path:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from winnow.datasets.cdnow import transactions_path

    if LOG.exists():
        return LOG
    base = pq.read_table(transactions_path())
    LOG.parent.mkdir(parents=True, exist_ok=True)
    tmp = LOG.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, base.schema) as w:
        for k in range(COPIES):
            ids = pc.add(base.column("customer_id"), pa.scalar(k * 100_000, pa.int32()))
            w.write_table(base.set_column(0, "customer_id", ids), row_group_size=1 << 20)
    tmp.rename(LOG)
    return LOG


def case_winnow(stream: bool) -> dict[str, object]:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from winnow.config import ScreenConfig
    from winnow.datasets.cdnow import EVENTS
    from winnow.events.features import EventFeatures
    from winnow.events.log import EventLog

    cfg = ScreenConfig.build(**EVENTS, as_of=[CUT], top_fraction=0.1).events
    assert cfg is not None
    data = ds.dataset(LOG).scanner(batch_size=65_536).to_reader() if stream else LOG
    t0 = time.perf_counter()
    with EventLog(data, cfg.entity, cfg.time) as log:
        loaded = time.perf_counter() - t0
        f = EventFeatures.learn(log, cfg)
        out = LOG.with_name("entities_10m.parquet")
        query = f.entity_query(log, cfg.as_of[0], with_label=True)
        log.con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet)")
        rows = log.rows
    entities = pq.ParquetFile(out).metadata.num_rows
    return {"events": rows, "entities": entities, "features": len(f.names),
            "load_s": round(loaded, 2), "seconds": time.perf_counter() - t0}  # fmt: skip


def case_duckdb_core() -> dict[str, object]:
    import duckdb

    cut = f"TIMESTAMP '{CUT}'"
    aggs = []
    for w in WINDOWS:
        f = f"FILTER (WHERE date >= {cut} - INTERVAL {w} DAY)"
        for c in ("amount", "quantity"):
            aggs += [f"fsum({c}) {f}", f"favg({c}) {f}", f"max({c}) {f}"]
        aggs.append(f"count(*) {f}")
    sql = f"""SELECT customer_id, {", ".join(aggs)}, epoch({cut} - max(date)) / 86400.0,
        epoch({cut} - min(date)) / 86400.0
        FROM read_parquet('{LOG}') WHERE date < {cut} GROUP BY customer_id"""
    con = duckdb.connect()
    con.execute("SET memory_limit='1GB'")
    t0 = time.perf_counter()
    n = con.sql(sql).to_arrow_table().num_rows
    return {"entities": n, "seconds": time.perf_counter() - t0}


def case_polars_core() -> dict[str, object]:
    from datetime import datetime, timedelta

    import polars as pl

    cut = datetime.fromisoformat(CUT)
    d = pl.col("date").cast(pl.Datetime("us"))
    aggs = []
    for w in WINDOWS:
        m = d >= cut - timedelta(days=w)
        for c in ("amount", "quantity"):
            x = pl.col(c).cast(pl.Float64).filter(m)
            aggs += [
                x.sum().alias(f"{c}_sum_{w}"),
                x.mean().alias(f"{c}_mean_{w}"),
                x.max().alias(f"{c}_max_{w}"),
            ]
        aggs.append(m.sum().alias(f"n_{w}"))
    aggs += [(cut - d.max()).alias("recency"), (cut - d.min()).alias("tenure")]
    q = pl.scan_parquet(LOG).filter(d < cut).group_by("customer_id").agg(aggs)
    t0 = time.perf_counter()
    n = q.collect(engine="streaming").height
    return {"entities": n, "seconds": time.perf_counter() - t0}


CASES = {
    "winnow-parquet": lambda: case_winnow(False),
    "winnow-stream": lambda: case_winnow(True),
    "duckdb-core": case_duckdb_core,
    "polars-core": case_polars_core,
}


def child(name: str) -> None:
    out = CASES[name]()
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "event_tables.json")
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    make_log()
    events = 69_659 * COPIES
    print(f"log {LOG} ({LOG.stat().st_size / 2**20:.0f} MiB, {events:,} events); load {os.getloadavg()}")
    runs: dict[str, list[dict[str, object]]] = {c: [] for c in args.cases}
    for _ in range(args.repeat):  # interleaved, so a busy moment hits every case alike
        for c in args.cases:
            r = subprocess.run(
                [sys.executable, __file__, "--child", c], capture_output=True, text=True, check=True
            )
            runs[c].append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(c, runs[c][-1], flush=True)
    print("\n| case | median s | events/s | peak RSS MiB (max) |\n|---|---:|---:|---:|")
    for c, rs in runs.items():
        secs = sorted(float(r["seconds"]) for r in rs)  # type: ignore[arg-type]
        med = secs[len(secs) // 2]
        rss = max(float(r["peak_rss_mib"]) for r in rs)  # type: ignore[arg-type]
        print(f"| {c} | {med:.2f} | {events / med:,.0f} | {rss:,.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"events": events, "load_before": os.getloadavg(), "runs": runs}, indent=1)
    )


if __name__ == "__main__":
    main()
