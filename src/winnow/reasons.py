"""Reason codes: which columns pushed a record's score up, in the user's column names.

Contributions are additive log-odds: the LightGBM members' path contributions
(:class:`winnow.models.gbdt.PathTable`: the change of expected output at each split on the
row's path, credited to the split's feature) and the linear model's weight × value, each scaled
by its weight in the fusion and summed per source column (a date's parts and a number's missing
flag count for their column). Every tree and linear
member counts; the deep networks' share is not attributed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from winnow.models.base import Inputs, Learner, explains_as
from winnow.models.fusion import Fusion
from winnow.prep.preprocessor import Preprocessor


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


def _fmt(v: object) -> str:
    if v is None:
        return "missing"
    if isinstance(v, float):
        return f"{v:.4g}"
    s = str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def reason_codes(
    prep: Preprocessor,
    learners: dict[str, Learner],
    fusion: Fusion,
    x: Inputs,
    raw: pa.Table,
    top: int = 3,
) -> list[list[str]]:
    """For each row, up to ``top`` reasons like ``"past_spend=312.5 (+1.21)"``."""
    if len(x) == 0:
        return []
    sources, contrib = source_contributions(prep, learners, fusion, x)
    if not sources:
        return [[] for _ in range(len(x))]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    values = {s: raw.column(s).to_pylist() for s in sources if s in raw.column_names}
    out = []
    for i in range(len(x)):
        row = []
        for j in order[i]:
            c = contrib[i, j]
            if c <= 0:
                break
            s = sources[j]
            row.append(f"{s}={_fmt(values[s][i]) if s in values else '?'} (+{c:.2f})")
        out.append(row)
    return out
