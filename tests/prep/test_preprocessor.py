"""The fitted transform from typed columns to model matrices, and its exact replay."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from winnow.config import Role
from winnow.errors import NotFittedError
from winnow.prep.preprocessor import MISSING_CODE, RARE_CODE, Preprocessor
from winnow.schema import ColumnSpec, coerce

SPECS = [
    ColumnSpec("n", Role.NUMERIC),
    ColumnSpec("c", Role.CATEGORICAL),
    ColumnSpec("b", Role.BOOLEAN),
    ColumnSpec("k", Role.ID),
]


def _typed(table: pa.Table, specs=SPECS) -> pa.Table:
    return coerce(table, specs).table


def _train(n: int = 100) -> pa.Table:
    # "a" x 50, "b" x 30, "c" x 15, "rare" x 5; n has 10% missing
    cats = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["rare"] * 5
    num = [float(i) if i % 10 else None for i in range(n)]
    return pa.table({"n": num, "c": cats, "b": [i % 2 == 0 for i in range(n)], "k": list(range(n))})


@pytest.fixture(scope="module")
def prep() -> Preprocessor:
    return Preprocessor(min_category_count=10).fit(_typed(_train()), SPECS)


def test_features_follow_the_used_columns(prep):
    assert [(f.name, f.source, f.kind) for f in prep.features] == [
        ("n", "n", "num"),
        ("b", "b", "num"),
        ("c", "c", "cat"),
    ]


def test_vocab_keeps_frequent_categories_most_frequent_first(prep):
    [cat] = prep.cat_features
    assert cat.vocab == ["a", "b", "c"]  # "rare" (5 < 10) is grouped as rare
    assert prep.cardinalities() == [5]


def test_category_codes_missing_rare_and_unseen(prep):
    t = pa.table({"n": [1.0] * 6, "c": ["a", "b", "c", "rare", "never-seen", None], "b": [True] * 6})
    m = prep.transform(_typed(t), SPECS)
    assert m.cat[:, 0].tolist() == [2, 3, 4, RARE_CODE, RARE_CODE, MISSING_CODE]


def test_numeric_scaling_statistics(prep):
    f = prep.num_features[0]
    finite = np.array([float(i) for i in range(100) if i % 10])
    assert f.median == pytest.approx(np.median(finite))
    assert f.has_missing
    assert not prep.num_features[1].has_missing


def test_trees_see_nan_dense_view_imputes_and_flags(prep):
    t = pa.table({"n": [None, 50.0], "c": ["a", "a"], "b": [True, False]})
    m = prep.transform(_typed(t), SPECS)
    assert np.isnan(m.num[0, 0]) and m.num[1, 0] == 50.0
    dense = prep.dense(m)
    names = prep.dense_names()
    assert names == [("n", "n"), ("b", "b"), ("n.missing", "n")]
    assert dense.shape == (2, 3) and dense.dtype == np.float32
    assert dense[0, 0] == 0.0  # imputed at the (scaled) centre
    assert dense[:, 2].tolist() == [1.0, 0.0]  # missing indicator
    f = prep.num_features[0]
    assert dense[1, 0] == pytest.approx((50.0 - f.mean) / f.std, rel=1e-5)
    assert not np.isnan(dense).any()


def test_dense_clips_outliers(prep):
    t = pa.table({"n": [1e12], "c": ["a"], "b": [True]})
    dense = prep.dense(prep.transform(_typed(t), SPECS))
    f = prep.num_features[0]
    assert dense[0, 0] == pytest.approx((f.hi - f.mean) / f.std, rel=1e-5)


def test_skewed_positive_numbers_are_log_scaled():
    rng = np.random.default_rng(0)
    t = pa.table({"n": rng.lognormal(0, 2, 2000)})
    specs = [ColumnSpec("n", Role.NUMERIC)]
    p = Preprocessor().fit(_typed(t, specs), specs)
    assert p.num_features[0].log


def test_datetime_parts():
    specs = [ColumnSpec("d", Role.DATETIME)]
    t = pa.table({"d": ["2021-03-04T05:00:00", "2020-12-31T23:00:00", None]})
    p = Preprocessor().fit(_typed(t, specs), specs)
    names = [f.name for f in p.num_features]
    assert names == ["d.year", "d.month", "d.day", "d.weekday", "d.epoch_days", "d.hour"]
    m = p.transform(_typed(t, specs), specs)
    assert m.num[0, :4].tolist() == [2021, 3, 4, 3]  # 2021-03-04 was a Thursday (Monday = 0)
    assert m.num[0, 5] == 5
    assert m.num[1, :4].tolist() == [2020, 12, 31, 3]
    assert np.isnan(m.num[2]).all()


def test_dates_without_times_have_no_hour():
    specs = [ColumnSpec("d", Role.DATETIME)]
    t = pa.table({"d": ["2021-03-04", "2020-12-31"]})
    p = Preprocessor().fit(_typed(t, specs), specs)
    assert "d.hour" not in [f.name for f in p.num_features]


def test_text_length_and_words():
    specs = [ColumnSpec("t", Role.TEXT)]
    t = pa.table({"t": ["hello big world", "", None, "  one  "]})
    p = Preprocessor().fit(_typed(t, specs), specs)
    m = p.transform(_typed(t, specs), specs)
    assert [f.name for f in p.num_features] == ["t.length", "t.words"]
    assert m.num[0].tolist() == [15.0, 3.0]
    assert m.num[1].tolist() == [0.0, 0.0]
    assert np.isnan(m.num[2]).all()
    assert m.num[3, 1] == 1.0


def test_max_categories_caps_the_vocabulary():
    specs = [ColumnSpec("c", Role.CATEGORICAL)]
    t = pa.table({"c": [f"v{i % 30}" for i in range(600)]})
    p = Preprocessor(min_category_count=1, max_categories=5).fit(_typed(t, specs), specs)
    assert len(p.cat_features[0].vocab) == 5


def test_json_round_trip_replays_exactly(prep):
    again = Preprocessor.from_json(json.loads(json.dumps(prep.to_json())))
    t = pa.table({"n": [None, 3.0, 1e9], "c": ["a", "zzz", None], "b": [True, None, False]})
    m1, m2 = prep.transform(_typed(t), SPECS), again.transform(_typed(t), SPECS)
    np.testing.assert_array_equal(m1.num, m2.num)
    np.testing.assert_array_equal(m1.cat, m2.cat)
    np.testing.assert_array_equal(prep.dense(m1), again.dense(m2))


def test_transform_does_not_depend_on_batch_composition(prep):
    t = _typed(_train())
    whole = prep.dense(prep.transform(t, SPECS))
    parts = np.vstack([prep.dense(prep.transform(t.slice(i, 7), SPECS)) for i in range(0, 100, 7)])
    np.testing.assert_array_equal(whole, parts)


def test_unfitted_raises_not_fitted():
    p = Preprocessor()
    with pytest.raises(NotFittedError):
        p.transform(_typed(_train()), SPECS)
    with pytest.raises(NotFittedError):
        p.to_json()


def test_fit_returns_self():
    p = Preprocessor()
    assert p.fit(_typed(_train()), SPECS) is p
