"""Batch scoring and screening of data of any size, in bounded memory.

``score_file`` writes every scored row in one pass. ``screen`` selects by a budget exactly
over the whole input: pass 1 scores every batch and keeps only the scores (8 bytes a row);
the global top-k is then known, and pass 2 re-reads the input and writes the selected rows with
their rank and reasons. Memory is bounded by the batch size, the score log and the selected
rows, never by the input. With ``use_threshold`` (or a min-precision budget) the artifact's
threshold selects in a single pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from winnow.config import Budget
from winnow.io.readers import DEFAULT_BATCH_ROWS, open_source
from winnow.io.rejects import Reject, RejectsWriter
from winnow.io.writers import TableWriter
from winnow.rules import RuleSet
from winnow.select import ScoreLog, budget_count, top_k_rows

if TYPE_CHECKING:
    from winnow.screener import Screener

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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScreenResult:
    summary: ScreenSummary
    selected: pa.Table | None = None


def _rejects_writer(path: str | Path | None) -> RejectsWriter:
    return RejectsWriter(Path(path) if path is not None else None)


def _passthrough(raw: pa.Table) -> pa.Table:
    # dictionary/extension columns are decoded so every output format can hold them
    cols = {}
    for name in raw.column_names:
        col = raw.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        cols[name] = col
    return pa.table(cols)


def score_file(
    screener: Screener,
    data: Any,
    out: str | Path,
    *,
    rejects_path: str | Path | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> ScreenSummary:
    """Write ``row``, the id column (if any), ``score`` and ``selected`` for every scored row."""
    t0 = time.monotonic()
    source = open_source(data)
    screener.check_columns(source.column_names())
    total = source.num_rows()
    thr = screener.threshold_.value
    id_col = screener.id_column
    summary = ScreenSummary(selection=f"threshold {thr:.4f}", threshold=thr, out=str(out))
    read_rejects: list[Reject] = []
    with TableWriter(out) as writer, _rejects_writer(rejects_path) as rw:
        for row, batch in source.numbered_batches(batch_rows, rejects=read_rejects):
            rw.add(read_rejects)
            read_rejects.clear()
            sb = screener.score_batch(batch, first_row=row)
            rw.add(sb.rejects)
            idx = np.flatnonzero(sb.ok)
            cols: dict[str, Any] = {"row": pa.array(row + idx, pa.int64())}
            if id_col:
                cols[id_col] = batch.column(id_col).take(pa.array(idx))
            cols["score"] = pa.array(sb.scores[idx])
            cols["selected"] = pa.array(sb.scores[idx] >= thr)
            writer.write(pa.table(cols))
            summary.rows_scored += len(idx)
            summary.rows_selected += int(np.sum(sb.scores[idx] >= thr))
            done = row + batch.num_rows
            if progress:
                progress(done, total, "scoring")
        rw.add(read_rejects)
        summary.rows_rejected = rw.count
        summary.reject_examples = [r.describe() for r in rw.examples[:5]]
    summary.rows_read = summary.rows_scored + summary.rows_rejected
    summary.rejects = str(rejects_path) if rejects_path and summary.rows_rejected else None
    summary.seconds = round(time.monotonic() - t0, 3)
    return summary


def _selected_table(
    screener: Screener,
    raw: pa.Table,
    first_row: int,
    local: np.ndarray,
    ranks: np.ndarray,
    scores: np.ndarray,
    reasons: int,
    rules: list[str | None],
) -> pa.Table:
    """Output rows: rank, row, score, the input columns, rule, reason_1..N."""
    part = raw.take(pa.array(local))
    cols: dict[str, Any] = {
        "rank": pa.array(ranks, pa.int64()),
        "row": pa.array(first_row + local, pa.int64()),
        "score": pa.array(scores, pa.float64()),
    }
    for name, col in zip(part.column_names, _passthrough(part).columns, strict=True):
        if name not in cols:
            cols[name] = col
    cols["rule"] = pa.array(rules, pa.string())
    if reasons:
        x, _ = screener.prepare(part, first_row=first_row)
        codes = screener.reasons(x, part, top=reasons)
        codes = [([f"rule:{rule}"] if rule else []) + c for rule, c in zip(rules, codes, strict=True)]
        for r in range(reasons):
            cols[f"reason_{r + 1}"] = pa.array([rs[r] if len(rs) > r else None for rs in codes], pa.string())
    return pa.table(cols)


def _finish(selected: list[pa.Table], out: str | Path | None) -> pa.Table | None:
    if not selected:
        return None
    table = pa.concat_tables(selected, promote_options="permissive")
    table = table.take(pc.sort_indices(table, sort_keys=[("rank", "ascending")]))
    if out is not None:
        with TableWriter(out) as w:
            w.write(table)
    return table


def screen(
    screener: Screener,
    data: Any,
    *,
    out: str | Path | None = None,
    budget: Budget | None = None,
    use_threshold: bool = False,
    rejects_path: str | Path | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    reasons: int = N_REASONS,
) -> ScreenResult:
    """Select the high-value rows of ``data`` by a budget (exact global top-k) or threshold."""
    t0 = time.monotonic()
    source = open_source(data)
    screener.check_columns(source.column_names())
    total = source.num_rows()
    budget = budget or screener.config.budget  # type: ignore[union-attr]
    threshold_mode = use_threshold or budget.min_precision is not None
    summary = ScreenSummary(out=str(out) if out else None)
    read_rejects: list[Reject] = []
    selected: list[pa.Table] = []
    rules = RuleSet(screener.config.rules)  # type: ignore[union-attr]
    with _rejects_writer(rejects_path) as rw:
        if threshold_mode:
            thr = screener.threshold_.value
            summary.selection, summary.threshold = f"score >= {thr:.4f} (artifact threshold)", thr
            for row, batch in source.numbered_batches(batch_rows, rejects=read_rejects):
                rw.add(read_rejects)
                read_rejects.clear()
                raw = pa.Table.from_batches([batch])
                sb = screener.score_batch(raw, first_row=row)
                rw.add(sb.rejects)
                summary.rows_scored += int(sb.ok.sum())
                hits = rules.evaluate(raw)
                local = np.flatnonzero(((sb.scores >= thr) | hits.forced()) & ~hits.excluded() & sb.ok)
                if local.size:
                    # provisional ranks: the final order is fixed after the last batch
                    names = [hits.name(int(i)) for i in local]
                    zeros = np.zeros(local.size, np.int64)
                    selected.append(
                        _selected_table(screener, raw, row, local, zeros, sb.scores[local], reasons, names)
                    )
                done = row + batch.num_rows
                if progress:
                    progress(done, total, "screening")
            rw.add(read_rejects)
            if selected:
                table = pa.concat_tables(selected, promote_options="permissive")
                order = np.lexsort((table.column("row").to_numpy(), -table.column("score").to_numpy()))
                table = table.take(pa.array(order))
                table = table.set_column(0, "rank", pa.array(np.arange(1, table.num_rows + 1)))
                selected = [table]
        else:
            log = ScoreLog()
            forced: dict[int, str] = {}
            for row, batch in source.numbered_batches(batch_rows, rejects=read_rejects):
                rw.add(read_rejects)
                read_rejects.clear()
                sb = screener.score_batch(batch, first_row=row)
                rw.add(sb.rejects)
                scores_b = sb.scores.astype(np.float64)
                if rules:
                    hits = rules.evaluate(pa.Table.from_batches([batch]))
                    for i in np.flatnonzero(hits.excluded() & sb.ok):
                        forced[row + int(i)] = hits.exclude[int(i)]  # type: ignore[assignment]
                    for i in np.flatnonzero(hits.forced() & ~hits.excluded() & sb.ok):
                        forced[row + int(i)] = hits.select[int(i)]  # type: ignore[assignment]
                    # excluded rows never take a place in the budget
                    scores_b[hits.excluded()] = np.nan
                log.pad_to(row)
                log.add(scores_b)
                summary.rows_scored += int(sb.ok.sum())
                done = row + batch.num_rows
                if progress:
                    progress(done, total, "scoring (pass 1 of 2)")
            rw.add(read_rejects)
            scores = log.all()
            k = budget_count(budget, summary.rows_scored) or 0
            rows = top_k_rows(scores, k)
            summary.selection = budget.describe() + f" of {summary.rows_scored:,} scored rows"
            summary.threshold = float(scores[rows[-1]]) if rows.size else None
            # rows forced in by a rule come on top of the budget
            in_budget = set(rows.tolist())
            extra = [r for r in forced if not np.isnan(scores[r]) and r not in in_budget]
            if extra:
                rows = np.concatenate([rows, np.asarray(extra, np.int64)])
                rows = rows[np.lexsort((rows, -scores[rows]))]
            ranks = np.arange(1, rows.size + 1, dtype=np.int64)
            order = np.argsort(rows, kind="stable")
            rows_sorted, ranks_sorted = rows[order], ranks[order]
            for row, batch in source.numbered_batches(batch_rows):
                lo, hi = np.searchsorted(rows_sorted, [row, row + batch.num_rows])
                if hi > lo:
                    raw = pa.Table.from_batches([batch])
                    glob = rows_sorted[lo:hi]
                    names = [forced.get(int(g)) for g in glob]
                    selected.append(
                        _selected_table(
                            screener, raw, row, glob - row, ranks_sorted[lo:hi], scores[glob], reasons, names
                        )
                    )
                done = row + batch.num_rows
                if progress:
                    progress(done, total, "writing selected rows (pass 2 of 2)")
        summary.rows_rejected = rw.count
        summary.reject_examples = [r.describe() for r in rw.examples[:5]]
    table = _finish(selected, out)
    if table is None and out is not None:
        TableWriter(out).close(
            empty_schema=pa.schema([("rank", pa.int64()), ("row", pa.int64()), ("score", pa.float64())])
        )
    summary.rows_selected = 0 if table is None else table.num_rows
    summary.rows_read = summary.rows_scored + summary.rows_rejected
    summary.rejects = str(rejects_path) if rejects_path and summary.rows_rejected else None
    summary.seconds = round(time.monotonic() - t0, 3)
    return ScreenResult(summary=summary, selected=table)
