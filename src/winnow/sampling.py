"""Fitting on data larger than memory: a stratified reservoir sample, read in one bounded pass.

High-value rows are rare and precious, so the sample keeps every positive (up to
``positives``, by default half the sample) and fills the rest with a uniform sample of the
negatives. Each class is a reservoir in the "smallest random keys" form: every row draws a
uniform key from a seeded generator, and the ``capacity`` smallest keys seen so far are kept, so
the result is a uniform sample without replacement of that class whatever the batch sizes, and
memory holds at most the sample plus one batch. ``--top-fraction`` targets need the cutoff of
the whole column first: a pass reads only the target column (8 bytes a row).

Because the classes are kept at different rates, the model sees positives more often than they
occur; :class:`Sample` carries the rates so the screener can undo that shift (its probabilities
and threshold refer to the data, not to the sample).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.errors import DataError
from winnow.io.readers import DEFAULT_BATCH_ROWS, TableSource
from winnow.io.rejects import Reject
from winnow.target import make_labels


@dataclass
class Sample:
    """What the sample kept of each class, out of what was read."""

    rows_read: int
    positives_read: int
    negatives_read: int
    unlabelled_read: int
    positives_kept: int
    negatives_kept: int
    #: the --top-fraction cutoff, computed on the whole target column (None for --positive)
    cutoff: float | None = None

    @property
    def positive_rate_kept(self) -> float:
        return self.positives_kept / max(self.positives_read, 1)

    @property
    def negative_rate_kept(self) -> float:
        return self.negatives_kept / max(self.negatives_read, 1)

    @property
    def log_odds_shift(self) -> float:
        """How much the sample raises the log-odds of being high-value: log(rate+ / rate-)."""
        return math.log(max(self.positive_rate_kept, 1e-12) / max(self.negative_rate_kept, 1e-12))

    def weights(self, y: np.ndarray) -> np.ndarray:
        """Inverse sampling rate of each row's class: weighted sums estimate the data's."""
        w_pos = 1.0 / max(self.positive_rate_kept, 1e-12)
        w_neg = 1.0 / max(self.negative_rate_kept, 1e-12)
        return np.where(y > 0, w_pos, w_neg)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "log_odds_shift": self.log_odds_shift}


class _Reservoir:
    """The ``capacity`` rows with the smallest random keys seen so far."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.tables: list[pa.Table] = []
        self.keys = np.zeros(0)
        self.seen = 0

    def offer(self, table: pa.Table, keys: np.ndarray) -> None:
        self.seen += table.num_rows
        if self.capacity <= 0 or not table.num_rows:
            return
        if len(self.keys) >= self.capacity:
            cut = self.keys.max()
            take = np.flatnonzero(keys < cut)
            if not take.size:
                return
            table, keys = table.take(pa.array(take)), keys[take]
        self.tables.append(table)
        self.keys = np.concatenate([self.keys, keys])
        # compact when the held rows reach twice the capacity: amortised O(rows)
        if len(self.keys) >= 2 * self.capacity:
            self._compact()

    def _compact(self) -> None:
        merged = pa.concat_tables(self.tables, promote_options="permissive")
        keep = np.sort(np.argpartition(self.keys, self.capacity - 1)[: self.capacity])
        self.tables = [merged.take(pa.array(keep))]
        self.keys = self.keys[keep]

    def result(self, n: int | None = None) -> pa.Table | None:
        if not self.tables:
            return None
        if len(self.keys) > self.capacity:
            self._compact()
        merged = pa.concat_tables(self.tables, promote_options="permissive")
        if n is not None and n < merged.num_rows:
            keep = np.sort(np.argpartition(self.keys, n - 1)[:n])
            merged = merged.take(pa.array(keep))
        return merged


def _cutoff(source: TableSource, target: str, top_fraction: float, batch_rows: int) -> float:
    """The top-fraction cutoff of the whole target column (read alone)."""
    values = []
    for batch in source.batches(batch_rows):
        if target not in batch.schema.names:
            raise DataError(f"target column {target!r} is not in the data", column=target)
        one = pa.table({target: batch.column(target)})
        values.append(one)
    table = pa.concat_tables(values)
    return float(make_labels(table, target, top_fraction=top_fraction).cutoff)  # type: ignore[arg-type]


def stratified_sample(
    source: TableSource,
    *,
    target: str,
    positive: list[str] | None,
    top_fraction: float | None,
    rows: int,
    positives: int | None = None,
    seed: int = 0,
    rejects: list[Reject] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> tuple[pa.Table, Sample]:
    """At most ``rows`` rows: every positive up to ``positives`` (default ``rows // 2``), the
    rest a uniform sample of the negatives. Rows without a target value are counted, not kept."""
    cap_pos = min(positives if positives is not None else rows // 2, rows)
    cutoff = _cutoff(source, target, top_fraction, batch_rows) if top_fraction is not None else None
    rng = np.random.default_rng(seed)
    pos, neg = _Reservoir(cap_pos), _Reservoir(rows)
    read = unlabelled = 0
    for batch in source.batches(batch_rows, rejects=rejects):
        table = pa.Table.from_batches([batch])
        read += table.num_rows
        keys = rng.random(table.num_rows)
        labels = make_labels(
            table, target, positive=positive, top_fraction=top_fraction, cutoff=cutoff, partial=True
        )
        y, known = labels.y.astype(bool), labels.known
        unlabelled += int((~known).sum())
        for res, mask in ((pos, y & known), (neg, ~y & known)):
            idx = np.flatnonzero(mask)
            if idx.size:
                res.offer(table.take(pa.array(idx)), keys[idx])
            else:
                res.offer(table.slice(0, 0), keys[:0])
    p = pos.result()
    n_pos = 0 if p is None else p.num_rows
    n = neg.result(max(rows - n_pos, 0))
    parts = [t for t in (p, n) if t is not None and t.num_rows]
    if not parts:
        raise DataError(f"{source.name!r} has no rows with a target value", column=target)
    sample = Sample(
        rows_read=read,
        positives_read=pos.seen,
        negatives_read=neg.seen,
        unlabelled_read=unlabelled,
        positives_kept=n_pos,
        negatives_kept=0 if n is None else n.num_rows,
        cutoff=cutoff,
    )
    table = pa.concat_tables(parts, promote_options="permissive")
    # a fixed, seeded order: the classes interleaved as they would be in the data
    order = np.random.default_rng(seed + 1).permutation(table.num_rows)
    return table.take(pa.array(order)), sample
