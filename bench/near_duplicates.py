"""Near-duplicate detection: inject perturbed copies of 5% of the rows, measure recall, precision, rows/s.

For every data set in ``shared/data`` (the raw tables, every column but the label-free ones as
they are): a seeded 5% of the rows are copied with

* numbers: + N(0, 0.01 SD of the column) (integers become fractional; a copy is never exact),
* text (strings with 30+ characters on average): one random character replaced per 100,
* ids (columns fit would treat as ids): a new value, as a re-entered record would get.

The copies are appended and ``winnow.quality.neardup.near_duplicates`` runs on the whole table
(roles as ``fit`` infers them, default tolerance 0.05 SD RMS and text similarity 0.7).

* **recall**: copies placed in the same cluster as their source row;
* **precision**: among rows that a copy was clustered with, the share that are its source (or
  an exact/near duplicate of it already in the data); clusters of original rows only are counted
  separately as *natural* near-duplicates (the data's own redundancy, not errors);
* **rows/s**: rows of the augmented table per second of ``near_duplicates`` (median of 3 runs).

    python bench/near_duplicates.py
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out" / "near_duplicates"


def _typo(s: object, rng: np.random.Generator) -> object:
    if not isinstance(s, str) or len(s) < 5:
        return s
    chars = list(s)
    for _ in range(max(1, len(chars) // 100)):
        p = int(rng.integers(0, len(chars)))
        chars[p] = chr(int(rng.integers(97, 123)))
    return "".join(chars)


def run(name: str, seed: int, repeats: int) -> dict:
    from winnow.config import Role
    from winnow.quality.neardup import near_duplicates
    from winnow.schema import coerce, infer_schema

    df = pd.read_parquet(DATA / f"{name}.parquet")
    n = len(df)
    rng = np.random.default_rng(seed)
    k = int(0.05 * n)
    src = np.sort(rng.choice(n, k, replace=False))
    roles = {
        s.name: s.role for s in infer_schema(pa.Table.from_pandas(df, preserve_index=False), target="\0")
    }
    cp = df.iloc[src].copy()
    for c in cp.columns:
        if roles.get(c) == Role.ID:
            numeric_id = pd.api.types.is_numeric_dtype(cp[c])
            cp[c] = df[c].max() + 1 + np.arange(k) if numeric_id else [f"copy-{i}" for i in range(k)]
        elif pd.api.types.is_numeric_dtype(cp[c]) and not pd.api.types.is_bool_dtype(cp[c]):
            sd = float(df[c].std()) if df[c].notna().sum() > 1 else 0.0
            cp[c] = cp[c].astype(float) + rng.normal(0, 0.01 * sd, k)
        elif cp[c].dtype == object and df[c].astype(str).str.len().mean() >= 30:
            cp[c] = [_typo(s, rng) for s in cp[c]]
    both = pd.concat([df, cp], ignore_index=True)
    t = pa.Table.from_pandas(both, preserve_index=False)
    specs = infer_schema(t, target="\0")
    typed = coerce(t, specs).table
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        nd = near_duplicates(typed, specs, seed=seed)
        times.append(time.perf_counter() - t0)
    g = nd.group
    copies = np.arange(n, n + k)
    found = (g[copies] >= 0) & (g[copies] == g[src])
    # precision: partners of each clustered copy that are its source's cluster-mates in the data
    partner_ok = partner_all = 0
    for c, s in zip(copies[g[copies] >= 0], src[g[copies] >= 0], strict=True):
        mates = np.flatnonzero(g == g[c])
        mates = mates[mates != c]
        partner_all += len(mates)
        partner_ok += int(
            np.isin(mates, np.concatenate([[s], np.flatnonzero((g[:n] == g[s]) & (g[s] >= 0))])).sum()
        )
    natural = g[:n] >= 0
    natural_groups = len(np.unique(g[:n][natural & ~np.isin(g[:n], g[copies])])) if natural.any() else 0
    return {
        "data": name,
        "rows": len(both),
        "copies": k,
        "compared_columns": nd.columns,
        "recall": float(found.mean()),
        "precision": partner_ok / max(partner_all, 1),
        "natural_clusters": int(natural_groups),
        "seconds": float(np.median(times)),
        "rows_per_s": float(len(both) / np.median(times)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=sorted(p.stem for p in DATA.glob("*.parquet")))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    rows = []
    for name in args.data:
        r = run(name, args.seed, args.repeats)
        print(json.dumps(r), flush=True)
        rows.append(r)
    lines = [
        "| data | rows (with copies) | copies | recall | precision | natural clusters | seconds | rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['rows']:,} | {r['copies']:,} | {r['recall']:.3f} | {r['precision']:.3f} "
            f"| {r['natural_clusters']:,} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} |"
        )
    text = "\n".join(lines) + f"\n\nload average at the start {load}, at the end {os.getloadavg()}\n"
    (args.out / "near_duplicates.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    print(text)


if __name__ == "__main__":
    main()
