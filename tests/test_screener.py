"""The Python API: fit, score, evaluate, embed on every kind of input, and its errors."""

from __future__ import annotations

import json
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.helpers import fit_options, make_frame
from winnow import ScreenConfig, Screener
from winnow.errors import DataError, NotFittedError, SchemaError


class TestUnfitted:
    @pytest.mark.parametrize(
        "call",
        [
            lambda s, d: s.score(d),
            lambda s, d: s.screen(d),
            lambda s, d: s.evaluate(d),
            lambda s, d: s.embed(d),
            lambda s, d: s.save("x"),
            lambda s, d: s.input_columns,
        ],
    )
    def test_raises_not_fitted(self, call, train_frame):
        with pytest.raises(NotFittedError, match="not fitted"):
            call(Screener(), train_frame)

    def test_repr(self):
        assert repr(Screener()) == "Screener(unfitted)"


class TestFitted:
    def test_fit_returns_self_and_learned_state(self, train_frame):
        s = Screener()
        assert s.fit(train_frame.head(300), **fit_options(models=["linear"])) is s
        assert set(s.learners_) == {"linear"}
        assert s.config.target == "churn"
        assert "churn == 'yes'" in repr(s)

    def test_fit_with_a_config_object(self, train_frame, fitted):
        cfg = ScreenConfig.build(**fit_options())
        s = Screener(cfg).fit(train_frame)
        np.testing.assert_array_equal(s.score(train_frame), fitted.score(train_frame))

    def test_input_columns_exclude_id_target_and_dropped(self, fitted):
        assert fitted.input_columns == ["spend", "visits", "region", "member", "signup"]
        assert fitted.id_column == "customer_id"

    def test_scores_are_probabilities(self, fitted, train_frame):
        p = fitted.score(train_frame)
        assert p.shape == (600,) and ((p > 0) & (p < 1)).all()

    def test_scores_rank_the_positives_first(self, fitted, train_frame):
        from sklearn.metrics import roc_auc_score

        holdout = make_frame(400, seed=9)
        y = (holdout["churn"] == "yes").to_numpy()
        assert roc_auc_score(y, fitted.score(holdout)) > 0.75

    def test_metrics_and_summary(self, fitted):
        m = fitted.metrics_
        assert m["split"] == {"train": 480, "validation": 0, "test": 120, "mode": "3-fold cross-fitting"}
        assert m["winnow"]["rows"] == 120 and m["winnow"]["positives"] == 24
        assert {"winnow", "oof", "models", "logistic_regression", "threshold_on_test"} <= set(m)
        assert set(m["models"]) == {"lightgbm", "linear"}
        s = fitted.summary_
        assert s["rows_read"] == 600 and s["rows_used"] == 600 and s["positives"] == 120
        assert s["rows_rejected"] == 0 and s["duplicates_dropped"] == 0

    def test_importance_names_source_columns(self, fitted):
        imp = fitted.importance_
        assert set(imp) <= set(fitted.input_columns)
        assert sum(imp.values()) == pytest.approx(1.0)
        assert next(iter(imp)) == "spend"  # the strongest signal in the synthetic data

    def test_threshold_matches_the_budget_on_validation(self, fitted):
        t = fitted.threshold_
        assert 0 < t.value < 1
        assert t.fraction == pytest.approx(0.05, abs=0.01)
        assert 0 <= t.expected_recall <= 1 and t.expected_precision > 0.2


@pytest.fixture(scope="module")
def expected(fitted, train_frame):
    return fitted.score(train_frame)


class TestInputs:
    """The same rows score the same whatever container or file format carries them."""

    def test_arrow(self, fitted, train_frame, expected):
        np.testing.assert_array_equal(fitted.score(pa.Table.from_pandas(train_frame)), expected)

    def test_polars(self, fitted, train_frame, expected):
        pl = pytest.importorskip("polars")
        np.testing.assert_allclose(fitted.score(pl.from_pandas(train_frame)), expected, rtol=1e-12)

    def test_parquet_file(self, fitted, train_frame, expected, tmp_path):
        train_frame.to_parquet(tmp_path / "d.parquet")
        np.testing.assert_array_equal(fitted.score(tmp_path / "d.parquet"), expected)

    def test_parquet_folder(self, fitted, train_frame, expected, tmp_path):
        (tmp_path / "parts").mkdir()
        train_frame.iloc[:250].to_parquet(tmp_path / "parts" / "a.parquet")
        train_frame.iloc[250:].to_parquet(tmp_path / "parts" / "b.parquet")
        np.testing.assert_array_equal(np.sort(fitted.score(tmp_path / "parts")), np.sort(expected))

    def test_csv_file(self, fitted, train_frame, expected, tmp_path):
        train_frame.to_csv(tmp_path / "d.csv", index=False)
        np.testing.assert_allclose(fitted.score(str(tmp_path / "d.csv")), expected, rtol=1e-9)

    def test_jsonl_file(self, fitted, train_frame, expected, tmp_path):
        records = train_frame.assign(signup=train_frame["signup"].dt.strftime("%Y-%m-%d")).to_dict("records")
        with open(tmp_path / "d.jsonl", "w") as fh:
            for r in records:
                fh.write(
                    json.dumps(
                        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                    )
                    + "\n"
                )
        np.testing.assert_allclose(fitted.score(tmp_path / "d.jsonl"), expected, rtol=1e-9)

    def test_column_order_is_irrelevant(self, fitted, train_frame, expected):
        np.testing.assert_array_equal(fitted.score(train_frame[train_frame.columns[::-1]]), expected)

    def test_extra_and_absent_non_feature_columns(self, fitted, train_frame, expected):
        f = train_frame.drop(columns=["churn", "future_spend", "customer_id"]).assign(other=1)
        np.testing.assert_array_equal(fitted.score(f), expected)

    def test_single_records_score_like_the_batch(self, fitted, train_frame, expected):
        singles = [fitted.score(train_frame.iloc[[i]])[0] for i in range(0, 600, 60)]
        np.testing.assert_allclose(singles, expected[::60], rtol=1e-12)

    def test_score_one_takes_a_record_as_json_carries_it(self, fitted, train_frame, expected):
        rows = pa.Table.from_pandas(train_frame).to_pylist()  # NaN is None here, as in JSON
        as_json = [{**r, "signup": r["signup"].isoformat()} for r in rows[:40]]
        assert any(r["spend"] is None for r in as_json)
        np.testing.assert_allclose([fitted.score_one(r) for r in as_json], expected[:40], rtol=1e-12)
        # numbers as text (a Redis stream entry), a mapping that is not a dict: the checked path
        text = {
            k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in as_json[1].items()
        }
        assert fitted.score_one(text) == pytest.approx(expected[1], rel=1e-12)
        assert fitted.score_one(MappingProxyType(as_json[2])) == pytest.approx(expected[2], rel=1e-12)

    def test_score_one_names_the_field_it_refuses(self, fitted, train_frame):
        record = pa.Table.from_pandas(train_frame.head(1)).to_pylist()[0]
        with pytest.raises(DataError, match=r"field 'visits': expected a finite number, received str 'many'"):
            fitted.score_one({**record, "visits": "many"})
        with pytest.raises(DataError, match=r"field 'region': missing; it is required"):
            fitted.score_one({k: v for k, v in record.items() if k != "region"})

    def test_input_is_not_mutated(self, fitted, train_frame):
        before = train_frame.copy(deep=True)
        fitted.score(train_frame)
        fitted.screen(train_frame)
        pd.testing.assert_frame_equal(train_frame, before)


class TestBadInputAtScoring:
    def test_missing_column_names_it(self, fitted, train_frame):
        with pytest.raises(SchemaError) as info:
            fitted.score(train_frame.drop(columns=["visits", "region"]))
        assert info.value.missing == ["visits", "region"]
        assert "'visits'" in str(info.value) and "'region'" in str(info.value)

    def test_wrong_type_names_column_and_types(self, fitted, train_frame):
        f = train_frame.assign(signup=1.5)
        with pytest.raises(SchemaError) as info:
            fitted.score(f)
        assert info.value.wrong_type[0][:2] == ("signup", "dates or timestamps (ISO 8601)")

    def test_text_where_numbers_were_fitted(self, fitted, train_frame):
        with pytest.raises(SchemaError) as info:
            fitted.score(train_frame.assign(visits="many"))
        assert info.value.wrong_type[0][0] == "visits"

    def test_inf_is_rejected_nan_is_missing(self, fitted, train_frame):
        f = train_frame.copy()
        f.loc[3, "spend"] = np.inf
        f.loc[4, "spend"] = -np.inf
        f.loc[5, "spend"] = np.nan
        f.loc[6, "visits"] = np.nan
        p = fitted.score(f)
        assert np.isnan(p[[3, 4]]).all()
        assert np.isfinite(p[[5, 6]]).all()
        assert np.isfinite(np.delete(p, [3, 4])).all()

    def test_unseen_categories_score_as_rare(self, fitted, train_frame):
        f = train_frame.head(50).copy()
        a = fitted.score(f.assign(region="atlantis"))
        b = fitted.score(f.assign(region="mars"))
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)  # every unseen value maps to the same "rare" code

    def test_all_missing_values_still_score(self, fitted, train_frame):
        f = train_frame.head(5).copy()
        for c in ("spend", "visits", "member", "signup", "region"):
            f[c] = None
        assert np.isfinite(fitted.score(f)).all()

    def test_empty_table_scores_nothing(self, fitted, train_frame):
        assert fitted.score(train_frame.head(0)).shape == (0,)


class TestEvaluate:
    def test_report(self, fitted):
        holdout = make_frame(300, seed=5)
        r = fitted.evaluate(holdout)
        assert r["rows"] == 300 and r["positives"] == 60
        assert 0.4 < r["auc_pr"] <= 1 and 0.7 < r["roc_auc"] <= 1
        assert r["budget"]["k"] == 15  # ceil(5% of 300)
        t = r["threshold"]
        assert t["value"] == fitted.threshold_.value
        assert t["selected"] == int((fitted.score(holdout) >= t["value"]).sum())
        assert r["rows_not_scored"] == 0

    def test_rows_without_target_or_rejected_are_not_scored(self, fitted):
        holdout = make_frame(200, seed=6)
        holdout.loc[0, "churn"] = None
        holdout.loc[1, "spend"] = np.inf
        r = fitted.evaluate(holdout)
        assert r["rows"] == 198 and r["rows_not_scored"] == 2

    def test_progress_over_batches_changes_nothing(self, fitted, monkeypatch):
        import winnow.screener

        holdout = make_frame(300, seed=5)
        whole = fitted.evaluate(holdout)
        calls: list[tuple[int, int | None, str]] = []
        monkeypatch.setattr(winnow.screener, "DEFAULT_BATCH_ROWS", 128)
        assert fitted.evaluate(holdout, progress=lambda *a: calls.append(a)) == whole
        assert calls == [
            (0, None, "reading"),
            (128, 300, "scoring"),
            (256, 300, "scoring"),
            (300, 300, "scoring"),
        ]

    def test_monitor_reports_progress(self, fitted, monkeypatch):
        import winnow.screener

        calls: list[tuple[int, int | None, str]] = []
        monkeypatch.setattr(winnow.screener, "DEFAULT_BATCH_ROWS", 128)
        fitted.monitor(make_frame(300, seed=5), progress=lambda *a: calls.append(a))
        assert calls == [(128, 300, "monitoring"), (256, 300, "monitoring"), (300, 300, "monitoring")]

    def test_target_must_be_present(self, fitted, train_frame):
        with pytest.raises(DataError, match="target column 'churn' is not in the data"):
            fitted.evaluate(train_frame.drop(columns=["churn"]))


class TestEmbed:
    def test_needs_the_deep_model(self, fitted, train_frame):
        with pytest.raises(NotFittedError, match="deep"):
            fitted.embed(train_frame)

    @pytest.mark.slow
    def test_learned_features(self, fitted_deep, train_frame):
        e = fitted_deep.embed(train_frame.head(100))
        assert e.shape == (100, fitted_deep.learners_["deep"].hidden[-1]) and e.dtype == np.float32
        np.testing.assert_allclose(fitted_deep.embed(train_frame.head(10)), e[:10], rtol=1e-4, atol=1e-5)
        assert np.isfinite(e).all() and e.std() > 0


class TestDeterminism:
    def test_same_seed_same_scores(self, fitted, train_frame):
        again = Screener().fit(train_frame, **fit_options())
        np.testing.assert_array_equal(again.score(train_frame), fitted.score(train_frame))
        assert again.threshold_ == fitted.threshold_
        assert again.fusion_ == fitted.fusion_

    @pytest.mark.slow
    def test_same_seed_same_scores_with_the_deep_model(self, fitted_deep):
        frame = make_frame(400, seed=1)
        again = Screener().fit(frame, **fit_options(models=["lightgbm", "linear", "deep"]))
        np.testing.assert_array_equal(again.score(frame), fitted_deep.score(frame))

    @pytest.mark.slow
    def test_deep_model_save_load(self, fitted_deep, tmp_path):
        frame = make_frame(100, seed=2)
        loaded = Screener.load(fitted_deep.save(tmp_path / "deep"))
        assert (tmp_path / "deep" / "models" / "deep.safetensors").exists()
        np.testing.assert_array_equal(loaded.score(frame), fitted_deep.score(frame))
        np.testing.assert_array_equal(loaded.embed(frame), fitted_deep.embed(frame))
