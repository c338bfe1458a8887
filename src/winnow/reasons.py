"""Reason codes: which columns pushed a record's score up, in the user's column names.

Contributions are additive log-odds from every member: the path contributions of the LightGBM
members (:class:`winnow.models.gbdt.PathTable`) and of CatBoost
(:mod:`winnow.models.catboost_paths`): the change of expected output at each split on the row's
path, credited to the split's feature; the linear model's weight x value; the networks'
integrated gradients over their embedded inputs. Each is scaled by its weight in the fusion and
summed per source column (a date's parts and a number's missing flag count for their column);
:func:`explain` gives them all with the base value they add up from.

Values are shown as winnow typed them, so a record gives the same reason text whether it came
from a CSV file, Parquet, the HTTP service or a stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from winnow.config import Role
from winnow.models.base import Inputs, Learner, explains_as
from winnow.models.fusion import Fusion
from winnow.prep.preprocessor import Preprocessor
from winnow.schema import Coerced


@dataclass
class Explanation:
    """Per-row contributions of each source column to the fused log-odds, and what is left.

    ``contributions.sum(1) + base + residual == logit`` exactly: ``logit`` is the fused, Platt-
    calibrated log-odds (before an isotonic map), ``base`` the part no column explains (the
    members' expected values; one number for every row), ``residual`` the attribution error of
    the networks' integrated gradients (0 for trees and the linear model) plus the share of any
    member that has no attribution.
    """

    sources: list[str]
    contributions: np.ndarray
    base: np.ndarray
    residual: np.ndarray
    logit: np.ndarray


def _sources(prep: Preprocessor) -> list[str]:
    sources: list[str] = []
    for f in prep.num_features + prep.cat_features:
        if f.source not in sources:
            sources.append(f.source)
    for name, _ in prep.text_blocks():
        if name not in sources:
            sources.append(name)
    return sources


def member_contributions(
    prep: Preprocessor, learner: Learner, x: Inputs, pos: dict[str, int], full: bool = True
) -> tuple[np.ndarray, float] | None:
    """One member's contributions per source column (n, sources) on its own logit scale, and its
    expected value; None for a kind without attribution."""
    kind = explains_as(learner)
    out = np.zeros((len(x), len(pos)))
    features = prep.num_features + prep.cat_features
    if kind in ("lightgbm", "catboost"):
        contrib = learner.contributions(x)  # type: ignore[attr-defined]
        for j, f in enumerate(features):
            out[:, pos[f.source]] += contrib[:, j]
    elif kind in ("linear", "deep"):
        dense, cat = learner.contributions(x)  # type: ignore[attr-defined]
        for j, (_, src) in enumerate(prep.dense_names()):
            out[:, pos[src]] += dense[:, j]
        for j, f in enumerate(prep.cat_features):
            out[:, pos[f.source]] += cat[:, j]
        blocks = prep.text_blocks() if kind == "linear" else []
        if blocks:
            text = learner.text_contributions(x, blocks)  # type: ignore[attr-defined]
            for j, (name, _) in enumerate(blocks):
                out[:, pos[name]] += text[:, j]
    else:
        return None
    if not full:
        return out, 0.0
    if kind == "deep":
        return out, learner.expected_logit()  # type: ignore[attr-defined]
    # trees and the linear model are exactly additive: what the columns leave is one constant
    rest = learner.predict_logit(x) - out.sum(1)
    return out, float(np.median(rest)) if len(rest) else 0.0


def explain(
    prep: Preprocessor, learners: dict[str, Learner], fusion: Fusion, x: Inputs, *, full: bool = True
) -> Explanation:
    """Every member's contributions, weighted as the fusion weighs it, on the fused log-odds.
    ``full=False`` skips the members' predictions: contributions only (base, residual and
    logit left at 0), what reason codes need."""
    sources = _sources(prep)
    pos = {s: i for i, s in enumerate(sources)}
    contrib = np.zeros((len(x), len(sources)))
    base, residual, z = 0.0, np.zeros(len(x)), np.zeros(len(x))
    for name, w, c, s in zip(fusion.names, fusion.weights, fusion.centers, fusion.scales, strict=True):
        if not w:
            continue
        learner = learners[name]
        logit = learner.predict_logit(x) if full else np.zeros(len(x))
        z += w * (logit - c) / s
        part = member_contributions(prep, learner, x, pos, full)
        if part is None:
            residual += w * (logit - c) / s
            continue
        out, expected = part
        contrib += (w / s) * out
        base += (w / s) * (expected - c)
        residual += (w / s) * (logit - out.sum(1) - expected)
    a, shift = fusion.a, fusion.log_odds_shift
    return Explanation(
        sources,
        contrib * a,
        np.full(len(x), a * base + fusion.b - shift),
        residual * a,
        a * z + fusion.b - shift,
    )


def source_contributions(
    prep: Preprocessor, learners: dict[str, Learner], fusion: Fusion, x: Inputs
) -> tuple[list[str], np.ndarray]:
    """(source column names, contributions (n, columns)) on the fused logit scale."""
    e = explain(prep, learners, fusion, x, full=False)
    return e.sources, e.contributions


def format_value(v: object, role: Role | None = None) -> str:
    """A typed value as a reason shows it: the same text on every path, whatever format the
    record came in (a CSV's text, Parquet's types, JSON, a Redis stream's strings)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    if role == Role.BOOLEAN:
        return "true" if v else "false"
    if role == Role.DATETIME and isinstance(v, float):
        t = datetime.fromtimestamp(v, UTC)
        return t.date().isoformat() if v % 86_400 == 0 else t.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    s = str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def reason_text(reason: dict[str, object]) -> str:
    """A reason object as its code: ``"past_spend=312.5 (+1.21)"`` (``?``: a value not known)."""
    value = reason["value"] if reason["value"] is not None else "?"
    return f"{reason['column']}={value} (+{reason['contribution']:.2f})"


def reason_codes(
    prep: Preprocessor,
    learners: dict[str, Learner],
    fusion: Fusion,
    x: Inputs,
    typed: pa.Table | Coerced,
    top: int = 3,
    roles: dict[str, Role] | None = None,
    rows: np.ndarray | None = None,
) -> list[list[str]]:
    """For each row, up to ``top`` reasons like ``"past_spend=312.5 (+1.21)"``: the codes of
    :func:`reason_objects`."""
    objects = reason_objects(prep, learners, fusion, x, typed, top=top, roles=roles, rows=rows)
    return [[reason_text(o) for o in row] for row in objects]


def reason_objects(
    prep: Preprocessor,
    learners: dict[str, Learner],
    fusion: Fusion,
    x: Inputs,
    typed: pa.Table | Coerced,
    top: int = 3,
    roles: dict[str, Role] | None = None,
    rows: np.ndarray | None = None,
) -> list[list[dict[str, object]]]:
    """For each row, up to ``top`` reasons as ``{column, value, contribution}`` objects: the
    columns that raise its fused log-odds most, largest first (value as text, None if the
    column is not among the typed ones).

    ``typed``: the rows' values as typed by :func:`winnow.schema.coerce` (the ``Coerced`` result
    of :meth:`winnow.Screener.prepare`, or its table); with ``rows``, row i of ``x`` is row
    ``rows[i]`` of ``typed``. ``roles`` format the values (booleans as true/false, datetimes as
    ISO dates).
    """
    if len(x) == 0:
        return []
    sources, contrib = source_contributions(prep, learners, fusion, x)
    if not sources:
        return [[] for _ in range(len(x))]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    # only the columns some row names (listing a table's names costs as much as a column)
    coerced = typed if isinstance(typed, Coerced) else Coerced(typed, ok=np.ones(typed.num_rows, dtype=bool))
    named = {sources[j] for j in np.unique(order)} & set(coerced.names)
    values = {s: coerced.values(s, rows) for s in named}
    roles = roles or {}
    out: list[list[dict[str, object]]] = []
    for i in range(len(x)):
        row: list[dict[str, object]] = []
        for j in order[i]:
            c = float(contrib[i, j])
            if c <= 0:
                break
            s = sources[j]
            value = format_value(values[s][i], roles.get(s)) if s in values else None
            row.append({"column": s, "value": value, "contribution": c})
        out.append(row)
    return out


def contribution_objects(
    e: Explanation, typed: pa.Table | Coerced, roles: dict[str, Role], rows: np.ndarray | None = None
) -> list[list[dict[str, object]]]:
    """Each row's contributions as ``{column, value, contribution}`` objects, the largest effect
    (either sign) first; row i of ``e`` is row ``rows[i]`` of ``typed``."""
    coerced = typed if isinstance(typed, Coerced) else Coerced(typed, ok=np.ones(typed.num_rows, dtype=bool))
    known = set(coerced.names)
    values = {c: coerced.values(c, rows) for c in e.sources if c in known}
    order = np.argsort(-np.abs(e.contributions), axis=1, kind="stable")
    return [
        [
            {
                "column": e.sources[j],
                "value": format_value(values[e.sources[j]][i], roles.get(e.sources[j]))
                if e.sources[j] in values
                else None,
                "contribution": float(e.contributions[i, j]),
            }
            for j in order[i]
        ]
        for i in range(len(order))
    ]
