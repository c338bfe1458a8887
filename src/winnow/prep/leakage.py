"""Leakage check: a single column that alone separates the classes almost perfectly."""

from __future__ import annotations

import numpy as np

from winnow.models.base import Inputs
from winnow.prep.preprocessor import Preprocessor

LEAK_AUC = 0.98


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        return 0.5
    a = float(roc_auc_score(y, s))
    return max(a, 1 - a)


def leakage_suspects(prep: Preprocessor, train: Inputs, valid: Inputs) -> dict[str, float]:
    """Source columns whose single-column validation ROC-AUC is at least ``LEAK_AUC``."""
    return {k: v for k, v in single_column_auc(prep, train, valid).items() if v >= LEAK_AUC}


def single_column_auc(prep: Preprocessor, train: Inputs, valid: Inputs) -> dict[str, float]:
    """Each source column's best single-feature validation ROC-AUC (folded to >= 0.5), highest first.

    Numeric features rank by value (missing as its own lowest value); categorical features by
    the positive rate of their category on the training rows.
    """
    assert train.y is not None and valid.y is not None
    best: dict[str, float] = {}
    for j, f in enumerate(prep.num_features):
        if f.source in prep.images_:
            # an image embedding is learned from the label itself: separating is its purpose
            continue
        v = valid.m.num[:, j].astype(np.float64)
        v = np.where(np.isnan(v), np.nanmin(v) - 1 if np.isfinite(v).any() else 0.0, v)
        best[f.source] = max(best.get(f.source, 0.0), _auc(valid.y, v))
    for j, f in enumerate(prep.cat_features):
        card = len(f.vocab or []) + 2
        counts = np.bincount(train.m.cat[:, j], minlength=card)
        hits = np.bincount(train.m.cat[:, j], weights=train.y, minlength=card)
        rate = (hits + train.y.mean()) / (counts + 1)
        best[f.source] = max(best.get(f.source, 0.0), _auc(valid.y, rate[valid.m.cat[:, j]]))
    return dict(sorted(best.items(), key=lambda kv: -kv[1]))
