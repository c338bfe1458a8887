"""Label errors: confident learning on out-of-fold probabilities, and fit --drop-label-issues."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.helpers import FAST, make_frame
from winnow import Screener
from winnow.models.base import Inputs
from winnow.prep.preprocessor import Preprocessor
from winnow.quality.label_issues import find_label_issues, out_of_fold
from winnow.schema import coerce, infer_schema


def _flipped(n: int = 2000, share: float = 0.1, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    df = make_frame(n, seed=seed)
    rng = np.random.default_rng(seed)
    flip = np.zeros(n, bool)
    flip[rng.choice(n, int(share * n), replace=False)] = True
    df.loc[flip, "churn"] = np.where(df.loc[flip, "churn"] == "yes", "no", "yes")
    return df, flip


def test_confident_learning_rules_on_known_probabilities() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.1, 0.15, 0.9, 0.8, 0.85, 0.9, 0.95, 0.05])  # the last two look flipped
    li = find_label_issues(y, p)
    assert li.issue.tolist() == [False] * 8 + [True, True]
    assert li.self_confidence[8] == pytest.approx(0.05)
    assert li.summary()["flagged"] == 2
    assert find_label_issues(y, p, method="confident_joint").issue[8:].all()
    with pytest.raises(ValueError):
        find_label_issues(y, p, method="nope")


def test_finds_flipped_labels_out_of_fold() -> None:
    df, flip = _flipped()
    t = pa.Table.from_pandas(df.drop(columns=["future_spend"]), preserve_index=False)
    specs = infer_schema(t, target="churn", id_column="customer_id")
    typed = coerce(t, specs).table
    prep = Preprocessor().fit(typed, specs)
    m = prep.transform(typed, specs)
    y = (df["churn"] == "yes").to_numpy().astype(np.int64)
    p = out_of_fold(Inputs(m, prep.dense(m)), y, seed=0)
    assert np.array_equal(p, out_of_fold(Inputs(m, prep.dense(m)), y, seed=0)), "seeded"
    li = find_label_issues(y, p)
    precision = flip[li.issue].mean()
    recall = li.issue[flip].mean()
    # the synthetic label is itself noisy (a threshold on a score with noise), so some flagged
    # rows are "naturally" mislabelled; flips are still 3x over-represented among the flagged
    assert precision > 3 * flip.mean() and recall > 0.4, (precision, recall)


def test_fit_drops_label_issues_from_training_only(tmp_path, winnow_exe) -> None:
    df, _ = _flipped(1500, seed=1)
    opts = dict(target="churn", positive="yes", id="customer_id", drop=["future_spend"], **FAST)
    plain = Screener().fit(df, **opts)
    cleaned = Screener().fit(df, drop_label_issues=True, **opts)
    li = cleaned.metrics_["label_issues"]
    assert li["flagged"] == len(li["rows_dropped"]) > 0
    assert cleaned.metrics_["split"]["test"] == plain.metrics_["split"]["test"]
    assert cleaned.metrics_["split"]["train"] == plain.metrics_["split"]["train"] - li["flagged"]
    assert cleaned.metrics_["refit_full"]["rows"] == plain.metrics_["refit_full"]["rows"] - li["flagged"]
    assert "label_issues" not in plain.metrics_

    df.to_parquet(tmp_path / "d.parquet")
    r = subprocess.run(
        [
            winnow_exe,
            "fit",
            str(tmp_path / "d.parquet"),
            "--target",
            "churn",
            "--positive",
            "yes",
            "--id",
            "customer_id",
            "--drop",
            "future_spend",
            "--preset",
            "fast",
            "--threads",
            "1",
            "--drop-label-issues",
            "--no-report",
            "--out",
            str(tmp_path / "s"),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    log = pd.read_csv(tmp_path / "s.label-issues.csv")
    assert len(log) == li["flagged"] and (log["reason"].str.contains("probably wrong")).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_rows_as_cleanlab_on_the_same_probabilities(seed: int) -> None:
    cleanlab = pytest.importorskip("cleanlab.filter")
    rng = np.random.default_rng(seed)
    n = 3000
    y = (rng.random(n) < 0.15).astype(np.int64)
    logit = np.where(y == 1, 1.0, -2.0) + rng.normal(0, 1.3, n)
    y[rng.choice(n, 150, replace=False)] ^= 1  # noise
    p = 1 / (1 + np.exp(-logit))
    ours = find_label_issues(y, p)
    theirs = cleanlab.find_label_issues(y, np.column_stack([1 - p, p]))
    assert ours.issue.sum() > 20
    assert np.array_equal(ours.issue, theirs)
    cl = cleanlab.find_label_issues(y, np.column_stack([1 - p, p]), filter_by="confident_learning")
    assert np.array_equal(find_label_issues(y, p, method="confident_joint").issue, cl)
