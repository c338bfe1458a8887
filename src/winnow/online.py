"""Scoring records as they arrive (HTTP service, stream worker): validation without pandas.

Records are JSON-like dicts (HTTP bodies, Redis stream entries). Each is checked against the
screener's schema: every used field must be present (``null`` means a missing value, which the
model handles), values must convert to the field's type, and numbers must be finite. A record
that fails gets a :class:`RecordError` (index, field, expected, received); the good records of
the same batch are still scored, through the same :meth:`winnow.Screener.score_batch` used by
batch screening. Selection: the artifact threshold, a threshold or budget given per request,
and the named rules (``rule:<name>`` in the reasons).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from winnow.config import Budget, Role
from winnow.rules import RuleSet
from winnow.schema import FALSE_WORDS, TRUE_WORDS
from winnow.select import rank_order, select_batch, with_rule

if TYPE_CHECKING:
    from winnow.monitor import DriftMonitor
    from winnow.screener import Screener

_EXPECTED = {
    Role.NUMERIC: "a finite number",
    Role.BOOLEAN: "true/false or 0/1",
    Role.DATETIME: "an ISO 8601 date/time string or epoch seconds",
    Role.CATEGORICAL: "a string or number",
    Role.TEXT: "a string",
    Role.IMAGE: "an image file path (string)",
}


@dataclass
class RecordError:
    """Why one record of a batch could not be scored."""

    index: int
    field: str | None
    expected: str
    received: str
    message: str


@dataclass
class RecordResult:
    """The outcome for one record."""

    index: int
    id: Any = None
    score: float | None = None
    selected: bool | None = None
    reasons: list[str] = field(default_factory=list)
    rule: str | None = None
    error: RecordError | None = None
    #: 1 = the best selected record of the batch (score descending, ties: earlier record)
    rank: int | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if self.error is None:
            d.pop("error")
        return d


@dataclass
class ScoredRecords:
    """The outcome of a batch of records, column-wise (record ``i`` is position ``i``).

    ``scored[i]`` is False for a record with an error; its score is NaN and its selected flag
    False. ``rules`` and ``reasons`` only hold the records that have one.
    """

    ids: list[Any]
    scores: np.ndarray
    selected: np.ndarray
    scored: np.ndarray
    rules: dict[int, str] = field(default_factory=dict)
    reasons: dict[int, list[str]] = field(default_factory=dict)
    errors: dict[int, RecordError] = field(default_factory=dict)
    ranks: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.scores)

    def result(self, i: int) -> RecordResult:
        """Record ``i`` as a :class:`RecordResult`."""
        if not self.scored[i]:
            return RecordResult(index=i, error=self.errors.get(i))
        rule = self.rules.get(i)
        return RecordResult(
            index=i,
            id=self.ids[i],
            score=float(self.scores[i]),
            selected=bool(self.selected[i]),
            reasons=self.reasons.get(i, []),
            rule=rule,
            rank=self.ranks.get(i),
        )

    def results(self) -> list[RecordResult]:
        return [self.result(i) for i in range(len(self))]


def rerank(results: list[RecordResult]) -> list[RecordResult]:
    """The ranks of a part of a scored batch (one request of a micro-batch) among themselves."""
    chosen = [r for r in results if r.selected]
    if not chosen:
        return results
    order = rank_order(
        np.array([r.index for r in chosen]), np.array([r.score for r in chosen], dtype=np.float64)
    )
    rank_of = {chosen[int(j)].index: k + 1 for k, j in enumerate(order)}
    return [replace(r, rank=rank_of[r.index]) if r.selected else r for r in results]


class _Invalid(Exception):
    def __init__(self, expected: str, received: Any) -> None:
        self.expected = expected
        self.received = received


def _describe(v: Any) -> str:
    r = repr(v)
    return f"{type(v).__name__} {r[:60]}"


def _convert(value: Any, role: Role) -> Any:
    """One value to the column's raw type, or raise _Invalid."""
    if value is None:
        return None
    if role == Role.NUMERIC:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float):
            v = float(value)
        elif isinstance(value, str) and value.strip() != "":
            try:
                v = float(value)
            except ValueError:
                raise _Invalid(_EXPECTED[role], value) from None
        elif isinstance(value, str):
            return None
        else:
            raise _Invalid(_EXPECTED[role], value)
        if not math.isfinite(v):
            raise _Invalid(_EXPECTED[role], value)
        return v
    if role == Role.BOOLEAN:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float) and value in (0, 1):
            return float(value)
        if isinstance(value, str):
            key = value.strip().lower()
            if key in TRUE_WORDS:
                return 1.0
            if key in FALSE_WORDS:
                return 0.0
            if key == "":
                return None
        raise _Invalid(_EXPECTED[role], value)
    if role == Role.DATETIME:
        if isinstance(value, datetime):  # also pandas Timestamps (Python callers' records)
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        if isinstance(value, bool):
            raise _Invalid(_EXPECTED[role], value)
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise _Invalid(_EXPECTED[role], value)
            return datetime.fromtimestamp(float(value), tz=UTC).replace(tzinfo=None)
        if isinstance(value, str):
            if value.strip() == "":
                return None
            try:
                dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise _Invalid(_EXPECTED[role], value) from None
            if dt.tzinfo is not None:
                dt = dt.astimezone(UTC).replace(tzinfo=None)
            return dt
        raise _Invalid(_EXPECTED[role], value)
    # categorical / text: an empty string is a missing value, as in CSV files
    if isinstance(value, str) and value == "":
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid(_EXPECTED[role], value)
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, int | str):
        return str(value)
    raise _Invalid(_EXPECTED[role], value)


def _convert_checked(value: Any, role: Role) -> Any:
    """:func:`_convert`, with every way a value can break conversion reported as invalid."""
    try:
        out = _convert(value, role)
        if isinstance(out, str):
            out.encode("utf-8")  # lone surrogates cannot go into Arrow
        return out
    except _Invalid:
        raise
    except (OverflowError, ValueError, OSError, TypeError):
        raise _Invalid(_EXPECTED[role], value) from None


def _rule_field(values: list[Any]) -> pa.Array:
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


_ARROW = {
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


def _numeric_column(values: list[Any]) -> pa.Array | None:
    if any(type(v) is bool for v in values):
        return None
    # float() takes ints, floats and numeric text alike; "" is a missing value as in CSV files
    floats = [None if v is None or v == "" else float(v) for v in values]
    # one C-level sum finds a NaN or an infinity (a false alarm on overflow only costs the slow path)
    if not math.isfinite(sum([v for v in floats if v is not None])):
        return None
    return pa.array(floats, pa.float64())


def _string_column(values: list[Any]) -> pa.Array | None:
    if not all(v is None or type(v) is str for v in values):
        return None
    return pa.array([None if v == "" else v for v in values], pa.string())


def _boolean_column(values: list[Any]) -> pa.Array | None:
    out: list[float | None] = []
    for v in values:
        t = type(v)
        if v is None:
            out.append(None)
        elif t is bool:
            out.append(float(v))
        elif t is str:
            key = v.strip().lower()
            if key == "":
                out.append(None)
            elif key in _BOOL_WORDS:
                out.append(_BOOL_WORDS[key])
            else:
                return None
        else:
            return None
    return pa.array(out, pa.float64())


def _datetime_column(values: list[Any]) -> pa.Array | None:
    try:
        return pa.array([_convert(v, Role.DATETIME) for v in values], pa.timestamp("us"))
    except _Invalid:
        return None


_TRUE = pa.array(sorted(TRUE_WORDS))
_FALSE = pa.array(sorted(FALSE_WORDS))


def _text_numeric(col: pa.Array) -> pa.Array | None:
    try:
        out = pc.cast(col, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # text Arrow does not read as a number: the per-value path decides
    if out.null_count < len(out) and not np.isfinite(out.drop_null().to_numpy()).all():
        return None
    return out


def _text_boolean(col: pa.Array) -> pa.Array | None:
    key = pc.utf8_lower(pc.utf8_trim_whitespace(col))
    yes, no = pc.is_in(key, value_set=_TRUE), pc.is_in(key, value_set=_FALSE)
    if (pc.sum(pc.or_(yes, no)).as_py() or 0) != len(col) - col.null_count:
        return None
    return pc.if_else(yes, 1.0, 0.0)  # nulls stay null


def _text_datetime(col: pa.Array) -> pa.Array | None:
    return _datetime_column(col.to_pylist())


def _text_string(col: pa.Array) -> pa.Array:
    return col


#: text columns (empty text already null) to each role's type, or None for the per-value path
_TEXT_COLUMN = {
    Role.NUMERIC: _text_numeric,
    Role.BOOLEAN: _text_boolean,
    Role.DATETIME: _text_datetime,
    Role.CATEGORICAL: _text_string,
    Role.TEXT: _text_string,
    Role.IMAGE: _text_string,
}

_COLUMN = {
    Role.NUMERIC: _numeric_column,
    Role.BOOLEAN: _boolean_column,
    Role.DATETIME: _datetime_column,
    Role.CATEGORICAL: _string_column,
    Role.TEXT: _string_column,
    Role.IMAGE: _string_column,
}


class OnlineScorer:
    """Validates and scores lists of records with one screener and one rule set."""

    def __init__(
        self, screener: Screener, rules: RuleSet | None = None, monitor: DriftMonitor | None = None
    ) -> None:
        self.screener = screener
        #: every scored record is also shown to the drift monitor (and its audit sampler)
        self.monitor = monitor
        self.rules = rules if rules is not None else RuleSet(screener.config.rules)  # type: ignore[union-attr]
        self.fields = [(s.name, s.role) for s in screener.specs_ if s.used]
        self.fields_roles = dict(self.fields)
        self.id_column = screener.id_column
        used = {n for n, _ in self.fields}
        # rule-only fields are passed through as given (numbers stay numbers)
        self.extra_fields = [c for c in self.rules.columns if c not in used]

    def _bulk(self, records: list[Any]) -> dict[str, pa.Array] | None:
        """Fast path: every record well formed, each column converted in one pass.

        Numbers may come as text (Redis stream entries are flat maps of strings), booleans as
        the usual words. Returns None as soon as anything is unusual; the per-value path then
        finds and reports the exact problems, so both paths accept and refuse the same values.
        """
        if not records or not all(type(r) is dict for r in records):
            return None
        arrays: dict[str, pa.Array] = {}
        try:
            for name, role in self.fields:
                arr = _COLUMN[role]([r[name] for r in records])
                if arr is None:
                    return None
                arrays[name] = arr
        except (KeyError, TypeError, ValueError, OverflowError, OSError, pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        return arrays

    def validate(self, records: list[Any]) -> tuple[pa.Table, list[int], list[RecordError]]:
        """Convert the valid records to a typed table; returns (table, their indices, errors)."""
        bulk = self._bulk(records)
        if bulk is not None:
            good = list(range(len(records)))
            for n in self.extra_fields:
                bulk[n] = _rule_field([r.get(n) for r in records])
            if self.id_column and self.id_column not in bulk:
                ids = [r.get(self.id_column) for r in records]
                bulk[self.id_column] = pa.array([None if v is None else str(v) for v in ids], pa.string())
            return pa.table(bulk), good, []
        cols: dict[str, list[Any]] = {n: [] for n, _ in self.fields}
        extra: dict[str, list[Any]] = {n: [] for n in self.extra_fields}
        good: list[int] = []
        errors: list[RecordError] = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                errors.append(
                    RecordError(
                        i,
                        None,
                        "a JSON object",
                        _describe(rec),
                        f"record {i}: expected a JSON object, received {_describe(rec)}",
                    )
                )
                continue
            row: dict[str, Any] = {}
            err: RecordError | None = None
            for name, role in self.fields:
                if name not in rec:
                    err = RecordError(
                        i,
                        name,
                        _EXPECTED[role],
                        "nothing (field missing)",
                        f"record {i}: field {name!r} is required ({_EXPECTED[role]}; "
                        "send null for an unknown value)",
                    )
                    break
                try:
                    row[name] = _convert_checked(rec[name], role)
                except _Invalid as e:
                    err = RecordError(
                        i,
                        name,
                        e.expected,
                        _describe(e.received),
                        f"record {i}: field {name!r}: expected {e.expected}, "
                        f"received {_describe(e.received)}",
                    )
                    break
            if err is not None:
                errors.append(err)
                continue
            for name, values in cols.items():
                values.append(row[name])
            for name, values in extra.items():
                values.append(rec.get(name))
            good.append(i)
        arrays = {n: pa.array(cols[n], _ARROW[role]) for n, role in self.fields}
        for n, values in extra.items():
            arrays[n] = _rule_field(values)
        if self.id_column and self.id_column not in arrays:
            ids = [records[i].get(self.id_column) for i in good]
            arrays[self.id_column] = pa.array([None if v is None else str(v) for v in ids], pa.string())
        return pa.table(arrays) if good else pa.table({}), good, errors

    def validate_text_table(self, table: pa.Table) -> pa.Table | None:
        """Type a table of text columns (a stream batch decoded column-wise) in one pass per
        column, with the same rules as :meth:`validate`; None when any value needs the
        per-value path (which then names the record and field)."""
        names = set(table.column_names)
        arrays: dict[str, pa.Array] = {}
        for name, role in self.fields:
            if name not in names:
                return None
            col = table.column(name).combine_chunks()
            if not pa.types.is_string(col.type):
                return None
            arr = _TEXT_COLUMN[role](col)
            if arr is None:
                return None
            arrays[name] = arr
        for n in self.extra_fields:
            values = table.column(n).to_pylist() if n in names else [None] * table.num_rows
            arrays[n] = _rule_field(values)
        if self.id_column and self.id_column not in arrays:
            if self.id_column in names:
                arrays[self.id_column] = table.column(self.id_column).cast(pa.string())
            else:
                arrays[self.id_column] = pa.nulls(table.num_rows, pa.string())
        return pa.table(arrays)

    def score_text_table(
        self, table: pa.Table, *, threshold: float | None = None, reasons: int = 3
    ) -> ScoredRecords:
        """:meth:`score_records` for records given as a table of text columns (nulls missing),
        with the outcome column-wise.

        Column-wise typing when every value is regular; otherwise the table's rows go through
        the per-value checks of :meth:`validate`, so the outcome is the same either way.
        """
        typed = self.validate_text_table(table)
        if typed is None:
            return self._score(table.to_pylist(), threshold=threshold, budget=None, reasons=reasons)
        n = table.num_rows
        audit = self.monitor is not None and self.monitor.audit_fraction > 0
        return self._finish(
            typed,
            list(range(n)),
            n,
            {},
            table.to_pylist() if audit else None,
            threshold=threshold,
            budget=None,
            reasons=reasons,
        )

    def score_records(
        self,
        records: list[Any],
        *,
        threshold: float | None = None,
        budget: Budget | None = None,
        reasons: int = 3,
    ) -> list[RecordResult]:
        """Score, select and explain; one result per input record, in order."""
        return self._score(records, threshold=threshold, budget=budget, reasons=reasons).results()

    def _score(
        self, records: list[Any], *, threshold: float | None, budget: Budget | None, reasons: int
    ) -> ScoredRecords:
        table, good, errors = self.validate(records)
        errs = {e.index: e for e in errors}
        return self._finish(
            table, good, len(records), errs, records, threshold=threshold, budget=budget, reasons=reasons
        )

    def _finish(
        self,
        table: pa.Table,
        good: list[int],
        n: int,
        errors: dict[int, RecordError],
        records: list[Any] | None,
        *,
        threshold: float | None,
        budget: Budget | None,
        reasons: int,
    ) -> ScoredRecords:
        """Score the typed rows of ``table`` (record ``good[j]`` is row j) of ``n`` records;
        ``records`` are the raw records, for the drift monitor's audit sample (None: no sample)."""
        out = ScoredRecords(
            ids=[None] * n,
            scores=np.full(n, np.nan),
            selected=np.zeros(n, dtype=bool),
            scored=np.zeros(n, dtype=bool),
            errors=errors,
        )
        if not good:
            return out
        sb = self.screener.score_batch(table)
        for r in sb.rejects:
            # a value typing refused (an image that cannot be read): the record is not scored
            i = good[r.row]
            errors[i] = RecordError(
                i,
                r.column,
                _EXPECTED.get(self.fields_roles.get(r.column or "", Role.TEXT), "a valid value"),
                r.value or "",
                f"record {i}: field {r.column!r}: {r.reason}",
            )
        scores = sb.scores
        hits = self.rules.evaluate(table) if self.rules else None
        thr = self.screener.threshold_.value if threshold is None else threshold
        choice = select_batch(scores, sb.ok, hits, budget=budget, threshold=thr)
        chosen = np.zeros(len(good), dtype=bool)
        chosen[choice.rows] = True
        codes: dict[int, list[str]] = {}
        if reasons and choice.rows.size:
            rows = np.sort(choice.rows)
            typed = sb.typed.table.take(pa.array(rows))
            sub = self.screener.reasons(sb.inputs.take(rows), typed, top=reasons)
            codes = dict(zip(rows.tolist(), sub, strict=True))
        ids = table.column(self.id_column).to_pylist() if self.id_column else [None] * len(good)
        if self.monitor is not None:
            if sb.ok.all():
                self.monitor.observe(
                    sb.inputs.m,
                    scores,
                    chosen,
                    records=None if records is None else [records[i] for i in good],
                    ids=ids,
                )
            else:
                ok = np.flatnonzero(sb.ok)
                self.monitor.observe(
                    sb.inputs.m.take(ok),
                    scores[ok],
                    chosen[ok],
                    records=None if records is None else [records[good[j]] for j in ok],
                    ids=[ids[j] for j in ok],
                )
        where = np.asarray(good, dtype=np.int64)
        ok = sb.ok.astype(bool)
        out.scored[where] = ok
        out.scores[where[ok]] = scores[ok]
        out.selected[where[ok]] = chosen[ok]
        if len(good) == n and ok.all():
            out.ids = ids
        else:
            for j in np.flatnonzero(ok).tolist():
                out.ids[good[j]] = ids[j]
        for k, j in enumerate(choice.rows.tolist()):
            out.ranks[good[j]] = k + 1
        named: dict[int, str] = {}
        if hits is not None:
            for j in np.flatnonzero((hits.forced() | hits.excluded()) & ok).tolist():
                named[j] = out.rules[good[j]] = hits.name(j)  # type: ignore[assignment]
        for j in sorted(codes.keys() | named.keys()):
            if ok[j]:
                out.reasons[good[j]] = with_rule(named.get(j), codes.get(j, []), reasons)
        return out
