"""Diversity-aware selection (``winnow screen --diverse``): no near-duplicates among the selected.

A budget screen with ``diverse=True`` keeps ``CANDIDATE_FACTOR`` times the budget's candidates in
pass 1, reads those candidates' records, and groups them into near-duplicate clusters
(:mod:`winnow.quality.neardup`, on the columns the screener uses). Walking the candidates in rank
order, a row is taken only if no better-ranked row of its cluster was; the walk stops at the
budget. Every selected row carries ``similar_skipped``: how many of its near-duplicates were left
out. When more than ``CANDIDATE_FACTOR - 1`` in every ``CANDIDATE_FACTOR`` candidates are
near-duplicates, fewer rows than the budget come back; the summary says so.

In threshold mode, the rows at or above the threshold are de-duplicated the same way.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from winnow.io.readers import TableSource
from winnow.quality.neardup import near_duplicates
from winnow.schema import ColumnSpec, coerce

CANDIDATE_FACTOR = 3


def candidate_capacity(k: int | None) -> int | None:
    return None if k is None else CANDIDATE_FACTOR * k


def read_rows(source: TableSource, rows: np.ndarray, batch_rows: int) -> pa.Table:
    """The records at input positions ``rows`` (any order), returned in the order of ``rows``."""
    order = np.argsort(rows, kind="stable")
    wanted = rows[order]
    parts, got = [], []
    for first, batch in source.numbered_batches(batch_rows):
        lo, hi = np.searchsorted(wanted, [first, first + batch.num_rows])
        if hi > lo:
            parts.append(pa.Table.from_batches([batch]).take(pa.array(wanted[lo:hi] - first)))
            got.append(wanted[lo:hi])
    if not parts:
        return pa.table({})
    table = pa.concat_tables(parts, promote_options="permissive")
    back = np.empty(len(rows), dtype=np.int64)
    back[order] = np.arange(len(rows))
    return table.take(pa.array(back))


def distinct_in_rank_order(
    records: pa.Table, specs: list[ColumnSpec], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """For records in rank order: (mask of rows to keep, near-duplicates each kept row stands for).

    A row is kept when it is the best-ranked row of its near-duplicate cluster (or in none).
    """
    n = records.num_rows
    used = [s for s in specs if s.used]
    if n < 2 or not used:
        return np.ones(n, bool), np.zeros(n, np.int64)
    typed = coerce(records, used)
    nd = near_duplicates(typed.table, used, seed=seed)
    keep = (nd.group < 0) | (nd.group == np.arange(n))
    skipped = np.zeros(n, np.int64)
    red = np.flatnonzero(~keep)
    np.add.at(skipped, nd.group[red], 1)
    return keep, skipped
