"""What the fit's stages (:mod:`winnow.fit_stages`) use besides their state: the honest split,
the time limit's clock, a baseline rule's scores, the budget on the test rows, importance."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.config import ScreenConfig
from winnow.errors import DataError
from winnow.expressions import Expression
from winnow.models.base import Learner
from winnow.models.fusion import Fusion
from winnow.prep.preprocessor import Preprocessor


def fit_threads(cfg: ScreenConfig) -> int:
    import os

    return cfg.threads or max(1, min(os.cpu_count() or 1, 8))


def split_rows(
    y: np.ndarray, cfg: ScreenConfig, split_values: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(train, test, valid or None) row positions."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if split_values is not None:
        lowered = np.char.lower(split_values.astype(str))
        test = idx[lowered == "test"]
        valid = idx[np.isin(lowered, ["valid", "validation", "val"])]
        train = idx[~np.isin(lowered, ["test", "valid", "validation", "val"])]
        if not len(test) or not len(train):
            raise DataError(
                "the split column needs rows marked 'test' and rows for training",
                column=cfg.split_column,
                hint="Mark held-out rows 'test', optional validation rows 'valid', others 'train'.",
            )
        return train, test, (valid if len(valid) else None)
    train, test = train_test_split(idx, test_size=cfg.test_fraction, stratify=y, random_state=cfg.seed)
    return np.sort(train), np.sort(test), None


class Clock:
    """Shares the remaining time limit between the fits still to run, by their cost."""

    def __init__(self, limit: float | None, jobs: list[str], cost: Callable[[str], float]) -> None:
        self.end = None if limit is None else time.monotonic() + limit
        self.pending = list(jobs)
        self.cost = cost

    def deadline_for(self, job: str) -> float | None:
        share = self.cost(job) / sum(self.cost(j) for j in self.pending)
        self.pending.remove(job)
        if self.end is None:
            return None
        return time.monotonic() + max(self.end - time.monotonic(), 0.0) * share


def rule_scores(expr: Expression, raw: pa.Table) -> np.ndarray:
    z = np.broadcast_to(np.asarray(expr.evaluate_table(raw), dtype=np.float64), (raw.num_rows,)).copy()
    # a rule cannot rank rows it has no value for: they go last
    finite = np.isfinite(z)
    low = (z[finite].min() - 1.0) if finite.any() else 0.0
    return np.where(finite, z, low)


def jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [jsonable(x) for x in v]
    return v


def budget_rows(cfg: ScreenConfig, n: int, population: int) -> int:
    b = cfg.budget
    if b.fraction is not None:
        return max(1, math.ceil(b.fraction * n))
    if b.count is not None:
        return max(1, math.ceil(n * b.count / max(population, 1)))
    return max(1, math.ceil(0.05 * n))


def importance(prep: Preprocessor, learners: dict[str, Learner], fusion: Fusion) -> dict[str, float]:
    """Share of the model's attention per source column (LightGBM gain, else |linear| weight)."""
    feats = prep.num_features + prep.cat_features
    raw: dict[str, float] = {}
    gbdt = learners.get("lightgbm")
    if gbdt is not None:
        gains = gbdt.feature_importance()  # type: ignore[attr-defined]
        for f, g in zip(feats, gains, strict=True):
            raw[f.source] = raw.get(f.source, 0.0) + float(g)
    elif "linear" in learners:
        lin = learners["linear"]
        for (_, src), w in zip(prep.dense_names(), lin.coef_dense_, strict=True):  # type: ignore[attr-defined]
            raw[src] = raw.get(src, 0.0) + abs(float(w))
        for f, w in zip(prep.cat_features, lin.coef_cat_, strict=True):  # type: ignore[attr-defined]
            raw[f.source] = raw.get(f.source, 0.0) + float(np.std(w))
    total = sum(raw.values()) or 1.0
    return dict(sorted(((k, v / total) for k, v in raw.items()), key=lambda kv: -kv[1]))
