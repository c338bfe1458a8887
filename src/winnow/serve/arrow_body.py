"""Bulk scoring over Arrow IPC: ``POST /v1/score`` with ``application/vnd.apache.arrow.stream``.

A JSON body costs a Python object per value to parse and to answer; an Arrow IPC stream is
read column-wise into the same :meth:`winnow.Screener.score_batch` that batch screening uses,
and the answer is an Arrow IPC stream too: one row per record, in order, with the artifact's id
column (when it has one), ``score`` (float64, null when the record was rejected) and ``error``
(the reject's reason naming the column, null when scored). Bodies that arrive together with
the same schema are scored as one table by the service's micro-batcher
(:mod:`winnow.serve.batcher`), on the same scoring thread as the JSON routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.errors import WinnowError
from winnow.select import threshold_rows
from winnow.serve.parsing import ClientError

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def is_arrow_stream(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";", 1)[0].strip().lower() == ARROW_STREAM  # type: ignore[union-attr]


def decode_arrow_stream(body: bytes, max_records: int) -> pa.Table:
    """The body as one table; 400 when it is not an Arrow IPC stream, 422 past ``max_records``."""
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
            422,
            "too_many_records",
            f"the stream holds {table.num_rows:,} records, more than {max_records:,}",
            f"Send at most {max_records:,} records per request.",
        )
    return table


@dataclass(frozen=True)
class ArrowAnswer:
    """One Arrow request's answer: the IPC stream body and its counts."""

    body: bytes
    scored: int
    rejected: int


def score_table(scorer: Any, table: pa.Table) -> pa.Table:
    """The results of scoring ``table``: one row per record, in order (id, ``score``, ``error``).

    ``scorer`` is the serving model's :class:`winnow.online.OnlineScorer`: its screener scores,
    and its drift monitor sees every scored record, as on the JSON routes (selected = at or
    above the artifact's threshold, with the artifact's rules applied).
    """
    screener = scorer.screener
    try:
        screener.check_columns(table.column_names)
        sb = screener.score_batch(table)
    except WinnowError as e:
        raise ClientError(422, "invalid_records", str(e), getattr(e, "hint", "") or "") from None
    errors: list[str | None] = [None] * table.num_rows
    for r in sb.rejects:
        if errors[r.row] is None:
            errors[r.row] = r.describe()
    ok = np.flatnonzero(sb.ok)
    id_col = screener.id_column
    ids = table.column(id_col).combine_chunks() if id_col and id_col in table.column_names else None
    if scorer.monitor is not None and ok.size:
        hits = scorer.rules.evaluate(table) if scorer.rules else None
        chosen = np.zeros(table.num_rows, dtype=bool)
        chosen[threshold_rows(sb.scores, sb.ok, hits, screener.threshold_.value)] = True
        scorer.monitor.observe(
            sb.inputs.m.take(ok),
            sb.scores[ok],
            chosen[ok],
            ids=None if ids is None else ids.take(pa.array(ok)).to_pylist(),
        )
    columns: dict[str, pa.Array] = {} if ids is None else {id_col: ids}  # type: ignore[dict-item]
    columns["score"] = pa.array(sb.scores, pa.float64(), from_pandas=True)  # NaN (rejected) -> null
    columns["error"] = pa.array(errors, pa.string())
    return pa.table(columns)


def encode_results(results: pa.Table) -> ArrowAnswer:
    """The results table as an Arrow IPC stream, with its scored and rejected counts."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, results.schema) as writer:
        writer.write_table(results)
    rejected = results.column("score").null_count
    return ArrowAnswer(sink.getvalue().to_pybytes(), results.num_rows - rejected, rejected)


def score_tables(scorer: Any, tables: list[pa.Table]) -> list[ArrowAnswer | ClientError]:
    """Answers for several requests' tables of one schema, scored as one table.

    Requests that arrive together cost one scoring call (the fixed costs of typing,
    preprocessing and each model per call are paid once); if the joined table is refused, each
    table is scored on its own so that each request gets its own answer or error.
    """
    if len(tables) > 1:
        try:
            joined = score_table(scorer, pa.concat_tables(tables))
        except ClientError:
            return [_answer_or_error(scorer, t) for t in tables]
        out: list[ArrowAnswer | ClientError] = []
        start = 0
        for t in tables:
            out.append(encode_results(joined.slice(start, t.num_rows)))
            start += t.num_rows
        return out
    return [_answer_or_error(scorer, tables[0])]


def _answer_or_error(scorer: Any, table: pa.Table) -> ArrowAnswer | ClientError:
    try:
        return encode_results(score_table(scorer, table))
    except ClientError as e:
        return e
