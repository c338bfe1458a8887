"""Data held by Arrow, Polars and DuckDB is read in batches, and screens like the same DataFrame."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from tests.helpers import make_frame
from winnow.errors import DataError
from winnow.io.frames import OnePassSource, StreamSource
from winnow.io.readers import open_source


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return pa.table({"a": np.arange(10), "b": [f"v{i}" for i in range(10)]})


def _sources(table: pa.Table) -> dict[str, object]:
    con = duckdb.connect()
    con.register("t", table)
    return {
        "dataset": pads.dataset(table),
        "reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=3)),
        "lazyframe": pl.from_arrow(table).lazy(),
        "duckdb": con.sql("select * from t"),
    }


@pytest.mark.parametrize("kind", ["dataset", "reader", "lazyframe", "duckdb"])
def test_streamed_in_bounded_batches_with_positions(table, kind):
    source = open_source(_sources(table)[kind])
    assert isinstance(source, OnePassSource if kind == "reader" else StreamSource)
    assert source.column_names() == ["a", "b"]
    got = list(source.numbered_batches(4))
    assert all(b.num_rows <= 4 for _, b in got)
    assert [first for first, _ in got] == list(np.cumsum([0] + [b.num_rows for _, b in got])[:-1])
    back = pa.Table.from_batches([b for _, b in got])
    assert back.to_pylist() == table.to_pylist()  # Polars gives large_string: same values


@pytest.mark.parametrize("kind", ["dataset", "lazyframe", "duckdb"])
def test_queries_and_scans_read_again(table, kind):
    source = open_source(_sources(table)[kind])
    assert source.read_all().equals(source.read_all())


def test_a_reader_reads_once_and_says_so(table):
    source = open_source(_sources(table)["reader"])
    assert source.read_all().num_rows == 10
    with pytest.raises(DataError, match="can be read once") as e:
        source.read_all()
    assert "DuckDB relation" in e.value.hint


def test_not_a_table_is_refused_clearly():
    with pytest.raises(DataError, match="cannot read a Series as a table"):
        open_source(pd.Series([1, 2]))
    with pytest.raises(DataError, match="cannot read data of type int"):
        open_source(3)


def test_every_kind_screens_like_the_dataframe(fitted, tmp_path):
    data = make_frame(300, seed=21).drop(columns=["churn", "future_spend"])
    expected = fitted.score(data)
    arrow = pa.Table.from_pandas(data, preserve_index=False)
    con = duckdb.connect()
    con.register("customers", arrow)
    inputs = {
        "lazyframe": pl.from_pandas(data).lazy(),
        "duckdb": con.sql("select * from customers"),
        "dataset": pads.dataset(arrow),
        "reader": pa.RecordBatchReader.from_batches(arrow.schema, arrow.to_batches(max_chunksize=64)),
    }
    for kind, data_in in inputs.items():
        np.testing.assert_allclose(fitted.score(data_in), expected, rtol=1e-12, err_msg=kind)
    top = fitted.screen(pl.from_pandas(data).lazy().filter(pl.col("visits") >= 0), budget=30).selected
    assert top.num_rows == 30
    rows = top.column("row").to_numpy()
    np.testing.assert_allclose(top.column("score").to_numpy(), expected[rows], rtol=1e-12)


def test_frames_out(fitted):
    from winnow.errors import ConfigError

    data = make_frame(200, seed=22).drop(columns=["churn", "future_spend"])
    p = fitted.score(data)
    frame = fitted.score(data, output="auto")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["row", "customer_id", "score", "rank", "selected"]
    np.testing.assert_allclose(frame["score"].to_numpy(), p[frame["row"].to_numpy()], rtol=1e-12)
    by_rank = frame.sort_values("rank")
    assert by_rank["rank"].tolist() == list(range(1, len(frame) + 1))
    assert by_rank["score"].is_monotonic_decreasing
    explained = fitted.score(data, output="pandas", reasons=2)
    assert list(explained.columns) == [*frame.columns, "reason_1", "reason_2"]
    assert explained["reason_1"].notna().any()  # every row gets reasons, selected or not
    assert explained.drop(columns=["reason_1", "reason_2"]).equals(frame)
    with pytest.raises(ConfigError, match="reasons"):
        fitted.score(data, reasons=2)  # numpy output has no place for them
    assert frame["customer_id"].tolist() == data["customer_id"].tolist()  # an integer id stays one
    assert frame["selected"].tolist() == (p >= fitted.threshold_.value).tolist()
    lazy = fitted.score(pl.from_pandas(data).lazy(), output="auto")
    assert isinstance(lazy, pl.DataFrame) and lazy["score"].to_list() == frame["score"].tolist()
    assert isinstance(fitted.score(data, output="arrow"), pa.Table)

    as_arrow = fitted.screen(data, budget=15)
    as_pandas = fitted.screen(data, budget=15, output="auto")
    assert isinstance(as_pandas.selected, pd.DataFrame) and isinstance(as_pandas.head, pd.DataFrame)
    assert as_pandas.selected.to_dict("records") == as_arrow.selected.to_pandas().to_dict("records")
    as_polars = fitted.screen(pl.from_pandas(data), budget=15, output="auto")
    assert isinstance(as_polars.selected, pl.DataFrame) and as_polars.selected.height == 15
    with pytest.raises(ConfigError, match="output"):
        fitted.screen(data, budget=15, output="excel")
