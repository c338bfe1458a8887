"""Column-wise typing of records (stream entries decoded column by column, numbers as text)
gives exactly the results of the per-value checks, including for the records it refuses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from winnow.online import OnlineScorer
from winnow.stream.records import Entry, decode_columns, decode_entry


def _as_text(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Rows as a Redis flat map would carry them: every value text, missing as ""."""
    out = []
    for rec in frame.drop(columns=["churn", "future_spend"]).to_dict("records"):
        row = {}
        for k, v in rec.items():
            if v is None or (isinstance(v, float) and np.isnan(v)):
                row[k] = ""
            elif isinstance(v, pd.Timestamp):
                row[k] = v.isoformat()
            else:
                row[k] = str(v)
        out.append(row)
    return out


def _fields(rows: list[dict[str, str]]) -> list[dict[bytes, bytes]]:
    return [{k.encode(): v.encode() for k, v in r.items()} for r in rows]


def _pairs(entries: list[dict[bytes, bytes]]) -> list[list[bytes]]:
    """Entries as Redis sends them: flat field/value lists."""
    return [[x for kv in e.items() for x in kv] for e in entries]


def _same(a: Any, b: Any) -> None:
    assert [r.to_json() for r in a] == [r.to_json() for r in b]


@pytest.fixture(scope="module")
def scorer(fitted) -> OnlineScorer:
    return OnlineScorer(fitted)


def test_decode_columns_matches_decode_entry(train_frame: pd.DataFrame) -> None:
    fields = _fields(_as_text(train_frame.head(50)))
    table = decode_columns(_pairs(fields))
    assert table is not None
    assert table.to_pylist() == [decode_entry(f) for f in fields]


def test_decode_columns_leaves_irregular_entries_to_the_per_entry_path() -> None:
    assert decode_columns([[b"a", b"1"], [b"b", b"2"]]) is None  # different fields
    assert decode_columns([[b"a", b"1", b"b", b"2"], [b"b", b"2", b"a", b"1"]]) is None  # order
    assert decode_columns([[b"a", b"1", b"a", b"2"]]) is None  # a name sent twice
    assert decode_columns([[b"a", b"1"], [b"a", b"\xff"]]) is None  # not UTF-8
    assert decode_columns([[b"\xff", b"1"]]) is None  # name not UTF-8
    assert decode_columns([]) is None


def test_entry_fields_are_its_pairs_as_a_map() -> None:
    assert Entry("1-0", [b"a", b"1", b"b", b""]).fields == {b"a": b"1", b"b": b""}
    assert Entry("1-0", [b"a", b"1", b"a", b"2"]).fields == {b"a": b"2"}
    assert Entry("1-0", None).fields is None


def test_text_table_scores_like_records(scorer: OnlineScorer, train_frame: pd.DataFrame) -> None:
    rows = _as_text(train_frame.head(200))
    table = decode_columns(_pairs(_fields(rows)))
    assert table is not None
    assert scorer.validate_text_table(table) is not None  # the column-wise path is taken
    records = [decode_entry(f) for f in _fields(rows)]
    _same(scorer.score_text_table(table).results(), scorer.score_records(records))
    # the same records as typed JSON values (the HTTP path) score the same
    typed = train_frame.head(200).drop(columns=["churn", "future_spend"])
    typed = typed.assign(signup=typed["signup"].map(pd.Timestamp.isoformat))
    json_like = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in typed.to_dict("records")
    ]
    got = scorer.score_records(json_like)
    want = scorer.score_records(records)
    assert [r.score for r in got] == pytest.approx([r.score for r in want])


@pytest.mark.parametrize(
    ("column", "value", "accepted"),
    [
        ("spend", "n/a", False),
        ("spend", "nan", False),
        ("spend", "inf", False),
        ("spend", " 12.5 ", True),  # Python's float() takes the spaces, Arrow's cast does not
        ("spend", "   ", True),  # blank is missing
        ("visits", "1e1", True),
        ("member", "Yes", True),
        ("member", "maybe", False),
        ("signup", "2021-02-03T04:05:06Z", True),
        ("signup", "yesterday", False),
    ],
)
def test_irregular_values_get_the_per_value_verdict(
    scorer: OnlineScorer, train_frame: pd.DataFrame, column: str, value: str, accepted: bool
) -> None:
    rows = _as_text(train_frame.head(40))
    rows[7] = {**rows[7], column: value}
    table = decode_columns(_pairs(_fields(rows)))
    assert table is not None
    got = scorer.score_text_table(table).results()
    want = scorer.score_records([decode_entry(f) for f in _fields(rows)])
    _same(got, want)
    assert (got[7].error is None) is accepted
    if not accepted:
        assert got[7].error.column == column
        assert all(r.error is None for i, r in enumerate(got) if i != 7)


def test_a_missing_field_is_named(scorer: OnlineScorer, train_frame: pd.DataFrame) -> None:
    rows = [{k: v for k, v in r.items() if k != "region"} for r in _as_text(train_frame.head(5))]
    table = decode_columns(_pairs(_fields(rows)))
    assert table is not None
    got = scorer.score_text_table(table).results()
    assert all(r.error is not None and r.error.column == "region" for r in got)


def test_json_values_with_text_numbers_take_the_fast_path(scorer: OnlineScorer, train_frame) -> None:
    rows = _as_text(train_frame.head(30))
    records: list[dict[str, Any]] = [dict(r) for r in rows]
    assert scorer._bulk(records) is not None
    table, good, errors = scorer.validate(records)
    assert good == list(range(30)) and errors == []
    assert isinstance(table, pa.Table)


def test_fast_and_per_value_typing_agree(fitted, train_frame: pd.DataFrame, monkeypatch) -> None:
    records: list[dict[str, Any]] = [dict(r) for r in _as_text(train_frame.head(100))]
    records[3]["spend"] = " 7 "
    records[4]["member"] = " FALSE"
    fast = OnlineScorer(fitted)
    slow = OnlineScorer(fitted)
    monkeypatch.setattr(slow, "_bulk", lambda recs: None)
    a, _, _ = fast.validate(records)
    b, _, _ = slow.validate(records)
    assert a.equals(b)
    _same(fast.score_records(records), slow.score_records(records))


def test_python_dates_in_records_score_like_iso_text(scorer: OnlineScorer, train_frame: pd.DataFrame) -> None:
    """In-process callers pass datetime, date and pandas Timestamp values as they hold them."""
    text = _as_text(train_frame.head(20))
    as_objects = []
    for i, row in enumerate(text):
        ts = pd.Timestamp(row["signup"])
        value = [ts, ts.to_pydatetime(), ts.date(), ts.tz_localize("UTC")][i % 4]
        as_objects.append({**row, "signup": value})
    got, want = scorer.score_records(as_objects), scorer.score_records(text)
    assert all(r.error is None for r in got)
    _same(got, want)


def _value_forms(train_frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per row, its values in the forms clients send: JSON numbers and booleans,
    numbers and booleans as text, ISO dates with and without a zone, empty text, null."""
    base = train_frame.drop(columns=["churn", "future_spend"]).head(40).to_dict("records")
    out = []
    for i, rec in enumerate(base):
        spend = None if isinstance(rec["spend"], float) and np.isnan(rec["spend"]) else float(rec["spend"])
        signup = rec["signup"].isoformat()
        out.append(
            {
                "customer_id": int(rec["customer_id"]),
                "spend": [spend, str(spend) if spend is not None else "", int(spend or 0), None][i % 4],
                "visits": [int(rec["visits"]), str(rec["visits"]), f" {rec['visits']} "][i % 3],
                "region": [rec["region"], "", None][i % 7 if i % 7 < 3 else 0],
                "member": [bool(rec["member"]), "TRUE" if rec["member"] else " no", None][i % 3],
                "signup": [signup, signup + "Z", signup + "+02:00", signup[:10], "", None][i % 6],
            }
        )
    return out


def test_single_records_typed_without_arrow_score_like_the_table_path(fitted, train_frame) -> None:
    """The service's one-record path (``typed_records``) gives the table path's results to the
    bit: scores, selection, ranks, reasons (with typed values) and ids."""
    scorer = OnlineScorer(fitted)
    records = _value_forms(train_frame)
    for threshold in (None, 0.0):
        for rec in records:
            assert scorer._typed_small([rec]) is not None
            small = scorer._score([rec], threshold=threshold, budget=None, reasons=3)
            table, good, errors = scorer.validate([rec])
            assert errors == []
            full = scorer._finish(table, good, 1, {}, [rec], threshold=threshold, budget=None, reasons=3)
            _same(small.results(), full.results())
            assert small.scores.tobytes() == full.scores.tobytes()


def test_unusual_single_records_take_the_checked_path(fitted, train_frame) -> None:
    """A value the small path does not type exactly like the checked path sends the record there,
    which names the problem."""
    scorer = OnlineScorer(fitted)
    good = _value_forms(train_frame)[0]
    for field, value in [
        ("spend", "nan"),
        ("spend", float("inf")),
        ("spend", True),
        ("region", 7),
        ("region", "\ud800"),
        ("member", "maybe"),
        ("signup", "not a date"),
    ]:
        rec = {**good, field: value}
        assert scorer._typed_small([rec]) is None, (field, value)
    missing = {k: v for k, v in good.items() if k != "visits"}
    assert scorer._typed_small([missing]) is None
    (result,) = scorer.score_records([missing])
    assert result.error is not None and result.error.column == "visits"
    (result,) = scorer.score_records([{**good, "region": 7}])
    assert result.error is None  # a number is a valid category: typed by the checked path


EDGE_NUMBERS = ["1.5", " 2 ", "\t-3e-5", "+.5", "7.", "", "  ", "1e99", "1e100", "1_000", "inf", "nan",
                "\n2", "0x10", "١٢", "1e308", "1e-100", "9" * 400]  # fmt: skip
EDGE_BOOLEANS = ["true", " YES\t", "f", "0", "", "\ntrue", "nope", "TRUE ", "y"]


def test_number_and_boolean_text_is_what_the_pattern_says() -> None:
    """The per-value check, the column paths and the published pattern agree on every text."""
    import re

    from winnow.config import Role
    from winnow.record_values import (
        BOOLEAN_TEXT,
        COLUMNS,
        NUMBER_TEXT,
        TEXT_COLUMNS,
        Invalid,
        convert_checked,
        typed_records,
    )

    for role, pattern, values in (
        (Role.NUMERIC, NUMBER_TEXT, EDGE_NUMBERS),
        (Role.BOOLEAN, BOOLEAN_TEXT, EDGE_BOOLEANS),
    ):
        for v in values:
            try:
                convert_checked(v, role)
                taken = True
            except Invalid:
                taken = False
            matches = re.fullmatch(pattern, v) is not None
            # a text that matches is taken, but for a number too large for a field to hold
            assert taken == (matches and v != "9" * 400), v
            # a fast path never takes more (None or an error: the per-value path decides)
            assert (_fast(COLUMNS[role], [v]) is not None) <= taken, v
            assert (_fast(TEXT_COLUMNS[role], pa.array([v or None], pa.string())) is not None) <= taken, v
            assert (typed_records([{"x": v}], [("x", role)]) is not None) <= taken, v


def _fast(path: Any, arg: Any) -> Any:
    try:
        return path(arg)
    except (TypeError, ValueError, OverflowError):
        return None


def test_numbers_beyond_the_limit_are_refused_not_rounded() -> None:
    from winnow.config import Role
    from winnow.record_values import NUMBER_LIMIT, Invalid, convert_checked, typed_records

    assert convert_checked(10**308, Role.NUMERIC) == NUMBER_LIMIT
    for v in (10**308 + 1, -(10**308) - 1, -1.0000000000000002e308, 2**1100):
        with pytest.raises(Invalid):
            convert_checked(v, Role.NUMERIC)
        assert typed_records([{"x": v}], [("x", Role.NUMERIC)]) is None


def test_long_integers_in_a_body_keep_their_digits() -> None:
    from winnow.serve.parsing import decode_json

    doc = decode_json(b'{"id": 123456789012345678901234567890, "x": -1' + b"0" * 310 + b"}")
    assert doc["id"] == 123456789012345678901234567890 and doc["x"] == -(10**310)
    assert decode_json(b'{"id": 12}') == {"id": 12}
