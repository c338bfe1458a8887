"""What every engine writes: the selected rows ranked, with reasons, spilled to disk when large.

The local engine (:mod:`winnow.engines.local`) and the Ray engine
(:mod:`winnow.engines.ray_engine`) build the same output with these: :func:`selected_table`
(rank, row, score, the input columns, rule, reason_1..N), :class:`RankedOutput` (the selected
rows in rank order, in memory or spilled to Parquet beyond :data:`SPILL_ROWS`) and
:func:`finish_selected` (the output file, always valid), with :class:`ScreenSummary` counting
every record.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from winnow.io.writers import open_writer
from winnow.rules import RuleSet
from winnow.select import rank_order, threshold_rows, with_rule

if TYPE_CHECKING:
    from winnow.models.base import Inputs
    from winnow.screener import ScoredBatch, Screener

Progress = Callable[[int, "int | None", str], None]


N_REASONS = 3


@dataclass
class ScreenSummary:
    """Counts that account for every input record: read = scored + rejected."""

    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    rows_selected: int = 0
    selection: str = ""
    threshold: float | None = None
    out: str | None = None
    rejects: str | None = None
    seconds: float = 0.0
    reject_examples: list[str] = field(default_factory=list)
    #: --diverse: candidates left out as near-duplicates of a better-ranked selected row
    near_duplicates_skipped: int | None = None
    #: what a selection of this size should deliver, from the fit's held-out rows
    #: (:meth:`winnow.Screener.expected_at`): precision and lift with their intervals
    expected: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScreenResult:
    """``selected``: every selected row, ranked, when they fit in memory (None when the ranked
    output was spilled to disk on its way to ``out``); ``head``: the best-ranked rows, always."""

    summary: ScreenSummary
    #: an Arrow table, or the frame type ``Screener.screen(output=...)`` asked for
    selected: Any = None
    head: Any = None


#: selected rows the ranked output holds in memory; more are spilled to disk by rank range
SPILL_ROWS = 262_144


HEAD_ROWS = 20


class RankedOutput:
    """Selected rows arrive in input order with their final ranks and leave in rank order, in
    bounded memory: beyond ``memory_rows`` buffered rows they are spilled to temporary Parquet
    files by rank range (ranks 1..m, m+1..2m, ...), and read back one range at a time.
    ``memory_rows`` None never spills (the caller wants the whole table in memory)."""

    def __init__(self, memory_rows: int | None = SPILL_ROWS) -> None:
        self.memory_rows = memory_rows
        self.rows = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._dir: Path | None = None
        self._files: dict[int, list[Path]] = {}
        self._schemas: list[pa.Schema] = []

    @property
    def spilled(self) -> bool:
        return self._dir is not None

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if not self._schemas or not table.schema.equals(self._schemas[-1]):
            self._schemas.append(table.schema)
        self._buffer.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self.memory_rows is not None and self._buffered > self.memory_rows:
            self._spill()

    def _spill(self) -> None:

        import pyarrow.parquet as pq

        if not self._buffer:
            return
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="winnow-ranked-"))
        table = pa.concat_tables(self._buffer, promote_options="permissive")
        self._buffer, self._buffered = [], 0
        assert self.memory_rows is not None
        ranges = (table.column("rank").to_numpy() - 1) // self.memory_rows
        for r in np.unique(ranges).tolist():
            files = self._files.setdefault(r, [])
            path = self._dir / f"{r:09d}-{len(files):06d}.parquet"
            pq.write_table(table.filter(pa.array(ranges == r)), path)
            files.append(path)

    def tables(self) -> Iterator[pa.Table]:
        """The selected rows in rank order, one rank range at a time."""
        import pyarrow.parquet as pq

        if self._dir is None:
            if self._buffer:
                yield _by_rank(pa.concat_tables(self._buffer, promote_options="permissive"))
            return
        self._spill()
        schema = pa.unify_schemas(self._schemas, promote_options="permissive")
        for r in sorted(self._files):
            parts = [pq.read_table(p) for p in self._files[r]]
            yield _by_rank(pa.concat_tables(parts, promote_options="permissive")).cast(schema)

    def close(self) -> None:
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _by_rank(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, sort_keys=[("rank", "ascending")]))


def plain_columns(raw: pa.Table) -> pa.Table:
    # dictionary/extension columns are decoded so every output format can hold them
    cols = {}
    for name in raw.column_names:
        col = raw.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        cols[name] = col
    return pa.table(cols)


def selected_table(
    screener: Screener,
    raw: pa.Table,
    first_row: int,
    local: np.ndarray,
    ranks: np.ndarray,
    scores: np.ndarray,
    reasons: int,
    rules: list[str | None],
    prepared: tuple[Inputs, pa.Table] | None = None,
) -> pa.Table:
    """Output rows: rank, row, score, the input columns, rule, reason_1..N. ``prepared``: the
    rows' model inputs and typed values when the caller has them (else they are prepared)."""
    part = raw.take(pa.array(local))
    cols: dict[str, Any] = {
        "rank": pa.array(ranks, pa.int64()),
        "row": pa.array(first_row + local, pa.int64()),
        "score": pa.array(scores, pa.float64()),
    }
    for name, col in zip(part.column_names, plain_columns(part).columns, strict=True):
        if name not in cols:
            cols[name] = col
    cols["rule"] = pa.array(rules, pa.string())
    if reasons:
        if prepared is None:
            x, typed = screener.prepare(part, first_row=first_row)
            prepared = (x, typed.table)
        codes = screener.reasons(*prepared, top=reasons)
        codes = [with_rule(rule, c, reasons) for rule, c in zip(rules, codes, strict=True)]
        cols.update(reason_columns(codes, reasons))
    return pa.table(cols)


def reason_columns(codes: list[list[str]], reasons: int) -> dict[str, pa.Array]:
    """``reason_1..reason_N`` from each row's reason codes (null where a row has fewer)."""
    return {
        f"reason_{r + 1}": pa.array([rs[r] if len(rs) > r else None for rs in codes], pa.string())
        for r in range(reasons)
    }


def threshold_selected(
    screener: Screener, rules: RuleSet, batch: pa.RecordBatch, row: int, sb: ScoredBatch, reasons: int
) -> pa.Table | None:
    """The rows of one batch at or above the artifact's threshold (or forced in by a rule), with
    provisional rank 0: :func:`rank_selected` fixes the order after the last batch."""
    raw = pa.Table.from_batches([batch])
    hits = rules.evaluate(raw) if rules else None
    local = threshold_rows(sb.scores, sb.ok, hits, screener.threshold_.value)
    if not local.size:
        return None
    names: list[str | None] = [hits.name(int(i)) for i in local] if hits is not None else [None] * local.size
    zeros = np.zeros(local.size, np.int64)
    prepared = (sb.inputs.take(local), sb.typed.table.take(pa.array(local))) if reasons else None
    return selected_table(screener, raw, row, local, zeros, sb.scores[local], reasons, names, prepared)


def rank_selected(parts: list[pa.Table]) -> pa.Table | None:
    """Threshold-mode parts in one table ranked by score (ties: earlier row first)."""
    if not parts:
        return None
    table = pa.concat_tables(parts, promote_options="permissive")
    order = rank_order(table.column("row").to_numpy(), table.column("score").to_numpy())
    table = table.take(pa.array(order))
    return table.set_column(0, "rank", pa.array(np.arange(1, table.num_rows + 1)))


def finish_selected(
    selected: RankedOutput,
    out: str | Path | None,
    empty_schema: pa.Schema | None = None,
    key: str | None = None,
) -> tuple[pa.Table | None, pa.Table | None]:
    """Write the selected rows to ``out`` in rank order (always a valid file or table, with the
    right columns when nothing was selected; a table upserted by ``key``); returns (every
    selected row when they fit in memory, the best-ranked rows). On an error nothing is left
    half written."""
    whole: list[pa.Table] = []
    head: pa.Table | None = None
    writer = open_writer(out, key) if out is not None else None
    try:
        for table in selected.tables():
            if head is None:
                head = table.slice(0, HEAD_ROWS)
            if writer is not None:
                writer.write(table)
            if not selected.spilled:
                whole.append(table)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    else:
        if writer is not None:
            writer.close(empty_schema=(empty_schema or EMPTY_SELECTION) if head is None else None)
    finally:
        selected.close()
    table = pa.concat_tables(whole, promote_options="permissive") if whole else None
    return table, head


EMPTY_SELECTION = pa.schema([("rank", pa.int64()), ("row", pa.int64()), ("score", pa.float64())])


def threshold_selection(threshold: float) -> str:
    """How a threshold-mode screen describes its selection (both engines)."""
    return f"score >= {threshold:.4f} (artifact threshold)"


def close_summary(summary: ScreenSummary, rw: Any, rejects_path: str | Path | None, t0: float) -> None:
    """Both engines' last step: the rejects' count and examples, rows read, seconds."""
    summary.rows_rejected = rw.count
    summary.reject_examples = [r.describe() for r in rw.examples[:5]]
    summary.rows_read = summary.rows_scored + summary.rows_rejected
    summary.rejects = str(rejects_path) if rejects_path and summary.rows_rejected else None
    summary.seconds = round(time.monotonic() - t0, 3)
