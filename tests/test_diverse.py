"""`screen --diverse`: the budget is filled with distinct rows, near-duplicates are skipped."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tests.helpers import make_frame
from winnow.quality.neardup import near_duplicates
from winnow.schema import coerce


def _with_copies(fitted, n_copies: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Fresh customers plus noisy copies of the 10 best-scored ones (new ids)."""
    df = make_frame(800, seed=11)
    scores = fitted.score(df)
    best = np.argsort(-scores, kind="stable")[:10]
    rng = np.random.default_rng(0)
    copies = []
    for c in range(n_copies):
        cp = df.iloc[best].copy()
        cp["spend"] = cp["spend"] * (1 + rng.normal(0, 0.001, len(cp)))
        cp["customer_id"] = 50_000 + c * 100 + np.arange(len(cp))
        copies.append(cp)
    return pd.concat([df, *copies], ignore_index=True), best


def _has_near_duplicates(fitted, selected: pa.Table) -> bool:
    typed = coerce(selected, fitted.specs_).table
    return bool(near_duplicates(typed, fitted.specs_).in_cluster.any())


def test_budget_mode_selects_distinct_rows(fitted) -> None:
    data, _ = _with_copies(fitted)
    plain = fitted.screen(data, budget=30, reasons=0)
    assert _has_near_duplicates(fitted, plain.selected)  # the copies crowd the plain top 30
    res = fitted.screen(data, budget=30, reasons=0, diverse=True)
    sel = res.selected
    assert sel.num_rows == 30 and sel.column("rank").to_pylist() == list(range(1, 31))
    assert not _has_near_duplicates(fitted, sel)
    skipped = sel.column("similar_skipped").to_numpy()
    assert skipped.sum() == res.summary.near_duplicates_skipped >= 40
    assert "no near-duplicates" in res.summary.selection
    # ranks follow scores, and the best row is the same as without --diverse
    s = sel.column("score").to_numpy()
    assert (np.diff(s) <= 0).all() and sel.column("row")[0] == plain.selected.column("row")[0]


def test_threshold_mode_and_no_duplicates_case(fitted) -> None:
    data, _ = _with_copies(fitted)
    res = fitted.screen(data, use_threshold=True, reasons=0, diverse=True)
    assert not _has_near_duplicates(fitted, res.selected)
    assert res.selected.column("rank").to_pylist() == list(range(1, res.selected.num_rows + 1))
    clean = make_frame(500, seed=12)
    a = fitted.screen(clean, budget=25, reasons=0)
    b = fitted.screen(clean, budget=25, reasons=0, diverse=True)
    assert a.selected.column("row").to_pylist() == b.selected.column("row").to_pylist()
    assert b.summary.near_duplicates_skipped == 0


def test_cli_diverse(fitted, artifact_dir, tmp_path, winnow_exe) -> None:
    data, _ = _with_copies(fitted)
    data.to_parquet(tmp_path / "d.parquet")
    r = subprocess.run(
        [
            winnow_exe,
            "screen",
            str(artifact_dir),
            str(tmp_path / "d.parquet"),
            "--out",
            str(tmp_path / "o.parquet"),
            "--budget",
            "30",
            "--diverse",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout
    out = pq.read_table(tmp_path / "o.parquet")
    assert out.num_rows == 30 and "similar_skipped" in out.column_names
    ray = subprocess.run(
        [
            winnow_exe,
            "screen",
            str(artifact_dir),
            str(tmp_path / "d.parquet"),
            "--out",
            str(tmp_path / "o2.parquet"),
            "--diverse",
            "--engine",
            "ray",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ray.returncode == 2 and "--engine local" in ray.stderr


def _reword(text: str) -> str:
    """Every sixth word dropped and every eighth pair swapped: the same review, reworded."""
    words = [w for i, w in enumerate(text.split()) if i % 6 != 5]
    for i in range(0, len(words) - 1, 8):
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def test_reworded_texts_are_near_duplicates_in_embedding_space(shared_data, tmp_path, monkeypatch) -> None:
    from winnow import Screener
    from winnow.prep.encoder import TextEncoder

    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "cache"))
    df = pd.read_parquet(shared_data / "fine_food_reviews.parquet")[["review", "score"]]
    df = df.sample(700, random_state=2).reset_index(drop=True)
    df["review"] = df["review"].str.slice(0, 400)
    s = Screener().fit(df.head(400), target="score", positive="great", models=["linear"], folds=2)
    fresh = df.iloc[400:][["review"]].reset_index(drop=True)
    best = np.argsort(-s.score(fresh), kind="stable")[:10]
    copies = pd.DataFrame({"review": [_reword(t) for t in fresh["review"].iloc[best]]})
    data = pd.concat([fresh, copies], ignore_index=True)
    enc = TextEncoder()
    cos = (enc.encode(fresh["review"].iloc[best].tolist()) * enc.encode(copies["review"].tolist())).sum(1)
    close = best[cos >= 0.9]  # reworded copies the embedding calls the same review
    assert len(close) >= 5
    pairs = [(int(best[j]), len(fresh) + int(j)) for j in np.flatnonzero(cos >= 0.9)]
    # character 4-gram similarity (the data-quality rule) misses most of these
    pair_rows = pa.Table.from_pandas(data.iloc[[r for p in pairs for r in p]], preserve_index=False)
    typed = coerce(pair_rows, s.specs_).table
    assert near_duplicates(typed, s.specs_).in_cluster.sum() < len(pairs)

    def both_in(res) -> int:
        rows = set(res.selected.column("row").to_pylist())
        return sum(a in rows and b in rows for a, b in pairs)

    assert both_in(s.screen(data, budget=40, reasons=0)) >= 3  # without --diverse: copies crowd in
    res = s.screen(data, budget=40, reasons=0, diverse=True)
    assert both_in(res) == 0 and res.selected.num_rows == 40
    assert res.summary.near_duplicates_skipped >= 3
