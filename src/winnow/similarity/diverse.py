"""Diversity-aware selection (``winnow screen --diverse``): no near-duplicates among the selected.

A budget screen with ``diverse=True`` keeps ``CANDIDATE_FACTOR`` times the budget's candidates in
pass 1, reads those candidates' records, and groups them into near-duplicate clusters. Two
records are linked when they are close in embedding space (:func:`selection_embedding`, within
``RADIUS``, by :func:`winnow.similarity.ann.near_duplicate_groups`) or when the data-quality rule calls
them near-duplicates (:mod:`winnow.quality.neardup`: numbers within 0.05 SD RMS, equal
categories, texts with character 4-gram similarity >= 0.7); clusters are the connected
components of both kinds of links. The embedding catches reworded texts, the rule catches typos
(which move a sentence embedding more than they move the characters).

Walking the candidates in rank order, a row is taken only if no better-ranked row of its cluster
was; the walk stops at the budget. Every selected row carries
``similar_skipped``: how many of its near-duplicates were left out. When more than
``CANDIDATE_FACTOR - 1`` in every ``CANDIDATE_FACTOR`` candidates are near-duplicates, fewer rows
than the budget come back; the summary says so.

In threshold mode, the rows at or above the threshold are de-duplicated the same way.

The selection embedding is built so that its Euclidean distance reads like a tolerance:

* numeric inputs as the models see them (clipped, log-scaled where skewed, standardised, plus
  missing indicators), divided by the square root of their number: the distance is their
  root-mean-square difference in standard deviations;
* each categorical column one-hot with weight 1: a different category is a distance of at
  least 1.4, never a near-duplicate; id columns are not model inputs and are not compared;
* each text column's sentence embedding (the screener's fine-tuned encoder when it has one,
  else the pretrained one; length features are left out) times ``TEXT_WEIGHT``: unit vectors
  at cosine c are ``TEXT_WEIGHT * sqrt(2 (1 - c))`` apart. Paraphrases land close, which
  character-level similarity misses.

``RADIUS`` 0.05 is a 0.05 SD RMS numeric difference, or text at cosine 0.9 with equal numbers,
or a mix (the squares add up). ``python bench/near_duplicates.py --detector embedding`` measures
recall and precision on injected copies (typos, reworded texts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from winnow.config import Role
from winnow.io.readers import TableSource
from winnow.prep.encoder import DIM as ENCODER_DIM
from winnow.quality.neardup import near_duplicates
from winnow.schema import ColumnSpec, coerce
from winnow.similarity.ann import near_duplicate_groups

if TYPE_CHECKING:
    from winnow.prep.preprocessor import Preprocessor
    from winnow.screener import Screener

CANDIDATE_FACTOR = 3
#: largest selection-embedding distance at which two records are near-duplicates
RADIUS = 0.05
#: weight of a text column's unit sentence embedding: cosine 0.9 alone sits at RADIUS
TEXT_WEIGHT = RADIUS / float(np.sqrt(2 * (1 - 0.9)))


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


def selection_embedding(prep: Preprocessor, specs: list[ColumnSpec], typed: pa.Table) -> np.ndarray:
    """float32 (n, d) embedding of typed rows in which near-duplicates are within ``RADIUS``."""
    from winnow.similarity.embedding import one_hot

    texts = [s.name for s in specs if s.used and s.role == Role.TEXT]
    m = prep.transform(typed, specs)
    dense = prep.dense(m)
    keep = [j for j, (_, src) in enumerate(prep.dense_names()) if src not in texts]
    blocks = [dense[:, keep] / np.sqrt(len(keep))] if keep else []
    blocks.append(one_hot(m.cat, prep.cardinalities(), 1.0))
    # the transform embedded the encoder's columns already: after the TF-IDF blocks, DIM wide each
    start = sum(w for _, w in prep.text_blocks()[: len(prep.text_)])
    made = {
        name: m.text[:, start + j * ENCODER_DIM : start + (j + 1) * ENCODER_DIM].toarray()
        for j, name in enumerate(prep.encoded_)
        if m.text is not None
    }
    for name in texts:
        emb = made[name] if name in made else prep.encoder(name).encode(typed.column(name).to_pylist())
        blocks.append(TEXT_WEIGHT * emb)
    out = np.concatenate(blocks, axis=1)
    if out.shape[1] == 0:
        return np.zeros((len(out), 1), np.float32)
    return np.ascontiguousarray(out, dtype=np.float32)


def linked_groups(prep: Preprocessor, specs: list[ColumnSpec], typed: pa.Table, seed: int = 0) -> np.ndarray:
    """Cluster id per row (the first row of its cluster; its own position when alone): rows
    linked in embedding space or by the data-quality rule, transitively."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = typed.num_rows
    emb = selection_embedding(prep, specs, typed)
    by_embedding = near_duplicate_groups(emb, max_distance=RADIUS, seed=seed)
    by_rule = near_duplicates(typed, specs, seed=seed).group
    rows = np.arange(n)
    ruled = by_rule >= 0
    a = np.concatenate([rows, rows[ruled]])
    b = np.concatenate([by_embedding, by_rule[ruled]])
    _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    first = np.full(label.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, label, rows)
    return first[label]


def distinct_in_rank_order(
    records: pa.Table, screener: Screener, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """For records in rank order: (mask of rows to keep, near-duplicates each kept row stands for).

    A row is kept when it is the best-ranked row of its near-duplicate cluster (or in none).
    """
    n = records.num_rows
    used = [s for s in screener.specs_ if s.used]
    if n < 2 or not used:
        return np.ones(n, bool), np.zeros(n, np.int64)
    typed = coerce(records, used).table
    group = linked_groups(screener.prep_, used, typed, seed)
    keep = group == np.arange(n)
    skipped = np.zeros(n, np.int64)
    red = np.flatnonzero(~keep)
    np.add.at(skipped, group[red], 1)
    return keep, skipped
