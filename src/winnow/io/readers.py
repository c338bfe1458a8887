"""Table sources: CSV, Parquet (a file or a folder), JSON lines and in-memory frames.

Every source yields ``pyarrow.RecordBatch`` objects of bounded size, so memory depends on the
batch size and not on the file. CSV is read with every column as a string and typed afterwards by
:mod:`winnow.schema`, so one bad value rejects one record instead of a whole block; JSON lines keep
the JSON types of their columns (:mod:`winnow.io.json_types`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from winnow.errors import DataError
from winnow.io.json_types import SAMPLE_LINES, JsonColumns, Misfit
from winnow.io.rejects import Reject
from winnow.io.uris import Remote, resolve

DEFAULT_BATCH_ROWS = 65_536
CSV_NULLS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


class TableSource(ABC):
    """A table that can be read as Arrow batches more than once (in the same order)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def column_names(self) -> list[str]:
        """The column names, in order."""

    def num_rows(self) -> int | None:
        """Row count when known without reading the data (Parquet metadata, in-memory)."""
        return None

    @abstractmethod
    def numbered_batches(
        self, batch_rows: int = DEFAULT_BATCH_ROWS, rejects: list[Reject] | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Yield ``(first_row, batch)`` in order; a batch holds the records at positions
        ``first_row .. first_row + len - 1`` of the input (data rows, header excluded), so
        records rejected while parsing (appended to ``rejects``) keep their own positions."""

    def batches(
        self, batch_rows: int = DEFAULT_BATCH_ROWS, rejects: list[Reject] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The batches of :meth:`numbered_batches` without their positions."""
        for _, batch in self.numbered_batches(batch_rows, rejects):
            yield batch

    def read_all(self, rejects: list[Reject] | None = None) -> pa.Table:
        return self.read_numbered(rejects)[0]

    def read_numbered(self, rejects: list[Reject] | None = None) -> tuple[pa.Table, np.ndarray]:
        """The whole input as one table, and each row's position in the input (records
        rejected while parsing keep theirs, so the positions can have gaps)."""
        parts, positions = [], []
        for first, batch in self.numbered_batches(rejects=rejects):
            parts.append(batch)
            positions.append(np.arange(first, first + batch.num_rows, dtype=np.int64))
        if not parts:
            empty = pa.table({c: pa.array([], pa.string()) for c in self.column_names()})
            return empty, np.zeros(0, dtype=np.int64)
        return pa.Table.from_batches(parts), np.concatenate(positions)


class ArrowSource(TableSource):
    """An in-memory Arrow table (also built from pandas or Polars frames)."""

    def __init__(self, table: pa.Table, name: str = "<table>") -> None:
        super().__init__(name)
        self.table = table

    def column_names(self) -> list[str]:
        return list(self.table.column_names)

    def num_rows(self) -> int | None:
        return self.table.num_rows

    def numbered_batches(
        self, batch_rows: int = DEFAULT_BATCH_ROWS, rejects: list[Reject] | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        row = 0
        for b in self.table.to_batches(max_chunksize=batch_rows):
            if b.num_rows:
                yield row, b
                row += b.num_rows


class ParquetSource(TableSource):
    """One Parquet file or a folder of Parquet files."""

    def __init__(self, path: Path | str, remote: Remote | None = None) -> None:
        super().__init__(remote.uri if remote else str(path))
        self._fs = remote.fs if remote else None
        try:
            self.dataset = pads.dataset(
                remote.path if remote else str(path), format="parquet", filesystem=self._fs
            )
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"cannot read Parquet {self.name!r}: {e}") from e

    def column_names(self) -> list[str]:
        return list(self.dataset.schema.names)

    def num_rows(self) -> int | None:
        return int(self.dataset.count_rows())

    def numbered_batches(
        self, batch_rows: int = DEFAULT_BATCH_ROWS, rejects: list[Reject] | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        import pyarrow.parquet as pq

        # File by file with ParquetFile.iter_batches, not Dataset.to_batches: the dataset scanner
        # reads ahead without bound when the consumer (scoring) is slower than decoding, and held
        # ~330 bytes per row consumed (1.8 GB peak on 10M rows); this reader stays flat.
        schema = self.dataset.schema
        row = 0
        for path in self.dataset.files:
            with pq.ParquetFile(self._fs.open_input_file(path) if self._fs else path, pre_buffer=False) as f:
                for b in f.iter_batches(batch_size=batch_rows, use_threads=True):
                    if b.num_rows:
                        yield row, conform_batch(b, schema)
                        row += b.num_rows


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A file's batch in the folder's unified schema (same columns, order and types)."""
    if batch.schema.equals(schema):
        return batch
    cols = []
    for field in schema:
        i = batch.schema.get_field_index(field.name)
        if i < 0:
            cols.append(pa.nulls(batch.num_rows, field.type))
        else:
            col = batch.column(i)
            cols.append(col if col.type == field.type else col.cast(field.type))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


#: CSV bytes parsed at a time: a line (a record) may be up to this long
_BLOCK_BYTES = 1 << 24
_NOT_UTF8 = "Save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`."
_DAMAGED = "The file is damaged or cut short: copy or export it again."


def _csv_error(path: Path, e: Exception) -> DataError:
    if isinstance(e, OSError):  # a damaged or cut compressed file
        return DataError(f"cannot read CSV {str(path)!r}: {e}", hint=_DAMAGED)
    if "straddl" in str(e):
        return DataError(
            f"cannot read CSV {str(path)!r}: a line is longer than {_BLOCK_BYTES >> 20} MiB",
            hint="Split or shorten the long field (or give the data as Parquet).",
        )
    hint = _NOT_UTF8 if "UTF8" in str(e) else "Fix the file at the line named, or export it again."
    return DataError(f"cannot read CSV {str(path)!r}: {e}", hint=hint)


def _text_input(path: Path, remote: Remote | None) -> Any:
    """What pyarrow's CSV reader opens: the local path, or the remote file's (decompressed) stream."""
    return remote.fs.open_input_stream(remote.path, compression="detect") if remote else str(path)


def _header(path: Path, delimiter: str, block_bytes: int, remote: Remote | None = None) -> list[str]:
    with pacsv.open_csv(
        _text_input(path, remote),
        read_options=pacsv.ReadOptions(block_size=block_bytes),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=lambda row: "skip"),
    ) as reader:
        return list(reader.schema.names)


def check_utf8_text(path: Path, head_bytes: int = 1 << 16, remote: Remote | None = None) -> None:
    """Refuse, with a clear error, a file whose start is not UTF-8 text (binary, UTF-16, Latin-1)."""
    try:
        stream = (
            remote.fs.open_input_stream(remote.path, compression="detect")
            if remote
            else pa.input_stream(str(path), compression="detect")
        )
        with stream as f:
            head = f.read(head_bytes)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataError(f"cannot read {str(path)!r}: {e}", hint=_DAMAGED) from e
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(
            f"{str(path)!r} is UTF-16 text, not UTF-8", hint=_NOT_UTF8.replace("latin1", "utf-16")
        )
    if b"\x00" in head:
        raise DataError(
            f"{str(path)!r} is not text: it holds NUL bytes",
            hint="Give a CSV text file (or a .parquet / .jsonl file with its own suffix).",
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut at the end of the head
            raise DataError(
                f"{str(path)!r} is not UTF-8 text (byte 0x{head[e.start]:02x} at offset {e.start})",
                hint=_NOT_UTF8,
            ) from None


class CsvSource(TableSource):
    """A CSV file (optionally compressed), streamed block by block with every column as text."""

    def __init__(self, path: Path, delimiter: str = ",", remote: Remote | None = None) -> None:
        super().__init__(remote.uri if remote else str(path))
        self.path = path
        self.delimiter = delimiter
        self.remote = remote
        check_utf8_text(path, remote=remote)
        try:
            try:  # the header from a small first block; a longer first line takes a full block
                self._names = _header(path, delimiter, 1 << 16, remote)
            except pa.ArrowInvalid as e:
                if "straddl" not in str(e):
                    raise
                self._names = _header(path, delimiter, _BLOCK_BYTES, remote)
        except pa.ArrowInvalid as e:
            if "Empty CSV file" in str(e):
                raise DataError(
                    f"{str(path)!r} is empty", hint="Give a CSV with a header row and data."
                ) from e
            raise _csv_error(path, e) from e
        except OSError as e:
            raise _csv_error(path, e) from e
        twice = sorted(n for n, times in Counter(self._names).items() if times > 1)
        if twice:
            raise DataError(
                f"CSV {str(path)!r} has the column name(s) {twice} more than once in its header",
                hint="Give every column its own name.",
            )

    def column_names(self) -> list[str]:
        return list(self._names)

    def numbered_batches(
        self, batch_rows: int = DEFAULT_BATCH_ROWS, rejects: list[Reject] | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        bad: list[Any] = []

        def on_invalid(row: Any) -> str:
            bad.append(row)
            return "skip"

        # single-threaded parsing is what makes pyarrow report the line of a malformed row;
        # blocks of ~200 bytes a row are re-cut to batch_rows below
        reader = pacsv.open_csv(
            _text_input(self.path, self.remote),
            read_options=pacsv.ReadOptions(block_size=max(_BLOCK_BYTES, batch_rows * 200), use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=self.delimiter, invalid_row_handler=on_invalid, newlines_in_values=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in self._names},
                null_values=CSV_NULLS,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        try:
            yield from self._blocks(reader, bad, batch_rows, rejects)
        except (pa.ArrowInvalid, OSError) as e:
            raise _csv_error(self.path, e) from e

    def _blocks(
        self, reader: Any, bad: list[Any], batch_rows: int, rejects: list[Reject] | None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        row = 0  # position of the next record not yet yielded or rejected
        with reader:
            for block in reader:
                # bad rows of this block, as data-row positions (line 1 is the header)
                bad_rows = sorted(b.number - 2 for b in bad if isinstance(b.number, int))
                for b in bad:
                    if rejects is not None:
                        rejects.append(
                            Reject(
                                row=b.number - 2 if isinstance(b.number, int) else row,
                                reason=f"malformed CSV line: expected {b.expected_columns} "
                                f"fields, got {b.actual_columns}",
                                value=str(b.text)[:200],
                            )
                        )
                bad.clear()
                # cut the block into runs of consecutive good records
                taken = 0
                for br in [*bad_rows, None]:
                    run = block.num_rows - taken if br is None else br - row
                    for off in range(0, max(run, 0), batch_rows):
                        part = block.slice(taken + off, min(batch_rows, run - off))
                        yield row + off, part
                    taken += max(run, 0)
                    row += max(run, 0)
                    if br is not None:
                        row += 1  # the malformed line keeps its position


class JsonLinesSource(TableSource):
    """A JSON-lines file: one object per line, parsed line by line so a bad line is one reject.

    Column names and types come from the first lines (:mod:`winnow.io.json_types`): numbers stay
    numbers and booleans booleans, so every batch of the file has the same typed schema.
    """

    def __init__(self, path: Path, sample_lines: int = SAMPLE_LINES, remote: Remote | None = None) -> None:
        super().__init__(remote.uri if remote else str(path))
        self.path = path
        self.remote = remote
        self.sample_lines = sample_lines
        self._columns: JsonColumns | None = None

    def _open(self) -> IO[bytes]:
        return self.remote.open_lines() if self.remote else open(self.path, "rb")

    @property
    def columns(self) -> JsonColumns:
        if self._columns is None:
            sample: list[dict[str, Any]] = []
            with self._open() as fh:
                for i, raw in enumerate(fh):
                    if i >= self.sample_lines:
                        break
                    try:
                        obj = json.loads(raw.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        continue
                    if isinstance(obj, dict):
                        sample.append(obj)
            self._columns = JsonColumns.from_objects(sample, self.sample_lines)
        return self._columns

    def column_names(self) -> list[str]:
        return list(self.columns.names)

    def numbered_batches(
        self, batch_rows: int = DEFAULT_BATCH_ROWS, rejects: list[Reject] | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        columns = self.columns
        schema = columns.schema
        rows: list[list[Any]] = []
        first = 0
        row = 0

        def flush() -> pa.RecordBatch:
            values = zip(*rows, strict=True) if columns.names else []
            return pa.RecordBatch.from_arrays(
                [pa.array(v, t) for v, t in zip(values, columns.types, strict=True)], schema=schema
            )

        with self._open() as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    rows.append(columns.row(_json_object(raw)))
                except ValueError as e:
                    if rejects is not None:
                        rejects.append(_line_reject(row, raw, e))
                    if rows:
                        yield first, flush()
                        rows = []
                    row += 1
                    first = row
                    continue
                row += 1
                if len(rows) == batch_rows:
                    yield first, flush()
                    rows = []
                    first = row
        if rows:
            yield first, flush()


def _json_object(raw: bytes) -> dict[str, Any]:
    """One line's object; ValueError (UnicodeDecodeError included) when it is not one."""
    obj = json.loads(raw.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _line_reject(row: int, raw: bytes, e: ValueError) -> Reject:
    line = raw.decode("utf-8", errors="replace")[:200]
    if isinstance(e, Misfit):
        return Reject(row=row, reason=str(e), column=e.column, value=e.shown)
    if isinstance(e, UnicodeDecodeError):
        reason = f"the line is not UTF-8 text ({e.reason} at byte {e.start})"
        return Reject(row=row, reason=reason, value=line)
    return Reject(row=row, reason=f"invalid JSON: {e}", value=line)


def _to_arrow(data: Any) -> pa.Table | None:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        try:  # records as JSON carries them: Arrow infers each column's type
            return pa.Table.from_pylist(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise DataError(
                f"cannot make a table of the {len(data)} records: {e}",
                hint="Give each field one type in every record (or pass a DataFrame).",
            ) from e
    mod, kind = type(data).__module__, type(data).__name__
    if mod.startswith("polars") and kind == "DataFrame":
        return data.to_arrow()
    if mod.startswith("pandas") and kind == "DataFrame":
        return pa.Table.from_pandas(data, preserve_index=False)
    return None


def open_source(data: Any) -> TableSource:
    """Open a path (CSV, Parquet file or folder, JSON lines), an in-memory table or frame, or a
    stream of batches held by Arrow, Polars or DuckDB (:mod:`winnow.io.frames`)."""
    if isinstance(data, TableSource):
        return data
    table = _to_arrow(data)
    if table is not None:
        return ArrowSource(table)
    from winnow.io.frames import library_source  # frames builds on this module's TableSource

    source = library_source(data)
    if source is not None:
        return source
    if not isinstance(data, str | Path):
        raise DataError(
            f"cannot read data of type {type(data).__name__}",
            hint="Pass a path, a pandas or Polars DataFrame or LazyFrame, a pyarrow Table, "
            "dataset or RecordBatchReader, a DuckDB relation, or a list of records (dicts).",
        )
    from winnow.io.sql import parse_location, sql_source  # sql builds on this module's sources

    loc = parse_location(data) if isinstance(data, str) else None
    if loc is not None:
        return sql_source(loc)
    remote = resolve(data) if isinstance(data, str) else None
    return _open_file(Path(data), remote)


def _open_file(path: Path, remote: Remote | None) -> TableSource:
    """A file (or folder of Parquet files) on this machine or behind a URI, by its extension."""
    name = remote.uri if remote else str(path)
    if remote is not None:
        info = remote.info()
        exists, is_dir = info.type != pafs.FileType.NotFound, info.type == pafs.FileType.Directory
        size, suffixes = info.size, remote.suffixes
    else:
        exists, is_dir = path.exists(), path.is_dir()
        size, suffixes = (
            (path.stat().st_size if exists and not is_dir else 0),
            [s.lower() for s in path.suffixes],
        )
    if not exists:
        raise DataError(f"{name!r} does not exist", hint="Check the path.")
    if is_dir:
        if not (remote.has_parquet() if remote else any(path.rglob("*.parquet"))):
            raise DataError(f"folder {name!r} holds no .parquet files")
        return ParquetSource(path, remote)
    if size == 0:
        raise DataError(f"{name!r} is empty", hint="Give a file with a header and data rows.")
    if ".parquet" in suffixes or ".pq" in suffixes:
        return ParquetSource(path, remote)
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return CsvSource(path, delimiter="\t" if ".tsv" in suffixes else ",", remote=remote)
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return JsonLinesSource(path, remote=remote)
    raise DataError(
        f"unknown file type {Path(remote.path if remote else path).suffix!r} for {name!r}",
        hint="Use .csv, .tsv, .parquet (file or folder) or .jsonl.",
    )
