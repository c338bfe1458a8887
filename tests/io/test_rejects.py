"""Rejected records are written with their reason, lazily, and counted."""

from __future__ import annotations

import json

from winnow.io.rejects import Reject, RejectsWriter


def test_describe():
    assert Reject(3, "bad", column="x").describe() == "record 3, column 'x': bad"
    assert Reject(0, "malformed").describe() == "record 0: malformed"
    assert Reject(3, "bad", column="x").describe("field") == "record 3, field 'x': bad"


def test_one_reject_numbered_and_shown_as_a_records_error():
    r = Reject(0, "expected a finite number, received str 'abc'", "spend", "str 'abc'", "a finite number")
    moved = r.at(7)
    assert moved.row == 7 and r.row == 0 and r.at(0) is r
    assert moved.record_json() == {
        "index": 7,
        "field": "spend",
        "expected": "a finite number",
        "received": "str 'abc'",
        "message": "record 7, field 'spend': expected a finite number, received str 'abc'",
    }
    assert Reject(2, "no score").record_json()["expected"] == "a record the model can score"


def test_writer_appends_jsonl_and_counts(tmp_path):
    path = tmp_path / "sub" / "rejects.jsonl"
    with RejectsWriter(path, keep=1) as w:
        w.add([Reject(1, "r1", "a", "v1")])
        w.add([Reject(5, "r2")])
    assert w.count == 2
    assert [r.row for r in w.examples] == [1]  # only `keep` examples are held in memory
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"row": 1, "reason": "r1", "column": "a", "value": "v1", "expected": None},
        {"row": 5, "reason": "r2", "column": None, "value": None, "expected": None},
    ]


def test_no_file_when_nothing_is_rejected(tmp_path):
    path = tmp_path / "rejects.jsonl"
    with RejectsWriter(path) as w:
        w.add([])
    assert w.count == 0 and not path.exists()


def test_counts_without_a_file():
    w = RejectsWriter(None)
    w.add([Reject(0, "x"), Reject(1, "y")])
    w.close()
    assert w.count == 2
