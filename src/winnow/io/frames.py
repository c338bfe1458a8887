"""Sources over data that already lives in a library: Arrow datasets and record-batch readers,
Polars LazyFrames, DuckDB relations and anything that exports an Arrow C stream.

Each is read in batches, never collected whole: a LazyFrame is run by Polars' streaming engine,
a DuckDB relation by DuckDB, an Arrow dataset by its scanner, so memory depends on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from winnow.errors import DataError
from winnow.io.readers import DEFAULT_BATCH_ROWS, TableSource, conform_batch
from winnow.io.rejects import Reject


class StreamSource(TableSource):
    """Batches from a function that runs the query (or scan) again on every call.

    ``open_stream(batch_rows)`` returns an iterator of record batches (or Arrow tables); batches
    of another size are re-cut to ``batch_rows``, and every batch is given ``schema``.
    """

    def __init__(
        self,
        name: str,
        schema: pa.Schema,
        open_stream: Callable[[int], Iterator[Any]],
        num_rows: int | None = None,
    ) -> None:
        super().__init__(name)
        self.schema = schema
        self._open = open_stream
        self._rows = num_rows

    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def num_rows(self) -> int | None:
        return self._rows

    def numbered_batches(
        self, batch_rows: int = DEFAULT_BATCH_ROWS, rejects: list[Reject] | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        row = 0
        for part in self._open(batch_rows):
            for b in part.to_batches(max_chunksize=batch_rows) if isinstance(part, pa.Table) else [part]:
                for off in range(0, b.num_rows, batch_rows):
                    piece = b.slice(off, batch_rows)
                    yield row, conform_batch(piece, self.schema)
                    row += piece.num_rows


class OnePassSource(StreamSource):
    """A stream that can be read only once (a ``RecordBatchReader``, an Arrow C stream)."""

    def __init__(self, name: str, reader: pa.RecordBatchReader) -> None:
        self._reader: pa.RecordBatchReader | None = reader
        super().__init__(name, reader.schema, self._take)

    def _take(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        reader, self._reader = self._reader, None
        if reader is None:
            raise DataError(
                f"{self.name} was read already: a record-batch stream can be read once",
                hint="This work reads its input more than once (e.g. --diverse, similar): pass a "
                "table, a Parquet file or folder, a pyarrow dataset, a DuckDB relation or a "
                "Polars LazyFrame instead.",
            )
        with reader:
            yield from reader


def _lazy_frame(lf: Any) -> StreamSource:
    schema = lf.head(0).collect().to_arrow().schema

    def run(batch_rows: int) -> Iterator[pa.Table]:
        for frame in lf.collect_batches(chunk_size=batch_rows):
            yield frame.to_arrow()

    return StreamSource("<polars LazyFrame>", schema, run)


def _duckdb_relation(rel: Any) -> StreamSource:
    schema = rel.limit(0).to_arrow_table().schema

    def run(batch_rows: int) -> Iterator[pa.RecordBatch]:
        reader = rel.to_arrow_reader(batch_rows)
        with reader:
            yield from reader

    return StreamSource("<DuckDB relation>", schema, run)


def _dataset(ds: pads.Dataset) -> StreamSource:
    def run(batch_rows: int) -> Iterator[pa.RecordBatch]:
        # one batch and one fragment read ahead: the scanner otherwise runs ahead of scoring
        yield from ds.to_batches(batch_size=batch_rows, batch_readahead=1, fragment_readahead=1)

    return StreamSource("<pyarrow dataset>", ds.schema, run, int(ds.count_rows()))


def library_source(data: Any) -> TableSource | None:
    """A source for ``data`` held by Arrow, Polars or DuckDB; None for anything else."""
    if isinstance(data, pads.Dataset):
        return _dataset(data)
    if isinstance(data, pa.RecordBatchReader):
        return OnePassSource("<RecordBatchReader>", data)
    mod, kind = type(data).__module__, type(data).__name__
    if mod.startswith("polars") and kind == "LazyFrame":
        return _lazy_frame(data)
    if mod.startswith("duckdb") and kind == "DuckDBPyRelation":
        return _duckdb_relation(data)
    if hasattr(data, "__arrow_c_stream__"):
        try:
            reader = pa.RecordBatchReader.from_stream(data)
        except (pa.ArrowInvalid, TypeError) as e:
            raise DataError(
                f"cannot read a {kind} as a table: {e}",
                hint="Pass a table of named columns (e.g. a DataFrame, not a Series).",
            ) from e
        return OnePassSource(f"<{kind}>", reader)
    return None


#: what ``output=`` may ask for
OUTPUTS = ("arrow", "pandas", "polars")


def as_output(table: pa.Table | None, output: str) -> Any:
    """``table`` as the frame type ``output`` names (None stays None)."""
    if output not in OUTPUTS:
        from winnow.errors import ConfigError

        raise ConfigError("output", output, "one of " + ", ".join(map(repr, OUTPUTS)))
    if table is None or output == "arrow":
        return table
    if output == "pandas":
        return table.to_pandas()
    import polars as pl

    return pl.from_arrow(table)


def output_for(data: Any) -> str:
    """The frame type of an input: pandas in, pandas out; Polars in, Polars out; else Arrow."""
    mod = type(data).__module__
    if mod.startswith("pandas"):
        return "pandas"
    if mod.startswith("polars"):
        return "polars"
    return "arrow"
