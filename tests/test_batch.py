"""Batch screening and scoring: exact global top-k, batch-size independence, every row counted."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import make_frame
from winnow import Budget
from winnow.engines.local import score_file
from winnow.errors import SchemaError

REASON = re.compile(r"^(spend|visits|region|member|signup)=.+ \(\+\d+\.\d\d\)$")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """Data to screen: 1,000 new customers (no label needed)."""
    return make_frame(1000, seed=11).drop(columns=["churn", "future_spend"])


@pytest.fixture(scope="module")
def scores(fitted, data) -> np.ndarray:
    return fitted.score(data)


def _top_k(scores: np.ndarray, k: int) -> list[int]:
    valid = np.flatnonzero(~np.isnan(scores))
    return valid[np.lexsort((valid, -scores[valid]))][:k].tolist()


class TestTopK:
    def test_selected_count_is_the_budget_of_scored_rows(self, fitted, data):
        r = fitted.screen(data)
        s = r.summary
        assert s.rows_read == s.rows_scored == 1000 and s.rows_rejected == 0
        assert s.rows_selected == r.selected.num_rows == math.ceil(0.05 * 1000)
        assert s.selection == "top 5.00% of 1,000 scored rows"

    def test_selected_rows_are_exactly_the_top_scores(self, fitted, data, scores):
        sel = fitted.screen(data).selected
        assert sel.column("row").to_pylist() == _top_k(scores, 50)
        assert sel.column("rank").to_pylist() == list(range(1, 51))
        np.testing.assert_allclose(sel.column("score").to_numpy(), scores[_top_k(scores, 50)], rtol=1e-12)
        assert float(np.min(sel.column("score").to_numpy())) >= np.sort(scores)[-51]

    def test_scores_fall_with_rank(self, fitted, data):
        s = fitted.screen(data).selected.column("score").to_numpy()
        assert (np.diff(s) <= 0).all()

    def test_summary_threshold_is_the_last_selected_score(self, fitted, data, scores):
        r = fitted.screen(data)
        assert r.summary.threshold == pytest.approx(scores[_top_k(scores, 50)[-1]], rel=1e-6)

    def test_row_points_at_the_input_record(self, fitted, data):
        sel = fitted.screen(data).selected
        ids = data["customer_id"].to_numpy()
        assert sel.column("customer_id").to_pylist() == ids[sel.column("row").to_numpy()].tolist()

    @pytest.mark.parametrize("batch_rows", [1, 7, 64, 999])
    def test_batch_size_does_not_change_the_result(self, fitted, data, batch_rows):
        a = fitted.screen(data, batch_rows=65_536).selected
        b = fitted.screen(data, batch_rows=batch_rows).selected
        assert a.column("row").to_pylist() == b.column("row").to_pylist()
        np.testing.assert_allclose(a.column("score").to_numpy(), b.column("score").to_numpy(), rtol=1e-12)
        assert a.column("reason_1").to_pylist() == b.column("reason_1").to_pylist()

    def test_batch_size_independence_from_a_file(self, fitted, data, tmp_path):
        data.to_parquet(tmp_path / "d.parquet", row_group_size=100)
        a = fitted.screen(tmp_path / "d.parquet", batch_rows=7).selected
        b = fitted.screen(data).selected
        assert a.column("row").to_pylist() == b.column("row").to_pylist()
        np.testing.assert_allclose(a.column("score").to_numpy(), b.column("score").to_numpy(), rtol=1e-12)

    @pytest.mark.parametrize(
        ("budget", "k"), [(25, 25), ("0.1", 100), (Budget(count=5000), 1000), (0.001, 1)]
    )
    def test_budget_override(self, fitted, data, scores, budget, k):
        r = fitted.screen(data, budget=budget)
        assert r.summary.rows_selected == k
        assert r.selected.column("row").to_pylist() == _top_k(scores, k)


class TestThresholdMode:
    def test_selects_every_row_at_or_above_the_threshold(self, fitted, data, scores):
        r = fitted.screen(data, use_threshold=True, batch_rows=64)
        thr = fitted.threshold_.value
        expected = _top_k(scores, int((scores >= thr).sum()))
        assert r.selected.column("row").to_pylist() == expected
        assert r.selected.column("rank").to_pylist() == list(range(1, len(expected) + 1))
        assert r.summary.threshold == thr
        assert "artifact threshold" in r.summary.selection

    def test_min_precision_budget_selects_by_threshold(self, fitted, data):
        r = fitted.screen(data, budget=Budget(min_precision=0.9))
        assert r.summary.threshold == fitted.threshold_.value

    def test_batch_size_does_not_change_the_result(self, fitted, data):
        a = fitted.screen(data, use_threshold=True, batch_rows=3).selected
        b = fitted.screen(data, use_threshold=True).selected
        assert a.column("row").to_pylist() == b.column("row").to_pylist()


class TestOutput:
    def test_columns(self, fitted, data):
        sel = fitted.screen(data).selected
        names = sel.column_names
        assert names[:3] == ["rank", "row", "score"]
        assert names[3 : 3 + data.shape[1]] == list(data.columns)
        assert names[-3:] == ["reason_1", "reason_2", "reason_3"]
        # input values are passed through unchanged
        first = sel.to_pylist()[0]
        src = data.iloc[first["row"]]
        assert first["customer_id"] == src["customer_id"] and first["region"] == src["region"]

    def test_reasons_name_input_columns(self, fitted, data):
        sel = fitted.screen(data).selected
        r1 = sel.column("reason_1").to_pylist()
        assert all(r is not None and REASON.match(r) for r in r1)
        for r in sel.column("reason_2").to_pylist() + sel.column("reason_3").to_pylist():
            assert r is None or REASON.match(r)

    @pytest.mark.parametrize("name", ["top.parquet", "top.csv", "top.jsonl"])
    def test_written_file_matches_the_returned_table(self, fitted, data, tmp_path, name):
        out = tmp_path / name
        r = fitted.screen(data, out=out)
        assert r.summary.out == str(out)
        if name.endswith(".parquet"):
            rows = pq.read_table(out).to_pylist()
        elif name.endswith(".csv"):
            rows = pd.read_csv(out).to_dict("records")
        else:
            rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [x["row"] for x in rows] == r.selected.column("row").to_pylist()
        assert [x["rank"] for x in rows] == list(range(1, 51))
        np.testing.assert_allclose([x["score"] for x in rows], r.selected.column("score").to_numpy())

    def test_empty_input_writes_an_empty_file(self, fitted, data, tmp_path):
        out = tmp_path / "top.parquet"
        r = fitted.screen(data.head(0), out=out)
        assert r.summary.rows_read == 0 and r.summary.rows_selected == 0
        assert pq.read_table(out).num_rows == 0
        assert {"rank", "row", "score"} <= set(pq.read_schema(out).names)

    def test_header_only_csv_screens_nothing(self, fitted, data, tmp_path):
        csv = tmp_path / "h.csv"
        csv.write_text(",".join(data.columns) + "\n")
        out = tmp_path / "top.csv"
        s = fitted.screen(csv, out=out).summary
        assert (s.rows_read, s.rows_scored, s.rows_rejected, s.rows_selected) == (0, 0, 0, 0)
        assert out.read_text().splitlines()[0].replace('"', "").split(",")[:3] == ["rank", "row", "score"]

    def test_header_only_csv_missing_a_column_is_refused(self, fitted, data, tmp_path):
        # the schema is checked even when there are no rows to score
        csv = tmp_path / "h.csv"
        csv.write_text(",".join(c for c in data.columns if c != "visits") + "\n")
        with pytest.raises(SchemaError) as info:
            fitted.screen(csv)
        assert info.value.missing == ["visits"]

    def test_progress_is_reported(self, fitted, data):
        calls = []
        fitted.screen(
            data, batch_rows=250, progress=lambda done, total, what: calls.append((done, total, what))
        )
        assert (1000, 1000) in {(d, t) for d, t, _ in calls}
        assert [d for d, _, _ in calls][:4] == [250, 500, 750, 1000]


class TestWorkers:
    def test_threads_give_the_same_result_and_rejects_as_one(self, fitted, data, tmp_path):
        f = data.copy()
        f.loc[[3, 500], "spend"] = np.inf
        threads = {n: lrn.threads for n, lrn in fitted.learners_.items()}
        one = fitted.screen(f, batch_rows=97, rejects=tmp_path / "one.jsonl")
        two = fitted.screen(f, batch_rows=97, rejects=tmp_path / "two.jsonl", workers=2)
        assert one.selected.equals(two.selected)
        assert (tmp_path / "one.jsonl").read_text() == (tmp_path / "two.jsonl").read_text()
        assert one.summary.rows_rejected == two.summary.rows_rejected == 2
        # the screener's own thread setting is restored afterwards
        assert {n: lrn.threads for n, lrn in fitted.learners_.items()} == threads

    def test_score_file_with_threads(self, fitted, data, tmp_path):
        score_file(fitted, data, tmp_path / "a.parquet", batch_rows=128)
        score_file(fitted, data, tmp_path / "b.parquet", batch_rows=128, workers=3)
        assert pq.read_table(tmp_path / "a.parquet").equals(pq.read_table(tmp_path / "b.parquet"))


class TestRankedOutput:
    """Many selected rows leave in rank order through disk, in bounded memory, unchanged."""

    def test_spilled_output_is_the_same_file(self, fitted, data, tmp_path, monkeypatch):
        import winnow.engines.local as batch

        big = pd.concat([data] * 3, ignore_index=True)
        whole = fitted.screen(big, out=tmp_path / "whole.parquet", budget=0.5, batch_rows=200)
        assert whole.selected is not None and whole.head.num_rows == 20
        monkeypatch.setattr(batch, "SPILL_ROWS", 64)
        spilled = fitted.screen(big, out=tmp_path / "spilled.parquet", budget=0.5, batch_rows=200)
        assert spilled.selected is None  # too many to return: they are in the file
        assert spilled.head.equals(whole.head)
        a, b = pq.read_table(tmp_path / "whole.parquet"), pq.read_table(tmp_path / "spilled.parquet")
        assert a.num_rows == 1500 and a.equals(b)
        assert a.column("rank").to_pylist() == list(range(1, 1501))

    def test_in_memory_screen_never_spills(self, fitted, data, monkeypatch):
        import winnow.engines.local as batch

        monkeypatch.setattr(batch, "SPILL_ROWS", 10)
        r = fitted.screen(data, budget=0.5)
        assert r.selected is not None and r.selected.num_rows == 500

    def test_types_of_later_parts_are_unified(self):
        from winnow.engines.output import RankedOutput

        out = RankedOutput(memory_rows=2)
        out.add(pa.table({"rank": [3, 1], "x": pa.nulls(2)}))
        out.add(pa.table({"rank": [2, 4], "x": ["b", "d"]}))
        out.add(pa.table({"rank": [5], "x": ["e"]}))
        tables = list(out.tables())
        merged = pa.concat_tables(tables)
        assert merged.column("rank").to_pylist() == [1, 2, 3, 4, 5]
        assert merged.column("x").to_pylist() == [None, "b", None, "d", "e"]
        out.close()


class TestRejects:
    def test_every_record_is_counted(self, fitted, data, tmp_path):
        f = data.copy()
        f.loc[[3, 500], "spend"] = np.inf
        rejects = tmp_path / "rejects.jsonl"
        r = fitted.screen(f, rejects=rejects)
        s = r.summary
        assert (s.rows_read, s.rows_scored, s.rows_rejected) == (1000, 998, 2)
        assert s.rows_selected == math.ceil(0.05 * 998)
        assert not {3, 500} & set(r.selected.column("row").to_pylist())
        lines = [json.loads(x) for x in rejects.read_text().splitlines()]
        assert [x["row"] for x in lines] == [3, 500]
        assert lines[0]["column"] == "spend" and "expected a finite number" in lines[0]["reason"]
        assert s.rejects == str(rejects)
        assert s.reject_examples[0].startswith("record 3, column 'spend'")

    def test_no_rejects_file_without_rejects(self, fitted, data, tmp_path):
        r = fitted.screen(data, rejects=tmp_path / "rejects.jsonl")
        assert r.summary.rejects is None and not (tmp_path / "rejects.jsonl").exists()

    def test_malformed_csv_and_json_lines_go_to_the_rejects_file(self, fitted, data, tmp_path):
        csv = tmp_path / "d.csv"
        data.head(20).to_csv(csv, index=False)
        lines = csv.read_text().splitlines()
        lines.insert(6, "1,2")  # a record with too few fields (data row 5)
        csv.write_text("\n".join(lines) + "\n")
        rejects = tmp_path / "csv.rejects.jsonl"
        s = fitted.screen(csv, rejects=rejects).summary
        assert (s.rows_read, s.rows_scored, s.rows_rejected) == (21, 20, 1)
        [rec] = [json.loads(x) for x in rejects.read_text().splitlines()]
        assert "malformed CSV line" in rec["reason"] and rec["value"] == "1,2"

        jsonl = tmp_path / "d.jsonl"
        recs = data.head(20).assign(signup=data["signup"].head(20).dt.strftime("%Y-%m-%d")).to_dict("records")
        text = [json.dumps({k: (None if v != v else v) for k, v in r.items()}) for r in recs]
        text.insert(3, '{"customer_id": 1, "spend": ')
        jsonl.write_text("\n".join(text) + "\n")
        rejects = tmp_path / "json.rejects.jsonl"
        s = fitted.screen(jsonl, rejects=rejects).summary
        assert (s.rows_read, s.rows_scored, s.rows_rejected) == (21, 20, 1)
        [rec] = [json.loads(x) for x in rejects.read_text().splitlines()]
        assert rec["row"] == 3 and rec["reason"].startswith("invalid JSON")

    def test_row_numbers_count_malformed_csv_lines(self, fitted, data, tmp_path):
        # `row` is the record's position in the input; a skipped malformed line still takes one
        csv = tmp_path / "d.csv"
        data.head(40).to_csv(csv, index=False)
        lines = csv.read_text().splitlines()
        lines.insert(3, "1,2")  # becomes data row 2
        csv.write_text("\n".join(lines) + "\n")
        r = fitted.screen(csv, budget=40, rejects=tmp_path / "r.jsonl")
        ids = r.selected.column("customer_id").to_pylist()
        rows = r.selected.column("row").to_pylist()
        for cid, row in zip(ids, rows, strict=True):
            i = int(cid) - 1000  # position in data.head(40)
            assert row == (i if i < 2 else i + 1)
        [rec] = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
        assert rec["row"] == 2

    def test_unseen_categories_are_scored_not_rejected(self, fitted, data):
        f = data.head(100).assign(region="atlantis")
        s = fitted.screen(f).summary
        assert s.rows_rejected == 0 and s.rows_scored == 100


class TestScoreFile:
    def test_every_scored_row_with_id_score_and_selected(self, fitted, data, scores, tmp_path):
        f = data.copy()
        f.loc[7, "spend"] = np.inf
        out = tmp_path / "scores.parquet"
        s = score_file(fitted, f, out, batch_rows=128, rejects_path=tmp_path / "rej.jsonl")
        t = pq.read_table(out)
        assert t.column_names == ["row", "customer_id", "score", "selected"]
        rows = t.column("row").to_numpy()
        assert rows.tolist() == [i for i in range(1000) if i != 7]
        np.testing.assert_allclose(t.column("score").to_numpy(), scores[rows], rtol=1e-12)
        thr = fitted.threshold_.value
        assert t.column("selected").to_pylist() == (scores[rows] >= thr).tolist()
        assert (s.rows_read, s.rows_scored, s.rows_rejected) == (1000, 999, 1)
        assert s.rows_selected == int((scores[rows] >= thr).sum())

    def test_csv_output(self, fitted, data, tmp_path):
        out = tmp_path / "scores.csv"
        score_file(fitted, data.head(10), out)
        back = pd.read_csv(out)
        assert back["customer_id"].tolist() == data["customer_id"].head(10).tolist()


def test_score_and_screen_agree_on_arrow_input(fitted, data, scores):
    t = pa.Table.from_pandas(data, preserve_index=False)
    sel = fitted.screen(t, budget=100).selected
    np.testing.assert_allclose(
        sel.column("score").to_numpy(), scores[sel.column("row").to_numpy()], rtol=1e-12
    )


def test_json_lines_ids_and_passthrough_keep_their_json_types(fitted, data, scores, tmp_path):
    jsonl = tmp_path / "d.jsonl"
    recs = data.head(200).assign(signup=data["signup"].head(200).dt.strftime("%Y-%m-%d")).to_dict("records")
    text = [json.dumps({k: (None if v != v else v) for k, v in r.items()}) for r in recs]
    jsonl.write_text("\n".join(text) + "\n")
    out = tmp_path / "top.jsonl"
    sel = fitted.screen(jsonl, budget=20, out=out).selected
    assert sel.schema.field("customer_id").type == pa.int64()
    assert sel.schema.field("spend").type == pa.float64()
    rows = sel.column("row").to_numpy()
    assert sel.column("customer_id").to_pylist() == data["customer_id"].to_numpy()[rows].tolist()
    np.testing.assert_allclose(sel.column("score").to_numpy(), scores[rows], rtol=1e-12)
    written = [json.loads(x) for x in out.read_text().splitlines()]
    assert [type(r["customer_id"]) for r in written] == [int] * 20  # a JSON number, not "1003"
    scored = tmp_path / "scores.jsonl"
    score_file(fitted, jsonl, scored)
    assert all(isinstance(json.loads(x)["customer_id"], int) for x in scored.read_text().splitlines())


def test_score_file_gives_reasons_to_every_row(fitted, data, tmp_path):
    out = tmp_path / "scores.parquet"
    score_file(fitted, data.head(200), out, reasons=2)
    t = pq.read_table(out)
    assert t.column_names == ["row", "customer_id", "score", "selected", "reason_1", "reason_2"]
    r1 = t.column("reason_1").to_pylist()
    chosen = t.column("selected").to_pylist()
    assert all(r is None or REASON.match(r) for r in r1)
    assert any(r is not None for r, c in zip(r1, chosen, strict=True) if not c)  # not selected too
    sel = fitted.screen(data.head(200), use_threshold=True, reasons=2).selected.to_pylist()
    by_row = dict(zip(t.column("row").to_pylist(), r1, strict=True))
    assert all(by_row[s["row"]] == s["reason_1"] for s in sel)  # the same reasons as the screen
