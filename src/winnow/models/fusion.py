"""Fusing the learners' logits into one calibrated probability.

Weights come from greedy ensemble selection with replacement (Caruana et al., 2004) on
out-of-fold/validation predictions, maximising average precision; so a linear model that beats
the trees on a small table gets the weight it earns. A Platt scaling on the fused logit then
makes the score a probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _ap(y: np.ndarray, z: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, z))


def _standardise(z: np.ndarray) -> tuple[float, float]:
    s = float(z.std())
    return float(z.mean()), s if s > 0 else 1.0


@dataclass
class Fusion:
    """score = sigmoid(a * sum_m w_m (z_m - mu_m) / sd_m + b)."""

    names: list[str]
    weights: list[float]
    centers: list[float]
    scales: list[float]
    a: float = 1.0
    b: float = 0.0

    def fused_logit(self, logits: dict[str, np.ndarray]) -> np.ndarray:
        z = np.zeros_like(next(iter(logits.values())), dtype=np.float64)
        for name, w, c, s in zip(self.names, self.weights, self.centers, self.scales, strict=True):
            if w:
                z += w * (logits[name] - c) / s
        return z

    def probability(self, logits: dict[str, np.ndarray]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * self.fused_logit(logits) + self.b)))

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict) -> Fusion:
        return cls(**d)


def fit_fusion(y: np.ndarray, logits: dict[str, np.ndarray], rounds: int = 30) -> Fusion:
    """Greedy ensemble selection on ``logits`` (out-of-fold), then Platt calibration."""
    from sklearn.linear_model import LogisticRegression

    names = list(logits)
    stats = [_standardise(logits[n]) for n in names]
    zs = [(logits[n] - c) / s for n, (c, s) in zip(names, stats, strict=True)]
    counts = np.zeros(len(names))
    current = np.zeros_like(zs[0])
    for r in range(rounds):
        trial = [_ap(y, (current * r + z) / (r + 1)) for z in zs]
        j = int(np.argmax(trial))
        counts[j] += 1
        current = (current * r + zs[j]) / (r + 1)
    weights = counts / counts.sum()
    fusion = Fusion(names, weights.tolist(), [c for c, _ in stats], [s for _, s in stats])
    z = fusion.fused_logit(logits)
    platt = LogisticRegression(C=1e4, max_iter=1000).fit(z.reshape(-1, 1), y)
    fusion.a, fusion.b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    return fusion
