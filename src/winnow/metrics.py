"""Metrics that matter when only the top of a ranking is acted on."""

from __future__ import annotations

from typing import Any

import numpy as np

BUDGET_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """The k highest scores; ties broken by position (earlier first), deterministic."""
    k = int(min(max(k, 0), len(scores)))
    order = np.lexsort((np.arange(len(scores)), -scores))
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:k]] = True
    return mask


def at_budget(y: np.ndarray, scores: np.ndarray, k: int) -> dict[str, float]:
    """Precision, recall and lift when the top ``k`` records are selected."""
    y = np.asarray(y, dtype=np.int64)
    sel = top_k_mask(scores, k)
    hits = int(y[sel].sum())
    pos = int(y.sum())
    base = pos / len(y) if len(y) else 0.0
    precision = hits / k if k else 0.0
    return {
        "k": int(k),
        "precision": precision,
        "recall": hits / pos if pos else 0.0,
        "lift": precision / base if base else 0.0,
    }


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean predicted| over equal-width probability bins, weighted by size."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(float(y[m].mean()) - float(p[m].mean()))
    return float(err)


def screening_report(
    y: np.ndarray,
    scores: np.ndarray,
    *,
    budget_k: int | None = None,
    probabilities: bool = True,
) -> dict[str, Any]:
    """Every screening metric for one scorer on labelled rows.

    ``scores`` only need to rank; log-loss and calibration are reported when they are
    probabilities.
    """
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n, pos = len(y), int(y.sum())
    out: dict[str, Any] = {"rows": n, "positives": pos, "positive_rate": pos / n if n else 0.0}
    if n == 0 or pos == 0 or pos == n:
        out["note"] = "metrics need both classes"
        return out
    out["auc_pr"] = float(average_precision_score(y, scores))
    out["roc_auc"] = float(roc_auc_score(y, scores))
    out["precision_at_k"] = at_budget(y, scores, pos)["precision"]
    if probabilities:
        p = np.clip(scores, 1e-7, 1 - 1e-7)
        out["log_loss"] = float(log_loss(y, p, labels=[0, 1]))
        out["ece"] = expected_calibration_error(y, p)
    out["lift_curve"] = {f"{f:g}": at_budget(y, scores, max(1, round(f * n))) for f in BUDGET_FRACTIONS}
    if budget_k is not None:
        out["budget"] = at_budget(y, scores, budget_k)
    return out


#: resamples of the held-out rows behind an expectation's interval, and its level
EXPECT_RESAMPLES, EXPECT_LEVEL = 400, 0.9


def _top_precision(y_sorted: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """Precision of the top ``k`` of each resample (rows of ``counts``: how often each row,
    in ranked order, was drawn)."""
    before = np.cumsum(counts, axis=1) - counts
    taken = np.minimum(counts, np.clip(k - before, 0, None))
    return (taken * y_sorted).sum(axis=1) / k


def expected_at_fraction(
    y: np.ndarray,
    scores: np.ndarray,
    fraction: float,
    *,
    rule: np.ndarray | None = None,
    seed: int = 0,
    resamples: int = EXPECT_RESAMPLES,
    level: float = EXPECT_LEVEL,
) -> dict[str, Any]:
    """What selecting the top ``fraction`` should deliver, from labelled held-out rows: the
    precision, the lift over a random pick of the same size and, given the user's ``rule``
    scores, over the rule's own top ``fraction``; each as ``{value, low, high}`` with a
    ``level`` bootstrap interval (``resamples`` draws of the rows, seeded). Ties in a ranking
    are broken at random (seeded), so a coarse rule gets its average precision among ties."""
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    k = min(n, max(1, round(fraction * n)))
    rng = np.random.default_rng(seed)
    tie = rng.permutation(n)
    rankings = {"model": np.lexsort((tie, -np.asarray(scores, dtype=np.float64)))}
    if rule is not None:
        rankings["rule"] = np.lexsort((tie, -np.asarray(rule, dtype=np.float64)))
    draws: dict[str, list[np.ndarray]] = {name: [] for name in (*rankings, "base")}
    full = np.ones((1, n), dtype=np.int64)
    point = {name: float(_top_precision(y[o][None, :], full, k)[0]) for name, o in rankings.items()}
    point["base"] = float(y.mean())
    for start in range(0, resamples, 50):
        b = min(50, resamples - start)
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(b)])
        for name, order in rankings.items():
            draws[name].append(_top_precision(y[order][None, :], counts[:, order], k))
        draws["base"].append((counts * y).sum(axis=1) / n)
    arr = {name: np.concatenate(v) for name, v in draws.items()}
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100

    def stat(value: float, samples: np.ndarray) -> dict[str, float]:
        samples = samples[np.isfinite(samples)]
        low, high = np.percentile(samples, [lo, hi]) if samples.size else (np.nan, np.nan)
        return {"value": round(value, 4), "low": round(float(low), 4), "high": round(float(high), 4)}

    with np.errstate(divide="ignore", invalid="ignore"):
        out: dict[str, Any] = {
            "fraction": round(k / n, 6),
            "rows": n,
            "level": level,
            "precision": stat(point["model"], arr["model"]),
            "lift_over_random": stat(point["model"] / point["base"], arr["model"] / arr["base"]),
        }
        if rule is not None:
            out["rule_precision"] = stat(point["rule"], arr["rule"])
            out["lift_over_rule"] = stat(point["model"] / point["rule"], arr["model"] / arr["rule"])
    return out
