"""Turning the user's definition of "high-value" into 0/1 labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from winnow.config import Role
from winnow.errors import DataError
from winnow.schema import FALSE_WORDS, TRUE_WORDS, coerce_column


@dataclass
class Labels:
    """Labels for the rows of a table; ``known`` is False where the target is missing."""

    y: np.ndarray
    known: np.ndarray
    description: str
    cutoff: float | None = None


def _match_values(col: pa.Array, wanted: list[str]) -> tuple[np.ndarray, list[Any]]:
    """Rows equal to any of ``wanted`` (given as text), compared in the column's own type."""
    t = col.type
    hits = np.zeros(len(col), dtype=bool)
    if pa.types.is_boolean(t):
        vals = col.to_numpy(zero_copy_only=False)
        for w in wanted:
            key = w.strip().lower()
            if key in TRUE_WORDS:
                hits |= vals == True  # noqa: E712 - object array of bools/None
            elif key in FALSE_WORDS:
                hits |= vals == False  # noqa: E712
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        vals = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        for w in wanted:
            try:
                hits |= vals == float(w)
            except ValueError:
                continue
    else:
        # text columns (CSV, JSON lines) may hold booleans or numbers written as text:
        # --positive true matches True/true/1, --positive 1 matches 1/1.0
        text = pc.cast(col, pa.string()) if not pa.types.is_string(t) else col
        vals = np.asarray(text.to_pylist(), dtype=object)
        lowered = np.asarray([v.strip().lower() if isinstance(v, str) else v for v in vals], dtype=object)
        numbers = np.asarray([_as_float(v) for v in vals], dtype=np.float64)
        distinct = {v for v in lowered if v is not None}
        # only columns that are booleans written as text (CSV True/False, JSON true/false);
        # yes/no stays an ordinary string matched exactly
        boolish = bool(distinct) and distinct <= {"true", "false"}
        for w in wanted:
            hits |= vals == w
            key = w.strip().lower()
            for group in (TRUE_WORDS, FALSE_WORDS):
                if boolish and key in group:
                    hits |= np.isin(lowered, list(group))
            number = _as_float(w)
            if not np.isnan(number):
                hits |= numbers == number
    return hits, []


def _as_float(v: object) -> float:
    if not isinstance(v, str):
        return float("nan")
    try:
        return float(v)
    except ValueError:
        return float("nan")


def make_labels(
    table: pa.Table,
    target: str,
    *,
    positive: list[str] | None = None,
    top_fraction: float | None = None,
    cutoff: float | None = None,
    partial: bool = False,
) -> Labels:
    """1 for high-value rows: the target equals a positive value, or is in the top fraction.

    ``cutoff`` (from fitting) fixes the top-fraction threshold so evaluation data is labelled
    by the same rule as the training data. ``partial``: ``table`` is one batch of a larger
    input, where the positive value may well be absent.
    """
    if target not in table.column_names:
        raise DataError(
            f"target column {target!r} is not in the data",
            column=target,
            hint="Available columns: " + ", ".join(table.column_names[:50]),
        )
    col = table.column(target).combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    known = col.is_valid().to_numpy(zero_copy_only=False)
    if positive is not None:
        hits, _ = _match_values(col, positive)
        if not hits.any() and not partial:
            counts = pc.value_counts(col.drop_null()).to_pylist()
            counts.sort(key=lambda d: -d["counts"])
            shown = ", ".join(f"{d['values']!r} ({d['counts']})" for d in counts[:20])
            raise DataError(
                f"positive value {', '.join(map(repr, positive))} never occurs",
                column=target,
                hint=f"Values present: {shown}.",
            )
        return Labels(
            y=hits.astype(np.int8),
            known=known,
            description=f"{target} in {positive}" if len(positive) > 1 else f"{target} == {positive[0]!r}",
        )
    assert top_fraction is not None
    vals, bad = coerce_column(col, Role.NUMERIC)
    v = vals.to_numpy(zero_copy_only=False)
    if bad.any() or not np.isfinite(v[known]).any():
        raise DataError(
            "--top-fraction needs a numeric target",
            column=target,
            hint="Use --positive VALUE for a label column.",
        )
    known &= np.isfinite(v)
    if cutoff is None:
        cutoff = float(np.quantile(v[known], 1 - top_fraction, method="higher"))
        share = float((v[known] >= cutoff).mean())
        above = v[known][v[known] > cutoff]
        if share > min(0.5, 3 * top_fraction) and above.size:
            # ties at the cutoff (e.g. many zeros) would make most rows "high-value"
            cutoff = float(above.min())
    y = (v >= cutoff) & known
    return Labels(
        y=y.astype(np.int8),
        known=known,
        description=f"top {top_fraction:.0%} of {target} (>= {cutoff:g})",
        cutoff=cutoff,
    )
