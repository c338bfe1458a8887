"""Closing the loop: fold newly labelled records into training, promote the challenger only if it wins.

:func:`retrain` takes the serving screener (the *champion*), the data it was trained on and a
file of newly labelled records (outcomes of screened records, the audit sample). A stratified
share of the new labels is held out; the *challenger* is fitted with the champion's
configuration on the old data plus the rest of the new labels; both are scored on the same
held-out rows, labelled by the champion's target rule (for a top-fraction target: the champion's
cutoff, so both are judged against the same definition of high-value). The challenger is
promoted only if it is better on the budget metric (precision in the budget; AUC-PR breaks a
tie). Its manifest keeps the lineage: parent version, data added, and the metrics of both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from winnow.artifact import manifest_version
from winnow.errors import DataError
from winnow.io.readers import open_source
from winnow.metrics import screening_report
from winnow.review.store import is_store_url

if TYPE_CHECKING:
    from winnow.screener import Screener


@dataclass
class RetrainResult:
    """What :func:`retrain` decided and why."""

    promoted: bool
    challenger: Screener
    champion_metrics: dict[str, Any]
    challenger_metrics: dict[str, Any]
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        c, n = self.champion_metrics["budget"]["precision"], self.challenger_metrics["budget"]["precision"]
        verdict = "promoted" if self.promoted else "not promoted: the champion stays"
        return f"precision in the budget {n:.1%} (challenger) vs {c:.1%} (champion): {verdict}"


def reviewed_table(store_url: str, like: pa.Table, champion: Screener) -> pa.Table:
    """The records people reviewed (:mod:`winnow.review.store`) as labelled rows with the
    columns and types of ``like`` (the training data): each record's fields, and a target value
    that means its reviewed label (one ``like`` itself labels high-value or not)."""
    from winnow.review.store import ReviewStore

    cfg = champion.config
    assert cfg is not None
    with ReviewStore(store_url) as store:
        rows = store.reviewed()
    if not rows:
        raise DataError(
            f"the review store {store_url!r} holds no verdicts yet", hint="Review some records first."
        )
    lab = champion.labels(like)
    target = like.column(cfg.target)
    values = {}
    for label in (0, 1):
        hits = np.flatnonzero(lab.known & (lab.y == label))
        if hits.size == 0:
            raise DataError("--data has no row of each class to take target values from", column=cfg.target)
        values[label] = target[int(hits[0])].as_py()
    columns: dict[str, pa.Array] = {}
    for f in like.schema:
        if f.name == cfg.target:
            got = [values[int(r["label"])] for r in rows]
        else:
            got = [r["record"].get(f.name) if isinstance(r["record"], dict) else None for r in rows]
        columns[f.name] = _as_column(got, f.type)
    return pa.table(columns)


def _as_column(values: list[Any], like: pa.DataType) -> pa.Array:
    """JSON values as a column of type ``like``: directly, else from their text (dates sent
    as ISO strings), else as text (the fit types it like any text column)."""
    errors = (
        pa.ArrowInvalid,
        pa.ArrowTypeError,
        pa.ArrowNotImplementedError,
        TypeError,
        ValueError,
        OverflowError,
    )
    try:
        return pa.array(values, type=like)
    except errors:
        text = pa.array([None if v is None else str(v) for v in values], pa.string())
    try:
        return text.cast(like)
    except errors:
        return text


def retrain(
    champion: Screener,
    data: Any,
    labels: Any,
    *,
    holdout: float | Any = 0.3,
    seed: int | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RetrainResult:
    """Fit a challenger on ``data`` + ``labels`` and compare it with ``champion`` on held-out rows.

    ``holdout`` is the share of ``labels`` held out for the comparison (stratified), or a
    labelled table/path used as the held-out rows (then all of ``labels`` is trained on).
    """
    from winnow.screener import Screener

    champion._check()
    cfg = champion.config
    assert cfg is not None
    seed = cfg.seed if seed is None else seed
    old = open_source(data).read_all()
    if isinstance(labels, str) and is_store_url(labels):
        new = reviewed_table(labels, old, champion)
    else:
        new = open_source(labels).read_all()
    for name, t in (("--data", old), ("--labels", new)):
        if cfg.target not in t.column_names:
            raise DataError(f"{name} has no target column", column=cfg.target, hint="Give labelled records.")
        champion.check_columns(t.column_names)

    def label(t: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        lab = champion.labels(t)
        return lab.y.astype(np.int64), lab.known

    if isinstance(holdout, float | int) and not isinstance(holdout, bool):
        if not 0 < float(holdout) < 1:
            raise DataError("holdout must be a share in (0, 1) or a labelled table", hint="e.g. 0.3")
        from sklearn.model_selection import train_test_split

        y_new, known = label(new)
        idx = np.flatnonzero(known)
        if min(int(y_new[idx].sum()), int((1 - y_new[idx]).sum())) < 2:
            raise DataError(
                "the new labels need at least 2 high-value and 2 other records to hold some out",
                column=cfg.target,
            )
        fit_idx, hold_idx = train_test_split(
            idx, test_size=float(holdout), stratify=y_new[idx], random_state=seed
        )
        held = new.take(pa.array(np.sort(hold_idx)))
        added = new.take(pa.array(np.sort(np.concatenate([fit_idx, np.flatnonzero(~known)]))))
    else:
        held, added = open_source(holdout).read_all(), new
    stage = on_stage or (lambda _msg: None)
    stage(f"fitting the challenger on {old.num_rows:,} + {added.num_rows:,} rows")
    combined = pa.concat_tables([old, added.select(old.column_names)], promote_options="permissive")
    challenger = Screener(cfg.model_copy(update={"seed": seed})).fit(combined, on_stage=on_stage)

    stage(f"comparing champion and challenger on {held.num_rows:,} held-out rows")
    y, known = label(held)
    p_champ, p_chal = champion.score(held), challenger.score(held)
    ok = known & np.isfinite(p_champ) & np.isfinite(p_chal)
    y, p_champ, p_chal = y[ok], p_champ[ok], p_chal[ok]
    if cfg.budget.fraction is not None:
        k = max(1, math.ceil(cfg.budget.fraction * len(y)))
    elif cfg.budget.count is not None:
        k = max(1, math.ceil(len(y) * cfg.budget.count / max(champion.summary_.get("rows_used", len(y)), 1)))
    else:
        k = max(1, int(np.sum(p_champ >= champion.threshold_.value)))
    champ_m = screening_report(y, p_champ, budget_k=k)
    chal_m = screening_report(y, p_chal, budget_k=k)
    key = ("budget", "precision")
    better = (chal_m[key[0]][key[1]], chal_m["auc_pr"]) > (champ_m[key[0]][key[1]], champ_m["auc_pr"])
    lineage = {
        "parent": {"version": manifest_version(champion.manifest()), "created": champion.created_},
        "parent_lineage": getattr(champion, "lineage_", None),
        "data_added": {
            "rows": added.num_rows,
            "positives": int(label(added)[0].sum()),
            "source": str(labels) if isinstance(labels, str | Path) else type(labels).__name__,
        },
        "held_out": {"rows": len(y), "positives": int(y.sum()), "budget_k": k},
        "metric": "precision in the budget (AUC-PR breaks ties)",
        "champion": {"auc_pr": champ_m["auc_pr"], "budget": champ_m["budget"]},
        "challenger": {"auc_pr": chal_m["auc_pr"], "budget": chal_m["budget"]},
        "promoted": bool(better),
    }
    challenger.lineage_ = lineage
    return RetrainResult(bool(better), challenger, champ_m, chal_m, lineage)
