"""The selection policy of every path: budgets into thresholds, rules, and the exact global
top-k over a stream of batches.

Batch screening (local and Ray), the HTTP service and the stream worker all select through
the functions here, so they agree on every record:

* a row at or above the threshold, or in the budget's top k, is selected;
* a rule that **excludes** a row keeps it out, and the row never takes a place in a budget
  (the next row fills it); a rule that **selects** a row puts it in, on top of the budget when
  its score would not have made it; when both fire, exclude wins;
* rejected rows (NaN scores) are never selected;
* selected rows are ranked by score, ties by the earlier row;
* a fired rule is the first reason (``rule:<name>``), then the model's reasons, ``n`` in all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from winnow.config import Budget
from winnow.rules import RuleHits


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
    return valid[_best(valid, scores[valid], k)]


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


# ---------------------------------------------------------------- the policy, batch by batch
def rank_order(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Positions of ``rows`` in rank order: score descending, ties by the earlier row."""
    return np.lexsort((rows, -scores))


def threshold_rows(scores: np.ndarray, ok: np.ndarray, hits: RuleHits | None, threshold: float) -> np.ndarray:
    """Positions selected by a threshold (and the rules) in one batch, in input order."""
    chosen = scores >= threshold
    if hits is not None:
        chosen = (chosen | hits.forced()) & ~hits.excluded()
    return np.flatnonzero(chosen & ok)


def budget_candidates(
    scores: np.ndarray, ok: np.ndarray, hits: RuleHits | None, first_row: int, decided: dict[int, str]
) -> np.ndarray:
    """Pass 1 of a budget for one batch: the scores that compete for the budget (NaN where
    rejected or excluded by a rule); the rule that decided each valid row goes to ``decided``
    (global row -> rule name). Rows a rule selects keep their score: pin them with
    :meth:`TopK.pin` so that :func:`choose_rows` adds those the budget does not reach."""
    scores = np.asarray(scores, dtype=np.float64)
    if hits is None:
        return scores
    excluded, forced = hits.excluded(), hits.forced()
    for i in np.flatnonzero(excluded & ok).tolist():
        decided[first_row + i] = hits.exclude[i]  # type: ignore[assignment]
    for i in np.flatnonzero(forced & ~excluded & ok).tolist():
        decided[first_row + i] = hits.select[i]  # type: ignore[assignment]
    if excluded.any():
        scores = scores.copy()
        scores[excluded] = np.nan
    return scores


def add_batch(
    top: TopK,
    scores: np.ndarray,
    ok: np.ndarray,
    hits: RuleHits | None,
    first_row: int,
    decided: dict[int, str],
) -> None:
    """One batch into a budget's pass 1: its candidates into ``top``, its rule-selected rows
    pinned, the rules that decided rows into ``decided``."""
    mine: dict[int, str] = {}
    cand = budget_candidates(scores, ok, hits, first_row, mine)
    top.add(first_row, cand)
    if mine:
        decided.update(mine)
        pinned = np.fromiter(mine, np.int64)
        top.pin(pinned, cand[pinned - first_row])


@dataclass
class Choice:
    """The rows a selection holds: positions and scores, in rank order."""

    rows: np.ndarray
    scores: np.ndarray
    threshold: float | None
    description: str

    def by_row(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows ascending, their ranks, their scores): what pass 2 looks up batch by batch."""
        ranks = np.arange(1, self.rows.size + 1, dtype=np.int64)
        order = np.argsort(self.rows, kind="stable")
        return self.rows[order], ranks[order], self.scores[order]


def top_capacity(budget: Budget, total_rows: int | None) -> int | None:
    """Candidates a pass-1 :class:`TopK` must keep: the budget of every row the input holds
    (rejects only lower it); None keeps every score when the row count is not known."""
    return None if total_rows is None else budget_count(budget, total_rows)


Pick = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def choose_rows(
    top: TopK,
    decided: dict[int, str],
    budget: Budget,
    rows_scored: int,
    pick: tuple[int, Pick] | None = None,
) -> Choice:
    """The exact global top-k (ties: earlier row first), plus the rows a rule selects on top
    of the budget (their scores pinned in ``top``). ``pick = (n, f)``: ``f(rows, scores, k)``
    gets the ``n`` best candidates in rank order and returns the k (or fewer) to select."""
    k = budget_count(budget, rows_scored) or 0
    if pick is None:
        rows, scores = top.top(k)
    else:
        n, f = pick
        rows, scores = f(*top.top(n if top.capacity is None else min(n, top.capacity)), k)
    threshold = float(scores[-1]) if rows.size else None
    in_budget = set(rows.tolist())
    extra = [r for r in decided if r in top.pinned and r not in in_budget]
    if extra:
        rows = np.concatenate([rows, np.asarray(extra, np.int64)])
        scores = np.concatenate([scores, np.asarray([top.pinned[r] for r in extra])])
        order = rank_order(rows, scores)
        rows, scores = rows[order], scores[order]
    return Choice(rows, scores, threshold, budget.describe() + f" of {rows_scored:,} scored rows")


def select_batch(
    scores: np.ndarray,
    ok: np.ndarray,
    hits: RuleHits | None,
    *,
    budget: Budget | None = None,
    threshold: float,
) -> Choice:
    """The policy on one batch held in memory (a service request, a stream batch): a fraction
    or count ``budget`` over its valid rows, else ``threshold``; positions in rank order."""
    if budget is not None and budget.min_precision is None:
        rows_scored = int(np.count_nonzero(ok))
        top = TopK(budget_count(budget, rows_scored))
        decided: dict[int, str] = {}
        add_batch(top, scores, ok, hits, 0, decided)
        return choose_rows(top, decided, budget, rows_scored)
    local = threshold_rows(scores, ok, hits, threshold)
    order = rank_order(local, scores[local])
    return Choice(local[order], scores[local][order], threshold, f"score >= {threshold:.4f}")


def with_rule(rule: str | None, reasons: list[str], n: int) -> list[str]:
    """A row's reasons: the rule that decided it first (``rule:<name>``), ``n`` in all."""
    return (([f"rule:{rule}"] if rule else []) + reasons)[:n]
