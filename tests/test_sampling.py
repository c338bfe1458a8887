"""Fitting on a stratified reservoir sample: what it keeps, that it is seeded and batch-size
independent, and that the screener's probabilities and threshold refer to the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.helpers import fit_options, make_frame
from winnow import Screener
from winnow.io.readers import ArrowSource
from winnow.sampling import _Reservoir, stratified_sample
from winnow.target import make_labels


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return make_frame(6000, seed=3)


def _sample(frame: pd.DataFrame, batch_rows: int = 1000, **kw):
    opts = {"target": "churn", "positive": ["yes"], "top_fraction": None, "rows": 2000, "seed": 7}
    source = ArrowSource(pa.Table.from_pandas(frame))
    return stratified_sample(source, batch_rows=batch_rows, **{**opts, **kw})


def test_keeps_every_positive_and_fills_with_negatives(big):
    table, s = _sample(big)
    y = table.column("churn").to_numpy(zero_copy_only=False) == "yes"
    assert s.rows_read == 6000 and s.positives_read == int((big.churn == "yes").sum()) == 1200
    assert table.num_rows == 2000 and s.positives_kept == 1000  # default cap: half the sample
    assert int(y.sum()) == 1000 and s.negatives_kept == 1000
    assert s.log_odds_shift == pytest.approx(np.log((1000 / 1200) / (1000 / 4800)))
    # no row twice, every row a real input row
    ids = table.column("customer_id").to_pylist()
    assert len(set(ids)) == 2000 and set(ids) <= set(big.customer_id)


def test_positives_cap_and_small_data(big):
    table, s = _sample(big, positives=300)
    assert s.positives_kept == 300 and s.negatives_kept == 1700
    table, s = _sample(big.head(500), rows=2000)
    assert table.num_rows == 500  # fewer rows than the sample: all of them


def test_batches_without_a_positive(big):
    ordered = big.sort_values("churn", kind="stable")  # 4,800 "no" first: whole batches without "yes"
    _, s = _sample(ordered, batch_rows=500)
    assert s.positives_read == 1200 and s.positives_kept == 1000 and s.negatives_kept == 1000


def test_seeded_and_independent_of_batch_size(big):
    a, _ = _sample(big, batch_rows=1000)
    b, _ = _sample(big, batch_rows=333)
    c, _ = _sample(big, seed=8)
    assert a.equals(b)
    assert not a.equals(c)


def test_uniform_within_a_class(big):
    # negatives kept at 1000/4800: each decile of customer ids gets about a tenth of them
    counts = np.zeros(10)
    for seed in range(5):
        table, _ = _sample(big, seed=seed)
        t = table.to_pandas()
        neg = t[t.churn == "no"].customer_id - 1000
        counts += np.bincount((neg // 600).astype(int), minlength=10)
    share = counts / counts.sum()
    assert np.all(np.abs(share - 0.1) < 0.02)


def test_top_fraction_cutoff_comes_from_all_rows(big):
    _, s = _sample(big, positive=None, top_fraction=0.1, target="future_spend")
    full = make_labels(pa.Table.from_pandas(big), "future_spend", top_fraction=0.1)
    assert s.cutoff == full.cutoff and s.positives_read == int(full.y.sum())


def test_reservoir_memory_stays_bounded():
    r = _Reservoir(100)
    rng = np.random.default_rng(0)
    for i in range(200):
        r.offer(pa.table({"x": np.arange(50) + 50 * i}), rng.random(50))
        assert len(r.keys) < 2 * 100 + 50
    assert r.result().num_rows == 100 and r.seen == 10_000


def test_fit_on_a_sample_corrects_probabilities_and_threshold(big, tmp_path):
    s = Screener().fit(big, **fit_options(sample_rows=1500, sample_positives=700, budget=0.1))
    assert s.metrics_["sample"]["positives_kept"] == 700
    assert any("stratified sample" in w for w in s.warnings_)
    assert s.summary_["rows_read"] == 6000
    p = s.score(big)
    # the sample is 47% high-value; the probabilities must refer to the data's 20%
    assert np.nanmean(p) == pytest.approx(0.2, abs=0.04)
    assert np.mean(p >= s.threshold_.value) == pytest.approx(0.1, abs=0.03)
    again = Screener.load(s.save(tmp_path / "sampled"))
    np.testing.assert_array_equal(again.score(big), p)
