"""`winnow suggest`: informative rows, spread over the data, seeded."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.helpers import make_frame
from winnow.errors import ConfigError
from winnow.quality.active import suggest


def _unlabelled(n: int = 1500) -> pd.DataFrame:
    return make_frame(n, seed=21).drop(columns=["churn", "future_spend"])


def test_uncertainty_picks_rows_near_the_threshold(fitted) -> None:
    data = _unlabelled()
    res = suggest(fitted, data, 40, strategy="uncertainty")
    t = res.table
    assert t.num_rows == 40 and res.rows_scored == 1500
    info = t.column("informativeness").to_numpy()
    assert (np.diff(info) <= 1e-12).all()
    # the suggested rows are the most informative of all
    scores = fitted.score(data)
    thr = fitted.threshold_.value
    dist = np.abs(np.log(scores / (1 - scores)) - np.log(thr / (1 - thr)))
    picked = t.column("row").to_numpy()
    assert np.median(dist[picked]) < np.quantile(dist, 0.2)


def test_diverse_spreads_the_batch(fitted) -> None:
    data = _unlabelled()
    unc = suggest(fitted, data, 30, strategy="uncertainty").table
    div = suggest(fitted, data, 30, strategy="diverse", seed=0).table
    assert div.num_rows == 30 and len(set(div.column("cluster").to_pylist())) == 30
    again = suggest(fitted, data, 30, strategy="diverse", seed=0).table
    assert again.column("row").to_pylist() == div.column("row").to_pylist()

    def spread(t) -> float:  # mean distance between the suggested rows, standardised inputs
        x, _ = fitted.prepare(
            pa.Table.from_pandas(data.iloc[t.column("row").to_numpy()], preserve_index=False)
        )
        d = np.asarray(x.dense, float)
        d = np.where(np.isfinite(d), d, 0.0)
        d = (d - d.mean(0)) / np.where(d.std(0) > 0, d.std(0), 1)
        diff = d[:, None, :] - d[None, :, :]
        return float(np.sqrt((diff**2).sum(-1)).mean())

    assert spread(div) > spread(unc)
    # still informative: most of the batch is above the data's median informativeness
    assert np.median(div.column("informativeness").to_numpy()) > np.median(
        suggest(fitted, data, 1500, strategy="uncertainty").table.column("informativeness").to_numpy()
    )


def test_random_and_errors(fitted) -> None:
    data = _unlabelled()
    r = suggest(fitted, data, 25, strategy="random", seed=3).table
    assert r.num_rows == 25 and len(set(r.column("row").to_pylist())) == 25
    assert (
        r.column("row").to_pylist()
        == suggest(fitted, data, 25, strategy="random", seed=3).table.column("row").to_pylist()
    )
    with pytest.raises(ConfigError):
        suggest(fitted, data, 5, strategy="nope")


def test_cli(artifact_dir, tmp_path, winnow_exe) -> None:
    _unlabelled().to_csv(tmp_path / "u.csv", index=False)
    r = subprocess.run(
        [
            winnow_exe,
            "suggest",
            str(artifact_dir),
            str(tmp_path / "u.csv"),
            "--budget",
            "20",
            "--out",
            str(tmp_path / "s.csv"),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(tmp_path / "s.csv")
    assert len(out) == 20 and {"rank", "row", "informativeness", "customer_id"} <= set(out.columns)
