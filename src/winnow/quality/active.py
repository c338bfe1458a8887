"""``winnow suggest``: which unlabelled rows to label next, so the screener learns the most.

Strategies (``strategy``):

* ``diverse`` (default): informative *and* different. One pass scores every row and keeps the
  ``pool_factor * n`` most informative in a streaming top-k; informativeness is the mean of

  - *uncertainty* ``exp(-|logit p - logit t|)``: 1 at the screener's threshold ``t`` (the budget's
    decision point), falling off on either side;
  - *disagreement*: the standard deviation of the members' probabilities, over 0.5 (0..1).

  The pool is then clustered into ``n`` clusters by k-means weighted by informativeness, in the
  screener's learned embedding (:mod:`winnow.similarity.embedding`: the deep network's last hidden layer
  when the portfolio has one, else the standardised model inputs), and the most informative row
  of each cluster is taken: the weighted "diverse mini-batch" of Zhdanov (2019), so the batch is
  not ``n`` copies of one hard case.
* ``uncertainty``: the ``n`` most informative rows (no diversity).
* ``random``: a seeded uniform sample of ``n`` rows.

Rows that cannot be scored (invalid values) are never suggested; they are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from winnow.errors import ConfigError
from winnow.io.readers import DEFAULT_BATCH_ROWS, open_source
from winnow.select import TopK
from winnow.similarity.diverse import read_rows

if TYPE_CHECKING:
    from winnow.screener import Screener

STRATEGIES = ("diverse", "uncertainty", "random")
POOL_FACTOR = 10


@dataclass
class Suggestion:
    """The rows to label, best first: ``table`` has rank, row, score, uncertainty, disagreement,
    informativeness, cluster and the input columns."""

    table: pa.Table
    rows_scored: int
    rows_rejected: int
    strategy: str


def _informativeness(
    screener: Screener, batch: pa.RecordBatch | pa.Table, first: int
) -> tuple[np.ndarray, ...]:
    sb = screener.score_batch(batch, first_row=first)
    t = float(np.clip(screener.threshold_.value, 1e-6, 1 - 1e-6))
    p = np.clip(sb.scores, 1e-6, 1 - 1e-6)
    unc = np.exp(-np.abs(np.log(p / (1 - p)) - np.log(t / (1 - t))))
    members = [n for n, w in zip(screener.fusion_.names, screener.fusion_.weights, strict=True) if w]
    if len(members) > 1:
        probs = np.stack([1 / (1 + np.exp(-screener.learners_[n].predict_logit(sb.inputs))) for n in members])
        dis = np.clip(probs.std(axis=0) / 0.5, 0, 1)
    else:
        dis = np.zeros(len(p))
    info = (unc + dis) / 2
    bad = ~sb.ok
    for a in (unc, dis, info):
        a[bad] = np.nan
    return sb.scores, unc, dis, info, sb.ok


def embedding(screener: Screener, records: pa.Table) -> np.ndarray:
    """Rows in the screener's learned space (:func:`winnow.similarity.embedding.embedder`, ``auto``)."""
    from winnow.similarity.embedding import embedder

    x, _ = screener.prepare(records)
    return embedder(screener)(x).astype(np.float64)


def suggest(
    screener: Screener,
    data: Any,
    n: int,
    *,
    strategy: str = "diverse",
    pool_factor: int = POOL_FACTOR,
    seed: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Callable[[int, int | None, str], None] | None = None,
) -> Suggestion:
    """The ``n`` unlabelled rows of ``data`` most worth labelling next (see the module docstring)."""
    if strategy not in STRATEGIES:
        raise ConfigError("--strategy", strategy, " or ".join(STRATEGIES))
    if n < 1:
        raise ConfigError("--budget", n, "a whole number of rows >= 1")
    source = open_source(data)
    screener.check_columns(source.column_names())
    total = source.num_rows()
    rng = np.random.default_rng(seed)
    top = TopK(n if strategy != "diverse" else n * pool_factor)
    scored = rejected = 0
    for first, batch in source.numbered_batches(batch_rows):
        _, _, _, info, ok = _informativeness(screener, batch, first)
        scored += int(ok.sum())
        rejected += int((~ok).sum())
        # random: every valid row draws a seeded key, the n largest keys are a uniform sample
        key = np.where(ok, rng.random(len(ok)), np.nan) if strategy == "random" else info
        top.add(first, key)
        if progress is not None:
            progress(first + batch.num_rows, total, "scoring")
    rows, _ = top.top(min(top.capacity or 0, scored))
    records = read_rows(source, rows, batch_rows)
    score, unc, dis, info, _ = _informativeness(screener, records, 0)
    cluster = np.full(len(rows), -1, dtype=np.int64)
    if strategy == "diverse" and len(rows) > n:
        from sklearn.cluster import KMeans

        emb = embedding(screener, records)
        km = KMeans(n_clusters=n, n_init=3, random_state=seed).fit(emb, sample_weight=info + 1e-6)
        labels = km.labels_
        pick = []
        for c in range(n):
            members = np.flatnonzero(labels == c)
            if members.size:
                best = members[np.lexsort((rows[members], -info[members]))[0]]
                pick.append(best)
                cluster[best] = c
        take = np.asarray(pick, dtype=np.int64)
    else:
        take = np.arange(len(rows))
    order = (
        take[np.lexsort((rows[take], -info[take]))] if strategy != "random" else take[np.argsort(rows[take])]
    )
    out = records.take(pa.array(order))
    front = {
        "rank": pa.array(np.arange(1, len(order) + 1), pa.int64()),
        "row": pa.array(rows[order], pa.int64()),
        "score": pa.array(score[order], pa.float64()),
        "uncertainty": pa.array(unc[order], pa.float64()),
        "disagreement": pa.array(dis[order], pa.float64()),
        "informativeness": pa.array(info[order], pa.float64()),
        "cluster": pa.array(cluster[order], pa.int64()),
    }
    cols = dict(front)
    for name in out.column_names:
        if name not in cols:
            cols[name] = out.column(name)
    return Suggestion(pa.table(cols), scored, rejected, strategy)
