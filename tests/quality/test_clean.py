"""`winnow clean`: the policy's steps, and a log line for everything removed or changed."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.helpers import make_frame
from winnow.errors import ConfigError
from winnow.quality.cleaning import STAGES, Policy, clean


def _dirty(n: int = 400) -> pd.DataFrame:
    df = make_frame(n, seed=7).drop(columns=["future_spend"])
    df["visits"] = df["visits"].astype(str)  # numbers as text, as a CSV holds them
    df.loc[5, "visits"] = "lots"  # invalid
    df["spend"] = df["spend"].astype(float)
    df.loc[9, "spend"] = 1e7  # far-out outlier
    near = df.iloc[[20]].copy()
    near["spend"] = near["spend"] * 1.001
    near["customer_id"] = 99_999
    exact = df.iloc[[30]].copy()
    return pd.concat([df, near, exact], ignore_index=True)  # rows n (near copy of 20), n+1 (copy of 30)


def test_default_policy_logs_every_change(tmp_path) -> None:
    df = _dirty()
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    stages: list[str] = []
    res = clean(
        path, tmp_path / "clean.parquet", id_column="customer_id", target="churn", on_stage=stages.append
    )
    assert stages == [
        "reading",
        "invalid values",
        "outliers",
        "exact duplicates",
        "near-duplicates",
        "writing",
    ]
    assert tuple(stages) == STAGES  # the CLI's bar counts these
    out = pd.read_parquet(tmp_path / "clean.parquet")
    log = pd.read_csv(res.log)
    assert res.rows_in == 402 and res.rows_out == len(out)
    by_row = log.set_index(["step", "row"])
    assert by_row.loc[("invalid", 5), "old"] == "lots"
    assert by_row.loc[("exact_duplicate", 401), "duplicate_of"] == 30
    assert by_row.loc[("near_duplicate", 400), "duplicate_of"] == 20
    cap = by_row.loc[("outlier", 9)]
    assert cap["action"] == "changed" and float(cap["old"]) == 1e7
    assert float(cap["new"]) < 1e3 and cap["reason"].endswith("capped at the fence")
    # the capped value is in the output; the dropped rows are exactly the logged ones
    assert out["spend"].astype(float).max() == pytest.approx(float(cap["new"]))  # CSV numbers stay text
    dropped = set(log.loc[log["action"] == "dropped", "row"])
    assert {5, 400, 401} <= dropped
    assert len(out) == 402 - len(dropped)
    # nothing disappears without a line: rows in = rows out + dropped lines
    assert res.rows_in == res.rows_out + int((log["action"] == "dropped").sum())


def test_policy_file_and_alternatives(tmp_path) -> None:
    df = _dirty()
    df.to_parquet(tmp_path / "d.parquet")
    (tmp_path / "p.toml").write_text(
        '[clean]\ninvalid = "null"\noutliers = "drop"\nexact_duplicates = "keep"\nnear_duplicates = "keep"\n'
    )
    pol = Policy.load(tmp_path / "p.toml")
    res = clean(
        tmp_path / "d.parquet", tmp_path / "c.csv", policy=pol, target="churn", id_column="customer_id"
    )
    out = pd.read_csv(tmp_path / "c.csv")
    log = pd.read_csv(res.log)
    n_out = res.dropped["outlier"]
    assert n_out >= 1 and res.rows_out == 402 - n_out and res.changed == {"invalid": 1}
    assert set(res.dropped) == {"outlier"}
    assert np.isnan(out.loc[out["customer_id"] == df.loc[5, "customer_id"], "visits"]).all()
    assert set(log["step"]) == {"invalid", "outlier"}
    with pytest.raises(ConfigError, match="outliers"):
        Policy.load(None, outliers="remove")


def test_cli(tmp_path, winnow_exe) -> None:
    _dirty().to_parquet(tmp_path / "d.parquet")
    r = subprocess.run(
        [
            winnow_exe,
            "clean",
            str(tmp_path / "d.parquet"),
            "--out",
            str(tmp_path / "c.parquet"),
            "--target",
            "churn",
            "--id",
            "customer_id",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "402 rows in" in r.stdout and "exact duplicate 1" in r.stdout
    assert (tmp_path / "c.log.csv").exists()
    bad = subprocess.run(
        [winnow_exe, "clean", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "c.txt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and ".parquet, .csv or .jsonl" in bad.stderr
