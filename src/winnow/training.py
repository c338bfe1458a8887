"""Fitting a screener: split honestly, fit preprocessing and learners, fuse, pick a threshold.

On small data (fewer than ``config.small_data_rows`` training rows) the learners are
cross-fitted over k stratified folds: every training row gets an out-of-fold prediction, and
those drive early stopping, fusion weights and the threshold; each learner is then refitted on
all training rows with the rounds the folds chose. On larger data one stratified validation
part does the same job. A stratified test part is held out from everything and only used to
report metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from winnow.config import ScreenConfig
from winnow.fit_helpers import importance
from winnow.fit_stages import (
    FitState,
    check_leakage,
    clean,
    evaluate,
    fit_members,
    fuse,
    plan_folds,
    prepare_features,
    read_and_label,
    refit_full,
    search,
    type_rows,
)
from winnow.fitted import Fitted
from winnow.io.readers import TableSource
from winnow.monitor import build_reference

log = logging.getLogger("winnow")

#: the fit's stages in order (:mod:`winnow.fit_stages`); each reads and fills the FitState
STAGES = (
    type_rows,
    clean,
    prepare_features,
    plan_folds,
    search,
    fit_members,
    fuse,
    check_leakage,
    evaluate,
    refit_full,
)


def fit_pipeline(
    source: TableSource,
    cfg: ScreenConfig,
    on_stage: Callable[[str], None] | None = None,
) -> Fitted:
    """Read, prepare, fit, fuse and evaluate. See the module docstring for the protocol."""
    s = FitState(cfg, on_stage or (lambda msg: log.info(msg)), time.monotonic())
    read_and_label(s, source)
    for stage in STAGES:
        stage(s)
    summary = {
        "rows_read": int(s.n_read),
        "rows_rejected": len(s.rejects),
        "rows_missing_target": s.n_missing_target,
        "duplicates_dropped": s.n_dup,
        "rows_used": len(s.keep),
        "positives": s.pos,
        "fit_seconds": round(time.monotonic() - s.t_start, 2),
        "threads": s.threads,
        "reject_examples": [r.describe() for r in s.rejects[:10]],
    }
    return Fitted(
        config=cfg,
        specs=s.specs,
        prep=s.prep,
        learners=s.learners,
        fusion=s.fusion,
        threshold=s.threshold,
        target={"description": s.labels.description, "cutoff": s.labels.cutoff},
        metrics=s.metrics,
        importance=importance(s.prep, s.learners, s.fusion),
        summary=summary,
        warnings=s.warnings,
        evaluation={k: np.ascontiguousarray(v) for k, v in s.evaluation.items()},
        reference=build_reference(s.prep, s.x_all.m, s.p_test, s.threshold.fraction),
    )
