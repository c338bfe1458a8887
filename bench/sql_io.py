"""Screening and scoring between DuckDB / PostgreSQL tables, against Parquet files, on 1M rows.

Builds one input of ``--rows`` rows (the résumé call-backs, replicated, target dropped) three
ways: a Parquet file, a DuckDB table and a PostgreSQL table (a throwaway cluster on loopback).
Then runs the real CLI, one process per run:

- ``winnow screen ART IN --out OUT`` (the artifact's budget, 5%: two passes over the input), and
- ``winnow score ART IN --out OUT`` (every row written),

for Parquet -> Parquet, DuckDB -> DuckDB and PostgreSQL -> PostgreSQL, and reports wall seconds,
rows/s, the ratio to the Parquet run of the same command and the process's peak RSS (its
``ru_maxrss``, read by a wrapper process per run). Every output is checked: the selected / scored
row count in the target table equals the Parquet run's.

    python bench/sql_io.py                      # 1M rows, bench/out/resume_default_fast
    python bench/sql_io.py --rows 100000 --out bench/out/sql_io_small.md
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_faults import Postgres  # the benchmarks' throwaway cluster

from winnow.io.sql import SqlTableWriter, parse_location

REPO = Path(__file__).resolve().parents[1]
WINNOW = str(Path(sys.executable).parent / "winnow")
PEAK = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter(); r = subprocess.run(sys.argv[1:]).returncode\n"
    "print(r, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def build_input(rows: int, folder: Path) -> pa.Table:
    src = pq.read_table(REPO.parent / "shared" / "data" / "resume_callbacks.parquet")
    src = src.drop_columns(["received_callback"])
    reps = -(-rows // src.num_rows)
    table = pa.concat_tables([src] * reps).slice(0, rows).combine_chunks()
    pq.write_table(table, folder / "in.parquet", row_group_size=65_536)
    return table


def load_duckdb(path: Path, parquet: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE customers AS SELECT * FROM read_parquet('{parquet}')")


def load_postgres(dsn: str, table: pa.Table) -> None:
    """The input as a PostgreSQL table, through winnow's own table writer (COPY, one transaction)."""
    with SqlTableWriter(parse_location(f"{dsn}?table=customers")) as w:  # type: ignore[arg-type]
        for batch in table.to_batches(max_chunksize=200_000):
            w.write(pa.Table.from_batches([batch]))


def run(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one winnow process."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK, WINNOW, *args], capture_output=True, text=True, check=True
    )
    rc, seconds, kib = out.stdout.strip().splitlines()[-1].split()
    if rc != "0":
        sys.exit(f"winnow {' '.join(args)} failed with exit {rc}")
    return float(seconds), int(kib) / 1024


def count_rows(where: str, dsn: str, folder: Path, table: str) -> int:
    if where == "parquet":
        return pq.ParquetFile(folder / f"{table}.parquet").metadata.num_rows
    if where == "duckdb":
        with duckdb.connect(str(folder / "shop.duckdb")) as con:
            return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    with psycopg.connect(dsn) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--artifact", default=str(REPO / "bench" / "out" / "resume_default_fast"))
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "sql_io.md"))
    a = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="winnow-sql-io-"))
    pg = Postgres()
    pg.start()
    try:
        t0 = time.perf_counter()
        table = build_input(a.rows, folder)
        load_duckdb(folder / "shop.duckdb", folder / "in.parquet")
        load_postgres(pg.dsn, table)
        print(f"inputs built in {time.perf_counter() - t0:.0f} s", flush=True)
        load_before = os.getloadavg()[0]
        places = {
            "parquet": (str(folder / "in.parquet"), lambda t: str(folder / f"{t}.parquet")),
            "duckdb": (
                f"duckdb:{folder / 'shop.duckdb'}?table=customers",
                lambda t: f"duckdb:{folder / 'shop.duckdb'}?table={t}",
            ),
            "postgresql": (f"{pg.dsn}?table=customers", lambda t: f"{pg.dsn}?table={t}"),
        }
        results = []
        for command in ("screen", "score"):
            base = None
            for where, (src, dst) in places.items():
                target = f"{command}_out"
                seconds, peak = run([command, a.artifact, src, "--out", dst(target), "--quiet",
                                     "--rejects", str(folder / f"{where}.rejects.jsonl")])  # fmt: skip
                n = count_rows(where, pg.dsn, folder, target)
                base = base or (seconds, n)
                results.append(
                    (command, where, seconds, a.rows / seconds, base[0] / seconds, peak, n, n == base[1])
                )
                print(results[-1], flush=True)
        load_after = os.getloadavg()[0]
    finally:
        pg.stop()
    lines = [
        f"`python bench/sql_io.py --rows {a.rows}` on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores; load average {load_before:.2f} before, {load_after:.2f} after), "
        f"artifact `{Path(a.artifact).name}`",
        "",
        "| command | input -> output | seconds | rows/s | speed vs Parquet | peak RSS MiB | rows written "
        "| same as Parquet |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for command, where, seconds, rate, ratio, peak, n, same in results:
        same_text = "yes" if same else "NO"
        lines.append(
            f"| `{command}` | {where} -> {where} | {seconds:.1f} | {rate:,.0f} | {ratio:.2f}x | {peak:,.0f} "
            f"| {n:,} | {same_text} |"
        )
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
