"""Where the stream worker's scored records go: DuckDB, PostgreSQL, a Redis stream or Parquet files.

Every sink writes a micro-batch as one commit and is idempotent by record id, because the
worker acknowledges entries only after :meth:`Sink.write` returns and a crash in between makes
Redis deliver the same entries again:

- DuckDB and PostgreSQL: ``INSERT ... ON CONFLICT (id) DO UPDATE`` inside one transaction.
- Redis stream: a Lua script adds a row only if its id is not yet in the ``<stream>:ids`` hash
  (first write wins; the hash grows with the number of ids written).
- Parquet: one file per batch named after the batch's first and last entry ids, written to a
  temporary name and renamed; rows an earlier delivery of the same entries wrote to another
  file are removed from it, so each entry is in exactly one file. Re-sent records with the
  same id but different entries are kept (use a table sink to collapse them).

With ``audit`` every scored record (selected or not) also goes to ``<table>_scored``
(``<stream>:scored`` for Redis), so each input can be accounted for.

A sink raises :class:`SinkUnavailable` when the failure is not the records' fault (storage
unreachable, table missing, disk full): the worker retries the same batch with backoff and the
records' delivery counts do not grow. Other errors (a value PostgreSQL rejects, such as a NUL
character) propagate; the worker then retries the batch entry by entry and the offending entry
ends in the dead-letter stream after ``max_retries``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from winnow.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("winnow.stream")

#: the columns every sink stores, in this order
COLUMNS = ("id", "score", "selected", "rule", "reasons", "entry_id", "record", "scored_at")


@dataclass
class SinkRow:
    """One scored record as the sinks store it (keyed by ``id``)."""

    id: str
    score: float
    selected: bool
    rule: str | None
    reasons: list[str]
    entry_id: str
    record: str
    scored_at: datetime


@dataclass
class SinkBatch:
    """What one micro-batch writes: the selected rows, and every scored row when auditing.

    ``entry_ids`` lists the stream entries whose outcome is in this batch (selected or not);
    file sinks use it to replace rows an earlier delivery of the same entries wrote.
    """

    selected: list[SinkRow]
    scored: list[SinkRow] | None
    entry_ids: list[str] = field(default_factory=list)


def rows_table(rows: list[SinkRow]) -> pa.Table:
    """The rows as an Arrow table with the sinks' column types."""
    import pyarrow as pa

    return pa.table(
        {
            "id": pa.array([r.id for r in rows], pa.string()),
            "score": pa.array([r.score for r in rows], pa.float64()),
            "selected": pa.array([r.selected for r in rows], pa.bool_()),
            "rule": pa.array([r.rule for r in rows], pa.string()),
            "reasons": pa.array([r.reasons for r in rows], pa.list_(pa.string())),
            "entry_id": pa.array([r.entry_id for r in rows], pa.string()),
            "record": pa.array([r.record for r in rows], pa.string()),
            "scored_at": pa.array([r.scored_at for r in rows], pa.timestamp("us")),
        }
    )


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``<ms>-<seq>`` as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "id")


class SinkUnavailable(Exception):
    """The sink's storage cannot be reached now; the same write may succeed later."""


class Sink(Protocol):
    """What the worker needs from a sink."""

    description: str

    def open(self) -> None:
        """Connect and create the tables; raise SinkUnavailable if storage is unreachable."""

    def write(self, batch: SinkBatch) -> None:
        """Commit one batch; when this returns the rows are durable."""

    def close(self) -> None: ...


def _ident(name: str, option: str = "--table") -> str:
    if not _IDENT.match(name):
        raise ConfigError(option, name, "a table name of letters, digits and _ (not starting with a digit)")
    return name


def _targets(batch: SinkBatch, table: str, audit_table: str | None) -> list[tuple[str, list[SinkRow]]]:
    out = [(table, batch.selected)]
    if audit_table is not None and batch.scored is not None:
        out.append((audit_table, batch.scored))
    return out


# ---------------------------------------------------------------------------------------- DuckDB
class DuckDBSink:
    """A table in an embedded DuckDB file (one writing process at a time: DuckDB locks the file)."""

    def __init__(self, path: str | Path, table: str = "selected", *, audit: bool = False) -> None:
        self.path = Path(path)
        self.table = _ident(table)
        self.audit_table = f"{table}_scored" if audit else None
        self.description = f"duckdb:{self.path} table {self.table}"
        self._con: Any = None

    def open(self) -> None:
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.IOException as e:  # another process holds the file lock
            raise SinkUnavailable(f"cannot open {self.path}: {e}") from e
        self._con.execute("SET threads = 1")
        for t in filter(None, (self.table, self.audit_table)):
            self._con.execute(
                f'CREATE TABLE IF NOT EXISTS "{t}" (id VARCHAR PRIMARY KEY, score DOUBLE NOT NULL, '
                "selected BOOLEAN NOT NULL, rule VARCHAR, reasons VARCHAR[], entry_id VARCHAR NOT NULL, "
                "record VARCHAR, scored_at TIMESTAMP NOT NULL)"
            )

    def write(self, batch: SinkBatch) -> None:
        import duckdb

        con = self._con
        cols = ", ".join(COLUMNS)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                for t, rows in _targets(batch, self.table, self.audit_table):
                    if not rows:
                        continue
                    con.register("winnow_batch", rows_table(rows))
                    con.execute(
                        f'INSERT INTO "{t}" ({cols}) SELECT {cols} FROM winnow_batch '
                        f"ON CONFLICT (id) DO UPDATE SET {_UPDATE}"
                    )
                    con.unregister("winnow_batch")
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
        except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.ConstraintException):
            raise  # something in these records
        except duckdb.Error as e:
            raise SinkUnavailable(f"{self.path}: {e}") from e

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def scored_between(self, since: datetime, until: datetime) -> pa.Table:
        """The audit table's rows scored in ``[since, until)`` (for the worker's digests)."""
        query = (
            f'SELECT * FROM "{self.audit_table}" WHERE scored_at >= ? AND scored_at < ? ORDER BY scored_at'
        )
        return self._con.sql(query, params=[since, until]).to_arrow_table()  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------ PostgreSQL
class PostgresSink:
    """A table in PostgreSQL; several workers may share it."""

    def __init__(self, dsn: str, table: str = "selected", *, audit: bool = False) -> None:
        self.dsn = dsn
        self.table = _ident(table)
        self.audit_table = f"{table}_scored" if audit else None
        # never log the password, whichever DSN form carries it
        where = dsn.split("@")[-1] if "://" in dsn else re.sub(r"password\s*=\s*\S+", "password=…", dsn)
        self.description = f"postgresql {where} table {self.table}"
        self._conn: Any = None

    def _connect(self) -> Any:
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as e:
            raise SinkUnavailable(f"cannot connect to PostgreSQL: {e}") from e
        return self._conn

    def open(self) -> None:
        import psycopg

        conn = self._connect()
        try:
            for t in filter(None, (self.table, self.audit_table)):
                conn.execute(
                    f'CREATE TABLE IF NOT EXISTS "{t}" (id TEXT PRIMARY KEY, '
                    "score DOUBLE PRECISION NOT NULL, selected BOOLEAN NOT NULL, rule TEXT, "
                    "reasons TEXT[], entry_id TEXT NOT NULL, record JSONB, scored_at TIMESTAMPTZ NOT NULL)"
                )
        except psycopg.Error as e:
            self._drop()
            raise SinkUnavailable(f"PostgreSQL: {e}") from e

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def write(self, batch: SinkBatch) -> None:
        import psycopg

        conn = self._connect()
        cols = ", ".join(COLUMNS)
        try:
            with conn.transaction():
                for t, rows in _targets(batch, self.table, self.audit_table):
                    if not rows:
                        continue
                    # one statement per table: arrays in, unnest on the server
                    conn.execute(
                        f'INSERT INTO "{t}" ({cols}) '
                        "SELECT u.id, u.score, u.selected, u.rule, "
                        "ARRAY(SELECT jsonb_array_elements_text(u.reasons::jsonb)), "
                        "u.entry_id, u.record::jsonb, u.scored_at "
                        "FROM unnest(%s::text[], %s::float8[], %s::bool[], %s::text[], %s::text[], "
                        "%s::text[], %s::text[], %s::timestamptz[]) "
                        "AS u(id, score, selected, rule, reasons, entry_id, record, scored_at) "
                        f"ON CONFLICT (id) DO UPDATE SET {_UPDATE}",
                        [
                            [r.id for r in rows],
                            [r.score for r in rows],
                            [r.selected for r in rows],
                            [r.rule for r in rows],
                            [json.dumps(r.reasons) for r in rows],
                            [r.entry_id for r in rows],
                            [r.record for r in rows],
                            [r.scored_at.replace(tzinfo=UTC) for r in rows],
                        ],
                    )
        except (psycopg.DataError, psycopg.IntegrityError):
            raise  # something in these records (the transaction was rolled back)
        except psycopg.Error as e:
            self._drop()
            raise SinkUnavailable(f"PostgreSQL: {type(e).__name__}: {e}") from e

    def close(self) -> None:
        self._drop()

    def scored_between(self, since: datetime, until: datetime) -> pa.Table:
        """The audit table's rows scored in ``[since, until)`` (for the worker's digests)."""
        import pyarrow as pa

        with self._connect().cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {self.audit_table} "
                "WHERE scored_at >= %s AND scored_at < %s ORDER BY scored_at",
                (since.replace(tzinfo=UTC), until.replace(tzinfo=UTC)),  # the table holds UTC instants
            )
            rows = cur.fetchall()
        if not rows:
            return pa.table({c: [] for c in COLUMNS})
        return rows_table(
            [
                SinkRow(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6] if isinstance(r[6], str) else json.dumps(r[6]),  # JSONB comes back parsed
                    r[7].astimezone(UTC).replace(tzinfo=None),
                )
                for r in rows
            ]
        )


# -------------------------------------------------------------------------------- Redis stream
# KEYS: stream, ids hash[, audit stream, audit ids hash]; ARGV: fields per row, rows for the
# first pair, then per row: id, field/value pairs.
_REDIS_SINK_LUA = """
local nf = tonumber(ARGV[1])
local nsel = tonumber(ARGV[2])
local added, row, i = 0, 0, 3
while i <= #ARGV do
  local s, h = KEYS[1], KEYS[2]
  if row >= nsel then s, h = KEYS[3], KEYS[4] end
  local id = ARGV[i]
  if redis.call('HEXISTS', h, id) == 0 then
    local sid = redis.call('XADD', s, '*', unpack(ARGV, i + 1, i + 2 * nf))
    redis.call('HSET', h, id, sid)
    added = added + 1
  end
  row = row + 1
  i = i + 1 + 2 * nf
end
return added
"""


def _redis_fields(r: SinkRow) -> list[str]:
    return [
        "id",
        r.id,
        "score",
        repr(r.score),
        "selected",
        "1" if r.selected else "0",
        "rule",
        r.rule or "",
        "reasons",
        json.dumps(r.reasons),
        "entry_id",
        r.entry_id,
        "record",
        r.record,
        "scored_at",
        r.scored_at.isoformat(),
    ]


class RedisStreamSink:
    """A Redis stream of selected records, deduplicated by id in the hash ``<stream>:ids``."""

    def __init__(self, url: str, stream: str = "selected", *, audit: bool = False) -> None:
        from winnow.io.redis_conn import check_redis_url

        self.url = check_redis_url(url, "--sink")
        self.stream = stream
        self.audit_stream = f"{stream}:scored" if audit else None
        self.description = f"redis stream {stream}"
        self._client: Any = None
        self._script: Any = None

    def open(self) -> None:
        import redis

        from winnow.io.redis_conn import redis_client

        self._client = redis_client(self.url, socket_timeout=10.0)
        self._script = self._client.register_script(_REDIS_SINK_LUA)
        try:
            self._client.ping()
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise SinkUnavailable(f"Redis sink: {e}") from e

    def write(self, batch: SinkBatch) -> None:
        import redis

        rows = list(batch.selected)
        keys = [self.stream, f"{self.stream}:ids"]
        if self.audit_stream is not None and batch.scored is not None:
            rows += batch.scored
            keys += [self.audit_stream, f"{self.audit_stream}:ids"]
        if not rows:
            return
        args: list[str] = ["8", str(len(batch.selected))]
        for r in rows:
            args.append(r.id)
            args += _redis_fields(r)
        try:
            self._script(keys=keys, args=args)
        except redis.RedisError as e:  # unreachable, out of memory, read-only replica, ...
            raise SinkUnavailable(f"Redis sink: {type(e).__name__}: {e}") from e

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# ------------------------------------------------------------------------------------- Parquet
_PART = re.compile(r"^part-(\d+-\d+)_(\d+-\d+)\.parquet$")


class ParquetSink:
    """One Parquet file per batch under ``DIR/<table>/`` (and ``DIR/<table>_scored/``)."""

    def __init__(self, directory: str | Path, table: str = "selected", *, audit: bool = False) -> None:
        self.root = Path(directory)
        self.table = _ident(table)
        self.audit_table = f"{table}_scored" if audit else None
        self.description = f"parquet:{self.root}/{self.table}"

    def open(self) -> None:
        try:
            for t in filter(None, (self.table, self.audit_table)):
                (self.root / t).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkUnavailable(f"cannot create {self.root}: {e}") from e

    def write(self, batch: SinkBatch) -> None:
        import fcntl

        if not batch.entry_ids:
            return
        keys = sorted(batch.entry_ids, key=entry_key)
        lo, hi = keys[0], keys[-1]
        name = f"part-{lo}_{hi}.parquet"
        try:
            # several workers may share the folder: replacing rows must not interleave
            with open(self.root / ".lock", "a+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                for t, rows in _targets(batch, self.table, self.audit_table):
                    folder = self.root / t
                    if rows:
                        self._write_file(folder / name, rows)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            (folder / name).unlink()
                    self._remove_elsewhere(folder, name, set(batch.entry_ids), entry_key(lo), entry_key(hi))
                _fsync_dir(self.root)
        except OSError as e:
            raise SinkUnavailable(f"parquet sink {self.root}: {e}") from e

    def scored_between(self, since: datetime, until: datetime) -> pa.Table:
        """The audit files' rows scored in ``[since, until)`` (for the worker's digests)."""
        import pyarrow.dataset as ds

        folder = self.root / str(self.audit_table)
        data = ds.dataset(str(folder), format="parquet") if folder.exists() else None
        if data is None:
            return rows_table([])
        t = ds.field("scored_at")
        return data.to_table(filter=(t >= since) & (t < until)).sort_by("scored_at")

    @staticmethod
    def _write_file(path: Path, rows: list[SinkRow]) -> None:
        import pyarrow.parquet as pq

        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(rows_table(rows), tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def _remove_elsewhere(
        self, folder: Path, keep: str, entry_ids: set[str], lo: tuple[int, int], hi: tuple[int, int]
    ) -> None:
        """Drop these entries from other files whose id range overlaps (an earlier delivery)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        for p in folder.iterdir():
            m = _PART.match(p.name)
            if m is None or p.name == keep:
                continue
            if entry_key(m.group(2)) < lo or entry_key(m.group(1)) > hi:
                continue
            table = pq.read_table(p)
            dup = pc.is_in(table.column("entry_id"), value_set=_str_array(entry_ids))
            n = pc.sum(dup).as_py() or 0
            if not n:
                continue
            rest = table.filter(pc.invert(dup))
            log.info("parquet sink: %d rows of %s were delivered again; moved to %s", n, p.name, keep)
            if rest.num_rows:
                tmp = p.with_name(f".{p.name}.tmp")
                pq.write_table(rest, tmp)
                os.replace(tmp, p)
            else:
                p.unlink()

    def close(self) -> None:
        pass


def _str_array(values: set[str]) -> Any:
    import pyarrow as pa

    return pa.array(sorted(values), pa.string())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -------------------------------------------------------------------------------- construction
SINK_HELP = (
    "duckdb:PATH (default; or a path ending in .duckdb), postgresql://user@host:port/db, "
    "redis://host:port/db (a stream) or parquet:DIR"
)


def open_sink(spec: str, table: str | None = None, *, audit: bool = False) -> Sink:
    """Build the sink a ``--sink`` value names (not yet opened).

    >>> open_sink("parquet:out", "top").description
    'parquet:out/top'
    """
    low = spec.lower()
    if low.startswith(("postgresql://", "postgres://")):
        return PostgresSink(spec, table or "selected", audit=audit)
    if low.startswith(("redis://", "rediss://", "unix://")):
        return RedisStreamSink(spec, table or "winnow:selected", audit=audit)
    for prefix, cls in (("duckdb:", DuckDBSink), ("parquet:", ParquetSink)):
        if low.startswith(prefix):
            rest = spec[len(prefix) :]
            rest = rest[2:] if rest.startswith("//") else rest
            if not rest:
                raise ConfigError("--sink", spec, SINK_HELP, "Name the file or folder after the colon.")
            return cls(rest, table or "selected", audit=audit)  # type: ignore[abstract]
    if low.endswith((".duckdb", ".db")):
        return DuckDBSink(spec, table or "selected", audit=audit)
    raise ConfigError("--sink", spec, SINK_HELP)
