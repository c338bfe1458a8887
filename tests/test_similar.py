"""Find more like these: ``find_similar`` / ``Screener.similar`` / ``winnow similar``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.helpers import make_frame
from winnow.cli import app
from winnow.errors import ArtifactError, ConfigError, DataError
from winnow.similarity.embedding import embed_all, embedder
from winnow.similarity.search import find_similar

runner = CliRunner()
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
EXAMPLE_ROWS = [10, 200, 731]


def with_near_copies(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """``frame`` plus a slightly changed copy of each of ``rows``, with new ids, at the end."""
    cp = frame.iloc[rows].copy()
    cp["customer_id"] = np.arange(900_000, 900_000 + len(rows))
    cp["spend"] = cp["spend"] * 1.002
    return pd.concat([frame, cp], ignore_index=True)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return with_near_copies(make_frame(1500, seed=11).drop(columns=["churn"]), EXAMPLE_ROWS)


@pytest.fixture(scope="module")
def examples(data) -> pd.DataFrame:
    return data.iloc[EXAMPLE_ROWS].reset_index(drop=True)


def copies_of_examples(n: int = 1500) -> set[int]:
    return {n + i for i in range(len(EXAMPLE_ROWS))}


@pytest.mark.parametrize("screener", ["fitted", "fitted_deep"])
def test_near_copies_of_the_examples_rank_first(request, screener, data, examples):
    s = request.getfixturevalue(screener)
    res = s.similar(data, examples, top=10)
    t = res.selected.to_pandas()
    assert t["rank"].tolist() == list(range(1, 11))
    assert set(t["row"].head(3)) == copies_of_examples()
    assert (t["similarity"].head(3) > 0.99).all()
    assert np.all(np.diff(t["similarity"]) <= 1e-12)
    # each copy names the example it was copied from
    for _, r in t.head(3).iterrows():
        assert r["example"] == r["row"] - 1500
        assert r["example_customer_id"] == str(examples["customer_id"][r["example"]])
    # the examples' own rows (same ids) are left out by default
    assert not set(t["row"]) & set(EXAMPLE_ROWS)
    assert res.summary.rows_excluded == 3
    assert res.summary.rows_read == len(data) == res.summary.rows_ranked + 3
    assert res.summary.embedding.startswith("deep" if screener == "fitted_deep" else "inputs")
    # the input columns come along
    assert {"customer_id", "spend", "region"} <= set(t.columns)


def test_include_examples_returns_them_at_the_top(fitted, data, examples):
    t = fitted.similar(data, examples, top=6, include_examples=True).selected.to_pandas()
    assert set(t["row"].head(6)) == set(EXAMPLE_ROWS) | copies_of_examples()
    assert (t["similarity"].head(6) > 0.99).all()


def test_streamed_and_index_agree_and_the_index_is_reused(fitted_deep, data, examples, tmp_path):
    streamed = fitted_deep.similar(data, examples, top=25).selected.to_pandas()
    built = fitted_deep.similar(data, examples, top=25, index=tmp_path / "ix", index_kind="hnsw")
    assert "HNSW vector index built" in built.summary.method and (tmp_path / "ix" / "manifest.json").exists()
    mtime = (tmp_path / "ix" / "index.hnswlib").stat().st_mtime_ns
    reused = fitted_deep.similar(data, examples.iloc[:2], top=25, index=tmp_path / "ix")
    assert "reused" in reused.summary.method
    assert (tmp_path / "ix" / "index.hnswlib").stat().st_mtime_ns == mtime
    a = built.selected.to_pandas()
    # same rows up to the index's recall; similarities agree where the rows agree
    assert len(set(a["row"]) & set(streamed["row"])) >= 23
    both = a.merge(streamed, on="row", suffixes=("_ix", "_ex"))
    assert np.allclose(both["similarity_ix"], both["similarity_ex"], atol=1e-4)
    assert (both["example_ix"] == both["example_ex"]).mean() > 0.9
    # the three near copies first in both (their order may differ in the last float bits)
    assert set(a["row"].head(3)) == set(streamed["row"].head(3)) == copies_of_examples()
    assert built.summary.rows_read == reused.summary.rows_read == len(data)


def test_auto_index_is_exact_and_agrees_with_streaming(fitted_deep, data, examples, tmp_path):
    streamed = fitted_deep.similar(data, examples, top=40).selected
    built = fitted_deep.similar(data, examples, top=40, index=tmp_path / "ix")
    reused = fitted_deep.similar(data, examples, top=40, index=tmp_path / "ix")
    assert "exact vector index built" in built.summary.method and "reused" in reused.summary.method
    assert (tmp_path / "ix" / "vectors.npy").exists() and not (tmp_path / "ix" / "index.hnswlib").exists()
    for res in (built, reused):
        # the same rows, closest examples and similarities (order may differ between near-ties:
        # the two paths compute the cosines in different batch shapes)
        a = res.selected.to_pandas().set_index("row").sort_index()
        b = streamed.to_pandas().set_index("row").sort_index()
        assert a.index.tolist() == b.index.tolist()
        assert a["example"].tolist() == b["example"].tolist()
        assert np.allclose(a["similarity"], b["similarity"], atol=1e-5)
    with pytest.raises(ConfigError, match="--index-kind"):
        fitted_deep.similar(data, examples, index=tmp_path / "iy", index_kind="ivf")


def test_index_of_another_screener_is_refused(fitted, fitted_deep, data, examples, tmp_path):
    fitted_deep.similar(data, examples, top=5, index=tmp_path / "ix")
    with pytest.raises(ConfigError, match=r"--index.*Delete it to rebuild"):
        fitted.similar(data, examples, top=5, index=tmp_path / "ix")
    with pytest.raises(ConfigError, match="this data"):
        fitted_deep.similar(data.iloc[:100], examples, top=5, index=tmp_path / "ix")
    (tmp_path / "ix" / "ids.npy").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="sha256"):
        fitted_deep.similar(data, examples, top=5, index=tmp_path / "ix")


def test_deep_embedding_without_a_deep_member_names_the_fix(fitted, data, examples):
    with pytest.raises(ConfigError, match="--model tabm"):
        fitted.similar(data, examples, embedding="deep")
    with pytest.raises(ConfigError, match="auto, deep, inputs"):
        embedder(fitted, "pca")


def test_inputs_embedding_is_standardized_inputs_plus_one_hot(fitted, fitted_deep, data):
    e = embedder(fitted)
    assert e.kind == "inputs" and e.member is None
    x = embed_all(fitted, data.head(50))
    assert x.shape == (50, e.dim) and x.dtype == np.float32
    # one one-hot entry per categorical column, each 1/sqrt(2)
    n_cat = len(fitted.prep_.cardinalities())
    dense = len(fitted.prep_.dense_names())
    assert np.allclose((x[:, dense:] > 0).sum(1), n_cat)
    assert np.allclose(x[:, dense:][x[:, dense:] > 0], 2**-0.5)
    d = embedder(fitted_deep)
    assert d.kind == "deep" and embed_all(fitted_deep, data.head(5)).shape == (5, d.dim)
    assert np.allclose(embed_all(fitted_deep, data.head(40)), fitted_deep.embed(data.head(40)), atol=1e-6)


def test_rejects_are_written_and_counted(fitted, data, examples, tmp_path):
    csv = data.head(300).astype({"visits": object})
    csv.loc[[7, 42], "visits"] = "many"
    csv.to_csv(tmp_path / "data.csv", index=False)
    res = fitted.similar(tmp_path / "data.csv", examples, top=5, rejects=tmp_path / "rej.jsonl")
    assert res.summary.rows_rejected == 2 and res.summary.rows_read == 300
    lines = (tmp_path / "rej.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"row": 7' in lines[0] and "visits" in lines[0]


def test_bad_examples_name_the_record(fitted, data, examples, tmp_path):
    bad = examples.astype({"visits": object})
    bad.loc[1, "visits"] = "lots"
    bad.to_csv(tmp_path / "ex.csv", index=False)
    with pytest.raises(DataError, match=r"record 1.*visits.*Fix or remove this example"):
        fitted.similar(data, tmp_path / "ex.csv")
    with pytest.raises(DataError, match="missing columns"):
        fitted.similar(data, examples.drop(columns=["spend"]))
    with pytest.raises(DataError, match="no examples"):
        fitted.similar(data, examples.head(0))
    with pytest.raises(ConfigError, match="--top"):
        find_similar(fitted, data, examples, top=0)


def test_same_inputs_same_output(fitted_deep, data, examples, tmp_path):
    for i in range(2):
        fitted_deep.similar(data, examples, top=30, out=tmp_path / f"a{i}.parquet")
        fitted_deep.similar(
            data,
            examples,
            top=30,
            out=tmp_path / f"b{i}.parquet",
            index=tmp_path / f"ix{i}",
            index_kind="hnsw",
        )
    assert pq.read_table(tmp_path / "a0.parquet").equals(pq.read_table(tmp_path / "a1.parquet"))
    assert pq.read_table(tmp_path / "b0.parquet").equals(pq.read_table(tmp_path / "b1.parquet"))
    assert (tmp_path / "ix0" / "index.hnswlib").read_bytes() == (
        tmp_path / "ix1" / "index.hnswlib"
    ).read_bytes()


def test_batch_size_does_not_change_the_result(fitted, data, examples):
    a = fitted.similar(data, examples, top=20).selected
    b = fitted.similar(data, examples, top=20, batch_rows=97).selected
    assert a.equals(b)


@pytest.fixture(scope="module")
def files(tmp_path_factory, data, examples, fitted_deep):
    d = tmp_path_factory.mktemp("similar-cli")
    data.to_csv(d / "data.csv", index=False)
    examples.to_csv(d / "examples.csv", index=False)
    fitted_deep.save(d / "deep")
    return d


class TestCli:
    def test_similar_end_to_end(self, files, tmp_path):
        out = tmp_path / "like.parquet"
        r = runner.invoke(
            app,
            [
                "similar",
                str(files / "deep"),
                str(files / "data.csv"),
                "--examples",
                str(files / "examples.csv"),
                "--top",
                "8",
                "--out",
                str(out),
            ],
            env=ENV,
        )
        assert r.exit_code == 0, r.output
        assert "written 8" in r.output and "deep: last hidden layer" in r.output
        t = pq.read_table(out).to_pandas()
        assert t.columns[:5].tolist() == ["rank", "row", "similarity", "example", "example_customer_id"]
        assert set(t["row"].head(3)) == copies_of_examples()

    def test_similar_with_an_index_then_reuse(self, files, tmp_path):
        args = [
            "similar",
            str(files / "deep"),
            str(files / "data.csv"),
            "--examples",
            str(files / "examples.csv"),
            "--top",
            "5",
            "--index",
            str(tmp_path / "ix"),
            "-q",
        ]
        first = runner.invoke(app, [*args, "--out", str(tmp_path / "a.csv")], env=ENV)
        second = runner.invoke(app, [*args, "--out", str(tmp_path / "b.csv")], env=ENV)
        assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
        assert "index built" in first.output and "index reused" in second.output
        assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()

    def test_exit_codes(self, files, tmp_path, artifact_dir):
        base = [
            str(files / "data.csv"),
            "--examples",
            str(files / "examples.csv"),
            "--out",
            str(tmp_path / "x.parquet"),
        ]
        r = runner.invoke(app, ["similar", str(artifact_dir), *base, "--embedding", "deep"], env=ENV)
        assert r.exit_code == 2 and "--model tabm" in r.output
        pd.DataFrame({"spend": [1.0]}).to_csv(tmp_path / "ex.csv", index=False)
        r = runner.invoke(
            app,
            [
                "similar",
                str(artifact_dir),
                str(files / "data.csv"),
                "--examples",
                str(tmp_path / "ex.csv"),
                "--out",
                str(tmp_path / "x.parquet"),
            ],
            env=ENV,
        )
        assert r.exit_code == 3 and "missing columns" in r.output
        r = runner.invoke(app, ["similar", str(tmp_path / "nope"), *base], env=ENV)
        assert r.exit_code == 4
