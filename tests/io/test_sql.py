"""DuckDB and PostgreSQL tables and queries: read in batches, screened, written all or nothing
(a real PostgreSQL server, started by the ``postgres`` fixture)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from tests.helpers import make_frame
from winnow.errors import ConfigError, DataError
from winnow.io.readers import open_source
from winnow.io.sql import SqlTableWriter, parse_location


@pytest.fixture(scope="module")
def customers():
    return make_frame(400, seed=31).drop(columns=["churn", "future_spend"])


@pytest.fixture()
def shop(tmp_path, customers):
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("df", customers)
        con.execute("CREATE TABLE customers AS SELECT * FROM df")
    return path


@pytest.fixture()
def pg_shop(postgres, customers):
    import psycopg

    with psycopg.connect(postgres) as conn:
        conn.execute("DROP TABLE IF EXISTS customers")
        conn.execute(
            "CREATE TABLE customers (customer_id BIGINT, spend DOUBLE PRECISION, visits INTEGER, "
            "region TEXT, member BOOLEAN, signup TIMESTAMP)"
        )
        with conn.cursor().copy("COPY customers FROM STDIN") as cp:
            for rec in customers.itertuples(index=False):
                cp.write_row([None if isinstance(v, float) and v != v else v for v in rec])
        for t in ("top", "scores"):
            conn.execute(f"DROP TABLE IF EXISTS {t}")
    return postgres


class TestLocations:
    def test_parse(self):
        loc = parse_location("duckdb:shop.duckdb?table=orders")
        assert (loc.engine, loc.dsn, loc.table, loc.query) == ("duckdb", "shop.duckdb", "orders", None)
        uri = "postgresql://u:secret@h:5/db?sslmode=disable&query=SELECT a+b FROM t WHERE x = 'a&b';"
        loc = parse_location(uri)
        assert loc.dsn == "postgresql://u:secret@h:5/db?sslmode=disable"
        assert loc.query == "SELECT a+b FROM t WHERE x = 'a&b'"  # verbatim, no URL decoding
        assert "secret" not in loc.shown and "***" in loc.shown
        assert parse_location("data/customers.parquet") is None

    @pytest.mark.parametrize(
        "bad",
        ["duckdb:shop.duckdb", "duckdb:shop.duckdb?table=a&query=select 1", "duckdb:?table=t",
         "duckdb:f.duckdb?table=a;drop", "duckdb:f.duckdb?mode=x&table=t"],
    )  # fmt: skip
    def test_refused_with_the_form(self, bad):
        with pytest.raises(ConfigError):
            parse_location(bad)


class TestDuckDB:
    def test_table_and_query_read_in_batches(self, shop, customers):
        source = open_source(f"duckdb:{shop}?table=customers")
        assert source.column_names() == list(customers.columns)
        batches = list(source.numbered_batches(128))
        assert [first for first, _ in batches] == [0, 128, 256, 384]
        back = pa.Table.from_batches([b for _, b in batches]).to_pandas()
        assert back["customer_id"].tolist() == customers["customer_id"].tolist()
        q = open_source(f"duckdb:{shop}?query=SELECT customer_id, spend FROM customers WHERE visits > 3")
        assert q.read_all().num_rows == int((customers["visits"] > 3).sum())

    def test_errors_name_the_location(self, shop, tmp_path):
        with pytest.raises(DataError, match="does not exist"):
            open_source(f"duckdb:{tmp_path / 'nope.duckdb'}?table=customers")
        with pytest.raises(DataError, match=r"cannot read duckdb:.*customerz"):
            open_source(f"duckdb:{shop}?table=customerz")

    def test_screen_duckdb_to_duckdb_upserts_by_id(self, fitted, shop, customers):
        fitted_id = fitted.config.id
        expected = fitted.score(customers)
        out = f"duckdb:{shop}?table=top"
        r = fitted.screen(f"duckdb:{shop}?table=customers", budget=25, out=out)
        with duckdb.connect(str(shop)) as con:
            top = con.sql("SELECT * FROM top ORDER BY rank").to_df()
        assert len(top) == 25 and top["rank"].tolist() == list(range(1, 26))
        np.testing.assert_allclose(top["score"], expected[top["row"]], rtol=1e-12)
        assert top.columns.tolist() == r.selected.column_names
        # again with a larger budget: the 25 are updated in place, 15 more added, none doubled
        fitted.screen(f"duckdb:{shop}?table=customers", budget=40, out=out)
        with duckdb.connect(str(shop)) as con:
            ids = [r[0] for r in con.sql(f'SELECT "{fitted_id}" FROM top').fetchall()]
        assert len(ids) == len(set(ids)) == 40

    def test_a_failed_job_leaves_the_target_as_it_was(self, shop):
        loc = parse_location(f"duckdb:{shop}?table=results")
        with SqlTableWriter(loc, key="id") as w:
            w.write(pa.table({"id": [1, 2], "v": [0.1, 0.2]}))
        with pytest.raises(RuntimeError), SqlTableWriter(loc, key="id") as w:
            w.write(pa.table({"id": [2, 3], "v": [9.0, 9.0]}))
            raise RuntimeError("the job fails half way")
        with duckdb.connect(str(shop)) as con:
            assert con.sql("SELECT id, v FROM results ORDER BY id").fetchall() == [(1, 0.1), (2, 0.2)]


class TestPostgreSQL:
    def test_screen_postgres_to_postgres(self, fitted, pg_shop, customers):
        import psycopg

        expected = fitted.score(customers)
        source = open_source(f"{pg_shop}?table=customers")
        t = source.read_all()
        assert t.schema.field("customer_id").type == pa.int64() and t.num_rows == 400
        assert t.schema.field("signup").type == pa.timestamp("us")
        np.testing.assert_allclose(fitted.score(f"{pg_shop}?table=customers"), expected, rtol=1e-12)
        fitted.screen(f"{pg_shop}?table=customers", budget=30, out=f"{pg_shop}?table=top", batch_rows=64)
        with psycopg.connect(pg_shop) as conn:
            rows = conn.execute("SELECT rank, row, score FROM top ORDER BY rank").fetchall()
        assert [r[0] for r in rows] == list(range(1, 31))
        np.testing.assert_allclose([r[2] for r in rows], expected[[r[1] for r in rows]], rtol=1e-12)

    def test_score_into_postgres_and_a_query_in(self, fitted, pg_shop, customers, tmp_path):
        import psycopg

        from winnow.engines.local import score_file

        q = f"{pg_shop}?query=SELECT * FROM customers WHERE region = 'east' ORDER BY customer_id"
        s = score_file(fitted, q, f"{pg_shop}?table=scores")
        east = customers[customers["region"] == "east"].sort_values("customer_id")
        with psycopg.connect(pg_shop) as conn:
            got = conn.execute("SELECT customer_id, score FROM scores ORDER BY customer_id").fetchall()
        assert s.rows_scored == len(east) == len(got)
        np.testing.assert_allclose([g[1] for g in got], fitted.score(east), rtol=1e-12)
        with psycopg.connect(pg_shop) as conn:  # the id is the primary key winnow gave the table
            insert = "INSERT INTO scores (customer_id, row, score, selected) VALUES (%s, 0, 0, false)"
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(insert, [int(east["customer_id"].iloc[0])])

    def test_a_failed_job_leaves_no_table(self, pg_shop):
        import psycopg

        loc = parse_location(f"{pg_shop}?table=half")
        with pytest.raises(RuntimeError), SqlTableWriter(loc) as w:
            w.write(pa.table({"id": [1, 2], "v": ["a", None]}))
            raise RuntimeError("the job fails half way")
        with psycopg.connect(pg_shop) as conn:
            assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None

    def test_bad_query_is_a_data_error(self, pg_shop):
        with pytest.raises(DataError, match=r"cannot read postgresql://.*query"):
            open_source(f"{pg_shop}?query=SELECT nope FROM customers")


def test_cli_screen_and_score_between_tables(artifact_dir, shop, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from winnow.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    src = f"duckdb:{shop}?query=SELECT * FROM customers WHERE visits >= 2"
    top = f"duckdb:{shop}?table=top"
    r = runner.invoke(app, ["screen", str(artifact_dir), src, "--out", top, "--budget", "10"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(artifact_dir), f"duckdb:{shop}?table=customers",
                            "--out", f"duckdb:{shop}?table=scores", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    with duckdb.connect(str(shop)) as con:
        assert con.execute("SELECT count(*) FROM top").fetchone()[0] == 10
        assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == 400
    r = runner.invoke(app, ["score", str(artifact_dir), f"duckdb:{shop}?table=nope", "--out", "x.parquet"])
    assert r.exit_code == 3 and "nope" in r.output
