"""An event log opened for aggregation in DuckDB, with bounded memory.

A Parquet file, folder or glob is read in place (DuckDB streams its row groups); any other input
winnow reads (CSV, JSON lines, a SQL table or query, a DataFrame, an Arrow table or reader) is
streamed in Arrow batches into a temporary on-disk DuckDB table. Either way DuckDB works under
a memory limit and spills to a temporary folder, so a log larger than memory aggregates.

Events without an entity or with a time that cannot be read are not used; they are counted, with
examples and their reason, in :attr:`EventLog.rejected` (the fit's warnings and the screen's
summary report them).
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from winnow.errors import DataError

#: DuckDB's memory limit while aggregating (it spills beyond it)
MEMORY_LIMIT = "1GB"


def quote(name: str) -> str:
    """A SQL identifier for any column name."""
    return '"' + name.replace('"', '""') + '"'


def parquet_paths(data: Any) -> list[str] | None:
    """The Parquet files of a path, folder, glob or list of files; None for any other input."""
    if isinstance(data, list | tuple) and data and all(str(p).endswith(".parquet") for p in data):
        return [str(p) for p in data]
    if not isinstance(data, str | Path):
        return None
    text = str(data)
    if "://" in text or text.startswith(("duckdb:", "postgres")):
        return None
    p = Path(text)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*.parquet"))
        return files or None
    if any(ch in text for ch in "*?["):
        files = sorted(glob.glob(text, recursive=True))
        return files if files and all(f.endswith(".parquet") for f in files) else None
    return [text] if p.suffix == ".parquet" and p.exists() else None


class EventLog:
    """The events as DuckDB relation ``events(e, t, <columns>)`` (entity, time as TIMESTAMP)."""

    def __init__(
        self, data: Any, entity: str, time: str, threads: int = 0, partition: tuple[int, int] | None = None
    ) -> None:
        """``partition=(i, n)``: only the entities whose hash falls in part ``i`` of ``n`` (each
        part then holds whole entities: the Ray build runs one part per task)."""
        import duckdb

        self._tmp = tempfile.TemporaryDirectory(prefix="winnow-events-")
        self.con = duckdb.connect(os.path.join(self._tmp.name, "events.duckdb"))
        spill = os.path.join(self._tmp.name, "spill")
        self.con.execute(f"SET memory_limit='{MEMORY_LIMIT}'")
        self.con.execute(f"SET temp_directory='{spill}'")
        self.con.execute("SET preserve_insertion_order=false")
        if threads:
            self.con.execute(f"SET threads={int(threads)}")
        self.entity, self.time = entity, time
        self.source_name = str(data) if isinstance(data, str | Path) else type(data).__name__
        self._load(data)
        self.columns = [r[0] for r in self.con.execute("DESCRIBE raw").fetchall()]
        types = {r[0]: r[1] for r in self.con.execute("DESCRIBE raw").fetchall()}
        for role, name in (("entity", entity), ("time", time)):
            if name not in self.columns:
                raise DataError(
                    f"the {role} column is not in the event log",
                    column=name,
                    hint=f"Columns found: {', '.join(self.columns[:20])}. Pass --{role} with one of them.",
                )
        self.types = {c: t for c, t in types.items() if c not in (entity, time)}
        numbers_as_text = self._numbers_as_text()
        for c in numbers_as_text:
            self.types[c] = "DOUBLE"
        e, t = quote(entity), quote(time)
        self.con.execute(f"CREATE VIEW typed AS SELECT {e} AS e, TRY_CAST({t} AS TIMESTAMP) AS t, * FROM raw")
        others = ", ".join(
            f"CAST(trim({quote(c)}) AS DOUBLE) AS {quote(c)}" if c in numbers_as_text else quote(c)
            for c in self.types
        )
        part = f" AND hash(e) % {int(partition[1])} = {int(partition[0])}" if partition else ""
        self.con.execute(
            f"CREATE VIEW events AS SELECT e, t{', ' + others if others else ''} FROM typed "
            f"WHERE e IS NOT NULL AND t IS NOT NULL{part}"
        )
        self._count_rejected()

    def _count_rejected(self) -> None:
        """:attr:`rejected`: events without an entity or a readable time (not used)."""
        n, no_entity, no_time = self.con.execute(
            "SELECT count(*), count(*) FILTER (WHERE e IS NULL), "
            "count(*) FILTER (WHERE e IS NOT NULL AND t IS NULL) FROM typed"
        ).fetchall()[0]
        self.rows = int(n)
        examples = self.con.execute(
            f"SELECT e, CAST({quote(self.time)} AS VARCHAR) FROM typed WHERE e IS NULL OR t IS NULL LIMIT 5"
        ).fetchall()
        #: events not used: how many, why, a few examples
        self.rejected: dict[str, Any] = {
            "missing_entity": int(no_entity),
            "unreadable_time": int(no_time),
            "examples": [
                f"entity {ex[0]!r}, {self.time} {ex[1]!r}: "
                + ("no entity" if ex[0] is None else "no time / not a date or timestamp")
                for ex in examples
            ],
        }
        if self.rows and self.rows == no_entity + no_time:
            raise DataError(
                "no event has both an entity and a readable time",
                column=self.time,
                hint="The time column must hold dates or timestamps (ISO text like 1997-10-01 reads).",
            )

    def _load(self, data: Any) -> None:
        """``raw``: a view over Parquet files, or a table the input's Arrow batches stream into."""
        paths = parquet_paths(data)
        if paths is not None:
            listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            self.con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet([{listed}], union_by_name=true)")
        else:
            from winnow.io.readers import open_source

            source = open_source(data)
            batches = source.batches()
            first = next(batches, None)
            if first is None:
                raise DataError("the event log has no rows", hint="Check the input path or query.")

            def chain() -> Any:
                yield first
                yield from batches

            reader = pa.RecordBatchReader.from_batches(first.schema, chain())
            self.con.register("incoming", reader)
            self.con.execute("CREATE TABLE raw AS SELECT * FROM incoming")
            self.con.unregister("incoming")

    def _numbers_as_text(self) -> set[str]:
        """Text columns whose every value reads as a number (CSV and JSON lines arrive as text)."""
        text = [c for c, t in self.types.items() if t.upper().startswith("VARCHAR")]
        if not text:
            return set()
        checks = ", ".join(
            f"count({quote(c)}) > 0 AND count({quote(c)}) = count(TRY_CAST(trim({quote(c)}) AS DOUBLE))"
            for c in text
        )
        flags = self.con.execute(f"SELECT {checks} FROM raw").fetchall()[0]
        return {c for c, numeric in zip(text, flags, strict=True) if numeric}

    def span(self) -> tuple[Any, Any]:
        """The first and the last event time."""
        return self.con.execute("SELECT min(t), max(t) FROM events").fetchall()[0]  # type: ignore[return-value]

    def describe_rejected(self) -> str | None:
        r = self.rejected
        total = r["missing_entity"] + r["unreadable_time"]
        if not total:
            return None
        return (
            f"{total:,} events not used ({r['missing_entity']:,} without {self.entity}, "
            f"{r['unreadable_time']:,} without a readable {self.time}); e.g. " + "; ".join(r["examples"][:3])
        )

    def close(self) -> None:
        self.con.close()
        self._tmp.cleanup()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
