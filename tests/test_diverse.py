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
