"""Stream entries in, sink rows and dead letters out: the data that passes through the worker.

A Redis stream entry is a flat map of byte strings. It becomes a record dict for
:meth:`winnow.online.OnlineScorer.score_records`: keys and values are decoded as UTF-8 and an
empty string means *null* (a flat map has no other way to say "unknown"; the scorer parses
numeric strings itself). With ``json_field`` the entry instead carries one JSON object in that
field, which keeps types and nulls as the producer sent them.

Every entry ends in exactly one place: a :class:`SinkRow` (selected or not) or a
:class:`DeadLetter` with the reason it could not be scored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

from winnow.io.sinks import SinkRow

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

    from winnow.online import RecordResult


@dataclass(frozen=True)
class Entry:
    """One stream entry as delivered to this consumer.

    ``pairs`` is the entry's field/value byte strings as Redis sends them (``[f1, v1, f2, v2,
    ...]``), None when the entry was deleted from the stream (trimmed) while it was pending;
    ``deliveries`` counts this delivery too (1 for a first delivery).
    """

    id: str
    pairs: Sequence[bytes] | None
    deliveries: int = 1

    @property
    def fields(self) -> dict[bytes, bytes] | None:
        """The fields as a map (a name sent twice keeps its last value, as in a Python dict)."""
        if self.pairs is None:
            return None
        it = iter(self.pairs)
        return dict(zip(it, it, strict=True))


@dataclass
class DeadLetter:
    """An entry that will not be scored, and why.

    ``kind`` is one of ``decode`` (not UTF-8 / not JSON), ``invalid`` (the scorer rejected a
    field), ``no_id`` (the record id field is empty), ``unscored`` (no score came back),
    ``retries`` (delivered more than ``max_retries`` times) and ``deleted`` (trimmed from the
    stream before it was processed).
    """

    entry_id: str
    kind: str
    reason: str
    deliveries: int
    record: str
    field: str | None = None
    #: False when the entry is no longer in the group's pending list (nothing to acknowledge)
    pending: bool = True

    def fields(self, consumer: str, failed_at: datetime) -> dict[str, str]:
        return {
            "entry_id": self.entry_id,
            "kind": self.kind,
            "reason": self.reason,
            "field": self.field or "",
            "deliveries": str(self.deliveries),
            "consumer": consumer,
            "failed_at": failed_at.isoformat(),
            "record": self.record,
        }


class DecodeError(ValueError):
    """An entry's bytes do not form a record."""


def decode_entry(fields: dict[bytes, bytes], json_field: str | None = None) -> dict[str, Any]:
    """The record dict of one entry; raises :class:`DecodeError`.

    >>> decode_entry({b"age": b"42", b"city": b""})
    {'age': '42', 'city': None}
    >>> decode_entry({b"data": b'{"age": 42, "city": null}'}, json_field="data")
    {'age': 42, 'city': None}
    """
    if json_field is not None:
        raw = fields.get(json_field.encode())
        if raw is None:
            present = ", ".join(repr(k.decode("utf-8", "backslashreplace")) for k in fields)
            raise DecodeError(f"field {json_field!r} (the JSON payload) is missing; entry has {present}")
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DecodeError(f"field {json_field!r} is not valid UTF-8 JSON ({e})") from None
        if not isinstance(value, dict):
            raise DecodeError(f"field {json_field!r} holds a JSON {type(value).__name__}, not an object")
        return value
    try:
        # the common case in one pass; an empty value is null
        return {k.decode("utf-8"): (v.decode("utf-8") or None) for k, v in fields.items()}
    except UnicodeDecodeError:
        pass  # find the field to name below
    record: dict[str, Any] = {}
    for k, v in fields.items():
        try:
            key = k.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"field name {k[:60]!r} is not valid UTF-8") from None
        try:
            text = v.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"field {key!r}: value {v[:60]!r} is not valid UTF-8") from None
        record[key] = text if text != "" else None
    return record


def decode_columns(entries: Sequence[Sequence[bytes]]) -> pa.Table | None:
    """Entries (flat field/value lists) that all have the same fields in the same order as one
    table of text columns, decoded column by column (empty text is null, as in
    :func:`decode_entry`).

    None when the entries' fields differ, a name repeats or anything is not UTF-8: the
    per-entry path (:func:`decode_entry`) then decodes entry by entry and names what is wrong.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not entries:
        return None
    keys = entries[0][0::2]
    if not keys or len(set(keys)) != len(keys) or any(e[0::2] != keys for e in entries):
        return None
    try:
        names = [k.decode("utf-8") for k in keys]
    except UnicodeDecodeError:
        return None
    # list slices and a transpose in C, then one Arrow array of every value, column after
    # column: the UTF-8 check and the empty -> null rule run once; columns are slices of it
    values = [e[1::2] for e in entries]
    try:
        text = pa.array(list(chain.from_iterable(zip(*values, strict=True))), pa.binary()).cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    n = len(entries)
    return pa.table([text.slice(j * n, n) for j in range(len(names))], names=names)


def raw_json(fields: dict[bytes, bytes] | None) -> str:
    """The entry's fields as JSON text, undecodable bytes escaped (for dead letters)."""
    if fields is None:
        return "null"
    esc = "backslashreplace"
    return json.dumps(
        {k.decode("utf-8", esc): v.decode("utf-8", esc) for k, v in fields.items()}, separators=(",", ":")
    )


def record_json(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), default=str)


def to_outcome(
    entry: Entry,
    record: dict[str, Any],
    result: RecordResult,
    *,
    id_column: str | None,
    scored_at: datetime,
    keep_unselected: bool = True,
) -> SinkRow | DeadLetter:
    """Turn one scorer result into a sink row, or a dead letter when it has no usable score.

    With ``keep_unselected=False`` a row that is not selected (and so written nowhere) gets an
    empty ``record`` instead of the record's JSON text, which only written rows need.
    """
    if result.error is not None:
        err = result.error
        # the entry is the record: name its field, not its place in the scored batch
        why = f"field {err.column!r}: {err.reason}" if err.column else err.reason
        return DeadLetter(
            entry.id,
            "invalid",
            why,
            entry.deliveries,
            record_json(record),
            field=err.column,
        )
    if result.score is None or not math.isfinite(result.score):
        return DeadLetter(
            entry.id,
            "unscored",
            f"the screener returned no score (received {result.score!r})",
            entry.deliveries,
            record_json(record),
        )
    if id_column is None:
        rid = entry.id
    else:
        rid = result.id
        if rid is None or rid == "":
            return DeadLetter(
                entry.id,
                "no_id",
                f"field {id_column!r} (the record id the screener was fitted with) is empty or missing",
                entry.deliveries,
                record_json(record),
                field=id_column,
            )
    return SinkRow(
        id=str(rid),
        score=float(result.score),
        selected=bool(result.selected),
        rule=result.rule,
        reasons=list(result.reasons),
        entry_id=entry.id,
        record=record_json(record) if keep_unselected or result.selected else "",
        scored_at=scored_at,
    )


def unique_by_id(outcomes: list[tuple[str, SinkRow | None]]) -> list[SinkRow]:
    """The rows to store from (record id, row or None when nothing is stored) in entry order,
    keeping only the last outcome of each id: an upsert cannot touch the same key twice in one
    statement, and a later delivery of an id that is stored nowhere drops the earlier row."""
    rows = [row for _, row in outcomes if row is not None]
    if len({rid for rid, _ in outcomes}) == len(outcomes):
        return rows
    last = {rid: pos for pos, (rid, _) in enumerate(outcomes)}
    return [row for pos, (rid, row) in enumerate(outcomes) if row is not None and last[rid] == pos]
