"""The user's definition of high-value turned into 0/1 labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from winnow.errors import DataError
from winnow.io.readers import open_source
from winnow.target import make_labels


def _labels(values, positive=None, top_fraction=None, type_=None, **kw):
    t = pa.table({"t": pa.array(values, type_)})
    return make_labels(t, "t", positive=positive, top_fraction=top_fraction, **kw)


class TestPositive:
    def test_int_column_matches_text_one(self):
        lab = _labels([0, 1, 2, 1, None], positive=["1"])
        assert lab.y.tolist() == [0, 1, 0, 1, 0]
        assert lab.known.tolist() == [True, True, True, True, False]
        assert lab.description == "t == '1'"

    def test_int_column_matches_one_point_zero(self):
        assert _labels([0, 1], positive=["1.0"]).y.tolist() == [0, 1]

    def test_float_column(self):
        assert _labels([0.0, 1.0, 0.5], positive=["1"]).y.tolist() == [0, 1, 0]

    @pytest.mark.parametrize("value", ["true", "True", "1", "yes", "t"])
    def test_bool_column_truthy(self, value):
        assert _labels([True, False, None], positive=[value]).y.tolist() == [1, 0, 0]

    @pytest.mark.parametrize("value", ["false", "0", "no"])
    def test_bool_column_falsy(self, value):
        assert _labels([True, False, None], positive=[value]).y.tolist() == [0, 1, 0]

    def test_string_column(self):
        assert _labels(["yes", "no", "Yes", None], positive=["yes"]).y.tolist() == [1, 0, 0, 0]

    def test_several_positive_values(self):
        lab = _labels(["a", "b", "c"], positive=["a", "c"])
        assert lab.y.tolist() == [1, 0, 1] and lab.description == "t in ['a', 'c']"

    def test_dictionary_column(self):
        t = pa.table({"t": pa.array(["x", "y", "x"]).dictionary_encode()})
        assert make_labels(t, "t", positive=["x"]).y.tolist() == [1, 0, 1]

    def test_value_that_never_occurs_lists_the_values_present(self):
        with pytest.raises(DataError) as info:
            _labels(["no", "no", "yes"], positive=["maybe"])
        msg = str(info.value)
        assert info.value.column == "t"
        assert "'maybe' never occurs" in msg
        assert "'no' (2)" in msg and "'yes' (1)" in msg

    def test_value_that_never_occurs_on_int_column(self):
        with pytest.raises(DataError, match=r"Values present: 0 \(2\), 1 \(1\)"):
            _labels([0, 0, 1], positive=["7"])

    def test_missing_target_column(self):
        with pytest.raises(DataError) as info:
            make_labels(pa.table({"a": [1]}), "t", positive=["1"])
        assert info.value.column == "t" and "Available columns: a" in str(info.value)


@pytest.fixture(scope="module")
def format_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fmt")
    f = pd.DataFrame(
        {
            "flag": [True, False, True, False],
            "count": [1, 0, 1, 2],
            "answer": ["yes", "no", "yes", "no"],
        }
    )
    f.to_parquet(d / "t.parquet")
    f.to_csv(d / "t.csv", index=False)
    f.to_json(d / "t.jsonl", orient="records", lines=True)
    return d


class TestPositiveAcrossFormats:
    """``--positive`` matches the column's values whatever their type and whatever the file format.

    CSV and JSON lines arrive as text; the positive value must still match how a user names it.
    """

    @pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
    @pytest.mark.parametrize(
        ("column", "positive", "expected"),
        [
            ("count", "1", [1, 0, 1, 0]),
            ("answer", "yes", [1, 0, 1, 0]),
            ("flag", "true", [1, 0, 1, 0]),
            ("flag", "1", [1, 0, 1, 0]),
        ],
    )
    def test_positive_matches(self, format_files, fmt, column, positive, expected):
        table = open_source(format_files / f"t.{fmt}").read_all()
        assert make_labels(table, column, positive=[positive]).y.tolist() == expected


class TestTopFraction:
    def test_top_ten_percent(self):
        lab = _labels(list(range(100)), top_fraction=0.1)
        assert lab.y.sum() == 10 and lab.y[-10:].all()
        assert lab.cutoff == 90.0
        assert lab.description == "top 10% of t (>= 90)"

    def test_text_numbers(self):
        lab = _labels([str(i) for i in range(20)], top_fraction=0.1)
        assert lab.y.tolist() == [0] * 18 + [1, 1]

    def test_missing_values_are_unknown(self):
        lab = _labels([1.0, None, 3.0, float("nan"), 5.0], top_fraction=0.3)
        assert lab.known.tolist() == [True, False, True, False, True]
        assert lab.y.tolist() == [0, 0, 0, 0, 1]

    def test_ties_at_zero_do_not_make_most_rows_high_value(self):
        # 90% zeros: the 90th percentile is 0, but "high-value" must not become "everyone"
        lab = _labels([0.0] * 90 + list(range(1, 11)), top_fraction=0.1)
        assert lab.y.sum() == 10 and lab.cutoff == 1.0

    def test_given_cutoff_is_reused(self):
        lab = _labels([1, 5, 10], top_fraction=0.1, cutoff=5.0)
        assert lab.y.tolist() == [0, 1, 1]

    def test_non_numeric_target_is_a_data_error(self):
        with pytest.raises(DataError, match="numeric target"):
            _labels(["a", "b", "c"], top_fraction=0.1)

    def test_all_missing_is_a_data_error(self):
        with pytest.raises(DataError):
            _labels([None, None], top_fraction=0.1, type_=pa.float64())


def test_labels_are_small_ints():
    lab = _labels([0, 1], positive=["1"])
    assert lab.y.dtype == np.int8
