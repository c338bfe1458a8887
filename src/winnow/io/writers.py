"""Writing result tables batch by batch: Parquet, CSV or JSON lines, chosen by the extension, or a
DuckDB / PostgreSQL table (:func:`open_writer`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from winnow.errors import ConfigError
from winnow.io.uris import Remote, resolve

FORMATS = (".parquet", ".csv", ".jsonl")


def _format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    for f in FORMATS:
        if f in suffixes:
            return f
    if ".ndjson" in suffixes or ".json" in suffixes:
        return ".jsonl"
    raise ConfigError("--out", str(path), "a file ending in .parquet, .csv or .jsonl")


class TableWriter:
    """Streams Arrow tables to one file; the schema is fixed by the first write."""

    def __init__(self, path: str | Path, remote: Remote | None = None) -> None:
        self.path = Path(path)
        self.remote = remote
        self.format = _format(Path(remote.path) if remote else self.path)
        self.rows = 0
        self._writer: Any = None
        self._fh: IO[bytes] | None = None

    def _open(self, schema: pa.Schema) -> None:
        if self.remote is not None:
            sink: Any = self.remote.open_output()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            sink = str(self.path)
        if self.format == ".parquet":
            self._writer = pq.ParquetWriter(sink, schema, compression="zstd")
        elif self.format == ".csv":
            self._writer = pacsv.CSVWriter(sink, schema)
        else:
            self._fh = sink if self.remote is not None else open(self.path, "wb")

    def write(self, table: pa.Table) -> None:
        if self._writer is None and self._fh is None:
            self._open(table.schema)
        if self._fh is not None:
            text = "".join(json.dumps(rec, default=str) + "\n" for rec in table.to_pylist())
            self._fh.write(text.encode("utf-8"))
        else:
            self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self, empty_schema: pa.Schema | None = None) -> None:
        if self._writer is None and self._fh is None and empty_schema is not None:
            # nothing selected: still leave a valid, empty file with the right columns
            self.write(empty_schema.empty_table())
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def abort(self) -> None:
        """Close and remove the partly written file: a failed job leaves no half a file."""
        started = self._writer is not None or self._fh is not None
        self.close()
        if started and self.remote is not None:
            self.remote.fs.delete_file(self.remote.path)
        elif started:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def open_writer(out: str | Path, key: str | None = None) -> TableWriter | Any:
    """A writer for ``out``: a file by its extension (a path or a URI: :mod:`winnow.io.uris`), or a
    DuckDB / PostgreSQL table
    (``duckdb:FILE?table=NAME``, ``postgresql://...?table=NAME``: :mod:`winnow.io.sql`), whose
    rows are upserted by ``key`` (the id column) when given."""
    from winnow.io.sql import SqlTableWriter, parse_location

    loc = parse_location(str(out)) if isinstance(out, str) else None
    if loc is not None:
        return SqlTableWriter(loc, key)
    remote = resolve(out) if isinstance(out, str) else None
    return TableWriter(remote.path if remote else out, remote)
