"""What rules cost per batch: winnow's expression language against DuckDB SQL, beside scoring.

Rules run on every batch the local and Ray engines read, every service micro-batch and every
stream batch. This measures :meth:`winnow.rules.RuleSet.evaluate` (rules compiled and
type-checked against the artifact's roles once, then evaluated column-wise over the Arrow batch)
on the résumé call-back rows cycled to the batch size, for five rules alone and all together,
and in the same run:

- the same conditions as DuckDB SQL over the same Arrow table (``SELECT <condition> FROM t``,
  the issue's suggested alternative), the result fetched back as a NumPy array;
- ``Screener.score`` of the default artifact on the same rows (what a batch costs anyway).

Times are medians of ``--repeats`` runs after one warm-up, one thread.

    python bench/rules_cost.py
    python bench/rules_cost.py --rows 1 4096 100000 --repeats 15

Writes ``bench/out/rules_cost.md``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "resume_callbacks.parquet"
OUT = ROOT / "bench" / "out"

# (name, winnow expression, the same condition in DuckDB SQL)
RULES = [
    ("comparison", "years_experience >= 25", "years_experience >= 25"),
    (
        "IN list",
        "job_type in ('manager', 'supervisor', 'sales_rep')",
        "job_type IN ('manager', 'supervisor', 'sales_rep')",
    ),
    (
        "IS NULL + and",
        "job_fed_contractor is None and honors == 1",
        "job_fed_contractor IS NULL AND honors = 1",
    ),
    (
        "string functions",
        "contains(lower(firstname), 'an') or startswith(job_industry, 'fin')",
        "contains(lower(firstname), 'an') OR starts_with(job_industry, 'fin')",
    ),
    (
        "CASE + arithmetic",
        "(years_experience * 2 if resume_quality == 'high' else years_experience) > 20",
        "(CASE WHEN resume_quality = 'high' THEN years_experience * 2 ELSE years_experience END) > 20",
    ),
]


def median_ms(fn: object, repeats: int) -> float:
    fn()  # type: ignore[operator]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def cycled(table: pa.Table, n: int) -> pa.Table:
    reps = -(-n // table.num_rows)
    return pa.concat_tables([table] * reps).slice(0, n).combine_chunks()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifact", type=Path, default=OUT / "resume_default_fast")
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 4096, 100_000])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", type=Path, default=OUT / "rules_cost.md")
    args = ap.parse_args()

    import duckdb
    import numpy as np

    from winnow import Screener
    from winnow.rules import Rule, RuleSet

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    print(command, flush=True)
    screener = Screener.load(args.artifact)
    screener.set_threads(1)
    roles = {s.name: s.role.value for s in screener.specs_}
    base = pq.read_table(DATA).drop(["received_callback"])
    con = duckdb.connect()
    con.execute("SET threads TO 1")
    sets = [(name, [Rule(name="r", when=w)], [sql]) for name, w, sql in RULES]
    sets.append(
        (
            "all five",
            [Rule(name=f"r{i}", when=w) for i, (_, w, _) in enumerate(RULES)],
            [s for *_, s in RULES],
        )
    )
    load = os.getloadavg()
    rows_out = []
    for n in args.rows:
        table = cycled(base, n)
        score_ms = median_ms(lambda table=table: screener.score(table), args.repeats)
        for name, rules, sqls in sets:
            rule_set = RuleSet(rules, roles=roles)
            ms = median_ms(lambda rs=rule_set, t=table: rs.evaluate(t), args.repeats)

            def duck(t: pa.Table = table, sqls: list[str] = sqls) -> list[np.ndarray]:
                con.register("t", t)
                try:
                    cols = ", ".join(f"coalesce({s}, false)" for s in sqls)
                    got = con.sql(f"SELECT {cols} FROM t").to_arrow_table()
                    return [np.asarray(c, dtype=bool) for c in got.columns]
                finally:
                    con.unregister("t")

            duck_ms = median_ms(duck, args.repeats)
            fired = duck()
            same = all(
                np.array_equal(RuleSet([r], roles=roles).evaluate(table).forced(), f)
                for r, f in zip(rules, fired, strict=True)
            )
            rows_out.append((n, name, ms, duck_ms, score_ms, same))
            print(f"{n:>7,} rows  {name:<18} winnow {ms:8.3f} ms  duckdb {duck_ms:8.3f} ms", flush=True)
    after = os.getloadavg()
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} before, "
        f"{after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f} after; one thread everywhere; medians of "
        f"{args.repeats} runs after a warm-up. Scoring: `Screener.score` of `{args.artifact.name}` on the "
        "same rows.",
        "",
        "| rows | rules | winnow ms | DuckDB SQL ms | winnow / DuckDB | score ms | rules / score "
        "| same rows fire |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for n, name, ms, duck_ms, score_ms, same in rows_out:
        lines.append(
            f"| {n:,} | {name} | {ms:.3f} | {duck_ms:.3f} | {ms / duck_ms:.2f} | {score_ms:.2f} | "
            f"{ms / score_ms:.1%} | {'yes' if same else '**no**'} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
