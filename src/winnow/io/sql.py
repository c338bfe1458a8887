"""Tables and queries in DuckDB and PostgreSQL: read in batches, written all or nothing.

A location is a URI::

    duckdb:shop.duckdb?table=orders                 (a path, relative or absolute)
    duckdb:shop.duckdb?query=SELECT * FROM orders WHERE day = '2026-12-01'
    postgresql://user@host:5432/shop?table=public.orders
    postgresql://user@host/shop?sslmode=require&query=SELECT ...

``query=`` comes last and is taken as it is written (no URL decoding), so a query needs no
escaping beyond the shell's quotes. Reading runs the query in batches (DuckDB's Arrow reader; a
PostgreSQL ``COPY ... TO STDOUT`` parsed by Arrow's CSV reader as it streams), so memory
depends on the batch size, never on the table; work
that reads its input twice (a budget screen) runs the query twice, so a query must return its
rows in the same order each time (a table does: winnow reads it in its stored order).

Writing (``--out`` a URI with ``table=``) collects the rows in a temporary table and moves them
into the target in one transaction at the end: a failed job leaves the target as it was. With an
id column the rows are upserted by id (the target gets that primary key when winnow creates it);
without one the target is replaced.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.csv as pacsv

from winnow.errors import ConfigError, DataError
from winnow.extras import require
from winnow.io.frames import StreamSource

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_EXAMPLE = "duckdb:FILE?table=NAME, duckdb:FILE?query=SELECT ..., postgresql://HOST/DB?table=NAME"


@dataclass(frozen=True)
class SqlLocation:
    """A parsed location: the engine, how to connect, and a table or a query."""

    engine: str  # "duckdb" or "postgresql"
    dsn: str  # DuckDB: the database file; PostgreSQL: the connection URL without table / query
    table: str | None
    query: str | None

    @property
    def shown(self) -> str:
        """The location for messages, a password left out."""
        dsn = re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", self.dsn)
        what = f"table={self.table}" if self.table else "query"
        return f"{self.engine}:{dsn} ({what})" if self.engine == "duckdb" else f"{dsn} ({what})"

    @property
    def quoted_table(self) -> str:
        assert self.table is not None
        return ".".join(f'"{part}"' for part in self.table.split("."))

    def sql(self) -> str:
        return self.query if self.query is not None else f"SELECT * FROM {self.quoted_table}"


def parse_location(text: str) -> SqlLocation | None:
    """The SQL location ``text`` names; None when it is not one (a file path)."""
    if text.startswith("duckdb:"):
        engine, rest = "duckdb", text[len("duckdb:") :]
        if rest.startswith("//"):
            rest = rest[2:]
    elif text.startswith(("postgresql://", "postgres://")):
        engine, rest = "postgresql", text
    else:
        return None
    base, _, params = rest.partition("?")
    query = None
    m = re.search(r"(?:^|&)query=", params)
    if m:
        query, params = params[m.end() :].strip().rstrip(";").strip(), params[: m.start()]
    table, other = None, []
    for kv in filter(None, params.split("&")):
        key, _, value = kv.partition("=")
        if key == "table":
            table = unquote(value)
        else:
            other.append(kv)
    if engine == "duckdb" and other:
        raise ConfigError("location", text, "duckdb:FILE?table=NAME or duckdb:FILE?query=SQL")
    if (table is None) == (query is None) or not base:
        raise ConfigError("location", text, f"a database and exactly one of table= or query= ({_EXAMPLE})")
    if table is not None and not _IDENT.match(table):
        raise ConfigError("table", table, "a table name (letters, digits, _; optionally schema.table)")
    dsn = base + ("?" + "&".join(other) if other else "")
    return SqlLocation(engine, dsn, table, query or None)


# ---------------------------------------------------------------------------------- reading
def sql_source(loc: SqlLocation) -> StreamSource:
    """A source that runs ``loc``'s query (or reads its table) batch by batch."""
    return _duckdb_source(loc) if loc.engine == "duckdb" else _postgres_source(loc)


def _duckdb_connect(loc: SqlLocation, *, create: bool = False) -> Any:
    duckdb = require("duckdb")
    if not create and not Path(loc.dsn).exists():
        raise DataError(f"DuckDB database {loc.dsn!r} does not exist", hint="Check the path after duckdb:.")
    try:
        return duckdb.connect(loc.dsn)
    except duckdb.Error as e:
        raise DataError(
            f"cannot open {loc.shown}: {e}", hint="Another process may hold it for writing."
        ) from e


def _duckdb_source(loc: SqlLocation) -> StreamSource:
    duckdb = require("duckdb")

    con = _duckdb_connect(loc)
    try:
        schema = con.sql(loc.sql()).limit(0).to_arrow_table().schema
    except duckdb.Error as e:
        raise DataError(f"cannot read {loc.shown}: {e}", hint="Check the table name or the query.") from e
    finally:
        con.close()

    def run(batch_rows: int) -> Iterator[pa.RecordBatch]:
        con = _duckdb_connect(loc)
        try:
            with con.sql(loc.sql()).to_arrow_reader(batch_rows) as reader:
                yield from reader
        finally:
            con.close()

    return StreamSource(loc.shown, schema, run)


#: PostgreSQL type OIDs -> Arrow types; every other type is read as text
_PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    26: pa.int64(),
    700: pa.float64(),
    701: pa.float64(),
    1700: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


def _pg_connect(loc: SqlLocation) -> Any:
    psycopg = require("psycopg")

    try:
        return psycopg.connect(loc.dsn)
    except psycopg.Error as e:
        raise DataError(f"cannot connect to {loc.shown}: {e}", hint="Check the URL and the server.") from e


def _postgres_source(loc: SqlLocation) -> StreamSource:
    psycopg = require("psycopg")

    with _pg_connect(loc) as conn:
        try:
            cur = conn.execute(f"SELECT * FROM ({loc.sql()}) AS winnow_q LIMIT 0")  # type: ignore[arg-type]
        except psycopg.Error as e:
            raise DataError(f"cannot read {loc.shown}: {e}", hint="Check the table name or the query.") from e
        fields = [(d.name, _PG_TYPES.get(d.type_code, pa.string())) for d in cur.description or []]
    schema = pa.schema(fields)

    def run(batch_rows: int) -> Iterator[pa.RecordBatch]:
        # COPY ... TO STDOUT as CSV, parsed by Arrow's CSV reader as it streams in: ~3x the
        # rows/s of fetching Python tuples through a server-side cursor (bench/sql_io.py)
        with _pg_connect(loc) as conn:
            conn.execute("SET synchronize_seqscans = off")  # a table scan starts at its first row
            conn.execute("SET datestyle = 'ISO, YMD'")
            with conn.cursor().copy(f"COPY ({loc.sql()}) TO STDOUT (FORMAT csv)") as cp:  # type: ignore[arg-type]
                reader = pacsv.open_csv(
                    io.BufferedReader(_Chunks(cp), buffer_size=1 << 20),
                    read_options=pacsv.ReadOptions(column_names=schema.names, block_size=1 << 22),
                    parse_options=pacsv.ParseOptions(newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(
                        column_types={f.name: f.type for f in schema},
                        null_values=[""],
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=False,
                        true_values=["t"],
                        false_values=["f"],
                    ),
                )
                yield from reader

    return StreamSource(loc.shown, schema, run)


class _Chunks(io.RawIOBase):
    """A readable stream over the byte chunks a COPY ... TO STDOUT yields."""

    def __init__(self, chunks: Any) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = bytes(next(self._it))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


# ---------------------------------------------------------------------------------- writing
def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE PRECISION"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    return "TEXT"


class SqlTableWriter:
    """Rows into a DuckDB or PostgreSQL table, all or nothing (see the module docstring).

    The same protocol as :class:`winnow.io.writers.TableWriter`: ``write`` tables of one schema,
    then ``close``; leaving a ``with`` block by an exception leaves the target untouched.
    """

    def __init__(self, loc: SqlLocation, key: str | None = None) -> None:
        if loc.table is None:
            raise ConfigError("--out", loc.shown, "a table to write (table=NAME), not a query")
        self.loc = loc
        self.key = key
        self.rows = 0
        self.path = loc.shown
        self._staging = f"winnow_staging_{uuid.uuid4().hex[:12]}"
        self._schema: pa.Schema | None = None
        self._con: Any = None

    def _start(self, schema: pa.Schema) -> None:
        self._schema = schema
        if self.key is not None and self.key not in schema.names:
            self.key = None
        if self.loc.engine == "duckdb":
            self._con = _duckdb_connect(self.loc, create=True)
            self._con.execute("BEGIN TRANSACTION")
            self._con.register("winnow_batch", schema.empty_table())
            self._con.execute(f'CREATE TEMP TABLE "{self._staging}" AS SELECT * FROM winnow_batch')
            self._con.unregister("winnow_batch")
        else:
            self._con = _pg_connect(self.loc)  # one transaction until close
            cols = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in schema)
            self._con.execute(f'CREATE TEMP TABLE "{self._staging}" ({cols}) ON COMMIT DROP')

    def write(self, table: pa.Table) -> None:
        if self._con is None:
            self._start(table.schema)
        if table.num_rows == 0:
            return
        if self.loc.engine == "duckdb":
            self._con.register("winnow_batch", table)
            self._con.execute(f'INSERT INTO "{self._staging}" SELECT * FROM winnow_batch')
            self._con.unregister("winnow_batch")
        else:
            self._copy(table)
        self.rows += table.num_rows

    def _copy(self, table: pa.Table) -> None:
        """Rows into the staging table by COPY ... CSV (Arrow writes the CSV)."""
        buf = io.BytesIO()
        texts = table.cast(pa.schema([_csv_field(f) for f in table.schema]))
        pacsv.write_csv(texts, buf, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
        cols = ", ".join(f'"{n}"' for n in table.column_names)
        with self._con.cursor().copy(f'COPY "{self._staging}" ({cols}) FROM STDIN (FORMAT csv)') as cp:
            cp.write(buf.getvalue())

    def close(self, empty_schema: pa.Schema | None = None) -> None:
        if self._con is None:
            if empty_schema is None:
                return
            self.write(empty_schema.empty_table())
        assert self._schema is not None
        try:
            self._move_into_target()
        except Exception as e:
            self._abort()
            raise DataError(
                f"cannot write {self.loc.shown}: {e}",
                hint="The target table is unchanged; if it exists with other columns, write to "
                "another table or drop it.",
            ) from e
        self._finish()

    def _move_into_target(self) -> None:
        assert self._schema is not None
        target, staging = self.loc.quoted_table, f'"{self._staging}"'
        names = [f'"{n}"' for n in self._schema.names]
        cols = ", ".join(names)
        if self.key is None:
            self._con.execute(f"DROP TABLE IF EXISTS {target}")
        if self.loc.engine == "duckdb":
            self._con.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM {staging} LIMIT 0")
        else:
            ddl = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in self._schema)
            self._con.execute(f"CREATE TABLE IF NOT EXISTS {target} ({ddl})")
        if self.key is None:
            self._con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staging}")
            return
        key = f'"{self.key}"'
        if not self._has_key(target):
            self._con.execute(f"ALTER TABLE {target} ADD PRIMARY KEY ({key})")
        update = ", ".join(f"{n} = excluded.{n}" for n in names if n != key)
        self._con.execute(
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staging} "
            f"ON CONFLICT ({key}) DO {'UPDATE SET ' + update if update else 'NOTHING'}"
        )

    def _has_key(self, target: str) -> bool:
        """Whether the target already has a primary key (winnow adds one on the id only if not)."""
        name = (self.loc.table or "").rpartition(".")[2]
        if self.loc.engine == "duckdb":
            q = (
                "SELECT count(*) FROM duckdb_constraints() "
                "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'"
            )
            return bool(self._con.execute(q, [name]).fetchone()[0])
        q = "SELECT count(*) FROM pg_index i WHERE i.indisprimary AND i.indrelid = to_regclass(%s)"
        return bool(self._con.execute(q, [target]).fetchone()[0])

    def _finish(self) -> None:
        if self.loc.engine == "duckdb":
            self._con.execute(f'DROP TABLE IF EXISTS "{self._staging}"')
        self._con.execute("COMMIT") if self.loc.engine == "duckdb" else self._con.commit()
        self._con.close()
        self._con = None

    def abort(self) -> None:
        """Give up: the staged rows are dropped, the target is left as it was."""
        self._abort()

    def _abort(self) -> None:
        if self._con is None:
            return
        try:
            self._con.execute("ROLLBACK") if self.loc.engine == "duckdb" else self._con.rollback()
        finally:
            self._con.close()
            self._con = None

    def __enter__(self) -> SqlTableWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self._abort()
        else:
            self.close()


def _csv_field(f: pa.Field) -> pa.Field:
    """The field as Arrow writes it to CSV for PostgreSQL (timestamps as ISO text)."""
    if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type):
        return pa.field(f.name, pa.string())
    return f
