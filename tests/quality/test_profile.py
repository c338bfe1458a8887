"""`winnow profile`: exact counts over every row, the sample's summaries, leakage and drift."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.helpers import make_frame
from winnow.errors import DataError
from winnow.quality.profiling import profile


def _frame() -> pd.DataFrame:
    df = make_frame(1000, seed=2)
    df["leak"] = np.where(df["churn"] == "yes", 1.0, 0.0) + np.random.default_rng(0).normal(0, 0.01, 1000)
    df["spend"] = df["spend"].astype(float)
    df.loc[3, "spend"] = 1e9  # a far-out value
    return df


def test_counts_summaries_and_leakage(tmp_path) -> None:
    df = _frame()
    df = pd.concat([df, df.iloc[[0, 1]]], ignore_index=True)  # two exact duplicate rows
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    p = profile(path, target="churn", positive=["yes"], id_column="customer_id").to_json()
    assert p["rows"] == 1002 and p["sample_rows"] == 1002
    assert p["exact_duplicates"] == 2
    assert p["near_duplicates"]["redundant_rows"] >= 2
    cols = {c["name"]: c for c in p["columns"]}
    assert cols["spend"]["missing"] == int(df["spend"].isna().sum())
    assert cols["spend"]["outliers"] >= 1 and cols["spend"]["summary"]["max"] == 1e9
    assert cols["region"]["distinct"] == 4 and cols["region"]["summary"]["top"][0][0] == "north"
    assert cols["churn"]["role"] == "target"
    assert p["target"]["high_value"] == int((df["churn"] == "yes").sum())
    leak = {d["column"]: d for d in p["leakage"]}
    assert leak["leak"]["suspect"] and not leak["visits"]["suspect"]
    assert any("'leak' alone separates" in w for w in p["warnings"])
    assert any("2 exact duplicate rows" in w for w in p["warnings"])
    json.dumps(p)  # JSON-safe


def test_sample_keeps_exact_counts_and_drift_between_files(tmp_path) -> None:
    df = make_frame(3000, seed=4)
    folder = tmp_path / "parts"
    folder.mkdir()
    early, late = df.iloc[:1500].copy(), df.iloc[1500:].copy()
    late["visits"] = late["visits"] + 5  # a shift between the files
    early.to_parquet(folder / "a.parquet")
    late.to_parquet(folder / "b.parquet")
    p = profile(folder, sample_rows=1000, batch_rows=256).to_json()
    assert p["rows"] == 3000 and p["sample_rows"] == 1000
    assert {c["name"]: c for c in p["columns"]}["spend"]["missing"] == int(df["spend"].isna().sum())
    drift = {d["column"]: d for d in p["drift"]["columns"]}
    assert drift["visits"]["status"] == "major" and drift["region"]["status"] == "stable"
    assert p["drift"]["by"] == "files: a.parquet -> b.parquet"
    assert any("uniform sample of 1,000 of 3,000" in w for w in p["warnings"])
    # seeded: the same sample, the same profile
    assert profile(folder, sample_rows=1000, batch_rows=256).to_json() == p


def test_drift_over_time_in_one_file(tmp_path) -> None:
    df = make_frame(2000, seed=5).sort_values("signup")
    df["visits"] = np.r_[np.zeros(1000), np.full(1000, 9.0)]
    df.to_csv(tmp_path / "d.csv", index=False)
    p = profile(tmp_path / "d.csv").to_json()
    drift = {d["column"]: d for d in p["drift"]["columns"]}
    assert p["drift"]["by"].startswith("time: signup")
    assert "signup" not in drift and drift["visits"]["status"] == "major"


def test_target_errors_name_the_fix(tmp_path) -> None:
    make_frame(100).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError, match="--positive or --top-fraction"):
        profile(tmp_path / "d.parquet", target="churn")
    with pytest.raises(DataError, match="not in the data"):
        profile(tmp_path / "d.parquet", target="nope", positive=["yes"])


def test_cli_writes_json(tmp_path, winnow_exe) -> None:
    _frame().to_parquet(tmp_path / "d.parquet")
    r = subprocess.run(
        [
            winnow_exe,
            "profile",
            str(tmp_path / "d.parquet"),
            "--target",
            "churn",
            "--positive",
            "yes",
            "--json",
            str(tmp_path / "p.json"),
            "--html",
            str(tmp_path / "p.html"),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "alone separates" in r.stdout and "columns" in r.stdout
    assert json.loads((tmp_path / "p.json").read_text())["rows"] == 1000
    page = (tmp_path / "p.html").read_text()
    assert page.startswith("<!doctype html>") and "Leakage check" in page and "alone separates" in page
    assert "<script" not in page and "http" not in page  # self-contained


def test_quality_package_exports_resolve() -> None:
    import winnow.quality as q

    for name in q.__all__:
        assert callable(getattr(q, name))
    with pytest.raises(AttributeError):
        q.nope  # noqa: B018
