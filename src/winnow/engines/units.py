"""Units of work for a distributed screen: runs of consecutive Parquet row groups.

A unit knows the position of its first row in the whole input, so every engine numbers rows
exactly as the local engine does (files in the folder's order, rows in file order): the same
row gets the same ``row``, score and rank whichever worker scored it. A unit is also the grain
of resumption: its output is written once, atomically, and a restarted job skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from winnow.errors import ConfigError
from winnow.io.readers import ParquetSource, conform_batch, open_source

#: rows per unit when the caller does not say: big enough that start-up costs vanish, small
#: enough that a killed job loses little and every worker gets several units
DEFAULT_UNIT_ROWS = 500_000


@dataclass(frozen=True)
class Unit:
    """Row groups ``row_groups`` of file ``path``; its first row is ``first_row`` of the input."""

    index: int
    path: str
    row_groups: tuple[int, ...]
    first_row: int
    rows: int

    @property
    def name(self) -> str:
        return f"unit-{self.index:06d}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Unit:
        d = json.loads(text)
        return cls(d["index"], d["path"], tuple(d["row_groups"]), d["first_row"], d["rows"])


@dataclass(frozen=True)
class Plan:
    """The units of one input, its unified schema, and a fingerprint of the files read."""

    units: list[Unit]
    schema: pa.Schema
    fingerprint: str

    @property
    def rows(self) -> int:
        return sum(u.rows for u in self.units)


def plan_units(data: Any, unit_rows: int = DEFAULT_UNIT_ROWS) -> Plan:
    """Split a Parquet file or folder into units of about ``unit_rows`` rows (whole row groups)."""
    source = open_source(data)
    if not isinstance(source, ParquetSource):
        raise ConfigError(
            "--engine ray",
            str(data),
            "a Parquet file or a folder of Parquet files",
            hint="Distributed screening splits the input by Parquet row groups; convert CSV/JSON lines "
            "first (e.g. with pyarrow or duckdb), or use the local engine, which reads every format.",
        )
    units: list[Unit] = []
    first = 0
    files = []
    for path in source.dataset.files:
        stat = os.stat(path)
        files.append([path, stat.st_size, stat.st_mtime_ns])
        meta = pq.ParquetFile(path).metadata
        groups: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if n == 0:
                continue
            groups.append(g)
            rows += n
            if rows >= unit_rows:
                units.append(Unit(len(units), path, tuple(groups), first, rows))
                first, groups, rows = first + rows, [], 0
        if groups:
            units.append(Unit(len(units), path, tuple(groups), first, rows))
            first += rows
    fingerprint = hashlib.sha256(json.dumps([files, unit_rows]).encode()).hexdigest()[:16]
    return Plan(units, source.dataset.schema, fingerprint)


def unit_batches(unit: Unit, schema: pa.Schema, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """``(first_row, batch)`` over the unit's rows, in the input's unified schema."""
    row = unit.first_row
    with pq.ParquetFile(unit.path, pre_buffer=False) as f:
        for b in f.iter_batches(batch_size=batch_rows, row_groups=list(unit.row_groups), use_threads=True):
            if b.num_rows:
                yield row, conform_batch(b, schema)
                row += b.num_rows


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the whole file or none of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_table_atomic(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
