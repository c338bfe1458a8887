"""Bulk scoring over Arrow IPC: ``POST /v1/score`` with ``application/vnd.apache.arrow.stream``.

A JSON body costs a Python object per value to parse and to answer; an Arrow IPC stream is
read column-wise into the same :meth:`winnow.Screener.score_batch` that batch screening uses,
and the answer is an Arrow IPC stream too: one row per record, in order, with the artifact's id
column (when it has one), ``score`` (float64, null when the record was rejected) and ``error``
(the reject's reason naming the column, null when scored).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from winnow.errors import WinnowError
from winnow.serve.parsing import ClientError

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def is_arrow_stream(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";", 1)[0].strip().lower() == ARROW_STREAM  # type: ignore[union-attr]


def decode_arrow_stream(body: bytes, max_records: int) -> pa.Table:
    """The body as one table; 400 when it is not an Arrow IPC stream, 413 past ``max_records``."""
    if not body:
        raise ClientError(400, "empty_body", "the request body is empty", "Send an Arrow IPC stream.")
    try:
        table = pa.ipc.open_stream(body).read_all()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise ClientError(
            400,
            "invalid_arrow",
            f"the body is not an Arrow IPC stream ({e})",
            "Write it with pyarrow.ipc.new_stream (the stream format, not the file format).",
        ) from None
    if table.num_rows > max_records:
        raise ClientError(
            413,
            "too_many_records",
            f"the stream holds {table.num_rows:,} records, more than {max_records:,}",
            f"Send at most {max_records:,} records per request.",
        )
    return table


def score_arrow(screener: Any, table: pa.Table) -> tuple[bytes, int, int]:
    """(Arrow IPC stream of the results, records scored, records rejected)."""
    try:
        screener.check_columns(table.column_names)
        sb = screener.score_batch(table)
    except WinnowError as e:
        raise ClientError(422, "invalid_records", str(e), getattr(e, "hint", "") or "") from None
    errors: list[str | None] = [None] * table.num_rows
    for r in sb.rejects:
        if errors[r.row] is None:
            errors[r.row] = r.describe()
    scores = pa.array(sb.scores, pa.float64(), mask=~sb.ok | np.isnan(sb.scores))
    columns: dict[str, pa.Array] = {}
    id_col = screener.id_column
    if id_col and id_col in table.column_names:
        columns[id_col] = table.column(id_col).combine_chunks()
    columns["score"] = scores
    columns["error"] = pa.array(errors, pa.string())
    out = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, out.schema) as writer:
        writer.write_table(out)
    rejected = int((~sb.ok).sum())
    return sink.getvalue().to_pybytes(), table.num_rows - rejected, rejected
