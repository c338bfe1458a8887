"""Property-based tests (hypothesis): any input to the stream decoder or the record validator is
scored or rejected with a reason, never a crash. Derandomized, with no example database, so a
run is the same every time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winnow.stream.records import DecodeError, decode_columns, decode_entry

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIELDS = ["customer_id", "spend", "visits", "region", "member", "signup"]

#: JSON values, with the shapes a record's fields are likely to take (and a few they should not)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", " ", "1.5", "1e5", "yes", "no", "2020-01-03", "east", "NaN", "1_000", "\t7 "])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
records = st.dictionaries(st.sampled_from([*FIELDS, "extra", "records"]), values, max_size=8) | values


@SETTINGS
@given(st.dictionaries(st.binary(max_size=12), st.binary(max_size=40), max_size=6), st.booleans())
def test_any_stream_entry_is_a_record_or_a_decode_error(fields: dict[bytes, bytes], as_json: bool) -> None:
    try:
        record = decode_entry(fields, json_field="data" if as_json else None)
    except DecodeError as e:
        assert str(e)
    else:
        assert isinstance(record, dict) and all(isinstance(k, str) for k in record)


@SETTINGS
@given(
    st.lists(
        st.dictionaries(st.sampled_from([b"a", b"b", b"\xff"]), st.binary(max_size=8), max_size=3), max_size=5
    )
)
def test_column_decoding_agrees_with_entry_decoding(entries: list[dict[bytes, bytes]]) -> None:
    table = decode_columns([[x for kv in e.items() for x in kv] for e in entries])
    if table is not None:
        assert table.to_pylist() == [decode_entry(e) for e in entries]


@pytest.fixture(scope="module")
def scorer(fitted: Any) -> Any:
    from winnow.online import OnlineScorer

    return OnlineScorer(fitted)


@SETTINGS
@given(st.lists(records, min_size=1, max_size=6))
def test_any_records_are_scored_or_rejected_with_a_reason(scorer: Any, batch: list[Any]) -> None:
    results = scorer.score_records(batch, reasons=2)
    assert [r.index for r in results] == list(range(len(batch)))
    for r in results:
        if r.error is None:
            assert r.score is not None and 0.0 <= r.score <= 1.0
        else:
            assert r.score is None and r.error.reason and r.error.expected
            json.dumps(r.error.record_json())  # printable, whatever came in
    # each record alone gets the same outcome as in the batch (no record spoils another)
    for rec, together in zip(batch, results, strict=True):
        alone = scorer.score_records([rec], reasons=2)[0]
        assert (alone.error is None) == (together.error is None)
        if alone.error is None:
            assert alone.score == pytest.approx(together.score, abs=1e-12)
