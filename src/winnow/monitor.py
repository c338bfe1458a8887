"""Drift monitoring: the live data and scores against a reference profile kept from training.

At fit time :func:`build_reference` records, for every model input (numeric features with
NaN for missing, categorical codes where 0 = missing and 1 = rare or unseen), its distribution
over ten training-quantile bins plus a missing bin (numbers) or per code (categories), and the
1st..99th percentiles; for the score, the held-out rows' distribution and the expected
selection rate. It is stored in the artifact as ``monitor.json``.

A :class:`DriftMonitor` keeps the last ``window`` scored records (a ring buffer of the model
inputs, bounded memory) and compares them with the reference on demand:

* **PSI** (population stability index) per feature and for the score, over the reference bins:
  below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 major shift (the usual reading). A
  small window inflates PSI by sampling noise alone, about (bins - 1) / records (the mean of the
  chi-square statistic it approximates); the status is read on PSI minus that noise, and both
  are reported;
* **Wasserstein-1** per numeric feature, from the percentiles, divided by the reference
  interquartile range so features are comparable;
* the **share of unseen or rare categories** and of **missing values**, live vs reference;
* the **selection rate**, live vs the expected rate of the threshold.

The service (``GET /v1/monitor`` and ``/metrics``), the stream worker (its metrics) and
``winnow monitor DIR DATA`` all report through this class. An optional audit sampler keeps a
seeded random share of the *not selected* records (JSON lines), so recall can be estimated
once their labels come back.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from winnow.prep.preprocessor import Matrices, Preprocessor

N_BINS = 10
MAX_CODES = 50  # categorical codes with their own bin; higher codes share one
PERCENTILES = np.arange(1, 100, dtype=np.float64)
_FLOOR = 1e-4
PSI_MODERATE, PSI_MAJOR = 0.1, 0.25


@dataclass
class FeatureReference:
    """One model input's training distribution."""

    name: str
    source: str
    kind: str  # "num" or "cat"
    edges: list[float] = field(default_factory=list)  # numeric: inner bin edges
    expected: list[float] = field(default_factory=list)  # bin shares (numeric: last bin = missing)
    percentiles: list[float] = field(default_factory=list)  # numeric: 1st..99th
    scale: float = 1.0  # numeric: interquartile range (or std) of the reference
    missing: float = 0.0
    rare: float = 0.0  # categorical: share of rare/unseen codes


@dataclass
class Reference:
    """What the live data is compared with."""

    features: list[FeatureReference]
    score_edges: list[float]
    score_expected: list[float]
    selection_rate: float
    rows: int
    score_rows: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Reference:
        return cls(**{**d, "features": [FeatureReference(**f) for f in d["features"]]})


# ---------------------------------------------------------------------------- binning
def quantile_edges(x: np.ndarray) -> list[float]:
    if x.size == 0:
        return []
    qs = np.quantile(x, np.linspace(0, 1, N_BINS + 1)[1:-1])
    return [float(v) for v in np.unique(qs)]


def num_shares(x: np.ndarray, edges: list[float]) -> np.ndarray:
    """Shares over len(edges)+1 value bins plus a final missing bin."""
    x = np.asarray(x, dtype=np.float64)
    miss = ~np.isfinite(x)
    out = np.zeros(len(edges) + 2)
    if x.size == 0:
        return out
    idx = np.searchsorted(np.asarray(edges), x[~miss], side="right")
    out[: len(edges) + 1] = np.bincount(idx, minlength=len(edges) + 1)
    out[-1] = miss.sum()
    return out / x.size


def _cat_shares(codes: np.ndarray) -> np.ndarray:
    c = np.minimum(np.asarray(codes, dtype=np.int64), MAX_CODES)
    out = np.bincount(c, minlength=MAX_CODES + 1).astype(np.float64)
    return out / max(c.size, 1)


def psi(actual: list[float] | np.ndarray, expected: list[float] | np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    a = np.maximum(np.asarray(actual, dtype=np.float64), _FLOOR)
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def noise(expected: list[float] | np.ndarray, n: int) -> float:
    """PSI expected from sampling alone for ``n`` records drawn from ``expected``: (k - 1) / n."""
    k = int(np.sum(np.asarray(expected) > 0))
    return max(k - 1, 0) / max(n, 1)


def status(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return "major" if value > PSI_MAJOR else "moderate" if value > PSI_MODERATE else "stable"


def build_reference(prep: Preprocessor, m: Matrices, scores: np.ndarray, selection_rate: float) -> Reference:
    """The reference profile: model inputs of the training rows, scores of the held-out rows."""
    feats: list[FeatureReference] = []
    for j, f in enumerate(prep.num_features):
        x = m.num[:, j].astype(np.float64)
        ok = x[np.isfinite(x)]
        edges = quantile_edges(ok)
        pct = np.percentile(ok, PERCENTILES) if ok.size else np.zeros(0)
        iqr = float(np.subtract(*np.percentile(ok, [75, 25]))) if ok.size else 0.0
        scale = iqr if iqr > 0 else float(ok.std()) if ok.size else 0.0
        feats.append(
            FeatureReference(
                name=f.name,
                source=f.source,
                kind="num",
                edges=edges,
                expected=num_shares(x, edges).tolist(),
                percentiles=[float(v) for v in pct],
                scale=scale if scale > 0 else 1.0,
                missing=float(1 - ok.size / max(x.size, 1)),
            )
        )
    for j, f in enumerate(prep.cat_features):
        shares = _cat_shares(m.cat[:, j])
        feats.append(
            FeatureReference(
                name=f.name,
                source=f.source,
                kind="cat",
                expected=shares.tolist(),
                missing=float(shares[0]),
                rare=float(shares[1]),
            )
        )
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    edges = quantile_edges(s)
    return Reference(
        features=feats,
        score_edges=edges,
        score_expected=num_shares(s, edges).tolist(),
        selection_rate=float(selection_rate),
        rows=len(m),
        score_rows=int(s.size),
    )


# ---------------------------------------------------------------------------- live window
class DriftMonitor:
    """The last ``window`` scored records against a :class:`Reference` (thread-safe).

    Parameters
    ----------
    reference : the artifact's reference profile.
    window : how many of the most recent records are compared.
    audit_fraction : share of the not-selected records written to ``audit_path`` (JSON lines).
    audit_path : where audit records go; required when ``audit_fraction > 0``.
    seed : seeds the audit sampling.
    """

    def __init__(
        self,
        reference: Reference,
        *,
        window: int = 10_000,
        audit_fraction: float = 0.0,
        audit_path: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        if not 0.0 <= audit_fraction <= 1.0:
            raise ValueError("audit_fraction must be in [0, 1]")
        if audit_fraction > 0 and audit_path is None:
            raise ValueError("an audit fraction needs an audit path")
        self.reference = reference
        self.window = window
        n_num = sum(f.kind == "num" for f in reference.features)
        n_cat = len(reference.features) - n_num
        self._num = np.full((window, n_num), np.nan, dtype=np.float32)
        self._cat = np.zeros((window, n_cat), dtype=np.int32)
        self._score = np.full(window, np.nan, dtype=np.float32)
        self._selected = np.zeros(window, dtype=bool)
        self._pos = 0
        self._count = 0
        self.total = 0
        self.total_selected = 0
        self._lock = threading.Lock()
        self.audit_fraction = audit_fraction
        self.audit_path = Path(audit_path) if audit_path is not None else None
        self.audited = 0
        self._rng = np.random.default_rng(seed)

    def observe(
        self,
        m: Matrices,
        scores: np.ndarray,
        selected: np.ndarray,
        records: list[dict[str, Any]] | None = None,
        ids: list[Any] | None = None,
    ) -> None:
        """Add scored records (model inputs, scores, selected flags; raw records for the audit)."""
        n = len(m)
        if n == 0:
            return
        with self._lock:
            start = max(0, n - self.window)  # more than a window at once: keep the last ones
            for i in range(start, n, self.window):
                chunk = slice(i, min(i + self.window, n))
                self._append(m.num[chunk], m.cat[chunk], scores[chunk], selected[chunk])
            self.total += n
            self.total_selected += int(np.sum(selected))
            if self.audit_fraction > 0 and records is not None:
                self._audit(records, scores, selected, ids)

    def _append(self, num: np.ndarray, cat: np.ndarray, score: np.ndarray, sel: np.ndarray) -> None:
        k = len(score)
        idx = (self._pos + np.arange(k)) % self.window
        self._num[idx] = num
        self._cat[idx] = cat
        self._score[idx] = score
        self._selected[idx] = sel
        self._pos = (self._pos + k) % self.window
        self._count = min(self._count + k, self.window)

    def _audit(
        self, records: list[dict[str, Any]], scores: np.ndarray, selected: np.ndarray, ids: list[Any] | None
    ) -> None:
        pick = (~np.asarray(selected, dtype=bool)) & (self._rng.random(len(records)) < self.audit_fraction)
        if not pick.any():
            return
        assert self.audit_path is not None
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(self.audit_path, "a", encoding="utf-8") as fh:
            for i in np.flatnonzero(pick):
                row = {
                    "audited_at": now,
                    "id": None if ids is None else ids[i],
                    "score": float(scores[i]),
                    "record": records[i],
                }
                fh.write(json.dumps(row, default=str) + "\n")
        self.audited += int(pick.sum())

    def report(self) -> dict[str, Any]:
        """Drift of the current window; ``features`` sorted by PSI, largest first."""
        with self._lock:
            n = self._count
            num, cat = self._num[:n].copy(), self._cat[:n].copy()
            score, sel = self._score[:n].copy(), self._selected[:n].copy()
        ref = self.reference
        out: dict[str, Any] = {
            "window_records": n,
            "records_seen": self.total,
            "reference_rows": ref.rows,
            "audited": self.audited,
        }
        if n == 0:
            out.update(features=[], score={"psi": None, "status": "n/a"}, selection={})
            return out
        rows: list[dict[str, Any]] = []
        jn = jc = 0
        for f in ref.features:
            if f.kind == "num":
                x = num[:, jn].astype(np.float64)
                jn += 1
                ok = x[np.isfinite(x)]
                value_psi = psi(num_shares(x, f.edges), f.expected)
                floor = noise(f.expected, n)
                w1 = None
                if ok.size and f.percentiles:
                    live = np.percentile(ok, PERCENTILES)
                    w1 = float(np.mean(np.abs(live - np.asarray(f.percentiles))) / f.scale)
                row = {"missing": float(1 - ok.size / n), "missing_reference": f.missing, "wasserstein": w1}
            else:
                shares = _cat_shares(cat[:, jc])
                jc += 1
                value_psi = psi(shares, f.expected)
                floor = noise(f.expected, n)
                row = {
                    "missing": float(shares[0]),
                    "missing_reference": f.missing,
                    "unseen_or_rare": float(shares[1]),
                    "unseen_or_rare_reference": f.rare,
                }
            rows.append(
                {
                    "feature": f.name,
                    "column": f.source,
                    "kind": f.kind,
                    "psi": value_psi,
                    "psi_noise": floor,
                    "status": status(value_psi - floor),
                }
                | row
            )
        rows.sort(key=lambda r: -(r["psi"] - r["psi_noise"]))
        s = score.astype(np.float64)
        score_psi = psi(num_shares(s, ref.score_edges), ref.score_expected)
        rate = float(sel.mean())
        out["features"] = rows
        score_floor = noise(ref.score_expected, n)
        out["score"] = {
            "psi": score_psi,
            "psi_noise": score_floor,
            "status": status(score_psi - score_floor),
            "mean": float(np.nanmean(s)),
        }
        out["selection"] = {
            "rate": rate,
            "expected_rate": ref.selection_rate,
            "ratio": rate / ref.selection_rate if ref.selection_rate > 0 else None,
        }
        worst = rows[0] if rows else None
        out["summary"] = {
            "max_feature_psi": worst["psi"] if worst else None,
            "worst_feature": worst["feature"] if worst else None,
            "features_major": sum(r["status"] == "major" for r in rows),
            "features_moderate": sum(r["status"] == "moderate" for r in rows),
        }
        return out


class DriftGauges:
    """The drift report as Prometheus gauges (shared by the service and the stream worker)::

    winnow_drift_feature_psi{feature,column}     PSI of each model input, window vs training
    winnow_drift_unseen_share{feature,column}    share of rare/unseen categories in the window
    winnow_drift_score_psi                       PSI of the score
    winnow_drift_selection_rate{which}           live / expected selection rate
    winnow_drift_window_records                  records in the live window
    """

    def __init__(self, registry: Any, multiprocess_mode: str = "liveall") -> None:
        from prometheus_client import Gauge

        kw = {"registry": registry, "multiprocess_mode": multiprocess_mode}
        labels = ["feature", "column"]
        self.psi = Gauge(
            "winnow_drift_feature_psi", "PSI of a model input, window vs training.", labels, **kw
        )
        self.unseen = Gauge(
            "winnow_drift_unseen_share", "Share of rare or unseen categories in the window.", labels, **kw
        )
        self.score = Gauge("winnow_drift_score_psi", "PSI of the score, window vs held-out rows.", **kw)
        self.rate = Gauge(
            "winnow_drift_selection_rate", "Selection rate: live window and expected.", ["which"], **kw
        )
        self.window = Gauge("winnow_drift_window_records", "Records in the live drift window.", **kw)

    def set(self, report: dict[str, Any]) -> None:
        """Set every gauge from a :meth:`DriftMonitor.report`."""
        self.window.set(report["window_records"])
        if not report["window_records"]:
            return
        for r in report["features"]:
            self.psi.labels(r["feature"], r["column"]).set(r["psi"])
            if "unseen_or_rare" in r:
                self.unseen.labels(r["feature"], r["column"]).set(r["unseen_or_rare"])
        self.score.set(report["score"]["psi"])
        self.rate.labels("live").set(report["selection"]["rate"])
        self.rate.labels("expected").set(report["selection"]["expected_rate"])
