"""The learners' contract (tests/models/test_common.py) for the other fitted parts: the
Preprocessor, the Fusion and the Screener.

Each: the same seed gives the same result, its saved state (JSON and arrays, never pickle)
restores it to the last bit, its inputs are not mutated, one row comes out as it does in a
batch, and an unfitted one raises ``NotFittedError``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tests.helpers import fit_options, make_frame
from winnow import Screener
from winnow.errors import NotFittedError
from winnow.models.fusion import Fusion, fit_fusion
from winnow.prep.preprocessor import Preprocessor
from winnow.schema import coerce, infer_schema


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return pa.Table.from_pandas(make_frame(400, seed=2), preserve_index=False)


@pytest.fixture(scope="module")
def typed(table: pa.Table) -> tuple[pa.Table, list[Any]]:
    specs = infer_schema(table, target="churn", id_column="customer_id", drop=["future_spend"])
    return coerce(table, specs).table, specs


@pytest.fixture(scope="module")
def logits() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    y = (rng.random(600) < 0.2).astype(np.int64)
    signal = y * 1.5 + rng.normal(0, 1, 600)
    return y, {
        "a": signal + rng.normal(0, 0.5, 600),
        "b": signal + rng.normal(0, 1.0, 600),
        "c": rng.normal(0, 1, 600),
    }


@pytest.fixture(scope="module")
def fitted(table: pa.Table) -> Screener:
    return Screener().fit(table, **fit_options(models=["lightgbm", "linear"]))


def _matrices(prep: Preprocessor, typed: pa.Table, specs: list[Any]) -> tuple[np.ndarray, ...]:
    m = prep.transform(typed, specs)
    return m.num, m.cat, prep.dense(m)


def _equal(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


class TestPreprocessor:
    def test_same_data_same_features_and_a_round_trip(self, typed):
        table, specs = typed
        a = Preprocessor().fit(table, specs, seed=0)
        b = Preprocessor().fit(table, specs, seed=0)
        _equal(_matrices(a, table, specs), _matrices(b, table, specs))
        state = json.loads(json.dumps(a.to_json()))
        again = Preprocessor.from_json(state, a.arrays())
        _equal(_matrices(again, table, specs), _matrices(a, table, specs))

    def test_inputs_not_mutated_and_one_row_as_in_the_batch(self, typed):
        table, specs = typed
        before = table.to_pylist()
        prep = Preprocessor().fit(table, specs, seed=0)
        whole = _matrices(prep, table, specs)
        assert table.to_pylist() == before
        for i in (0, 7, 133):
            one = _matrices(prep, table.slice(i, 1), specs)
            _equal(one, tuple(x[i : i + 1] for x in whole))

    def test_unfitted_raises(self, typed):
        table, specs = typed
        with pytest.raises(NotFittedError):
            Preprocessor().transform(table, specs)


class TestFusion:
    def test_same_logits_same_fusion_and_a_round_trip(self, logits):
        y, z = logits
        a, b = fit_fusion(y, z), fit_fusion(y, z)
        np.testing.assert_array_equal(a.probability(z), b.probability(z))
        again = Fusion.from_json(json.loads(json.dumps(a.to_json())))
        np.testing.assert_array_equal(again.probability(z), a.probability(z))

    def test_inputs_not_mutated_and_one_row_as_in_the_batch(self, logits):
        y, z = logits
        before = copy.deepcopy(z)
        fusion = fit_fusion(y, z)
        p = fusion.probability(z)
        for k in z:
            np.testing.assert_array_equal(z[k], before[k])
        for i in (0, 5, 599):
            one = fusion.probability({k: v[i : i + 1] for k, v in z.items()})
            np.testing.assert_array_equal(one, p[i : i + 1])
        assert ((p > 0) & (p < 1)).all()


class TestScreener:
    def test_same_seed_same_scores_and_a_round_trip(self, table, fitted, tmp_path):
        again = Screener().fit(table, **fit_options(models=["lightgbm", "linear"]))
        np.testing.assert_array_equal(again.score(table), fitted.score(table))
        loaded = Screener.load(fitted.save(tmp_path / "s"))
        np.testing.assert_array_equal(loaded.score(table), fitted.score(table))

    def test_inputs_not_mutated_and_one_row_as_in_the_batch(self, table, fitted):
        before = table.to_pylist()
        whole = fitted.score(table)
        assert table.to_pylist() == before
        for i in (0, 11, 399):
            np.testing.assert_allclose(fitted.score(table.slice(i, 1)), whole[i : i + 1], rtol=1e-12)
            record = {**before[i], "signup": before[i]["signup"].isoformat()}
            assert fitted.score_one(record) == pytest.approx(whole[i], rel=1e-12)

    def test_unfitted_raises(self, table):
        with pytest.raises(NotFittedError):
            Screener().score(table)
        with pytest.raises(NotFittedError):
            Screener().score_one(table.slice(0, 1).to_pylist()[0])
