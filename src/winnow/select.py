"""Budgets into thresholds, and exact global top-k selection over a stream of batches."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from winnow.config import Budget


@dataclass
class Threshold:
    """A score cut-off and what it is expected to give, measured on validation rows."""

    value: float
    fraction: float
    expected_precision: float
    expected_recall: float
    note: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


def budget_count(budget: Budget, n_rows: int) -> int | None:
    """How many of ``n_rows`` a fraction or count budget selects (None for min-precision)."""
    if budget.fraction is not None:
        return max(1, math.ceil(budget.fraction * n_rows)) if n_rows else 0
    if budget.count is not None:
        return min(budget.count, n_rows)
    return None


def threshold_for(
    budget: Budget,
    scores: np.ndarray,
    y: np.ndarray,
    population: int,
    weights: np.ndarray | None = None,
) -> Threshold:
    """Turn a budget into a score threshold on validation ``scores``/``y``.

    A count budget is read against ``population`` (the rows the screener was fitted on): a
    budget of 1,000 out of 20,000 customers is the top 5%. ``weights`` (rows a sample stands
    for) make shares and precision those of the data the sample was drawn from.
    """
    order = np.lexsort((np.arange(len(scores)), -scores))
    s, t = scores[order], y[order].astype(np.int64)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, np.float64)[order]
    hits = np.cumsum(t * w)
    k_all = np.cumsum(w)
    precision = hits / k_all
    pos = max(float(hits[-1]), 1.0)
    note = ""
    if budget.min_precision is None:
        frac = budget.fraction if budget.fraction is not None else budget.count / max(population, 1)  # type: ignore[operator]
        frac = min(frac, 1.0)
        if weights is None:
            k = max(1, math.ceil(frac * len(s)))
        else:
            k = min(len(s), int(np.searchsorted(k_all, frac * k_all[-1] * (1 - 1e-12))) + 1)
    else:
        min_k = min(len(s), max(10, math.ceil(0.005 * len(s))))
        ranks = np.arange(1, len(s) + 1)
        ok = np.flatnonzero((precision >= budget.min_precision) & (ranks >= min_k))
        if ok.size:
            k = int(ok[-1]) + 1
        else:
            k = int(np.argmax(precision[min_k - 1 :])) + min_k
            note = (
                f"no threshold reaches precision {budget.min_precision:.0%} on validation; "
                f"using the most precise one ({precision[k - 1]:.1%})"
            )
    # ties: every row scoring like the k-th is selected too, so the threshold is exact
    value = float(s[k - 1])
    k_eff = int(np.sum(s >= value))
    return Threshold(
        value=value,
        fraction=float(k_all[k_eff - 1] / k_all[-1]),
        expected_precision=float(hits[k_eff - 1] / k_all[k_eff - 1]),
        expected_recall=float(hits[k_eff - 1] / pos),
        note=note,
    )


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Row positions of the k best scores in rank order (ties: earlier row first).

    NaN scores (rejected rows) are never selected.
    """
    valid = np.flatnonzero(~np.isnan(scores))
    k = min(k, valid.size)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    v = scores[valid]
    if k < valid.size:
        # partition first: O(n), then sort only the candidates
        cut = np.partition(-v, k - 1)[k - 1]
        cand = np.flatnonzero(-v <= cut)
    else:
        cand = np.arange(valid.size)
    order = np.lexsort((valid[cand], -v[cand]))[:k]
    return valid[cand][order]


def _best(rows: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best (score desc, row asc) among candidates without NaN."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.int64)
    if k < len(scores):
        cut = np.partition(-scores, k - 1)[k - 1]
        cand = np.flatnonzero(-scores <= cut)
    else:
        cand = np.arange(len(scores))
    return cand[np.lexsort((rows[cand], -scores[cand]))[:k]]


class TopK:
    """The best ``capacity`` (score, row) pairs of a stream (ties: the earlier row), so an exact
    global top-k for any k <= capacity in O(capacity) memory, however long the stream.

    ``capacity`` None keeps every scored row (when the number of rows is not known up front).
    NaN scores (rejected, or excluded by a rule) are never candidates. ``pin`` remembers the
    score of a row outside the candidates (a row a rule forces in).
    """

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._rows: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._held = 0
        self._cut: float | None = None
        self.pinned: dict[int, float] = {}

    def add(self, first_row: int, scores: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        keep = ~np.isnan(scores)
        if self._cut is not None:
            # full: a later row needs a strictly better score than the last candidate
            keep &= scores > self._cut
        idx = np.flatnonzero(keep)
        if not idx.size or self.capacity == 0:
            return
        self._rows.append(first_row + idx.astype(np.int64))
        self._scores.append(scores[idx])
        self._held += idx.size
        if self.capacity is not None and self._held >= 2 * max(self.capacity, 32_768):
            self._prune()

    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self._rows) != 1:
            self._rows = [np.concatenate(self._rows) if self._rows else np.zeros(0, np.int64)]
            self._scores = [np.concatenate(self._scores) if self._scores else np.zeros(0)]
        return self._rows[0], self._scores[0]

    def _prune(self) -> None:
        assert self.capacity is not None
        rows, scores = self._merged()
        best = _best(rows, scores, self.capacity)
        self._rows, self._scores = [rows[best]], [scores[best]]
        self._held = best.size
        if best.size == self.capacity:
            self._cut = float(scores[best[-1]])

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best rows in rank order, and their scores."""
        if self.capacity is not None and k > self.capacity:
            raise ValueError(f"top({k}) of a TopK that keeps {self.capacity}")
        rows, scores = self._merged()
        best = _best(rows, scores, k)
        return rows[best], scores[best]

    def pin(self, rows: np.ndarray, scores: np.ndarray) -> None:
        for r, v in zip(rows.tolist(), scores.tolist(), strict=True):
            if not np.isnan(v):
                self.pinned[int(r)] = float(v)


class ScoreLog:
    """Scores of every row of a stream, 8 bytes a row, for an exact global top-k."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self.n = 0

    def add(self, scores: np.ndarray) -> None:
        self._parts.append(np.asarray(scores, dtype=np.float64))
        self.n += len(scores)

    def pad_to(self, n: int) -> None:
        """Positions rejected while parsing get NaN scores, so positions stay aligned."""
        if n > self.n:
            self.add(np.full(n - self.n, np.nan))

    def all(self) -> np.ndarray:
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]
        return self._parts[0] if self._parts else np.zeros(0, np.float64)
