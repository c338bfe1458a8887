"""Near-duplicate clusters: injected perturbed copies are found, distinct rows are not merged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from tests.helpers import make_frame
from winnow.quality.neardup import minhash, near_duplicates, shingles
from winnow.schema import coerce, infer_schema

WORDS = "good bad great terrible coffee tea fresh stale cheap pricey quick slow box taste smell".split()


def _frame(n: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    df = make_frame(n, seed=3).drop(columns=["future_spend"])
    df["review"] = [" ".join(rng.choice(WORDS, 25)) for _ in range(n)]
    return df


def _typo(s: str, rng: np.random.Generator) -> str:
    chars = list(s)
    p = int(rng.integers(0, len(chars)))
    chars[p] = "x" if chars[p] != "x" else "y"
    return "".join(chars)


def _with_copies(df: pd.DataFrame, k: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = np.sort(rng.choice(len(df), k, replace=False))
    cp = df.iloc[src].copy()
    for c in ("spend", "visits"):
        cp[c] = cp[c] + rng.normal(0, 0.02 * df[c].std(), k)
    cp["review"] = [_typo(s, rng) for s in cp["review"]]
    cp["customer_id"] = np.arange(len(df), len(df) + k) + 10_000  # a copy gets a new id
    return pd.concat([df, cp], ignore_index=True), src


def _run(df: pd.DataFrame, **kw):
    t = pa.Table.from_pandas(df, preserve_index=False)
    specs = infer_schema(t, target="churn", id_column="customer_id")
    return near_duplicates(coerce(t, specs).table, specs, **kw)


def test_finds_injected_copies_and_nothing_else() -> None:
    df = _frame()
    both, src = _with_copies(df, 40)
    nd = _run(both)
    copies = np.arange(len(df), len(both))
    assert (nd.group[copies] == nd.group[src]).all()
    assert (nd.group[src] == src).all(), "the earlier row names its cluster"
    # random reviews of 25 words never collide, so no other row is in a cluster
    others = np.setdiff1d(np.arange(len(df)), src)
    assert (nd.group[others] == -1).all()
    assert nd.clusters == 40 and nd.redundant.sum() == 40
    assert "customer_id" not in nd.columns
    assert (nd.cluster_sizes()[copies] == 2).all()


def test_exact_duplicates_are_near_duplicates_and_result_is_seeded() -> None:
    df = _frame(300)
    both = pd.concat([df, df.iloc[[5, 5, 7]]], ignore_index=True)
    nd = _run(both)
    assert nd.group[300] == nd.group[301] == 5 and nd.group[302] == 7
    again = _run(both)
    assert np.array_equal(nd.group, again.group)


def test_changed_category_or_far_number_is_not_a_duplicate() -> None:
    df = _frame(200)
    a = df.iloc[[10]].copy()
    a["region"] = "elsewhere"
    b = df.iloc[[11]].copy()
    b["spend"] = b["spend"] + 2 * df["spend"].std()
    c = df.iloc[[12]].copy()
    c["review"] = " ".join(WORDS)  # a different text
    nd = _run(pd.concat([df, a, b, c], ignore_index=True))
    assert (nd.group[200:] == -1).all()


def test_minhash_estimates_jaccard() -> None:
    x = shingles(
        ["the quick brown fox jumps over the lazy dog", "the quick brown fox jumps over the lazy cat", ""]
    )
    sig = minhash(x, seed=0, perms=256)
    same = (sig[0] == sig[1]).mean()
    inter = x[0].multiply(x[1]).sum()
    true = inter / (x[0].sum() + x[1].sum() - inter)
    assert abs(same - true) < 0.1
    assert (sig[2] == 0).all()
