"""Leakage check: a column that alone separates the classes is named."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from winnow.config import Role
from winnow.models.base import Inputs
from winnow.prep.leakage import LEAK_AUC, leakage_suspects
from winnow.prep.preprocessor import Preprocessor
from winnow.schema import ColumnSpec, coerce


def _inputs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    t = pa.table(
        {
            "leak": y * 10.0 + rng.random(n),  # separates the classes perfectly
            "noise": rng.normal(size=n),
            "leak_cat": np.where(y == 1, "paid", "unpaid"),
            "cat": rng.choice(["a", "b", "c"], n),
        }
    )
    specs = [
        ColumnSpec("leak", Role.NUMERIC),
        ColumnSpec("noise", Role.NUMERIC),
        ColumnSpec("leak_cat", Role.CATEGORICAL),
        ColumnSpec("cat", Role.CATEGORICAL),
    ]
    return coerce(t, specs).table, specs, y


def test_leaky_numeric_and_categorical_columns_are_found():
    t_train, specs, y_train = _inputs(400, 0)
    t_valid, _, y_valid = _inputs(200, 1)
    prep = Preprocessor().fit(t_train, specs)

    def inputs(t, y):
        m = prep.transform(t, specs)
        return Inputs(m=m, dense=prep.dense(m), y=y)

    suspects = leakage_suspects(prep, inputs(t_train, y_train), inputs(t_valid, y_valid))
    assert set(suspects) == {"leak", "leak_cat"}
    assert all(v >= LEAK_AUC for v in suspects.values())
