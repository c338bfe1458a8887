"""Batch scoring and screening of data of any size, in bounded memory.

``score_file`` writes every scored row in one pass. ``screen`` selects by a budget exactly
over the whole input: pass 1 scores every batch and keeps only the candidates that can still
make the budget (:class:`winnow.select.TopK`); the global top-k is then known, and pass 2
re-reads the input and writes the selected rows with their rank and reasons. Memory is bounded
by the batch size and the budget, never by the input. With ``use_threshold`` (or a
min-precision budget) the artifact's threshold selects in a single pass.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from winnow.config import Budget
from winnow.engines.output import (
    N_REASONS,
    SPILL_ROWS,
    Progress,
    RankedOutput,
    ScreenResult,
    ScreenSummary,
    close_summary,
    finish_selected,
    rank_selected,
    reason_columns,
    selected_table,
    threshold_selected,
    threshold_selection,
)
from winnow.io.readers import DEFAULT_BATCH_ROWS, TableSource, open_source
from winnow.io.rejects import Reject, RejectsWriter
from winnow.io.writers import open_writer
from winnow.rules import RuleSet
from winnow.select import TopK, add_batch, budget_count, choose_rows, threshold_rows, top_capacity
from winnow.similarity.diverse import candidate_capacity, distinct_in_rank_order, read_rows

if TYPE_CHECKING:
    from winnow.screener import ScoredBatch, Screener

log = logging.getLogger("winnow")


@dataclass
class Scored:
    """One input batch, its first row's position, its scores and every reject it produced."""

    row: int
    batch: pa.RecordBatch | None
    result: ScoredBatch | None  # None: only rejects found after the last batch
    rejects: list[Reject]


def scored_batches(
    screener: Screener, source: TableSource, batch_rows: int, workers: int = 1
) -> Iterator[Scored]:
    """Score ``source`` batch by batch, in input order, on ``workers`` threads.

    The calling thread reads (and parses) batch i+1 while the workers score batch i; at most
    ``workers + 1`` batches are in flight, so memory stays bounded by the batch size. With
    several workers each scores with ``cores / workers`` model threads, so the machine is never
    oversubscribed. Rejects found while parsing travel with their own batch.
    """
    workers = max(1, workers)
    if workers > 1:
        screener.set_threads(max(1, (os.cpu_count() or 1) // workers))
    try:
        yield from _pipelined(screener, source, batch_rows, workers)
    finally:
        if workers > 1:
            screener.set_threads(screener.config.threads if screener.config is not None else 0)


def _pipelined(screener: Screener, source: TableSource, batch_rows: int, workers: int) -> Iterator[Scored]:
    read_rejects: list[Reject] = []
    pending: deque[tuple[int, pa.RecordBatch, list[Reject], Future[ScoredBatch]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="winnow-score") as pool:
        for row, batch in source.numbered_batches(batch_rows, rejects=read_rejects):
            mine, read_rejects[:] = list(read_rejects), []
            pending.append((row, batch, mine, pool.submit(screener.score_batch, batch, row)))
            while len(pending) > workers:
                r, b, rej, fut = pending.popleft()
                yield Scored(r, b, fut.result(), rej)
        while pending:
            r, b, rej, fut = pending.popleft()
            yield Scored(r, b, fut.result(), rej)
    if read_rejects:
        # rejects after the last batch (a CSV's trailing bad lines)
        yield Scored(-1, None, None, list(read_rejects))


def _rejects_writer(path: str | Path | None) -> RejectsWriter:
    return RejectsWriter(Path(path) if path is not None else None)


def score_file(
    screener: Screener,
    data: Any,
    out: str | Path,
    *,
    rejects_path: str | Path | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    workers: int = 1,
    reasons: int = 0,
    explain: bool = False,
) -> ScreenSummary:
    """Write ``row``, the id column (if any), ``score`` and ``selected`` for every scored row, and
    with ``reasons`` its top reasons (``reason_1..N``), selected or not; with ``explain``
    :func:`explained_rows` instead (``winnow explain``)."""
    t0 = time.monotonic()
    source = open_source(data)
    screener.check_columns(source.column_names())
    total = source.num_rows()
    thr = screener.threshold_.value
    summary = ScreenSummary(selection=f"threshold {thr:.4f}", threshold=thr, out=str(out))
    with open_writer(out, screener.id_column) as writer, _rejects_writer(rejects_path) as rw:
        for end, table in _scored_tables(screener, source, batch_rows, workers, rw, reasons, explain):
            writer.write(table)
            summary.rows_scored += table.num_rows
            if not explain:
                summary.rows_selected += int(pc.sum(table.column("selected")).as_py() or 0)
            if progress:
                progress(end, total, "scoring")
        close_summary(summary, rw, rejects_path, t0)
    return summary


def score_table(
    screener: Screener, data: Any, *, batch_rows: int = DEFAULT_BATCH_ROWS, reasons: int = 0
) -> pa.Table:
    """:func:`score_file`'s rows in memory: ``row``, the id column, ``score``, ``rank`` (1 = the
    highest score of the input; ties: the earlier row), ``selected``, and with ``reasons`` the
    top reasons ``reason_1..N`` of every row (rejected records left out, as in the file; they are
    logged with their reasons)."""
    source = open_source(data)
    screener.check_columns(source.column_names())
    rw = RejectsWriter(None)
    parts = [t for _, t in _scored_tables(screener, source, batch_rows, 1, rw, reasons)]
    if rw.count:
        log.warning("%d records rejected, e.g. %s", rw.count, rw.examples[0].describe())
    if parts:
        table = pa.concat_tables(parts)
    else:
        empty = {"row": pa.array([], pa.int64())}
        if screener.id_column:
            empty[screener.id_column] = pa.array([], pa.null())
        table = pa.table({**empty, "score": pa.array([], pa.float64()), "selected": pa.array([], pa.bool_())})
    scores = table.column("score").to_numpy()
    order = np.lexsort((table.column("row").to_numpy(), -scores))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return table.add_column(table.schema.get_field_index("score") + 1, "rank", pa.array(rank))


def explained_rows(screener: Screener, batch: pa.RecordBatch, row: int, sb: ScoredBatch) -> pa.Table:
    """``row``, the id column, ``logit``, ``base``, ``residual`` and ``contribution_<column>``
    for the scored rows of one batch (:func:`winnow.reasons.explain`)."""
    from winnow.reasons import explain

    ok = np.flatnonzero(sb.ok)
    e = explain(screener.prep_, screener.learners_, screener.fusion_, sb.inputs.take(ok))
    cols: dict[str, Any] = {"row": pa.array(row + ok, pa.int64())}
    if screener.id_column:
        cols[screener.id_column] = batch.column(screener.id_column).take(pa.array(ok))
    cols.update(logit=e.logit, base=e.base, residual=e.residual)
    cols.update({f"contribution_{c}": e.contributions[:, j] for j, c in enumerate(e.sources)})
    return pa.table(cols)


def explain_table(screener: Screener, data: Any, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> pa.Table | None:
    """:func:`explained_rows` of every batch, in memory (rejected records logged, left out)."""
    source = open_source(data)
    screener.check_columns(source.column_names())
    rw = RejectsWriter(None)
    parts = [t for _, t in _scored_tables(screener, source, batch_rows, 1, rw, explain=True)]
    if rw.count:
        log.warning("%d records rejected, e.g. %s", rw.count, rw.examples[0].describe())
    return pa.concat_tables(parts) if parts else None


def _scored_tables(
    screener: Screener,
    source: TableSource,
    batch_rows: int,
    workers: int,
    rw: RejectsWriter,
    reasons: int = 0,
    explain: bool = False,
) -> Iterator[tuple[int, pa.Table]]:
    """``(rows read so far, table)`` per batch: :func:`score_rows`, or with ``explain``
    :func:`explained_rows`; every reject goes to ``rw``."""
    rules = screener.rule_set()
    for item in scored_batches(screener, source, batch_rows, workers):
        rw.add(item.rejects)
        if item.result is None or item.batch is None:
            continue
        rw.add(item.result.rejects)
        if explain:
            table = explained_rows(screener, item.batch, item.row, item.result)
        else:
            table = score_rows(screener, item.batch, item.row, item.result, rules, reasons)
        yield item.row + item.batch.num_rows, table


def score_rows(
    screener: Screener,
    batch: pa.RecordBatch,
    row: int,
    sb: ScoredBatch,
    rules: RuleSet | None = None,
    reasons: int = 0,
) -> pa.Table:
    """``row``, the id column, ``score`` and ``selected`` (the artifact's threshold and rules)
    for the scored rows of one batch, and ``reason_1..N`` for each of them with ``reasons``."""
    hits = rules.evaluate(pa.Table.from_batches([batch])) if rules else None
    chosen = np.zeros(len(sb.scores), dtype=bool)
    chosen[threshold_rows(sb.scores, sb.ok, hits, screener.threshold_.value)] = True
    idx = np.flatnonzero(sb.ok)
    cols: dict[str, Any] = {"row": pa.array(row + idx, pa.int64())}
    if screener.id_column:
        cols[screener.id_column] = batch.column(screener.id_column).take(pa.array(idx))
    cols["score"] = pa.array(sb.scores[idx])
    cols["selected"] = pa.array(chosen[idx])
    if reasons:
        cols.update(
            reason_columns(screener.reasons(sb.inputs.take(idx), sb.typed, top=reasons, rows=idx), reasons)
        )
    return pa.table(cols)


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
    workers: int = 1,
    diverse: bool = False,
) -> ScreenResult:
    """Select the high-value rows of ``data`` by a budget (exact global top-k) or threshold;
    ``diverse``: no near-duplicates among them (:mod:`winnow.similarity.diverse`)."""
    t0 = time.monotonic()
    source = open_source(data)
    screener.check_columns(source.column_names())
    total = source.num_rows()
    budget = budget or screener.config.budget  # type: ignore[union-attr]
    threshold_mode = use_threshold or budget.min_precision is not None
    summary = ScreenSummary(out=str(out) if out else None)
    # written to a file: spill beyond SPILL_ROWS; in memory: the caller asked for the table
    selected = RankedOutput(SPILL_ROWS if out is not None else None)
    rules = screener.rule_set()
    with _rejects_writer(rejects_path) as rw:
        if threshold_mode:
            thr = screener.threshold_.value
            summary.selection, summary.threshold = threshold_selection(thr), thr
            parts: list[pa.Table] = []
            for item in scored_batches(screener, source, batch_rows, workers):
                rw.add(item.rejects)
                if item.result is None or item.batch is None:
                    continue
                rw.add(item.result.rejects)
                summary.rows_scored += int(item.result.ok.sum())
                part = threshold_selected(screener, rules, item.batch, item.row, item.result, reasons)
                if part is not None:
                    parts.append(part)
                if progress:
                    progress(item.row + item.batch.num_rows, total, "screening")
            # ranks are only known after the last batch: threshold mode holds its selection
            ranked = rank_selected(parts)
            if ranked is not None and diverse:
                keep, skipped = distinct_in_rank_order(ranked, screener, _seed(screener))
                ranked = ranked.filter(pa.array(keep))
                ranked = ranked.set_column(0, "rank", pa.array(np.arange(1, ranked.num_rows + 1)))
                ranked = ranked.append_column("similar_skipped", pa.array(skipped[keep], pa.int64()))
                summary.near_duplicates_skipped = int((~keep).sum())
            if ranked is not None:
                selected.add(ranked)
        else:
            capacity = top_capacity(budget, total)
            top = TopK(candidate_capacity(capacity) if diverse else capacity)
            forced: dict[int, str] = {}
            for item in scored_batches(screener, source, batch_rows, workers):
                rw.add(item.rejects)
                if item.result is None or item.batch is None:
                    continue
                rw.add(item.result.rejects)
                hits = rules.evaluate(pa.Table.from_batches([item.batch])) if rules else None
                add_batch(top, item.result.scores, item.result.ok, hits, item.row, forced)
                summary.rows_scored += int(item.result.ok.sum())
                if progress:
                    progress(item.row + item.batch.num_rows, total, "scoring (pass 1 of 2)")
            skipped_of: dict[int, int] = {}
            pick = None
            if diverse:

                def pick(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
                    records = read_rows(source, rows, batch_rows)
                    keep, skipped = distinct_in_rank_order(records, screener, _seed(screener))
                    take = np.flatnonzero(keep)[:k]
                    last = take[-1] if take.size else -1
                    summary.near_duplicates_skipped = int((~keep[: last + 1]).sum())
                    skipped_of.update(zip(rows[take].tolist(), skipped[take].tolist(), strict=True))
                    return rows[take], scores[take]

            n_candidates = candidate_capacity(budget_count(budget, summary.rows_scored) or 0) or 0
            choice = choose_rows(
                top, forced, budget, summary.rows_scored, None if pick is None else (n_candidates, pick)
            )
            summary.selection, summary.threshold = choice.description, choice.threshold
            if diverse:
                summary.selection += f", no near-duplicates ({summary.near_duplicates_skipped:,} skipped)"
            rows_sorted, ranks_sorted, scores_sorted = choice.by_row()
            for row, batch in source.numbered_batches(batch_rows):
                lo, hi = np.searchsorted(rows_sorted, [row, row + batch.num_rows])
                if hi > lo:
                    glob = rows_sorted[lo:hi]
                    names = [forced.get(int(g)) for g in glob]
                    raw = pa.Table.from_batches([batch])
                    ranks, scores = ranks_sorted[lo:hi], scores_sorted[lo:hi]
                    part = selected_table(screener, raw, row, glob - row, ranks, scores, reasons, names)
                    if diverse:
                        n_skipped = [skipped_of.get(int(g), 0) for g in glob]
                        part = part.append_column("similar_skipped", pa.array(n_skipped, pa.int64()))
                    selected.add(part)
                if progress:
                    progress(row + batch.num_rows, total, "writing selected rows (pass 2 of 2)")
        summary.rows_selected = selected.rows
        table, head = finish_selected(selected, out, key=screener.id_column)
        close_summary(summary, rw, rejects_path, t0)
    return ScreenResult(summary=summary, selected=table, head=head)


def _seed(screener: Screener) -> int:
    return int(screener.config.seed) if screener.config is not None else 0
