"""``winnow value``: one explained score per training record: keep the rare, hard, clean cases.

For users who screen data to train their own models: every labelled record gets

* **uncertainty** (0..1): how unsure a cross-validated model is about the record,
  ``exp(-|logit p - logit prior|)`` with ``p`` its out-of-fold probability
  (:func:`winnow.quality.label_issues.out_of_fold`) and ``prior`` the high-value rate: 1 where
  the model learns nothing beyond the base rate, near 0 for the easy cases;
* **rarity** (0..1): how far the record lies from its neighbours: the mean distance to its 10
  nearest neighbours in the standardised model inputs, as a percentile of the same distance for
  a seeded reference sample of ``REFERENCE_ROWS`` records (exact search against the sample);
* **label_noise** (0 or 1): confident learning flags its label as probably wrong
  (:func:`winnow.quality.label_issues.find_label_issues`);
* **redundancy** (0 or 1): the record repeats an earlier near-duplicate
  (:mod:`winnow.quality.neardup`), so it adds nothing the first copy does not.

``value = w_u * uncertainty + w_r * rarity - w_n * label_noise - w_d * redundancy`` (weights
1, 0.5, 1, 1 by default), and ``why`` names the parts that made it. The ranking orders each class
by value and interleaves the classes (:func:`balanced_order`), so any top-x% keeps the data's
share of high-value records. ``bench/value.py`` trains on
the top-valued x% against a random x% of the same size to show what the score is worth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.config import ScreenConfig
from winnow.errors import DataError
from winnow.fit_stages import FitState, read_and_label, type_rows
from winnow.io.readers import open_source
from winnow.models.base import Inputs
from winnow.prep.preprocessor import Preprocessor
from winnow.quality.label_issues import find_label_issues, out_of_fold
from winnow.quality.neardup import near_duplicates
from winnow.schema import ColumnSpec

REFERENCE_ROWS = 5_000
NEIGHBOURS = 10
DEFAULT_WEIGHTS = {"uncertainty": 1.0, "rarity": 0.5, "label_noise": 1.0, "redundancy": 1.0}


@dataclass
class Labelled:
    """Labelled rows ready for models: input positions, roles, fitted preprocessing, inputs."""

    rows: np.ndarray
    raw: pa.Table
    specs: list[ColumnSpec]
    typed: pa.Table
    prep: Preprocessor
    x: Inputs
    y: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)


def labelled_inputs(
    data: Any,
    *,
    target: str,
    positive: list[str] | None = None,
    top_fraction: float | None = None,
    id_column: str | None = None,
    drop: list[str] | None = None,
) -> Labelled:
    """Read ``data``, keep the rows with a label and valid values, type and transform them.

    The fit's own first stages (:func:`~winnow.fit_stages.read_and_label`,
    :func:`~winnow.fit_stages.type_rows`) read, label and type the rows; unlike the fit, every
    usable row is kept (duplicates are what the redundancy part measures) and nothing is held
    out: each row is judged out of fold."""
    cfg = ScreenConfig.build(
        target=target, positive=positive, top_fraction=top_fraction, id=id_column, drop=drop or []
    )
    s = FitState(cfg, lambda _msg: None, time.monotonic())
    read_and_label(s, open_source(data))
    type_rows(s)
    keep = np.flatnonzero(s.usable)
    y = s.labels.y[keep].astype(np.int64)
    if y.sum() < 10 or len(y) - y.sum() < 10:
        raise DataError(
            "at least 10 rows of each class are needed to judge records with cross-validation",
            column=target,
            hint="Check --positive / --top-fraction.",
        )
    table = s.typed.table.take(pa.array(keep))
    prep = Preprocessor().fit(table, s.specs)
    m = prep.transform(table, s.specs)
    assert s.positions is not None  # read whole, not sampled
    known = s.labels.known.astype(bool)
    return Labelled(
        rows=s.positions[keep],
        raw=s.raw.take(pa.array(keep)),
        specs=s.specs,
        typed=table,
        prep=prep,
        x=Inputs(m, prep.dense(m), y),
        y=y,
        skipped={
            "unreadable": len(s.read_rejects),
            "invalid": int((~s.typed.ok).sum()),
            "no_label": int((s.typed.ok & ~known).sum()),
        },
    )


def _standardised(x: np.ndarray) -> np.ndarray:
    x = np.where(np.isfinite(x), x, 0.0).astype(np.float64)
    sd = x.std(axis=0)
    keep = sd > 0
    return ((x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]).astype(np.float32)


def rarity(x: np.ndarray, seed: int = 0, reference: int = REFERENCE_ROWS, k: int = NEIGHBOURS) -> np.ndarray:
    """Percentile (0..1) of each row's mean distance to its k nearest reference rows."""
    n = len(x)
    z = _standardised(x)
    rng = np.random.default_rng(seed)
    ref_idx = np.sort(rng.choice(n, min(reference, n), replace=False))
    ref = z[ref_idx]
    ref_sq = (ref * ref).sum(axis=1)
    k_eff = min(k, len(ref) - 1)
    dist = np.empty(n, dtype=np.float64)
    for lo in range(0, n, 4096):
        q = z[lo : lo + 4096]
        d2 = (q * q).sum(axis=1)[:, None] + ref_sq[None, :] - 2 * q @ ref.T
        d2 = np.maximum(d2, 0)
        # a reference row is not its own neighbour
        own = np.flatnonzero((ref_idx >= lo) & (ref_idx < lo + len(q)))
        d2[ref_idx[own] - lo, own] = np.inf
        part = np.partition(d2, k_eff - 1, axis=1)[:, :k_eff]
        dist[lo : lo + len(q)] = np.sqrt(part).mean(axis=1)
    ref_dist = np.sort(dist[ref_idx])
    return np.searchsorted(ref_dist, dist, side="right") / len(ref_dist)


def balanced_order(value: np.ndarray, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Highest value first *within each class*, interleaved so that every top-x% of the ranking
    holds each class in its share of the data: a subset cut from the top keeps the class balance
    (the rare high-value class is not crowded out by hard negatives)."""
    key = np.empty(len(value))
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        within = idx[np.lexsort((rows[idx], -value[idx]))]
        key[within] = (np.arange(len(within)) + 0.5) / len(within)
    return np.lexsort((rows, -value, key))


def _why(u: float, r: float, noise: bool, dup: bool) -> str:
    parts = []
    if noise:
        parts.append("label probably wrong")
    if dup:
        parts.append("near-duplicate of an earlier record")
    if u >= 0.5:
        parts.append(f"hard case (uncertainty {u:.2f})")
    if r >= 0.9:
        parts.append(f"rare (rarer than {r:.0%} of records)")
    if not parts:
        parts.append("easy, common case" if u < 0.2 and r < 0.5 else "ordinary case")
    return "; ".join(parts)


#: the stages :func:`record_values` announces, in order
STAGES = (
    "reading and preparing the records",
    "out-of-fold predictions (uncertainty, label noise)",
    "rarity",
    "near-duplicates",
)


def record_values(
    data: Any,
    *,
    target: str,
    positive: list[str] | None = None,
    top_fraction: float | None = None,
    id_column: str | None = None,
    drop: list[str] | None = None,
    weights: dict[str, float] | None = None,
    seed: int = 0,
    threads: int = 1,
    on_stage: Callable[[str], None] | None = None,
) -> pa.Table:
    """Every labelled record's value and its parts, highest value first (see the module
    docstring). ``on_stage`` hears each stage's name as it starts (the CLI's progress display)."""
    stage = on_stage or (lambda _msg: None)
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    stage("reading and preparing the records")
    lab = labelled_inputs(
        data, target=target, positive=positive, top_fraction=top_fraction, id_column=id_column, drop=drop
    )
    stage("out-of-fold predictions (uncertainty, label noise)")
    p = out_of_fold(
        lab.x, lab.y, seed=seed, threads=threads, cat_cardinalities=tuple(lab.prep.cardinalities())
    )
    prior = float(np.clip(lab.y.mean(), 1e-6, 1 - 1e-6))
    pc = np.clip(p, 1e-6, 1 - 1e-6)
    unc = np.exp(-np.abs(np.log(pc / (1 - pc)) - np.log(prior / (1 - prior))))
    stage("rarity")
    rare = rarity(lab.x.dense, seed=seed)
    noise = find_label_issues(lab.y, p).issue
    stage("near-duplicates")
    nd = near_duplicates(lab.typed, lab.specs, seed=seed)
    dup = nd.redundant
    value = w["uncertainty"] * unc + w["rarity"] * rare - w["label_noise"] * noise - w["redundancy"] * dup
    order = balanced_order(value, lab.y, lab.rows)
    cols: dict[str, Any] = {
        "rank": pa.array(np.arange(1, len(order) + 1), pa.int64()),
        "row": pa.array(lab.rows[order], pa.int64()),
        "value": pa.array(value[order], pa.float64()),
        "uncertainty": pa.array(unc[order], pa.float64()),
        "rarity": pa.array(rare[order], pa.float64()),
        "label_noise": pa.array(noise[order].astype(np.int8), pa.int8()),
        "redundancy": pa.array(dup[order].astype(np.int8), pa.int8()),
        "p_high_value": pa.array(p[order], pa.float64()),
        "label": pa.array(lab.y[order].astype(np.int8), pa.int8()),
        "why": pa.array([_why(unc[i], rare[i], bool(noise[i]), bool(dup[i])) for i in order], pa.string()),
    }
    raw = lab.raw.take(pa.array(order))
    for name in raw.column_names:
        if name not in cols:
            cols[name] = raw.column(name)
    return pa.table(cols)
