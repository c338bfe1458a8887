"""Scoring records as they arrive (HTTP service, stream worker): validation without pandas.

Records are JSON-like dicts (HTTP bodies, Redis stream entries). Each is checked against the
screener's schema: every used field must be present (``null`` means a missing value, which the
model handles), values must convert to the field's type, and numbers must be finite. A record
that fails gets a :class:`~winnow.io.rejects.Reject` (record, field, expected, received); the good records of
the same batch are still scored, through the same :meth:`winnow.Screener.score_batch` used by
batch screening. Selection: the artifact threshold, a threshold or budget given per request,
and the named rules (``rule:<name>`` in the reasons).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from winnow.config import Budget
from winnow.io.rejects import Reject
from winnow.reasons import reason_text
from winnow.record_values import (
    ARROW_TYPES,
    COLUMNS,
    TEXT_COLUMNS,
    FieldInvalid,
    checked_record,
    describe,
    rule_field,
    typed_records,
)
from winnow.rules import RuleSet
from winnow.schema import SMALL_BATCH, Coerced
from winnow.select import rank_order, select_batch, with_rule

if TYPE_CHECKING:
    from winnow.monitor import DriftMonitor
    from winnow.screener import Screener


@dataclass
class RecordResult:
    """The outcome for one record."""

    index: int
    id: Any = None
    score: float | None = None
    selected: bool | None = None
    reasons: list[str] = field(default_factory=list)
    rule: str | None = None
    error: Reject | None = None
    #: 1 = the best selected record of the batch (score descending, ties: earlier record)
    rank: int | None = None
    #: the column reasons as ``{column, value, contribution}`` objects, in the order of
    #: ``reasons`` (which names the rule first, when one decided the record)
    reason_details: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if self.error is None:
            d.pop("error")
        else:
            d["error"] = self.error.record_json()
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
    errors: dict[int, Reject] = field(default_factory=dict)
    ranks: dict[int, int] = field(default_factory=dict)
    details: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

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
            reason_details=self.details.get(i, []),
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


class OnlineScorer:
    """Validates and scores lists of records with one screener and one rule set."""

    def __init__(
        self, screener: Screener, rules: RuleSet | None = None, monitor: DriftMonitor | None = None
    ) -> None:
        self.screener = screener
        #: every scored record is also shown to the drift monitor (and its audit sampler)
        self.monitor = monitor
        self.rules = rules if rules is not None else screener.rule_set()
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
                arr = COLUMNS[role]([r[name] for r in records])
                if arr is None:
                    return None
                arrays[name] = arr
        except (KeyError, TypeError, ValueError, OverflowError, OSError, pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        return arrays

    def validate(self, records: list[Any]) -> tuple[pa.Table, list[int], list[Reject]]:
        """Convert the valid records to a typed table; returns (table, their indices, errors)."""
        bulk = self._bulk(records)
        if bulk is not None:
            everyone = list(range(len(records)))
            for n in self.extra_fields:
                bulk[n] = rule_field([r.get(n) for r in records])
            if self.id_column and self.id_column not in bulk:
                ids = [r.get(self.id_column) for r in records]
                bulk[self.id_column] = pa.array([None if v is None else str(v) for v in ids], pa.string())
            return pa.table(bulk), everyone, []
        cols: dict[str, list[Any]] = {n: [] for n, _ in self.fields}
        extra: dict[str, list[Any]] = {n: [] for n in self.extra_fields}
        good: list[int] = []
        errors: list[Reject] = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                what = describe(rec)
                errors.append(
                    Reject(i, f"expected a JSON object, received {what}", None, what, "a JSON object")
                )
                continue
            try:
                row = checked_record(rec, self.fields)
            except FieldInvalid as e:
                errors.append(e.reject.at(i))
                continue
            for name, values in cols.items():
                values.append(row[name])
            for name, values in extra.items():
                values.append(rec.get(name))
            good.append(i)
        arrays = {n: pa.array(cols[n], ARROW_TYPES[role]) for n, role in self.fields}
        for n, values in extra.items():
            arrays[n] = rule_field(values)
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
            arr = TEXT_COLUMNS[role](col)
            if arr is None:
                return None
            arrays[name] = arr
        for n in self.extra_fields:
            values = table.column(n).to_pylist() if n in names else [None] * table.num_rows
            arrays[n] = rule_field(values)
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

    def explain_records(self, records: list[Any]) -> list[dict[str, Any]]:
        """Why each record scores as it does: ``score``, the fused ``logit`` it comes from, the
        ``base`` every record starts at, ``residual`` (the networks' integration error) and every
        field's ``{column, value, contribution}``, largest effect first (they add up to ``logit``
        with ``base`` and ``residual``). A record that cannot be scored gets ``error``."""
        from winnow.reasons import contribution_objects, explain

        table, good, errors = self.validate(records)
        out: list[dict[str, Any]] = [{"index": i} for i in range(len(records))]
        for e in errors:
            out[e.row]["error"] = e.record_json()
        if good:
            sb = self.screener.score_batch(table)
            for r in sb.rejects:
                i = good[r.row]
                out[i]["error"] = r.at(i).record_json()
            ok = np.flatnonzero(sb.ok)
            s = self.screener
            ex = explain(s.prep_, s.learners_, s.fusion_, sb.inputs.take(ok))
            objects = contribution_objects(ex, sb.typed, dict(self.fields_roles), rows=ok)
            for k, j in enumerate(ok.tolist()):
                i = good[j]
                rec = records[i]
                out[i].update(
                    id=rec.get(self.id_column) if self.id_column and isinstance(rec, dict) else None,
                    score=float(sb.scores[j]),
                    logit=float(ex.logit[k]),
                    base=float(ex.base[k]),
                    residual=float(ex.residual[k]),
                    contributions=objects[k],
                )
        return out

    def _score(
        self, records: list[Any], *, threshold: float | None, budget: Budget | None, reasons: int
    ) -> ScoredRecords:
        n = len(records)
        typed = self._typed_small(records) if n <= SMALL_BATCH else None
        if typed is not None:
            return self._finish(
                typed, list(range(n)), n, {}, records, threshold=threshold, budget=budget, reasons=reasons
            )
        table, good, errors = self.validate(records)
        errs = {e.row: e for e in errors}
        return self._finish(
            table, good, n, errs, records, threshold=threshold, budget=budget, reasons=reasons
        )

    def _typed_small(self, records: list[Any]) -> Coerced | None:
        """A few well-formed records typed without Arrow (the service's single records), for
        screeners whose rules and id need no typed table; None: take :meth:`validate`."""
        if self.rules or self.id_column in self.fields_roles or not records:
            return None
        cols = typed_records(records, self.fields)
        if cols is None:
            return None
        if self.id_column:
            ids = [r.get(self.id_column) for r in records]
            cols = {**cols, self.id_column: [None if v is None else str(v) for v in ids]}
        return Coerced(None, ok=np.ones(len(records), dtype=bool), columns=cols)

    def _finish(
        self,
        table: pa.Table | Coerced,
        good: list[int],
        n: int,
        errors: dict[int, Reject],
        records: list[Any] | None,
        *,
        threshold: float | None,
        budget: Budget | None,
        reasons: int,
    ) -> ScoredRecords:
        """Score the rows of ``table`` (validated, or typed: record ``good[j]`` is row j) of ``n`` records;
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
            errors[i] = r.at(i)
        scores = sb.scores
        hits = self.rules.evaluate(table) if self.rules else None
        thr = self.screener.threshold_.value if threshold is None else threshold
        choice = select_batch(scores, sb.ok, hits, budget=budget, threshold=thr)
        chosen = np.zeros(len(good), dtype=bool)
        chosen[choice.rows] = True
        objects: dict[int, list[dict[str, Any]]] = {}
        if reasons and choice.rows.size:
            rows = np.sort(choice.rows)
            sub = self.screener.reason_objects(sb.inputs.take(rows), sb.typed, top=reasons, rows=rows)
            objects = dict(zip(rows.tolist(), sub, strict=True))
        if not self.id_column:
            ids: list[Any] = [None] * len(good)
        elif records is not None:  # the id as the record carried it: an integer stays an integer
            ids = [records[i].get(self.id_column) for i in good]
        elif isinstance(table, Coerced):
            ids = table.values(self.id_column)
        else:
            ids = table.column(self.id_column).to_pylist()
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
        for j in sorted(objects.keys() | named.keys()):
            if ok[j]:
                mine = objects.get(j, [])
                out.reasons[good[j]] = with_rule(named.get(j), [reason_text(o) for o in mine], reasons)
                out.details[good[j]] = mine[: reasons - (1 if named.get(j) else 0)]
        return out
