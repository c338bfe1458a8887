"""Rejected records are written with their reason, lazily, and counted."""

from __future__ import annotations

import json

from winnow.io.rejects import Reject, RejectsWriter


def test_describe():
    assert Reject(3, "bad", column="x").describe() == "record 3, column 'x': bad"
    assert Reject(0, "malformed").describe() == "record 0: malformed"


def test_writer_appends_jsonl_and_counts(tmp_path):
    path = tmp_path / "sub" / "rejects.jsonl"
    with RejectsWriter(path, keep=1) as w:
        w.add([Reject(1, "r1", "a", "v1")])
        w.add([Reject(5, "r2")])
    assert w.count == 2
    assert [r.row for r in w.examples] == [1]  # only `keep` examples are held in memory
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"row": 1, "reason": "r1", "column": "a", "value": "v1"},
        {"row": 5, "reason": "r2", "column": None, "value": None},
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
