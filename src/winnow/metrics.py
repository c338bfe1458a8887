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
