"""`winnow value`: noisy and redundant records sink, hard and rare ones rise, parts explained."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.helpers import make_frame
from winnow.errors import DataError
from winnow.quality.value import STAGES, rarity, record_values


def _data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    df = make_frame(1200, seed=31).drop(columns=["future_spend"])
    rng = np.random.default_rng(0)
    flip = rng.choice(1200, 60, replace=False)
    df.loc[flip, "churn"] = np.where(df.loc[flip, "churn"] == "yes", "no", "yes")
    copies = df.iloc[:40].copy()
    copies["customer_id"] = 90_000 + np.arange(40)
    return pd.concat([df, copies], ignore_index=True), flip, np.arange(1200, 1240)


def test_parts_and_order() -> None:
    df, flip, copies = _data()
    stages: list[str] = []
    t = record_values(df, target="churn", positive=["yes"], id_column="customer_id", on_stage=stages.append)
    t = t.to_pandas()
    assert stages == [
        "reading and preparing the records",
        "out-of-fold predictions (uncertainty, label noise)",
        "rarity",
        "near-duplicates",
    ]
    assert tuple(stages) == STAGES  # the CLI's bar counts these
    assert len(t) == 1240
    # value descends within each class; every prefix keeps the data's class balance
    for _, part in t.groupby("label"):
        assert (np.diff(part["value"].to_numpy()) <= 1e-12).all()
    share = t["label"].mean()
    for n in (100, 310, 620):
        assert abs(t["label"].head(n).mean() - share) <= 1 / n + 1e-9
    by_row = t.set_index("row")
    assert by_row.loc[copies, "redundancy"].all()
    assert by_row.loc[copies, "why"].str.contains("near-duplicate").all()
    noisy = by_row["label_noise"] == 1
    assert noisy.sum() > 0 and np.isin(by_row.index[noisy], flip).mean() > 0.3
    # the bottom of the ranking is where the noisy and redundant records go
    bottom = t.tail(100)
    assert ((bottom["label_noise"] == 1) | (bottom["redundancy"] == 1)).mean() > 0.8
    assert t["uncertainty"].between(0, 1).all() and t["rarity"].between(0, 1).all()
    again = record_values(df, target="churn", positive=["yes"], id_column="customer_id").to_pandas()
    pd.testing.assert_frame_equal(t, again)


def test_rarity_ranks_outliers_high() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2000, 5))
    x[:10] += 8  # far from everything
    r = rarity(x, seed=0, reference=500)
    assert (r[:10] >= 0.99).all() and np.median(r[10:]) < 0.6


def test_errors_and_cli(tmp_path, winnow_exe) -> None:
    df, _, _ = _data()
    with pytest.raises(DataError, match="10 rows of each class"):
        record_values(df.head(15), target="churn", positive=["yes"])
    df.to_parquet(tmp_path / "d.parquet")
    r = subprocess.run(
        [
            winnow_exe,
            "value",
            str(tmp_path / "d.parquet"),
            "--target",
            "churn",
            "--positive",
            "yes",
            "--id",
            "customer_id",
            "--out",
            str(tmp_path / "v.csv"),
            "--weight",
            "rarity=0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "records valued" in r.stdout and "#1 row" in r.stdout
    assert len(pd.read_csv(tmp_path / "v.csv")) == 1240
    bad = subprocess.run(
        [
            winnow_exe,
            "value",
            str(tmp_path / "d.parquet"),
            "--target",
            "churn",
            "--positive",
            "yes",
            "--out",
            str(tmp_path / "v.csv"),
            "--weight",
            "beauty=2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "uncertainty" in bad.stderr
