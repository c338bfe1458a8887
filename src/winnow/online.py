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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from winnow.config import Budget, Role
from winnow.metrics import top_k_mask
from winnow.rules import RuleSet
from winnow.schema import FALSE_WORDS, TRUE_WORDS
from winnow.select import budget_count

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

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if self.error is None:
            d.pop("error")
        return d


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
        """Fast path: every record well formed, columns convert in one Arrow call each.

        Returns None as soon as anything is unusual; the per-value path then finds and
        reports the exact problems.
        """
        if not records or not all(type(r) is dict for r in records):
            return None
        arrays: dict[str, pa.Array] = {}
        try:
            for name, role in self.fields:
                values = [r[name] for r in records]
                if role == Role.NUMERIC:
                    if any(type(v) is bool or isinstance(v, str) for v in values):
                        return None
                    arr = pa.array(values, pa.float64())
                    finite = np.isfinite(arr.to_numpy(zero_copy_only=False))
                    if not finite[arr.is_valid().to_numpy(zero_copy_only=False)].all():
                        return None
                elif role in (Role.CATEGORICAL, Role.TEXT, Role.IMAGE):
                    if not all(v is None or type(v) is str for v in values):
                        return None
                    arr = pa.array(values, pa.string())
                elif role == Role.BOOLEAN:
                    if not all(v is None or type(v) is bool for v in values):
                        return None
                    arr = pa.array(values, pa.bool_()).cast(pa.float64())
                else:
                    return None
                arrays[name] = arr
        except (KeyError, TypeError, ValueError, OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
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

    def score_records(
        self,
        records: list[Any],
        *,
        threshold: float | None = None,
        budget: Budget | None = None,
        reasons: int = 3,
    ) -> list[RecordResult]:
        """Score, select and explain; one result per input record, in order."""
        table, good, errors = self.validate(records)
        results: list[RecordResult] = [RecordResult(index=i) for i in range(len(records))]
        for e in errors:
            results[e.index].error = e
        if not good:
            return results
        sb = self.screener.score_batch(table)
        for r in sb.rejects:
            # a value typing refused (an image that cannot be read): the record is not scored
            i = good[r.row]
            results[i].error = RecordError(
                i,
                r.column,
                _EXPECTED.get(self.fields_roles.get(r.column or "", Role.TEXT), "a valid value"),
                r.value or "",
                f"record {i}: field {r.column!r}: {r.reason}",
            )
        scores = sb.scores
        if budget is not None and budget.min_precision is None:
            k = budget_count(budget, len(good)) or 0
            chosen = top_k_mask(np.nan_to_num(scores, nan=-1.0), k)
        else:
            thr = self.screener.threshold_.value if threshold is None else threshold
            chosen = scores >= thr
        hits = self.rules.evaluate(table)
        chosen = (chosen | hits.forced()) & ~hits.excluded()
        codes: list[list[str]] = [[] for _ in good]
        if reasons:
            rows = np.flatnonzero(chosen)
            if rows.size:
                sub = self.screener.reasons(sb.inputs.take(rows), table.take(pa.array(rows)), top=reasons)
                for r, c in zip(rows, sub, strict=True):
                    codes[int(r)] = c
        ids = table.column(self.id_column).to_pylist() if self.id_column else [None] * len(good)
        if self.monitor is not None:
            if sb.ok.all():
                self.monitor.observe(sb.inputs.m, scores, chosen, records=[records[i] for i in good], ids=ids)
            else:
                ok = np.flatnonzero(sb.ok)
                self.monitor.observe(
                    sb.inputs.m.take(ok),
                    scores[ok],
                    chosen[ok],
                    records=[records[good[j]] for j in ok],
                    ids=[ids[j] for j in ok],
                )
        for j, i in enumerate(good):
            res = results[i]
            if not sb.ok[j]:
                continue
            res.id = ids[j]
            res.score = float(scores[j])
            res.selected = bool(chosen[j])
            res.rule = hits.name(j)
            res.reasons = ([f"rule:{res.rule}"] if res.rule else []) + codes[j]
        return results
