"""Result tables are streamed to Parquet, CSV or JSON lines, chosen by the extension."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from winnow.errors import ConfigError
from winnow.io.writers import TableWriter

T1 = pa.table({"rank": [1, 2], "score": [0.9, 0.8], "name": ["a", None]})
T2 = pa.table({"rank": [3], "score": [0.7], "name": ["c"]})


def _read(path):
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".csv":
        return pacsv.read_csv(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name", ["out.parquet", "out.csv", "out.jsonl"])
def test_streams_several_tables_into_one_file(tmp_path, name):
    path = tmp_path / "nested" / name
    with TableWriter(path) as w:
        w.write(T1)
        w.write(T2)
    assert w.rows == 3
    rows = _read(path)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert [r["score"] for r in rows] == [0.9, 0.8, 0.7]
    assert rows[1]["name"] is None or rows[1]["name"] == ""


@pytest.mark.parametrize("name", ["out.parquet", "out.csv", "out.jsonl"])
def test_empty_output_still_has_a_valid_file(tmp_path, name):
    path = tmp_path / name
    w = TableWriter(path)
    w.close(empty_schema=T1.schema)
    assert path.exists()
    assert _read(path) == []
    if name.endswith(".parquet"):
        assert pq.read_schema(path).names == ["rank", "score", "name"]


def test_unknown_extension_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        TableWriter(tmp_path / "out.xlsx")
    assert info.value.option == "--out"


def test_ndjson_is_jsonl(tmp_path):
    assert TableWriter(tmp_path / "o.ndjson").format == ".jsonl"
