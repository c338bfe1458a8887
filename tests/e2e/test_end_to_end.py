"""fit -> save -> load -> screen on real public data from ``../shared/data``, via the API and the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.helpers import FAST, fast_toml
from winnow import Screener
from winnow.datasets.cdnow import BASELINE, LABEL, build_tables

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}

LENDING_LEAKS = [
    "loan_status",
    "interest_rate",
    "sub_grade",
    "grade",
    "installment",
    "balance",
    "paid_total",
    "paid_principal",
    "paid_interest",
    "paid_late_fees",
    "initial_listing_status",
]


def _top_k(scores: np.ndarray, k: int) -> list[int]:
    valid = np.flatnonzero(~np.isnan(scores))
    return valid[np.lexsort((valid, -scores[valid]))][:k].tolist()


def _check_round_trip(screener: Screener, data, tmp_path: Path, k: int) -> pd.DataFrame:
    """Save, load, screen; the loaded screener must select exactly the fitted one's top k."""
    loaded = Screener.load(screener.save(tmp_path / "artifact"))
    before = screener.score(data)
    np.testing.assert_array_equal(loaded.score(data), before)
    out = tmp_path / "selected.parquet"
    result = loaded.screen(data, out=out, rejects=tmp_path / "rejects.jsonl")
    s = result.summary
    assert s.rows_read == s.rows_scored + s.rows_rejected
    assert s.rows_selected == k
    selected = pq.read_table(out)
    assert selected.num_rows == k
    assert selected.column("row").to_pylist() == _top_k(before, k)
    assert selected.column("reason_1").null_count < k  # reasons are given
    return selected.to_pandas()


@pytest.fixture(scope="module")
def resume_path(shared_data):
    return shared_data / "resume_callbacks.parquet"


@pytest.fixture(scope="module")
def resume_screener(resume_path):
    return Screener().fit(resume_path, target="received_callback", positive=1, **FAST)


@pytest.fixture(scope="module")
def lending_frame(shared_data):
    f = pd.read_parquet(shared_data / "lending_club_loans.parquet")
    f["bad_loan"] = np.where(f["loan_status"].isin(["Current", "Fully Paid"]), "no", "yes")
    return f


@pytest.fixture(scope="module")
def lending_screener(lending_frame):
    return Screener().fit(lending_frame, target="bad_loan", positive="yes", drop=LENDING_LEAKS, **FAST)


@pytest.fixture(scope="module")
def cdnow_tables(tmp_path_factory):
    return build_tables(tmp_path_factory.mktemp("cdnow"))


@pytest.fixture(scope="module")
def cdnow_screener(cdnow_tables):
    train, _ = cdnow_tables
    return Screener().fit(
        train,
        target=LABEL,
        top_fraction=0.1,
        id="customer_id",
        baseline=BASELINE,
        budget=0.1,
        **FAST,
    )


class TestResumeCallbacks:
    """Rare positives (8%): received_callback == 1 on an integer column."""

    def test_fit(self, resume_screener):
        s = resume_screener.summary_
        assert s["rows_read"] == 4870
        assert (
            s["rows_read"]
            == s["rows_used"] + s["duplicates_dropped"] + s["rows_rejected"] + s["rows_missing_target"]
        )
        assert 350 < s["positives"] <= 392
        m = resume_screener.metrics_["winnow"]
        assert m["auc_pr"] > m["positive_rate"]  # better than random on held-out rows
        assert resume_screener.target_["description"] == "received_callback == '1'"
        # the label is never a feature
        assert "received_callback" not in resume_screener.input_columns

    def test_round_trip_and_screen(self, resume_screener, resume_path, tmp_path):
        n = pq.read_metadata(resume_path).num_rows
        _check_round_trip(resume_screener, resume_path, tmp_path, math.ceil(0.05 * n))

    def test_evaluate(self, resume_screener, resume_path):
        r = resume_screener.evaluate(resume_path)
        assert r["rows"] == 4870 and r["positives"] == 392

    def test_cli(self, resume_path, winnow_exe, tmp_path):
        cfg = fast_toml(tmp_path / "fast.toml")
        art, out = tmp_path / "art", tmp_path / "top.csv"
        r = subprocess.run(
            [winnow_exe, "fit", str(resume_path), "--target", "received_callback", "--positive", "1",
             "--config", str(cfg), "--out", str(art), "-q"],
            capture_output=True, text=True, env=ENV, timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        r = subprocess.run(
            [winnow_exe, "screen", str(art), str(resume_path), "--out", str(out), "--budget", "100", "-q"],
            capture_output=True, text=True, env=ENV, timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        top = pd.read_csv(out)
        assert len(top) == 100 and top["rank"].tolist() == list(range(1, 101))
        r = subprocess.run(
            [winnow_exe, "evaluate", str(art), str(resume_path), "--json"],
            capture_output=True, text=True, env=ENV, timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["positives"] == 392


class TestLendingClub:
    """Finance: loans that are late or charged off, a label derived from loan_status."""

    def test_fit(self, lending_screener, lending_frame):
        assert (
            lending_screener.summary_["positives"] == int((lending_frame["bad_loan"] == "yes").sum()) == 178
        )
        assert not set(LENDING_LEAKS) & set(lending_screener.input_columns)
        assert lending_screener.metrics_["winnow"]["roc_auc"] > 0.5

    def test_round_trip_and_screen(self, lending_screener, lending_frame, tmp_path):
        path = tmp_path / "loans.parquet"
        lending_frame.drop(columns=["bad_loan"]).to_parquet(path)
        sel = _check_round_trip(lending_screener, path, tmp_path, math.ceil(0.05 * len(lending_frame)))
        assert "emp_title" in sel.columns  # input columns pass through

    def test_leaky_column_is_warned_about(self, lending_frame):
        f = lending_frame.assign(
            paid_late=np.where(lending_frame["bad_loan"] == "yes", lending_frame["paid_late_fees"] + 1, 0.0)
        )
        s = Screener().fit(
            f[["bad_loan", "paid_late", "annual_income", "term", "homeownership"]],
            target="bad_loan",
            positive="yes",
            **{**FAST, "models": ["lightgbm"]},
        )
        assert any("'paid_late' alone separates the classes" in w for w in s.warnings_)


class TestCdnow:
    """E-commerce: next period's top-10% spenders from the first 39 weeks of CDNOW purchases."""

    def test_fit_beats_random_and_reports_the_rule(self, cdnow_screener):
        m = cdnow_screener.metrics_
        assert m["rule"]["expression"] == BASELINE
        assert m["winnow"]["auc_pr"] > 2 * m["winnow"]["positive_rate"]
        assert m["winnow"]["budget"]["lift"] > 2
        assert cdnow_screener.target_["cutoff"] > 0

    def test_round_trip_and_screen(self, cdnow_screener, cdnow_tables, tmp_path):
        _, to_screen = cdnow_tables
        n = pq.read_metadata(to_screen).num_rows
        sel = _check_round_trip(cdnow_screener, to_screen, tmp_path, math.ceil(0.1 * n))
        assert sel["customer_id"].is_unique

    def test_cdnow_from_shared_data_matches_the_packaged_copy(self, shared_data):
        from winnow.datasets.cdnow import load_transactions

        shipped = load_transactions()
        shared = pd.read_parquet(shared_data / "cdnow_transactions.parquet")
        assert len(shipped) == len(shared) == 69_659
        assert shipped["amount"].sum() == pytest.approx(shared["amount"].sum())


@pytest.mark.slow
def test_demo_runs(winnow_exe, tmp_path):
    # The demo fits with its default threads; OpenMP threads that sleep instead of spinning keep
    # it from slowing down many times over when other processes share the 2 cores.
    env = {**ENV, "OMP_WAIT_POLICY": "PASSIVE"}
    r = subprocess.run(
        [winnow_exe, "demo", "--out", str(tmp_path / "demo"), "--quiet"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "demo" / "screener" / "manifest.json").exists()
    report = (tmp_path / "demo" / "screener.report.html").read_text()
    assert "<svg" in report and "http://" not in report and "https://" not in report
    top = pd.read_csv(tmp_path / "demo" / "high_value_customers.csv")
    assert len(top) > 0 and top["rank"].iloc[0] == 1
    assert "ranking by past spend finds" in r.stdout
