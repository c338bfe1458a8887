"""Row embeddings of a fitted screener: the space "find more like these" and near-duplicate
detection measure similarity in.

Two kinds:

``deep``
    The last hidden layer of the screener's deep network (the ``deep`` or ``tabm`` member the
    fusion trusts most): features learned for *this* task, so rows close in it are alike in
    the ways that matter for being high-value.
``inputs``
    The standardized model inputs, for screeners without a deep member (``--preset fast``):
    the numeric features as the linear and deep models see them (clipped, log-scaled where
    skewed, standardized, missing = 0 plus a missing indicator) and every categorical column
    one-hot encoded with weight 1/sqrt(2), so differing in one category weighs as much as one
    standard deviation on one numeric feature. Text columns are not part of it.

``auto`` (the default) picks ``deep`` when the screener has a deep member, else ``inputs``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from winnow.errors import ConfigError
from winnow.io.readers import DEFAULT_BATCH_ROWS, TableSource
from winnow.io.rejects import Reject

if TYPE_CHECKING:
    from winnow.models.base import Inputs, Learner
    from winnow.screener import Screener

EMBEDDINGS = ("auto", "deep", "inputs")


def deep_member(screener: Screener) -> str | None:
    """The name of the deep member the fusion trusts most (``deep`` on a tie), or None."""
    names = [n for n, m in screener.learners_.items() if hasattr(m, "embed")]
    if not names:
        return None
    weight = dict(zip(screener.fusion_.names, screener.fusion_.weights, strict=True))
    return max(names, key=lambda n: (weight.get(n, 0.0), n == "deep"))


@dataclass
class Embedder:
    """Turns prepared model inputs into float32 row embeddings of width ``dim``.

    ``kind`` is ``deep`` or ``inputs`` (see the module docstring); ``member`` names the deep
    member used, if any.
    """

    screener: Screener
    kind: str
    member: str | None
    dim: int

    def __call__(self, x: Inputs) -> np.ndarray:
        if self.kind == "deep":
            learner: Learner = self.screener.learners_[self.member]  # type: ignore[index]
            return np.ascontiguousarray(learner.embed(x), dtype=np.float32)  # type: ignore[attr-defined]
        return _inputs_embedding(self.screener, x)

    def describe(self) -> str:
        if self.kind == "deep":
            return f"deep: last hidden layer of member {self.member!r} ({self.dim} dims)"
        return f"inputs: standardized numeric features + one-hot categories ({self.dim} dims)"

    def batches(
        self, source: TableSource, batch_rows: int = DEFAULT_BATCH_ROWS, rejects: list[Reject] | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch, np.ndarray, np.ndarray]]:
        """``(first_row, batch, ok, embeddings of the ok rows)`` for each batch of ``source``;
        records rejected while reading or typing go to ``rejects``."""
        for row, batch in source.numbered_batches(batch_rows, rejects=rejects):
            x, typed = self.screener.prepare(batch, first_row=row)
            if rejects is not None:
                rejects.extend(typed.rejects)
            ok = np.asarray(typed.ok, dtype=bool)
            idx = np.flatnonzero(ok)
            emb = self(x.take(idx)) if idx.size else np.zeros((0, self.dim), np.float32)
            yield row, batch, ok, emb


def embedder(screener: Screener, kind: str = "auto") -> Embedder:
    """The :class:`Embedder` of ``screener``; ``kind`` is ``auto``, ``deep`` or ``inputs``."""
    if kind not in EMBEDDINGS:
        raise ConfigError("--embedding", kind, "one of " + ", ".join(EMBEDDINGS))
    member = deep_member(screener)
    if kind == "deep" and member is None:
        raise ConfigError(
            "--embedding",
            kind,
            "a screener with a deep member",
            "This screener has none: refit with --preset balanced or --model tabm, or use "
            "--embedding inputs (the standardized model inputs).",
        )
    if kind == "auto":
        kind = "deep" if member is not None else "inputs"
    if kind == "deep":
        learner = screener.learners_[member]  # type: ignore[index]
        return Embedder(screener, "deep", member, int(learner.hidden[-1]))  # type: ignore[attr-defined]
    prep = screener.prep_
    dim = len(prep.dense_names()) + sum(prep.cardinalities())
    return Embedder(screener, "inputs", None, dim)


_ONE_HOT = 1.0 / math.sqrt(2.0)


def one_hot(codes: np.ndarray, cards: list[int], weight: float) -> np.ndarray:
    """float32 (n, sum(cards)): each categorical column's code one-hot, with ``weight``."""
    out = np.zeros((len(codes), sum(cards)), dtype=np.float32)
    rows, offset = np.arange(len(codes)), 0
    for j, card in enumerate(cards):
        out[rows, offset + np.clip(codes[:, j], 0, card - 1)] = weight
        offset += card
    return out


def _inputs_embedding(screener: Screener, x: Inputs) -> np.ndarray:
    dense = np.asarray(x.dense, dtype=np.float32)
    cats = one_hot(x.m.cat, screener.prep_.cardinalities(), _ONE_HOT)
    return np.concatenate([dense, cats], axis=1)


def embed_all(screener: Screener, data: Any, kind: str = "auto") -> np.ndarray:
    """Embeddings of every usable row of ``data``, (n, dim) float32, rejected rows left out."""
    from winnow.io.readers import open_source

    source = open_source(data)
    screener.check_columns(source.column_names())
    emb = embedder(screener, kind)
    parts = [e for _, _, _, e in emb.batches(source)]
    return np.concatenate(parts) if parts else np.zeros((0, emb.dim), np.float32)
