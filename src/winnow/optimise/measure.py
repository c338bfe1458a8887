"""What an optimisation costs in accuracy and gains in speed, measured on the user's sample.

Accuracy: the largest and mean absolute change of the screener's score, how much of the
original's selected set survives at the artifact's budget (share kept and Jaccard), and the
AUC-PR change when the sample carries labels. Speed: batch rows per second of
:meth:`Screener.score` on the sample and the latency of one record through
:meth:`OnlineScorer.score_records` (the service's path; ``reasons=0`` so that scoring, not
explaining, is timed), as medians / percentiles of repeated runs on this machine.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.errors import DataError


@dataclass
class Sample:
    """The rows an optimisation is measured on; ``y`` is None when the sample is unlabelled."""

    table: pa.Table
    y: np.ndarray | None
    known: np.ndarray | None
    records: list[dict[str, Any]]


def _plain(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return v


def load_sample(screener: Any, data: Any, *, max_rows: int, seed: int, latency_records: int) -> Sample:
    """Read ``data`` (path or table), draw at most ``max_rows`` rows (seeded), read the labels if
    the target column is there, and keep a few records for the latency test."""
    from winnow.io.readers import open_source
    from winnow.target import make_labels

    table = open_source(data).read_all()
    if table.num_rows == 0:
        raise DataError("the optimisation sample has no rows", hint="Pass records like those you screen.")
    screener.check_columns(table.column_names)
    if table.num_rows > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, max_rows, replace=False))
        table = table.take(pa.array(rows))
    cfg = screener.config
    y = known = None
    if cfg.target in table.column_names:
        labels = make_labels(
            table,
            cfg.target,
            positive=cfg.positive,
            top_fraction=cfg.top_fraction,
            cutoff=screener.target_["cutoff"],
        )
        y, known = labels.y, labels.known
    fields = [c for c in screener.input_columns if c in table.column_names]
    if screener.id_column and screener.id_column in table.column_names:
        fields.append(screener.id_column)
    head = table.select(fields).slice(0, max(1, latency_records)).to_pylist()
    records = [{k: _plain(v) for k, v in r.items()} for r in head]
    return Sample(table=table, y=y, known=known, records=records)


def selected_mask(screener: Any, scores: np.ndarray) -> np.ndarray:
    """The rows the artifact's budget selects on this sample: the top fraction for a fraction
    budget, otherwise the rows at or above the artifact's threshold (as ``evaluate`` does)."""
    from winnow.select import top_k_rows

    budget = screener.config.budget
    mask = np.zeros(len(scores), bool)
    if budget.fraction is not None:
        n = int(np.sum(~np.isnan(scores)))
        k = max(1, math.ceil(budget.fraction * n)) if n else 0
        mask[top_k_rows(scores, k)] = True
    else:
        mask = np.nan_to_num(scores, nan=-np.inf) >= screener.threshold_.value
    return mask


def auc_pr(sample: Sample, scores: np.ndarray) -> float | None:
    if sample.y is None or sample.known is None:
        return None
    from sklearn.metrics import average_precision_score

    keep = sample.known & ~np.isnan(scores)
    y = sample.y[keep]
    if y.size == 0 or y.min() == y.max():
        return None
    return float(average_precision_score(y, scores[keep]))


def score_change(
    screener: Any, sample: Sample, base: np.ndarray, new: np.ndarray, base_auc: float | None
) -> dict[str, Any]:
    """Cost of ``new`` scores against the original ``base`` scores on the sample."""
    ok = ~np.isnan(base) & ~np.isnan(new)
    diff = np.abs(new[ok] - base[ok])
    s0, s1 = selected_mask(screener, base), selected_mask(screener, new)
    both, either = int(np.sum(s0 & s1)), int(np.sum(s0 | s1))
    out: dict[str, Any] = {
        "max_abs_score_change": float(diff.max()) if diff.size else 0.0,
        "mean_abs_score_change": float(diff.mean()) if diff.size else 0.0,
        "selected_original": int(s0.sum()),
        "selected_kept": float(both / max(int(s0.sum()), 1)),
        "selected_jaccard": float(both / max(either, 1)),
        "rows_compared": int(ok.sum()),
    }
    new_auc = auc_pr(sample, new)
    if base_auc is not None and new_auc is not None:
        out["auc_pr"] = new_auc
        out["auc_pr_change"] = new_auc - base_auc
    return out


def speed(screener: Any, sample: Sample, *, repeats: int) -> dict[str, Any]:
    """Batch rows/s (median of ``repeats`` runs of ``score`` on the sample) and single-record
    latency percentiles over every latency record, after a warm-up."""
    from winnow.online import OnlineScorer

    screener.score(sample.table.slice(0, min(256, sample.table.num_rows)))  # warm-up
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        screener.score(sample.table)
        times.append(time.perf_counter() - t0)
    scorer = OnlineScorer(screener)
    for rec in sample.records[:10]:
        scorer.score_records([rec], reasons=0)
    lat = []
    for _ in range(max(1, repeats // 2)):
        for rec in sample.records:
            t0 = time.perf_counter()
            scorer.score_records([rec], reasons=0)
            lat.append(time.perf_counter() - t0)
    lat_ms = np.asarray(lat) * 1e3
    return {
        "rows_per_s": float(sample.table.num_rows / float(np.median(times))),
        "batch_seconds_median": float(np.median(times)),
        "latency_ms_p50": float(np.percentile(lat_ms, 50)),
        "latency_ms_p99": float(np.percentile(lat_ms, 99)),
        "latency_calls": len(lat),
    }


def member_time(learner: Any, x: Any, *, repeats: int) -> dict[str, float]:
    """Median seconds of one member's ``predict_logit`` on the whole sample and on one row."""
    learner.predict_logit(x)
    one = x.take(np.arange(1))
    batch, single = [], []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        learner.predict_logit(x)
        batch.append(time.perf_counter() - t0)
    for _ in range(50):
        t0 = time.perf_counter()
        learner.predict_logit(one)
        single.append(time.perf_counter() - t0)
    return {"batch_ms": float(np.median(batch) * 1e3), "one_row_ms": float(np.median(single) * 1e3)}


def machine() -> dict[str, Any]:
    """Where the timings were taken; a high load average means noisy timings."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    cpus = os.cpu_count() or 1
    return {
        "cpus": cpus,
        "load_average_1m": round(load[0], 2),
        "busy": bool(load[0] > 0.75 * cpus),
    }
