"""Column roles inferred at fit time and the typing of every incoming batch."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from winnow.config import Role
from winnow.errors import SchemaError
from winnow.schema import ColumnSpec, coerce, coerce_column, infer_role, infer_schema


def _role(name: str, values: list, type_: pa.DataType | None = None) -> Role:
    return infer_role(name, pa.chunked_array([pa.array(values, type_)]))[0]


class TestInferRole:
    def test_float_is_numeric(self):
        assert _role("x", [1.5, 2.5, None]) == Role.NUMERIC

    def test_integer_is_numeric(self):
        assert _role("visits", [1, 2, 3, 2]) == Role.NUMERIC

    def test_unique_integer_with_id_name_is_id(self):
        role, reason = infer_role("customer_id", pa.chunked_array([pa.array(range(100))]))
        assert role == Role.ID and "ID-like" in reason

    def test_unique_integer_without_id_name_is_numeric(self):
        assert _role("amount", list(range(100))) == Role.NUMERIC

    @pytest.mark.parametrize("values", [[3, 3, 3], [1.0, 1.0], ["a", "a", "a"], [True, True], [None, None]])
    def test_constant_or_empty_is_ignored(self, values):
        role, reason = infer_role("c", pa.chunked_array([pa.array(values)]))
        assert role == Role.IGNORE and reason.startswith("constant")

    def test_boolean(self):
        assert _role("b", [True, False, None]) == Role.BOOLEAN

    def test_text_of_booleans(self):
        assert _role("b", ["yes", "no", "Yes", "N"]) == Role.BOOLEAN

    def test_text_of_numbers(self):
        assert _role("n", ["1", "2.5", "-3", " 4 "]) == Role.NUMERIC

    def test_timestamp_and_date(self):
        assert _role("t", [0, 3_600], pa.timestamp("s")) == Role.DATETIME
        assert _role("d", [0, 1], pa.date32()) == Role.DATETIME

    def test_text_of_iso_dates(self):
        assert _role("d", ["2020-01-01", "2021-06-30", "2022-12-31"]) == Role.DATETIME

    def test_categorical(self):
        role, reason = infer_role("region", pa.chunked_array([pa.array(["a", "b", "c", "a"] * 30)]))
        assert role == Role.CATEGORICAL and "3 distinct" in reason

    def test_dictionary_column_is_categorical(self):
        arr = pa.array(["a", "b", "a", "c"] * 10).dictionary_encode()
        assert infer_role("x", pa.chunked_array([arr]))[0] == Role.CATEGORICAL

    def test_distinct_text_is_id(self):
        assert _role("code", [f"K{i:05d}" for i in range(100)]) == Role.ID

    def test_free_text(self):
        rng = np.random.default_rng(0)
        words = ["good", "bad", "tasty", "coffee", "would", "buy", "again", "never", "love", "it"]
        texts = [" ".join(rng.choice(words, 12)) for _ in range(80)]
        assert _role("review", texts) == Role.TEXT

    def test_unsupported_type_is_ignored(self):
        role, reason = infer_role("l", pa.chunked_array([pa.array([[1], [2]])]))
        assert role == Role.IGNORE and "unsupported" in reason


class TestInferSchema:
    def test_honours_id_drop_and_overrides(self):
        t = pa.table(
            {"k": [1, 2, 3], "a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"], "z": [10, 20, 10], "y": [0, 1, 0]}
        )
        specs = infer_schema(t, target="y", id_column="k", drop=["a"], overrides={"z": Role.CATEGORICAL})
        got = {s.name: s.role for s in specs}
        assert got == {"k": Role.ID, "a": Role.IGNORE, "b": Role.CATEGORICAL, "z": Role.CATEGORICAL}
        assert "y" not in got  # the target is never a feature
        assert [s.name for s in specs if s.used] == ["b", "z"]

    @pytest.mark.parametrize(
        "kwargs", [{"id_column": "nope"}, {"drop": ["nope"]}, {"overrides": {"nope": Role.NUMERIC}}]
    )
    def test_unknown_configured_column_is_a_schema_error(self, kwargs):
        t = pa.table({"a": [1.0, 2.0], "y": [0, 1]})
        with pytest.raises(SchemaError) as info:
            infer_schema(t, target="y", **kwargs)
        assert info.value.missing == ["nope"]
        assert "'nope'" in str(info.value)


def test_column_spec_json_round_trip():
    s = ColumnSpec("spend", Role.NUMERIC, "float column")
    assert ColumnSpec.from_json(s.to_json()) == s
    assert s.used and not ColumnSpec("k", Role.ID).used and not ColumnSpec("k", Role.IGNORE).used


SPECS = [
    ColumnSpec("n", Role.NUMERIC),
    ColumnSpec("c", Role.CATEGORICAL),
    ColumnSpec("b", Role.BOOLEAN),
    ColumnSpec("d", Role.DATETIME),
    ColumnSpec("k", Role.ID),
]


class TestCoerce:
    def test_typed_input(self):
        t = pa.table(
            {
                "n": [1, 2, None],
                "c": ["x", None, "y"],
                "b": [True, False, None],
                "d": pa.array([0, 86_400, None], pa.timestamp("s")),
                "extra": [1, 2, 3],
            }
        )
        out = coerce(t, SPECS)
        assert out.ok.tolist() == [True, True, True] and out.rejects == []
        assert out.table.column_names == ["n", "c", "b", "d"]  # only used columns
        assert out.table.column("n").to_pylist()[:2] == [1.0, 2.0]
        assert math.isnan(out.table.column("n").to_numpy(zero_copy_only=False)[2])
        assert out.table.column("c").to_pylist() == ["x", None, "y"]
        assert out.table.column("b").to_pylist()[:2] == [1.0, 0.0]
        assert out.table.column("d").to_pylist()[:2] == [0.0, 86_400.0]

    def test_text_input_is_parsed(self):
        t = pa.table(
            {
                "n": ["1.5", " 2 ", ""],
                "c": ["x", "y", "z"],
                "b": ["yes", "FALSE", "0"],
                "d": ["1970-01-02", "1970-01-01T01:00:00", None],
            }
        )
        out = coerce(t, SPECS)
        assert out.rejects == []
        n = out.table.column("n").to_numpy(zero_copy_only=False)
        assert n[0] == 1.5 and n[1] == 2.0 and np.isnan(n[2])
        assert out.table.column("b").to_pylist() == [1.0, 0.0, 0.0]
        d = out.table.column("d").to_numpy(zero_copy_only=False)
        assert d[0] == 86_400.0 and d[1] == 3_600.0 and np.isnan(d[2])

    def test_missing_column_is_a_schema_error_naming_it(self):
        t = pa.table({"n": [1.0], "b": [True], "d": pa.array([0], pa.timestamp("s"))})
        with pytest.raises(SchemaError) as info:
            coerce(t, SPECS)
        assert info.value.missing == ["c"]
        assert "'c'" in str(info.value)

    def test_unused_columns_may_be_missing(self):
        t = pa.table({"n": [1.0], "c": ["x"], "b": [True], "d": pa.array([0], pa.timestamp("s"))})
        assert coerce(t, SPECS).ok.tolist() == [True]  # "k" is an id: not needed for scoring

    def test_wrong_type_is_a_schema_error_naming_column_and_types(self):
        t = pa.table({"n": [1.0], "c": ["x"], "b": [True], "d": [1.5]})
        with pytest.raises(SchemaError) as info:
            coerce(t, SPECS)
        [(col, expected, received)] = info.value.wrong_type
        assert col == "d" and "date" in expected and received == "double"

    def test_mostly_unparseable_column_is_a_schema_error(self):
        n = 40
        t = pa.table({"n": ["abc"] * n, "c": ["x"] * n, "b": ["yes"] * n, "d": ["2020-01-01"] * n})
        with pytest.raises(SchemaError) as info:
            coerce(t, SPECS)
        assert info.value.wrong_type[0][0] == "n"
        assert "abc" in info.value.wrong_type[0][2]

    def test_inf_rejects_the_record_with_reason(self):
        t = pa.table(
            {
                "n": [1.0, float("inf"), -float("inf"), 2.0],
                "c": ["x"] * 4,
                "b": [True] * 4,
                "d": ["2020-01-01"] * 4,
            }
        )
        out = coerce(t, SPECS, first_row=100)
        assert out.ok.tolist() == [True, False, False, True]
        assert [r.row for r in out.rejects] == [101, 102]
        assert all(r.column == "n" for r in out.rejects)
        assert "expected a finite number" in out.rejects[0].reason and "inf" in out.rejects[0].reason

    def test_inf_as_text_rejects_the_record(self):
        t = pa.table({"n": ["1", "inf", "2"], "c": ["x"] * 3, "b": ["1"] * 3, "d": ["2020-01-01"] * 3})
        out = coerce(t, SPECS)
        assert out.ok.tolist() == [True, False, True]
        assert out.rejects[0].row == 1 and out.rejects[0].value == "inf"

    def test_nan_is_missing_not_rejected(self):
        t = pa.table({"n": [float("nan"), 1.0], "c": ["x", "y"], "b": [True, False], "d": ["2020-01-01"] * 2})
        out = coerce(t, SPECS)
        assert out.ok.all() and out.rejects == []
        assert np.isnan(out.table.column("n").to_numpy(zero_copy_only=False)[0])

    @pytest.mark.parametrize("text", ["NaN", "nan", ""])
    def test_nan_text_is_missing_not_rejected(self, text):
        out = coerce_column(pa.array([text, "3"]), Role.NUMERIC)
        assert not out[1].any()
        assert np.isnan(out[0].to_numpy(zero_copy_only=False)[0])

    def test_bad_values_reject_only_their_record_once(self):
        # one record bad in two columns is one reject
        t = pa.table(
            {
                "n": ["x", "1", "2"] + ["3"] * 17,
                "c": ["a"] * 20,
                "b": ["maybe", "1", "zz"] + ["0"] * 17,
                "d": ["2020-01-01"] * 20,
            }
        )
        out = coerce(t, SPECS)
        assert out.ok.tolist()[:3] == [False, True, False]
        assert [(r.row, r.column) for r in out.rejects] == [(0, "n"), (2, "b")]

    def test_float_categories_match_integer_text(self):
        vals, bad = coerce_column(pa.array([1.0, 2.5, None]), Role.CATEGORICAL)
        assert vals.to_pylist() == ["1", "2.5", None] and not bad.any()

    @pytest.mark.parametrize(
        ("values", "bad"), [([0, 1, 2], [False, False, True]), ([0.0, 1.0, 0.5], [False, False, True])]
    )
    def test_boolean_from_numbers(self, values, bad):
        assert coerce_column(pa.array(values), Role.BOOLEAN)[1].tolist() == bad

    def test_timezone_aware_timestamps(self):
        arr = pa.array([0, 3_600_000], pa.timestamp("ms", tz="UTC"))
        vals, _ = coerce_column(arr, Role.DATETIME)
        assert vals.to_pylist() == [0.0, 3_600.0]

    def test_record_batch_input(self):
        b = pa.record_batch({"n": [1.0], "c": ["x"], "b": [True], "d": ["2020-01-01"]})
        assert coerce(b, SPECS).ok.tolist() == [True]
