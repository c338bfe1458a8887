"""The numbers behind the report's charts, computed from the held-out test rows of an artifact.

Every curve ranks rows the way :func:`winnow.metrics.top_k_mask` does (higher score first, ties
by position), so a point read off a chart agrees with the metrics stored in the manifest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from winnow.metrics import at_budget

#: most points drawn per curve: enough to look smooth, few enough to keep the file small
MAX_POINTS = 240


@dataclass
class Ranking:
    """Cumulative hits down a ranking: ``hits[k-1]`` positives among the top ``k`` rows."""

    scores: np.ndarray  # sorted, highest first
    hits: np.ndarray
    positives: int

    @classmethod
    def of(cls, y: np.ndarray, scores: np.ndarray) -> Ranking:
        y = np.asarray(y, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        order = np.lexsort((np.arange(len(scores)), -scores))
        return cls(scores=scores[order], hits=np.cumsum(y[order]), positives=int(y.sum()))

    @property
    def n(self) -> int:
        return len(self.scores)

    def cut_points(self) -> np.ndarray:
        """Values of k (1-based) where a threshold can fall: the last row of each run of ties."""
        if self.n == 0:
            return np.zeros(0, np.int64)
        change = np.flatnonzero(self.scores[1:] != self.scores[:-1]) + 1
        return np.append(change, self.n).astype(np.int64)


def _thin(ks: np.ndarray, keep: tuple[int, ...] = ()) -> np.ndarray:
    """At most about MAX_POINTS of the cut points ``ks``, evenly spread, always keeping the ends."""
    if len(ks) > MAX_POINTS:
        idx = np.unique(np.linspace(0, len(ks) - 1, MAX_POINTS).round().astype(np.int64))
        ks = ks[idx]
    extra = np.asarray([k for k in keep if k > 0], np.int64)
    return np.unique(np.concatenate([ks, extra]))


def pr_curve(r: Ranking) -> tuple[list[float], list[float]]:
    """(recall, precision) at every threshold, thinned; starts at the first cut."""
    ks = _thin(r.cut_points())
    hits = r.hits[ks - 1]
    return (hits / max(r.positives, 1)).tolist(), (hits / ks).tolist()


def gain_curve(r: Ranking) -> tuple[list[float], list[float]]:
    """(share of rows screened, share of all positives found), from (0, 0)."""
    ks = _thin(r.cut_points())
    x = [0.0, *(ks / r.n).tolist()]
    y = [0.0, *(r.hits[ks - 1] / max(r.positives, 1)).tolist()]
    return x, y


def lift_curve(r: Ranking, start: float = 0.01) -> tuple[list[float], list[float]]:
    """(share screened, precision in that share / base rate) from ``start`` of the rows on.

    Lift over the first handful of rows swings wildly, so the curve starts at 1% (or 10 rows).
    """
    base = r.positives / r.n if r.n else 0.0
    k_min = min(r.n, max(10, math.ceil(start * r.n)))
    ks = r.cut_points()
    ks = _thin(ks[ks >= k_min], keep=(k_min,))
    lift = (r.hits[ks - 1] / ks) / base if base else np.zeros(len(ks))
    return (ks / r.n).tolist(), np.asarray(lift).tolist()


@dataclass
class Bin:
    """One bin of a reliability diagram."""

    rows: int
    mean_predicted: float
    observed: float


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[Bin]:
    """Equal-count bins of predicted probability: mean prediction vs observed positive rate.

    Equal-count bins (not equal-width) because screening scores are skewed: most rows sit
    near zero and equal-width bins would leave the top bins nearly empty.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    out = []
    for part in np.array_split(order, min(bins, len(order))):
        if len(part):
            out.append(Bin(len(part), float(p[part].mean()), float(y[part].mean())))
    return out


def class_histograms(
    y: np.ndarray, p: np.ndarray, bins: int = 25, hi: float = 1.0
) -> tuple[list[float], list[float], list[float]]:
    """(bin edges, share of negatives per bin, share of positives per bin) over [0, ``hi``].

    Shares within each class, so a rare class is as visible as a common one.
    """
    edges = np.linspace(0.0, hi, bins + 1)
    y = np.asarray(y).astype(bool)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, hi)
    neg, _ = np.histogram(p[~y], edges)
    pos, _ = np.histogram(p[y], edges)
    return edges.tolist(), (neg / max(neg.sum(), 1)).tolist(), (pos / max(pos.sum(), 1)).tolist()


def step_xy(edges: list[float], heights: list[float]) -> tuple[list[float], list[float]]:
    """A histogram's outline as a polyline."""
    x, y = [edges[0]], [0.0]
    for i, h in enumerate(heights):
        x += [edges[i], edges[i + 1]]
        y += [h, h]
    x.append(edges[-1])
    y.append(0.0)
    return x, y


@dataclass
class BudgetRow:
    """What selecting the top ``fraction`` of the held-out rows gives."""

    fraction: float
    k: int
    threshold: float
    precision: float
    recall: float
    lift: float
    configured: bool = False


def budget_row(y: np.ndarray, scores: np.ndarray, fraction: float, k: int | None = None) -> BudgetRow:
    """Top-k metrics as in :func:`winnow.metrics.screening_report` (k = round(fraction * n))."""
    n = len(scores)
    k = k if k is not None else max(1, round(fraction * n))
    m = at_budget(y, scores, k)
    r = Ranking.of(y, scores)
    return BudgetRow(
        fraction=fraction,
        k=k,
        threshold=float(r.scores[k - 1]),
        precision=m["precision"],
        recall=m["recall"],
        lift=m["lift"],
    )
