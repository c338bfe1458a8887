"""Table sources: every format yields bounded Arrow batches, bad records become rejects."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from winnow.errors import DataError
from winnow.io.readers import ArrowSource, CsvSource, JsonLinesSource, ParquetSource, open_source
from winnow.io.rejects import Reject


def _frame(n: int = 50) -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(n), "b": [f"s{i % 3}" for i in range(n)], "c": np.linspace(0, 1, n)})


def _rows(source, batch_rows: int = 65_536, rejects: list | None = None) -> pa.Table:
    batches = list(source.batches(batch_rows, rejects=rejects))
    return pa.Table.from_batches(batches) if batches else None


class TestCsv:
    def test_reads_every_column_as_text(self, tmp_path):
        p = tmp_path / "d.csv"
        _frame().to_csv(p, index=False)
        src = open_source(p)
        assert isinstance(src, CsvSource)
        assert src.column_names() == ["a", "b", "c"]
        t = src.read_all()
        assert t.num_rows == 50
        assert all(pa.types.is_string(f.type) for f in t.schema)
        assert t.column("a").to_pylist()[:3] == ["0", "1", "2"]

    def test_batches_are_bounded_and_in_order(self, tmp_path):
        p = tmp_path / "d.csv"
        _frame(50).to_csv(p, index=False)
        batches = list(open_source(p).batches(7))
        assert all(b.num_rows <= 7 for b in batches)
        assert sum(b.num_rows for b in batches) == 50
        got = [v for b in batches for v in b.column("a").to_pylist()]
        assert got == [str(i) for i in range(50)]

    def test_can_be_read_twice(self, tmp_path):
        p = tmp_path / "d.csv"
        _frame().to_csv(p, index=False)
        src = open_source(p)
        assert _rows(src, 10).equals(_rows(src, 10))

    def test_null_markers_are_missing(self, tmp_path):
        p = tmp_path / "d.csv"
        p.write_text('x,y\n1,NA\n2,\n3,null\n4,""\n5,ok\n')
        t = open_source(p).read_all()
        # a quoted empty string is a value, not a missing one
        assert t.column("y").to_pylist() == [None, None, None, "", "ok"]

    def test_tsv(self, tmp_path):
        p = tmp_path / "d.tsv"
        p.write_text("x\ty\n1\ta,b\n")
        t = open_source(p).read_all()
        assert t.column("y").to_pylist() == ["a,b"]

    def test_gzip_compressed(self, tmp_path):
        p = tmp_path / "d.csv.gz"
        with gzip.open(p, "wt") as fh:
            _frame(20).to_csv(fh, index=False)
        assert open_source(p).read_all().num_rows == 20

    def test_empty_file_is_a_data_error(self, tmp_path):
        p = tmp_path / "empty.csv"
        p.write_bytes(b"")
        with pytest.raises(DataError, match="empty"):
            open_source(p)

    def test_whitespace_only_file_is_a_data_error(self, tmp_path):
        p = tmp_path / "blank.csv"
        p.write_text("\n\n")
        with pytest.raises(DataError):
            open_source(p).read_all()

    def test_header_only_has_columns_and_no_rows(self, tmp_path):
        p = tmp_path / "h.csv"
        p.write_text("a,b,c\n")
        src = open_source(p)
        assert src.column_names() == ["a", "b", "c"]
        t = src.read_all()
        assert t.num_rows == 0 and t.column_names == ["a", "b", "c"]

    def test_malformed_lines_become_rejects_with_their_row(self, tmp_path):
        p = tmp_path / "bad.csv"
        p.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n13,14,15\n")
        rejects: list[Reject] = []
        t = _rows(open_source(p), rejects=rejects)
        assert t.column("a").to_pylist() == ["1", "6", "13"]
        assert len(rejects) == 2
        assert [r.value for r in rejects] == ["4,5", "9,10,11,12"]
        assert "malformed CSV line" in rejects[0].reason
        assert "expected 3 fields, got 2" in rejects[0].reason
        assert "expected 3 fields, got 4" in rejects[1].reason
        # rows are 0-based data rows, header excluded (see Reject)
        assert [r.row for r in rejects] == [1, 3]


class TestParquet:
    def test_a_slow_consumer_does_not_make_the_reader_buffer_ahead(self, tmp_path):
        """Memory is bounded by the batch, not by how far decoding runs ahead of scoring."""
        import time

        p = tmp_path / "big.parquet"
        rng = np.random.default_rng(0)
        table = pa.table({f"c{i}": rng.random(600_000) for i in range(6)})  # ~29 MB decoded
        pq.write_table(table, p, row_group_size=20_000)
        peak = 0
        for _, batch in open_source(p).numbered_batches(10_000):
            time.sleep(0.004)  # scoring is slower than decoding
            peak = max(peak, pa.total_allocated_bytes())
            del batch
        assert peak < 8 * 2**20, f"reader held {peak / 2**20:.0f} MiB"

    def test_folder_files_with_different_column_order_are_conformed(self, tmp_path):
        d = tmp_path / "parts"
        d.mkdir()
        pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), d / "part-0.parquet")
        pq.write_table(pa.table({"b": ["z"], "a": [3]}), d / "part-1.parquet")
        batches = list(open_source(d).numbered_batches(10))
        assert [r for r, _ in batches] == [0, 2]
        assert all(b.schema.names == ["a", "b"] for _, b in batches)
        assert pa.Table.from_batches([b for _, b in batches]).column("a").to_pylist() == [1, 2, 3]

    def test_file_keeps_types(self, tmp_path):
        p = tmp_path / "d.parquet"
        _frame().to_parquet(p)
        src = open_source(p)
        assert isinstance(src, ParquetSource)
        assert src.num_rows() == 50
        t = src.read_all()
        assert pa.types.is_integer(t.schema.field("a").type)
        assert t.column("a").to_pylist() == list(range(50))

    def test_folder_of_files(self, tmp_path):
        d = tmp_path / "parts"
        d.mkdir()
        f = _frame(30)
        f.iloc[:10].to_parquet(d / "part-0.parquet")
        f.iloc[10:].to_parquet(d / "part-1.parquet")
        src = open_source(d)
        assert src.num_rows() == 30
        assert sorted(src.read_all().column("a").to_pylist()) == list(range(30))

    def test_folder_without_parquet_is_a_data_error(self, tmp_path):
        (tmp_path / "x.txt").write_text("hi")
        with pytest.raises(DataError, match=r"no \.parquet"):
            open_source(tmp_path)

    def test_batches_are_bounded(self, tmp_path):
        p = tmp_path / "d.parquet"
        pq.write_table(pa.Table.from_pandas(_frame(100)), p, row_group_size=30)
        batches = list(open_source(p).batches(16))
        assert all(0 < b.num_rows <= 16 for b in batches)
        assert sum(b.num_rows for b in batches) == 100

    def test_corrupt_parquet_is_a_data_error(self, tmp_path):
        p = tmp_path / "bad.parquet"
        p.write_bytes(b"not a parquet file at all")
        with pytest.raises(DataError):
            open_source(p).read_all()


class TestJsonLines:
    def test_keeps_json_types(self, tmp_path):
        p = tmp_path / "d.jsonl"
        p.write_text(
            '{"id": 7, "a": 1, "b": "x", "c": true}\n\n'
            '{"id": 9007199254740993, "a": 2.5, "c": null, "d": [1], "e": {"k": 1}}\n'
        )
        src = open_source(p)
        assert isinstance(src, JsonLinesSource)
        assert src.column_names() == ["id", "a", "b", "c", "d", "e"]
        t = src.read_all()
        assert t.schema.types == [pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.string(), pa.string()]
        assert t.column("id").to_pylist() == [7, 9007199254740993]  # exact, not through a float
        assert t.column("a").to_pylist() == [1.0, 2.5]
        assert t.column("b").to_pylist() == ["x", None]
        assert t.column("c").to_pylist() == [True, None]
        assert t.column("d").to_pylist() == [None, "[1]"]
        assert t.column("e").to_pylist() == [None, '{"k": 1}']

    def test_mixed_kinds_and_huge_integers_are_text(self, tmp_path):
        p = tmp_path / "d.jsonl"
        p.write_text('{"a": 1, "b": 1, "c": null}\n{"a": "x", "b": 100000000000000000000000, "c": null}\n')
        t = open_source(p).read_all()
        assert t.schema.types == [pa.string()] * 3
        assert t.column("a").to_pylist() == ["1", "x"]
        assert t.column("b").to_pylist() == ["1", "100000000000000000000000"]

    def test_later_values_converted_or_rejected_never_altered(self, tmp_path):
        p = tmp_path / "d.jsonl"
        lines = [
            {"id": 1, "x": 0.5, "ok": True},
            {"id": "7", "x": 3, "ok": "false"},
            {"id": 2.0, "x": "1e3"},
            {"id": 2.5},
            {"id": "x"},
            {"id": 1e30},
            {"id": True},
            {"x": "high"},
            {"ok": 1},
            {"id": 3},
        ]
        p.write_text("".join(json.dumps(o) + "\n" for o in lines))
        rejects: list[Reject] = []
        batches = list(JsonLinesSource(p, sample_lines=1).numbered_batches(rejects=rejects))
        assert [(first, b.num_rows) for first, b in batches] == [(0, 3), (9, 1)]
        assert all(b.schema == batches[0][1].schema for _, b in batches)
        t = pa.Table.from_batches([b for _, b in batches])
        assert t.column("id").to_pylist() == [1, 7, 2, 3]
        assert t.column("x").to_pylist() == [0.5, 3.0, 1000.0, None]
        assert t.column("ok").to_pylist() == [True, False, None, None]
        assert [(r.row, r.column, r.value) for r in rejects] == [
            (3, "id", "2.5"), (4, "id", '"x"'), (5, "id", "1e+30"), (6, "id", "true"),
            (7, "x", '"high"'), (8, "ok", "1"),
        ]  # fmt: skip
        assert rejects[0].reason.startswith("2.5 is not an integer, as the column's values in the first 1 ")
        assert "give the column one JSON type" in rejects[0].reason
        assert "is not a number" in rejects[4].reason and "is not true or false" in rejects[5].reason

    def test_invalid_lines_become_rejects_with_reason(self, tmp_path):
        p = tmp_path / "d.jsonl"
        p.write_text('{"a": 1}\n{bad json\n[1, 2]\n{"a": 4}\n')
        rejects: list[Reject] = []
        t = _rows(open_source(p), rejects=rejects)
        assert t.column("a").to_pylist() == [1, 4]
        assert [r.row for r in rejects] == [1, 2]
        assert rejects[0].reason.startswith("invalid JSON")
        assert "expected a JSON object, got list" in rejects[1].reason
        assert rejects[0].value.startswith("{bad json")

    def test_batches_are_bounded(self, tmp_path):
        p = tmp_path / "d.jsonl"
        p.write_text("".join(json.dumps({"a": i}) + "\n" for i in range(23)))
        batches = list(open_source(p).batches(5))
        assert [b.num_rows for b in batches] == [5, 5, 5, 5, 3]

    @pytest.mark.parametrize("suffix", [".ndjson", ".json"])
    def test_other_suffixes(self, tmp_path, suffix):
        p = tmp_path / f"d{suffix}"
        p.write_text('{"a": 1}\n')
        assert isinstance(open_source(p), JsonLinesSource)


class TestInMemory:
    def test_pandas(self):
        src = open_source(_frame())
        assert isinstance(src, ArrowSource) and src.num_rows() == 50
        assert src.read_all().column("a").to_pylist() == list(range(50))

    def test_pandas_index_is_not_a_column(self):
        f = _frame(5).set_index("a")
        assert open_source(f).column_names() == ["b", "c"]

    def test_polars(self):
        pl = pytest.importorskip("polars")
        src = open_source(pl.from_pandas(_frame()))
        assert src.read_all().column("b").to_pylist() == _frame()["b"].tolist()

    def test_arrow_table_and_record_batch(self):
        t = pa.Table.from_pandas(_frame(), preserve_index=False)
        assert open_source(t).read_all().equals(t)
        assert open_source(t.to_batches()[0]).num_rows() == 50

    def test_batches_are_bounded(self):
        batches = list(open_source(_frame(50)).batches(8))
        assert max(b.num_rows for b in batches) == 8 and sum(b.num_rows for b in batches) == 50

    def test_source_passes_through(self):
        src = open_source(_frame())
        assert open_source(src) is src


class TestOpenSourceErrors:
    def test_missing_path(self, tmp_path):
        with pytest.raises(DataError, match="does not exist"):
            open_source(tmp_path / "nope.csv")

    def test_unknown_extension(self, tmp_path):
        p = tmp_path / "d.xlsx"
        p.write_bytes(b"x")
        with pytest.raises(DataError, match="unknown file type"):
            open_source(p)

    def test_unsupported_object(self):
        with pytest.raises(DataError, match="cannot read data of type list"):
            open_source([1, 2, 3])

    @pytest.mark.parametrize("name", ["e.parquet", "e.jsonl"])
    def test_empty_files(self, tmp_path, name):
        p = tmp_path / name
        p.write_bytes(b"")
        with pytest.raises(DataError, match="empty"):
            open_source(p)
