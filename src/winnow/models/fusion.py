"""Fusing the learners' logits into one calibrated probability.

Weights come from greedy ensemble selection with replacement (Caruana et al., 2004) on
out-of-fold/validation predictions, maximising average precision; so a linear model that beats
the trees on a small table gets the weight it earns. A calibration on the fused logit then makes
the score a probability: Platt scaling, or isotonic regression when there is enough data
(at least ``ISOTONIC_MIN_POSITIVES`` high-value rows) and it has the lower cross-validated
log-loss on the out-of-fold predictions. The isotonic map is mixed with a millionth of the Platt
probability so that the score stays strictly increasing in the fused logit: calibration does not
create ties, and the ranking (what screening acts on) is the fused logit's.
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


ISOTONIC_MIN_POSITIVES = 200
_TIE_BREAK = 1e-6


@dataclass
class Fusion:
    """z = sum_m w_m (z_m - mu_m) / sd_m; score = sigmoid(a z + b), or isotonic(z) when chosen."""

    names: list[str]
    weights: list[float]
    centers: list[float]
    scales: list[float]
    a: float = 1.0
    b: float = 0.0
    #: "platt" or "isotonic"
    calibration: str = "platt"
    #: isotonic map: fused-logit breakpoints and their probabilities (interpolated linearly)
    iso_x: list[float] | None = None
    iso_y: list[float] | None = None
    #: cross-validated log-loss of each calibration on the out-of-fold predictions
    calibration_log_loss: dict[str, float] | None = None
    #: fitted on a class-stratified sample: log(rate+ / rate-) is taken off the calibrated
    #: log-odds, so probabilities refer to the data, not the sample (the order is unchanged)
    log_odds_shift: float = 0.0

    def fused_logit(self, logits: dict[str, np.ndarray]) -> np.ndarray:
        z = np.zeros_like(next(iter(logits.values())), dtype=np.float64)
        for name, w, c, s in zip(self.names, self.weights, self.centers, self.scales, strict=True):
            if w:
                z += w * (logits[name] - c) / s
        return z

    def probability(self, logits: dict[str, np.ndarray]) -> np.ndarray:
        return self.calibrate(self.fused_logit(logits))

    def calibrate(self, z: np.ndarray) -> np.ndarray:
        platt = 1.0 / (1.0 + np.exp(-(self.a * z + self.b)))
        if self.calibration != "isotonic" or not self.iso_x:
            p = platt
        else:
            iso = np.interp(z, self.iso_x, self.iso_y)  # type: ignore[arg-type]
            p = (1.0 - _TIE_BREAK) * iso + _TIE_BREAK * platt
        if self.log_odds_shift:
            odds = p / np.maximum(1.0 - p, 1e-300) * np.exp(-self.log_odds_shift)
            p = odds / (1.0 + odds)
        return p

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict) -> Fusion:
        return cls(**d)


def fit_fusion(
    y: np.ndarray,
    logits: dict[str, np.ndarray],
    rounds: int = 30,
    allowed: list[str] | None = None,
) -> Fusion:
    """Greedy ensemble selection on ``logits`` (out-of-fold), then Platt calibration.

    ``allowed`` restricts the members selection may pick; the others keep weight 0.
    """
    from sklearn.linear_model import LogisticRegression

    names = list(logits)
    stats = [_standardise(logits[n]) for n in names]
    zs = [(logits[n] - c) / s for n, (c, s) in zip(names, stats, strict=True)]
    pool = [j for j, n in enumerate(names) if allowed is None or n in allowed]
    counts = np.zeros(len(names))
    current = np.zeros_like(zs[0])
    for r in range(rounds):
        trial = {j: _ap(y, (current * r + zs[j]) / (r + 1)) for j in pool}
        j = max(pool, key=lambda i: trial[i])
        counts[j] += 1
        current = (current * r + zs[j]) / (r + 1)
    weights = counts / counts.sum()
    fusion = Fusion(names, weights.tolist(), [c for c, _ in stats], [s for _, s in stats])
    z = fusion.fused_logit(logits)
    platt = LogisticRegression(C=1e4, max_iter=1000).fit(z.reshape(-1, 1), y)
    fusion.a, fusion.b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    if int(y.sum()) >= ISOTONIC_MIN_POSITIVES and int(len(y) - y.sum()) >= ISOTONIC_MIN_POSITIVES:
        losses = _calibration_losses(z, y)
        fusion.calibration_log_loss = {k: round(v, 6) for k, v in losses.items()}
        if losses["isotonic"] < losses["platt"]:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y)
            fusion.calibration = "isotonic"
            fusion.iso_x = [float(v) for v in iso.X_thresholds_]
            fusion.iso_y = [float(v) for v in iso.y_thresholds_]
    return fusion


#: the AUC-PR (out of fold) the fast live model may give up: this share of the full
#: ensemble's, at most ``MAX_LOSS`` absolute, spent in proportion to the inference cost saved
MAX_RELATIVE_LOSS = 0.03
MAX_LOSS = 0.005


@dataclass
class Pruning:
    """What :func:`prune_for_cost` decided, for the fit's report."""

    dropped: list[str]
    cost_full: float
    cost_kept: float
    auc_pr_full: float
    auc_pr_kept: float

    def to_json(self) -> dict:
        return {
            "dropped": self.dropped,
            "cost_us_per_row_full": round(self.cost_full, 3),
            "cost_us_per_row": round(self.cost_kept, 3),
            "oof_auc_pr_full": round(self.auc_pr_full, 6),
            "oof_auc_pr": round(self.auc_pr_kept, 6),
        }


def prune_for_cost(
    y: np.ndarray,
    logits: dict[str, np.ndarray],
    full: Fusion,
    costs: dict[str, float],
    rounds: int = 30,
) -> tuple[Fusion, Pruning]:
    """Greedy ensemble selection that charges each member for its inference cost.

    Starting from the full selection ``full``, the most expensive weighted member is dropped
    (and the weights re-selected without it) while the out-of-fold AUC-PR lost against the full
    ensemble stays within the budget earned by the cost saved: ``min(MAX_LOSS,
    MAX_RELATIVE_LOSS * AUC-PR) * saved cost / full cost``. A member whose removal costs too
    much accuracy stays; cheaper members are tried next. So a 3%-weight network that costs
    two thirds of the scoring time goes, and a member that carries the ranking stays.
    """
    ap_full = _ap(y, full.fused_logit(logits))
    budget = min(MAX_LOSS, MAX_RELATIVE_LOSS * ap_full)
    active = [n for n, w in zip(full.names, full.weights, strict=True) if w]
    cost_full = sum(costs[n] for n in active)
    best, ap_best, dropped = full, ap_full, []
    tried: set[str] = set()
    while len(active) > 1:
        candidates = sorted((n for n in active if n not in tried), key=lambda n: (-costs[n], n))
        if not candidates:
            break
        m = candidates[0]
        tried.add(m)
        rest = [n for n in active if n != m]
        trial = fit_fusion(y, logits, rounds, allowed=rest)
        ap_trial = _ap(y, trial.fused_logit(logits))
        kept = [n for n, w in zip(trial.names, trial.weights, strict=True) if w]
        saved = cost_full - sum(costs[n] for n in kept)
        if ap_full - ap_trial <= budget * saved / max(cost_full, 1e-12):
            dropped += [n for n in active if n not in kept]
            best, ap_best, active = trial, ap_trial, kept
    report = Pruning(dropped, cost_full, sum(costs[n] for n in active), ap_full, ap_best)
    return best, report


def _calibration_losses(z: np.ndarray, y: np.ndarray, folds: int = 5) -> dict[str, float]:
    """5-fold cross-validated log-loss of Platt and isotonic calibration of ``z``."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    p = {"platt": np.zeros(len(z)), "isotonic": np.zeros(len(z))}
    for a, b in StratifiedKFold(folds, shuffle=True, random_state=0).split(z, y):
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(z[a].reshape(-1, 1), y[a])
        p["platt"][b] = lr.predict_proba(z[b].reshape(-1, 1))[:, 1]
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z[a], y[a])
        p["isotonic"][b] = iso.predict(z[b])
    return {k: float(log_loss(y, np.clip(v, 1e-4, 1 - 1e-4))) for k, v in p.items()}
