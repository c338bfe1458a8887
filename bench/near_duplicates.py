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

``--detector embedding`` links rows in embedding space instead: preprocessing is fitted on the
original rows, every row gets its selection embedding (``winnow.similarity.diverse``: standardised numbers,
one-hot categories, sentence embeddings of texts) and rows within ``RADIUS`` are linked
(``winnow.similarity.ann.near_duplicate_groups``); seconds include embedding the texts (a cold cache).
``--detector diverse`` is what ``screen --diverse`` uses: the embedding links and the rule's.
``--text-edit reword`` changes the copies' long texts by dropping every sixth word and swapping
every eighth pair of words instead of typing one typo per 100 characters.

    python bench/near_duplicates.py
    python bench/near_duplicates.py --detector diverse --text-edit reword --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
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


def is_text(col: pd.Series) -> bool:
    # pandas 3 reads strings as the "str" dtype, earlier versions as object
    return col.dtype == object or pd.api.types.is_string_dtype(col)


def _reword(s: object) -> object:
    if not isinstance(s, str):
        return s
    words = [w for i, w in enumerate(s.split()) if i % 6 != 5]
    for i in range(0, len(words) - 1, 8):
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def diverse_groups(
    typed: pa.Table, specs: list, seed: int, n_original: int, detector: str
) -> tuple[np.ndarray, list[str]]:
    """Cluster id per row (-1: in no cluster) by the links of ``screen --diverse`` (``diverse``:
    embedding or rule) or the embedding links alone (``embedding``). Preprocessing is fitted on
    the original rows only, as a screener is fitted on its training data."""
    from winnow.prep.preprocessor import Preprocessor
    from winnow.similarity.ann import near_duplicate_groups
    from winnow.similarity.diverse import RADIUS, linked_groups, selection_embedding

    os.environ["WINNOW_CACHE_DIR"] = tempfile.mkdtemp(prefix="winnow-bench-emb-")  # a cold cache
    used = [s for s in specs if s.used]
    prep = Preprocessor(text="encoder").fit(typed.slice(0, n_original), used)
    if detector == "diverse":
        groups = linked_groups(prep, used, typed, seed)
    else:
        groups = near_duplicate_groups(selection_embedding(prep, used, typed), max_distance=RADIUS, seed=seed)
    sizes = np.bincount(groups, minlength=len(groups))
    return np.where(sizes[groups] > 1, groups, -1), [s.name for s in used]


def run(name: str, seed: int, repeats: int, detector: str = "rows", text_edit: str = "typo") -> dict:
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
        elif is_text(cp[c]) and df[c].astype(str).str.len().mean() >= 30:
            cp[c] = [_typo(s, rng) if text_edit == "typo" else _reword(s) for s in cp[c]]
    both = pd.concat([df, cp], ignore_index=True)
    t = pa.Table.from_pandas(both, preserve_index=False)
    specs = infer_schema(t, target="\0")
    typed = coerce(t, specs).table
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if detector == "rows":
            nd = near_duplicates(typed, specs, seed=seed)
            g, columns = nd.group, nd.columns
        else:
            g, columns = diverse_groups(typed, specs, seed, n, detector)
        times.append(time.perf_counter() - t0)
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
        "detector": detector,
        "text_edit": text_edit,
        "compared_columns": columns,
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
    ap.add_argument("--detector", choices=["rows", "embedding", "diverse"], default="rows")
    ap.add_argument("--text-edit", choices=["typo", "reword"], default="typo")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    rows = []
    for name in args.data:
        r = run(name, args.seed, args.repeats, args.detector, args.text_edit)
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
    stem = "" if (args.detector, args.text_edit) == ("rows", "typo") else f"_{args.detector}_{args.text_edit}"
    (args.out / f"near_duplicates{stem}.md").write_text(text)
    (args.out / f"results{stem}.json").write_text(json.dumps(rows, indent=1))
    print(text)


if __name__ == "__main__":
    main()
