"""Column types for JSON lines: decided from a sample, kept for the whole file.

A JSON number comes back as a number and ``true`` as a boolean, so ids and passthrough columns
leave winnow with the type they came in with. The type of each column is decided once, from the
first lines, so every batch of a file has the same schema. A later value is converted to it when
that keeps its meaning (``3.0`` or ``"3"`` into an integer column, any number into a float column);
otherwise its record is rejected with the column, the value and the fix, never altered.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

#: lines read to decide the column names and types
SAMPLE_LINES = 1000

_INT64 = (-(2**63), 2**63 - 1)


def _kind(v: Any) -> str | None:
    """The JSON kind of one value: None (null), bool, int, float, text or json (nested, huge)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int" if _INT64[0] <= v <= _INT64[1] else "json"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "text"
    return "json"


def _type_of(kinds: set[str]) -> pa.DataType:
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()  # text, nested values, mixed kinds or only nulls


_WORDS = {pa.bool_(): "true or false", pa.int64(): "an integer", pa.float64(): "a number"}


class Misfit(ValueError):
    """A value that does not fit its column's type without changing its meaning."""

    def __init__(self, column: str, value: Any, type_: pa.DataType, sample_lines: int) -> None:
        shown = json.dumps(value)[:80]
        super().__init__(
            f"{shown} is not {_WORDS[type_]}, as the column's values in the first "
            f"{sample_lines:,} lines are; give the column one JSON type in every line "
            "(e.g. write whole numbers as 1.0 when the column holds fractions)"
        )
        self.column = column
        self.shown = shown


def _to_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if _INT64[0] <= v <= _INT64[1] else None
    if isinstance(v, float):
        return int(v) if math.isfinite(v) and v.is_integer() and _INT64[0] <= v <= _INT64[1] else None
    if isinstance(v, str):
        try:
            return _to_int(int(v.strip()))
        except ValueError:
            return None
    return None


def _to_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _to_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    return None


_CONVERT = {pa.int64(): _to_int, pa.float64(): _to_float, pa.bool_(): _to_bool}


def _to_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


@dataclass(frozen=True)
class JsonColumns:
    """The columns of a JSON-lines file, in first-seen order, with one Arrow type each."""

    names: list[str]
    types: list[pa.DataType]
    #: lines the types were decided from
    sample_lines: int = SAMPLE_LINES

    @classmethod
    def from_objects(cls, objects: list[dict[str, Any]], sample_lines: int = SAMPLE_LINES) -> JsonColumns:
        kinds: dict[str, set[str]] = {}
        for obj in objects:
            for k, v in obj.items():
                seen = kinds.setdefault(k, set())
                kind = _kind(v)
                if kind is not None:
                    seen.add(kind)
        return cls(list(kinds), [_type_of(s) for s in kinds.values()], sample_lines)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(list(zip(self.names, self.types, strict=True)))

    def row(self, obj: dict[str, Any]) -> list[Any]:
        """The record's values in column order, converted to the column types; raises Misfit."""
        out: list[Any] = []
        for name, type_ in zip(self.names, self.types, strict=True):
            v = obj.get(name)
            if v is None:
                out.append(None)
                continue
            if type_ == pa.string():
                out.append(_to_text(v))
                continue
            conv = _CONVERT[type_](v)
            if conv is None:
                raise Misfit(name, v, type_, self.sample_lines)
            out.append(conv)
        return out
