"""Reason codes: which columns pushed a record's score up, in the user's column names.

Contributions are additive log-odds: the LightGBM members' path contributions
(:class:`winnow.models.gbdt.PathTable`: the change of expected output at each split on the
row's path, credited to the split's feature) and the linear model's weight × value, each scaled
by its weight in the fusion and summed per source column (a date's parts and a number's missing
flag count for their column). Every tree and linear
member counts; the deep networks' share is not attributed.

Values are shown as winnow typed them, so a record gives the same reason text whether it came
from a CSV file, Parquet, the HTTP service or a stream.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from winnow.config import Role
from winnow.models.base import Inputs, Learner, explains_as
from winnow.models.fusion import Fusion
from winnow.prep.preprocessor import Preprocessor
from winnow.schema import Coerced


def source_contributions(
    prep: Preprocessor, learners: dict[str, Learner], fusion: Fusion, x: Inputs
) -> tuple[list[str], np.ndarray]:
    """(source column names, contributions (n, columns)) on the fused logit scale."""
    sources: list[str] = []
    for f in prep.num_features + prep.cat_features:
        if f.source not in sources:
            sources.append(f.source)
    for name, _ in prep.text_blocks():
        if name not in sources:
            sources.append(name)
    pos = {s: i for i, s in enumerate(sources)}
    out = np.zeros((len(x), len(sources)))
    weight = {n: w / s for n, w, s in zip(fusion.names, fusion.weights, fusion.scales, strict=True)}
    for member, learner in learners.items():
        w = weight.get(member)
        kind = explains_as(learner)
        if not w:
            continue
        if kind == "lightgbm":
            contrib = learner.contributions(x)  # type: ignore[attr-defined]
            for j, f in enumerate(prep.num_features + prep.cat_features):
                out[:, pos[f.source]] += w * contrib[:, j]
        elif kind == "linear":
            dense, cat = learner.contributions(x)  # type: ignore[attr-defined]
            for j, (_, src) in enumerate(prep.dense_names()):
                out[:, pos[src]] += w * dense[:, j]
            for j, f in enumerate(prep.cat_features):
                out[:, pos[f.source]] += w * cat[:, j]
            blocks = prep.text_blocks()
            if blocks:
                text = learner.text_contributions(x, blocks)  # type: ignore[attr-defined]
                for j, (name, _) in enumerate(blocks):
                    out[:, pos[name]] += w * text[:, j]
    return sources, out * fusion.a


def _fmt(v: object, role: Role | None = None) -> str:
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
    """For each row, up to ``top`` reasons like ``"past_spend=312.5 (+1.21)"``.

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
    out = []
    for i in range(len(x)):
        row = []
        for j in order[i]:
            c = contrib[i, j]
            if c <= 0:
                break
            s = sources[j]
            row.append(f"{s}={_fmt(values[s][i], roles.get(s)) if s in values else '?'} (+{c:.2f})")
        out.append(row)
    return out
