"""One value of a record (a JSON field, a Redis stream entry) to its column's type.

The service and the stream worker receive records as Python values or text. Each value is
converted to the type its role needs, or refused with :class:`Invalid` naming what was expected
(:data:`winnow.schema.EXPECTED_VALUE`). Two ways, which accept and refuse the same values:

* per value (:func:`convert_checked`): finds and names the exact bad value;
* per column (:data:`COLUMNS` for Python values, :data:`TEXT_COLUMNS` for a column of text such
  as a decoded stream batch): one pass per column, None as soon as a value needs the per-value
  path.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from winnow.config import Role
from winnow.io.rejects import Reject
from winnow.schema import EXPECTED_VALUE, FALSE_WORDS, TRUE_WORDS

#: the text a numeric field takes besides JSON numbers and true/false (blank: unknown). The
#: service's OpenAPI schema carries the same pattern, so what it says it takes is what it takes;
#: two exponent digits at most, so that no text that matches overflows a float64
NUMBER_TEXT = r"^[ \t]*(?:[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?)?[ \t]*$"
_NUMBER_TEXT = re.compile(NUMBER_TEXT)
#: what counts as blank around a value: spaces and tabs (as in the patterns)
_BLANK = " \t"
#: the largest magnitude a numeric field takes (a number beyond it is refused, not rounded)
NUMBER_LIMIT = 1e308
_INT_LIMIT = 10**308


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


#: the text a boolean field takes besides true/false and 0/1 (any case; blank: unknown)
BOOLEAN_TEXT = (
    r"^[ \t]*(?:"
    + "|".join(_any_case(w) for w in sorted(TRUE_WORDS | FALSE_WORDS, key=lambda w: (-len(w), w)))
    + r")?[ \t]*$"
)


class Invalid(Exception):
    def __init__(self, expected: str, received: Any) -> None:
        self.expected = expected
        self.received = received


def describe(v: Any) -> str:
    r = repr(v)
    return f"{type(v).__name__} {r[:60]}"


def convert(value: Any, role: Role) -> Any:
    """One value to the column's raw type, or raise Invalid."""
    if value is None:
        return None
    if role == Role.NUMERIC:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int) and not -_INT_LIMIT <= value <= _INT_LIMIT:
            raise Invalid(EXPECTED_VALUE[role], value)
        if isinstance(value, int | float):
            v = float(value)
        elif isinstance(value, str):
            if _NUMBER_TEXT.fullmatch(value) is None:
                raise Invalid(EXPECTED_VALUE[role], value)
            if value.strip(_BLANK) == "":
                return None
            v = float(value)
        else:
            raise Invalid(EXPECTED_VALUE[role], value)
        if not math.isfinite(v) or abs(v) > NUMBER_LIMIT:
            raise Invalid(EXPECTED_VALUE[role], value)
        return v
    if role == Role.BOOLEAN:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float) and value in (0, 1):
            return float(value)
        if isinstance(value, str):
            key = value.strip(_BLANK).lower()
            if key in TRUE_WORDS:
                return 1.0
            if key in FALSE_WORDS:
                return 0.0
            if key == "":
                return None
        raise Invalid(EXPECTED_VALUE[role], value)
    if role == Role.DATETIME:
        if isinstance(value, datetime):  # also pandas Timestamps (Python callers' records)
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        if isinstance(value, bool):
            raise Invalid(EXPECTED_VALUE[role], value)
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise Invalid(EXPECTED_VALUE[role], value)
            return datetime.fromtimestamp(float(value), tz=UTC).replace(tzinfo=None)
        if isinstance(value, str):
            if value.strip(_BLANK) == "":
                return None
            try:
                dt = datetime.fromisoformat(value.strip(_BLANK).replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise Invalid(EXPECTED_VALUE[role], value) from None
            if dt.tzinfo is not None:
                dt = dt.astimezone(UTC).replace(tzinfo=None)
            return dt
        raise Invalid(EXPECTED_VALUE[role], value)
    # categorical / text: an empty string is a missing value, as in CSV files
    if isinstance(value, str) and value == "":
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(EXPECTED_VALUE[role], value)
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, int | str):
        return str(value)
    raise Invalid(EXPECTED_VALUE[role], value)


def convert_checked(value: Any, role: Role) -> Any:
    """:func:`convert`, with every way a value can break conversion reported as invalid."""
    try:
        out = convert(value, role)
        if isinstance(out, str):
            out.encode("utf-8")  # lone surrogates cannot go into Arrow
        return out
    except Invalid:
        raise
    except (OverflowError, ValueError, OSError, TypeError):
        raise Invalid(EXPECTED_VALUE[role], value) from None


class FieldInvalid(Exception):
    """A record's field that cannot be scored, as the :class:`~winnow.io.rejects.Reject` of
    record 0 (the caller numbers it with ``reject.at(i)``)."""

    def __init__(self, reject: Reject) -> None:
        super().__init__(reject.describe("field"))
        self.reject = reject

    @property
    def problem(self) -> str:
        """``field 'x': <reason>``"""
        return f"field {self.reject.column!r}: {self.reject.reason}"


def checked_record(record: Any, fields: list[tuple[str, Role]]) -> dict[str, Any]:
    """Every field of one record converted by :func:`convert_checked`; raises
    :class:`FieldInvalid` for the first field missing or refused (the wording every front end
    shows: ``field 'x': expected a finite number, received str 'abc'``)."""
    row: dict[str, Any] = {}
    for name, role in fields:
        if name not in record:
            expected = EXPECTED_VALUE[role]
            raise FieldInvalid(
                Reject(
                    0,
                    f"missing; it is required ({expected}; send null for an unknown value)",
                    column=name,
                    value="nothing (field missing)",
                    expected=expected,
                )
            )
        try:
            row[name] = convert_checked(record[name], role)
        except Invalid as e:
            received = describe(e.received)
            raise FieldInvalid(
                Reject(0, f"expected {e.expected}, received {received}", name, received, e.expected)
            ) from None
    return row


def rule_field(values: list[Any]) -> pa.Array:
    """A field only rules read: numbers (also numbers sent as text, as Redis streams do) become
    float64 so comparisons like ``amount > 10000`` work; anything else stays text."""
    numbers: list[float | None] = []
    for v in values:
        if v is None or v == "":
            numbers.append(None)
            continue
        if isinstance(v, bool):
            break
        try:
            numbers.append(float(v))
        except (TypeError, ValueError, OverflowError):
            break
    else:
        return pa.array(numbers, pa.float64())
    return pa.array([None if v is None else str(v) for v in values], pa.string())


ARROW_TYPES = {
    Role.NUMERIC: pa.float64(),
    Role.BOOLEAN: pa.float64(),
    Role.DATETIME: pa.timestamp("us"),
    Role.CATEGORICAL: pa.string(),
    Role.TEXT: pa.string(),
    Role.IMAGE: pa.string(),
}


# -------------------------------------------------------------- column-wise fast conversion
# Each takes one column's values and returns the typed Arrow array, None when any value needs
# the per-value path (which accepts the same values and names the field of a bad one), or
# raises TypeError / ValueError / OverflowError (same meaning as None).
_BOOL_WORDS = {**dict.fromkeys(TRUE_WORDS, 1.0), **dict.fromkeys(FALSE_WORDS, 0.0)}


def _numeric_text_ok(values: list[Any]) -> bool:
    """Whether every text among ``values`` is number text (:data:`NUMBER_TEXT`)."""
    return all(_NUMBER_TEXT.fullmatch(v) is not None for v in values if type(v) is str)


def _numeric_column(values: list[Any]) -> pa.Array | None:
    if any(type(v) is bool for v in values) or not _numeric_text_ok(values):
        return None
    # float() takes ints, floats and numeric text alike; "" is a missing value as in CSV files
    floats = [None if v is None or v == "" else float(v) for v in values]
    # one C-level sum finds a NaN or an infinity (a false alarm on overflow only costs the slow
    # path); a number at or beyond NUMBER_LIMIT is the per-value path's to take or refuse
    present = [v for v in floats if v is not None]
    if present and (
        not math.isfinite(sum(present)) or max(present) >= NUMBER_LIMIT or min(present) <= -NUMBER_LIMIT
    ):
        return None
    return pa.array(floats, pa.float64())


def _string_column(values: list[Any]) -> pa.Array | None:
    if not all(v is None or type(v) is str for v in values):
        return None
    return pa.array([None if v == "" else v for v in values], pa.string())


def _boolean_values(values: list[Any]) -> list[float | None] | None:
    out: list[float | None] = []
    for v in values:
        t = type(v)
        if v is None:
            out.append(None)
        elif t is bool:
            out.append(float(v))
        elif t is str:
            key = v.strip(_BLANK).lower()
            if key == "":
                out.append(None)
            elif key in _BOOL_WORDS:
                out.append(_BOOL_WORDS[key])
            else:
                return None
        else:
            return None
    return out


def _boolean_column(values: list[Any]) -> pa.Array | None:
    out = _boolean_values(values)
    return None if out is None else pa.array(out, pa.float64())


def _datetime_column(values: list[Any]) -> pa.Array | None:
    try:
        return pa.array([convert(v, Role.DATETIME) for v in values], pa.timestamp("us"))
    except Invalid:
        return None


_TRUE = pa.array(sorted(TRUE_WORDS))
_FALSE = pa.array(sorted(FALSE_WORDS))


def _text_numeric(col: pa.Array) -> pa.Array | None:
    try:
        out = pc.cast(col, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # text Arrow does not read as a number: the per-value path decides
    if out.null_count == len(out):
        return out
    values = np.abs(out.drop_null().to_numpy())
    if not np.isfinite(values).all():
        return None
    # Arrow reads a subset of NUMBER_TEXT, but for exponents of three digits: only a number
    # that large or that small can have one, so only then is the text matched (rarely)
    odd = (values >= 1e99) | ((values > 0) & (values < 1e-99))
    if odd.any() and pc.all(pc.match_substring_regex(col, NUMBER_TEXT)).as_py() is False:
        return None  # the per-value path refuses the text by name
    return out


def _text_boolean(col: pa.Array) -> pa.Array | None:
    key = pc.utf8_lower(pc.utf8_trim(col, characters=_BLANK))
    yes, no = pc.is_in(key, value_set=_TRUE), pc.is_in(key, value_set=_FALSE)
    if (pc.sum(pc.or_(yes, no)).as_py() or 0) != len(col) - col.null_count:
        return None
    return pc.if_else(yes, 1.0, 0.0)  # nulls stay null


def _text_datetime(col: pa.Array) -> pa.Array | None:
    return _datetime_column(col.to_pylist())


def _text_string(col: pa.Array) -> pa.Array:
    return col


#: text columns (empty text already null) to each role's type, or None for the per-value path
TEXT_COLUMNS = {
    Role.NUMERIC: _text_numeric,
    Role.BOOLEAN: _text_boolean,
    Role.DATETIME: _text_datetime,
    Role.CATEGORICAL: _text_string,
    Role.TEXT: _text_string,
    Role.IMAGE: _text_string,
}

COLUMNS = {
    Role.NUMERIC: _numeric_column,
    Role.BOOLEAN: _boolean_column,
    Role.DATETIME: _datetime_column,
    Role.CATEGORICAL: _string_column,
    Role.TEXT: _string_column,
    Role.IMAGE: _string_column,
}


# -------------------------------------------------------------- a few records, without Arrow
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def _small_numbers(values: list[Any]) -> np.ndarray | None:
    if any(type(v) is bool for v in values) or not _numeric_text_ok(values):
        return None
    missing = [v is None or v == "" for v in values]
    floats = [np.nan if m else float(v) for v, m in zip(values, missing, strict=True)]
    out = np.array(floats, dtype=np.float64)
    # a NaN or an infinity sent as a value takes the per-value path, which refuses it (and so
    # does a number at or beyond NUMBER_LIMIT)
    if np.isfinite(out).sum() != len(values) - sum(missing) or (np.abs(out) >= NUMBER_LIMIT).any():
        return None
    return out


def _small_strings(values: list[Any]) -> list[str | None] | None:
    for v in values:
        if v is not None and (type(v) is not str or (not v.isascii() and not _encodable(v))):
            return None
    return [None if v == "" else v for v in values]


def _encodable(v: str) -> bool:
    try:
        v.encode("utf-8")  # lone surrogates cannot go into Arrow
    except UnicodeEncodeError:
        return False
    return True


def _small_text(values: list[Any]) -> pa.Array | None:
    strings = _small_strings(values)
    return None if strings is None else pa.array(strings, pa.string())


def _small_booleans(values: list[Any]) -> np.ndarray | None:
    out = _boolean_values(values)
    return None if out is None else np.array([np.nan if v is None else v for v in out], dtype=np.float64)


def _small_datetimes(values: list[Any]) -> np.ndarray | None:
    out = []
    for v in values:
        if v is not None and type(v) is not str:
            return None  # datetime objects (nanoseconds, zones) take the Arrow path
        dt = convert(v, Role.DATETIME)
        out.append(np.nan if dt is None else float((dt - _EPOCH) // _MICROSECOND) / 1e6)
    return np.array(out, dtype=np.float64)


def _small_unsupported(values: list[Any]) -> None:
    return None


#: a column of a few records' values to what :func:`winnow.schema.coerce` makes of the same
#: values sent through :data:`COLUMNS` (see ``Coerced.columns``), or None
_SMALL = {
    Role.NUMERIC: _small_numbers,
    Role.BOOLEAN: _small_booleans,
    Role.DATETIME: _small_datetimes,
    Role.CATEGORICAL: _small_strings,
    Role.TEXT: _small_text,
    Role.IMAGE: _small_unsupported,
}


def typed_records(records: list[Any], fields: list[tuple[str, Role]]) -> dict[str, Any] | None:
    """A few well-formed records typed straight into the columns of a
    :class:`winnow.schema.Coerced` (numbers, booleans and datetimes as float64 arrays,
    categories as lists, text as an Arrow array), without building Arrow arrays per column.

    The values are exactly those of :data:`COLUMNS` followed by :func:`winnow.schema.coerce`;
    None whenever any value is unusual (a missing field, a bool among numbers, a bad value),
    and the caller then takes that path, which names the problem.
    """
    if not all(type(r) is dict for r in records):
        return None
    cols: dict[str, Any] = {}
    try:
        numbers = _small_number_block(records, [n for n, role in fields if role == Role.NUMERIC])
        if numbers is None:
            return None
        for name, role in fields:
            col = numbers[name] if role == Role.NUMERIC else _SMALL[role]([r[name] for r in records])
            if col is None:
                return None
            cols[name] = col
    except (KeyError, TypeError, ValueError, OverflowError, OSError, Invalid, pa.ArrowInvalid):
        return None
    return cols


def _small_number_block(records: list[dict[str, Any]], names: list[str]) -> dict[str, np.ndarray] | None:
    """Every numeric field of the records in one conversion (one array for all the columns, not
    one per column: a record of twenty numbers costs one numpy call, not twenty)."""
    if not names:
        return {}
    block = _small_numbers([r[name] for r in records for name in names])
    if block is None:
        return None
    by_column = block.reshape(len(records), len(names)).T.copy()
    return dict(zip(names, by_column, strict=True))
