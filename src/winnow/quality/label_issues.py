"""Training rows whose label is probably wrong: out-of-fold probabilities and confident learning.

1. **Out-of-fold probabilities.** The rows are cut into ``folds`` stratified folds; for each, the
   ``fast`` portfolio's learners (LightGBM, early-stopped on an inner 15% of the other folds, and
   the linear model) are fitted on the other folds and predict the held-out one. Their
   probabilities are averaged. No row is scored by a model that saw its label.
2. **Confident learning** (Northcutt, Jiang & Chuang, 2021). Per class ``j`` the threshold
   ``t_j`` is the mean probability of ``j`` among rows labelled ``j``; a row is *confidently*
   class ``j`` when its probability of ``j`` reaches ``t_j`` (the higher of two when both do).
   The confident joint counts given label against confident class; calibrated to the class
   counts, its off-diagonal cell ``(i, j)`` estimates how many rows labelled ``i`` are really
   ``j``.
3. **Which rows.** ``prune_by_noise_rate`` (the default) flags, in each off-diagonal cell, that
   many rows labelled ``i`` with the largest margin ``p_j - p_i``; ``confident_joint`` flags the
   rows counted in the off-diagonal cells. Either way a row whose more probable class is its
   given label is never flagged. These are the rules of cleanlab's ``find_label_issues``
   (``filter_by="prune_by_noise_rate"`` / ``"confident_learning"``); ``bench/label_issues.py``
   checks them against cleanlab on the same probabilities and measures what dropping the flagged
   rows recovers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from winnow.models.base import FitContext, Inputs

METHODS = ("prune_by_noise_rate", "confident_joint")
DEFAULT_METHOD = "prune_by_noise_rate"


@dataclass
class LabelIssues:
    """The verdict on every row: ``issue`` marks the probably mislabelled ones."""

    issue: np.ndarray
    #: out-of-fold probability of being high-value
    p: np.ndarray
    #: out-of-fold probability of the given label (low = suspicious)
    self_confidence: np.ndarray
    thresholds: tuple[float, float]
    #: calibrated confident joint, rows = given label (0, 1), columns = confident class
    confident_joint: np.ndarray
    method: str

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rows": len(self.issue),
            "flagged": int(self.issue.sum()),
            "flagged_high_value": int((self.issue & (self.p < 0.5)).sum()),
            "thresholds": [round(t, 4) for t in self.thresholds],
            "confident_joint": np.round(self.confident_joint, 1).tolist(),
        }


def out_of_fold(
    x: Inputs,
    y: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    threads: int = 1,
    members: tuple[str, ...] = ("lightgbm", "linear"),
    cat_cardinalities: tuple[int, ...] = (),
) -> np.ndarray:
    """Out-of-fold probability of class 1 for every row of ``x`` (see the module docstring)."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from winnow.models.portfolio import member

    y = np.asarray(y, dtype=np.int64)
    k = max(2, min(folds, int(y.sum()), int(len(y) - y.sum())))
    ctx = FitContext(seed=seed, threads=threads, cat_cardinalities=cat_cardinalities)
    logits = np.zeros((len(members), len(y)))
    xy = Inputs(x.m, x.dense, y)
    for a, b in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        fit_rows, stop_rows = train_test_split(a, test_size=0.15, stratify=y[a], random_state=seed)
        for m, name in enumerate(members):
            learner = member(name).make().fit(xy.take(np.sort(fit_rows)), xy.take(np.sort(stop_rows)), ctx)
            logits[m, b] = learner.predict_logit(xy.take(b))
    return (1 / (1 + np.exp(-logits))).mean(axis=0)


def find_label_issues(y: np.ndarray, p: np.ndarray, method: str = DEFAULT_METHOD) -> LabelIssues:
    """Confident learning on binary labels ``y`` and out-of-fold probabilities ``p`` of class 1."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    y = np.asarray(y, dtype=np.int64)
    probs = np.column_stack([1 - p, p])
    n = len(y)
    thresholds = tuple(float(probs[y == j, j].mean()) if (y == j).any() else 1.0 for j in (0, 1))
    above = probs >= np.asarray(thresholds)
    # the confident class: the one above its threshold (the more probable one when both are)
    confident = np.where(above.any(axis=1), np.where(above[:, 1] & (~above[:, 0] | (p >= 0.5)), 1, 0), -1)
    joint = np.zeros((2, 2))
    for i in (0, 1):
        for j in (0, 1):
            joint[i, j] = ((y == i) & (confident == j)).sum()
    counts = np.bincount(y, minlength=2).astype(float)
    row_sums = joint.sum(axis=1, keepdims=True)
    calibrated = np.where(row_sums > 0, joint / np.maximum(row_sums, 1) * counts[:, None], 0.0)

    pruned = np.zeros(n, dtype=bool)
    for i in (0, 1):
        j = 1 - i
        take = round(float(calibrated[i, j]))
        rows = np.flatnonzero(y == i)
        if take <= 0 or not len(rows):
            continue
        margin = probs[rows, j] - probs[rows, i]
        order = rows[np.argsort(-margin, kind="stable")]
        pruned[order[: min(take, len(rows) - 1)]] = True
    off_diagonal = (confident >= 0) & (confident != y)
    issue = pruned if method == "prune_by_noise_rate" else off_diagonal
    # the model agrees with the given label: not an issue, however the counts came out
    issue &= probs[np.arange(n), y] < probs[np.arange(n), 1 - y]
    return LabelIssues(
        issue=issue,
        p=np.asarray(p, dtype=np.float64),
        self_confidence=probs[np.arange(n), y],
        thresholds=thresholds,  # type: ignore[arg-type]
        confident_joint=calibrated,
        method=method,
    )
