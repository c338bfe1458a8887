"""Fitting: honest splits, data checks, warnings, baselines and budgets."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from tests.helpers import fit_options, make_frame
from winnow import Budget, Screener
from winnow.errors import ConfigError, DataError, SchemaError

LINEAR = {"models": ["linear"]}


def _fit(frame, **extra):
    return Screener().fit(frame, **fit_options(**{**LINEAR, **extra}))


@pytest.fixture(scope="module")
def small():
    return make_frame(300, seed=3)


class TestDataChecks:
    def test_all_one_class(self, small):
        with pytest.raises(DataError, match="every row is high-value") as info:
            _fit(small.assign(churn="no"), positive="no")
        assert info.value.column == "churn"
        assert "needs both classes" in str(info.value)

    def test_positives_only_among_rejected_rows(self, small):
        # the only positive rows cannot be used (invalid values): what is left is one class
        f = small.copy()
        f["churn"] = "no"
        f.loc[:9, "churn"] = "yes"
        f.loc[:9, "spend"] = np.inf
        with pytest.raises(DataError, match="every row is not high-value"):
            _fit(f)

    def test_positive_value_that_never_occurs_lists_values(self, small):
        with pytest.raises(DataError) as info:
            _fit(small, positive="maybe")
        assert "'maybe' never occurs" in str(info.value)
        assert "'no' (240)" in str(info.value) and "'yes' (60)" in str(info.value)

    def test_too_few_positives(self, small):
        f = small.copy()
        f["churn"] = "no"
        f.loc[:4, "churn"] = "yes"
        with pytest.raises(DataError, match="only 5 rows of the rarer class"):
            _fit(f)

    def test_missing_target(self, small):
        with pytest.raises(DataError, match="target column 'nope' is not in the data"):
            _fit(small, target="nope")

    def test_no_usable_columns(self, small):
        with pytest.raises(DataError, match="no usable feature columns"):
            _fit(small, drop=["future_spend", "spend", "visits", "region", "member", "signup"])

    def test_configured_column_not_in_data(self, small):
        with pytest.raises(SchemaError) as info:
            _fit(small, id="client")
        assert info.value.missing == ["client"]

    def test_header_only_csv(self, tmp_path):
        p = tmp_path / "h.csv"
        p.write_text("customer_id,spend,churn\n")
        with pytest.raises(DataError, match="no data rows"):
            _fit(p, drop=[])

    def test_empty_file(self, tmp_path):
        p = tmp_path / "e.csv"
        p.write_text("")
        with pytest.raises(DataError, match="empty"):
            _fit(p)

    def test_empty_table(self, small):
        with pytest.raises(DataError, match="no data rows"):
            _fit(small.head(0))

    def test_baseline_with_unknown_column(self, small):
        with pytest.raises(DataError, match="--baseline names unknown columns: past"):
            _fit(small, baseline="past * 2")

    def test_baseline_that_is_code(self, small):
        with pytest.raises(ConfigError) as info:
            _fit(small, baseline="__import__('os').getcwd()")
        assert info.value.option == "--baseline"

    def test_split_column_missing(self, small):
        with pytest.raises(DataError, match="split column not found"):
            _fit(small, split_column="part")

    def test_split_column_without_test_rows(self, small):
        with pytest.raises(DataError, match="rows marked 'test'"):
            _fit(small.assign(part="train"), split_column="part")


class TestWarningsAndCounts:
    def test_rows_are_accounted_for(self, small):
        f = small.copy()
        f.loc[0, "churn"] = None
        f.loc[1, "spend"] = np.inf
        f = pd.concat([f, f.iloc[[10, 11]]], ignore_index=True)  # two exact duplicate records
        s = _fit(f)
        assert s.summary_["rows_read"] == 302
        assert s.summary_["rows_missing_target"] == 1
        assert s.summary_["rows_rejected"] == 1
        assert s.summary_["duplicates_dropped"] == 2
        assert s.summary_["rows_used"] == 302 - 1 - 1 - 2
        assert "record 1, column 'spend'" in s.summary_["reject_examples"][0]
        text = "\n".join(s.warnings_)
        assert "2 exact duplicate rows dropped" in text
        assert "1 rows without a target value" in text
        assert "1 rows rejected" in text

    def test_constant_and_id_like_columns_are_dropped_with_a_warning(self, small):
        s = _fit(small.assign(const=7, row_id=np.arange(300) + 10_000))
        roles = {c.name: c.role.value for c in s.specs_}
        assert roles["const"] == "ignore" and roles["row_id"] == "id"
        text = "\n".join(s.warnings_)
        assert "column 'const' dropped: constant" in text
        assert "column 'row_id' dropped: ID-like" in text
        assert "const" not in s.input_columns and "row_id" not in s.input_columns

    def test_leaky_column_is_named(self, small):
        f = small.assign(refund=(small["churn"] == "yes").astype(float) * 100 + np.arange(300) % 7)
        s = _fit(f)
        assert any("column 'refund' alone separates the classes" in w for w in s.warnings_)

    def test_stages_are_reported(self, small):
        stages: list[str] = []
        Screener().fit(small, on_stage=stages.append, **fit_options(**LINEAR))
        assert stages[0] == "reading data"
        assert "fitting linear (member 1 of 1, fold 1/3)" in stages
        assert "refitting linear on all training rows" in stages
        assert "evaluating on the held-out test rows" in stages
        assert stages[-1] == "refitting linear on all labelled rows"

    def test_refit_full_uses_every_labelled_row(self, small):
        s = Screener().fit(small, **fit_options(**LINEAR))
        assert s.metrics_["refit_full"]["models"] == ["linear"]
        assert s.metrics_["refit_full"]["rows"] == s.summary_["rows_used"]
        off = Screener().fit(small, refit_full=False, **fit_options(**LINEAR))
        assert "refit_full" not in off.metrics_
        # the held-out report is the same either way: it is made before the refit
        assert off.metrics_["winnow"] == s.metrics_["winnow"]


class TestTasks:
    @pytest.mark.parametrize(
        ("column", "values", "positive"),
        [
            ("label_int", lambda y: y.astype(int), 1),
            ("label_int", lambda y: y.astype(int), "1"),
            ("label_bool", lambda y: y, True),
            ("label_bool", lambda y: y, "true"),
            ("label_str", lambda y: np.where(y, "yes", "no"), "yes"),
        ],
    )
    def test_positive_matches_the_column_type(self, small, column, values, positive):
        y = (small["churn"] == "yes").to_numpy()
        f = small.drop(columns=["churn"]).assign(**{column: values(y)})
        s = _fit(f, target=column, positive=positive)
        assert s.summary_["positives"] == 60

    def test_top_fraction(self, small):
        s = _fit(
            small.drop(columns=["churn"]), target="future_spend", positive=None, top_fraction=0.2, drop=[]
        )
        cutoff = s.target_["cutoff"]
        assert cutoff == pytest.approx(np.quantile(small["future_spend"], 0.8, method="higher"))
        assert s.summary_["positives"] == int((small["future_spend"] >= cutoff).sum())
        assert s.target_["description"].startswith("top 20% of future_spend")
        # evaluation labels new data with the cutoff learned at fit time
        other = make_frame(200, seed=8)
        r = s.evaluate(other)
        assert r["positives"] == int((other["future_spend"] >= cutoff).sum())

    def test_baseline_rule_is_reported(self, small):
        s = _fit(small, baseline="visits * 2 + member")
        rule = s.metrics_["rule"]
        assert rule["expression"] == "visits * 2 + member"
        assert 0 < rule["auc_pr"] <= 1 and "log_loss" not in rule
        assert rule["rows"] == s.metrics_["winnow"]["rows"]
        # a screen states what its selection should deliver, against random and against the rule
        summary = s.screen(small, budget=0.1).summary
        e = summary.expected
        assert e is not None
        assert e["fraction"] == pytest.approx(summary.rows_selected / summary.rows_scored, abs=0.01)
        assert e["rows"] == rule["rows"] and {"precision", "lift_over_random", "lift_over_rule"} <= set(e)
        assert e["precision"]["value"] == s.expected_at(e["fraction"])["precision"]["value"]

    def test_baseline_rule_over_a_column_with_missing_values(self, small):
        # `spend` is missing on ~5% of rows: those rows rank last under the rule, the fit succeeds
        assert small["spend"].isna().any()
        s = _fit(small, baseline="log1p(spend)")
        assert 0 < s.metrics_["rule"]["auc_pr"] <= 1

    def test_user_split_column(self, small):
        part = np.array(["train"] * 200 + ["valid"] * 50 + ["test"] * 50)
        s = _fit(small.assign(part=part), split_column="part")
        split = s.metrics_["split"]
        assert split == {"train": 200, "validation": 50, "test": 50, "mode": "train/validation"}
        assert "part" not in s.input_columns

    def test_large_data_mode_uses_one_validation_part(self, small):
        s = _fit(small, small_data_rows=0)
        assert s.metrics_["split"]["mode"] == "train/validation"

    def test_count_budget_threshold(self, small):
        s = _fit(small, budget=30)
        assert s.config.budget == Budget(count=30)
        assert s.threshold_.fraction == pytest.approx(0.1, abs=0.03)
        assert s.metrics_["winnow"]["budget"]["k"] == 6  # 10% of the 60 test rows

    def test_min_precision_budget(self, small):
        s = _fit(small, budget=Budget(min_precision=0.5))
        t = s.threshold_
        assert t.expected_precision >= 0.5 or t.note

    def test_one_model_gets_all_the_weight(self, small):
        s = _fit(small)
        assert s.fusion_.names == ["linear"] and s.fusion_.weights == [1.0]

    @pytest.mark.slow
    def test_time_limit_bounds_the_deep_fit(self):
        frame = make_frame(2000, seed=4)
        t0 = time.monotonic()
        s = Screener().fit(frame, **fit_options(models=["deep"], time_limit=3))
        assert time.monotonic() - t0 < 30
        assert "deep" in s.learners_


class TestPresetsAndSearch:
    def test_fast_preset_without_explicit_models(self, small):
        opts = fit_options()
        del opts["models"], opts["folds"]
        s = Screener().fit(small, **opts, preset="fast")
        assert s.fusion_.names == ["lightgbm", "linear"]
        port = s.metrics_["portfolio"]
        assert port["preset"] == "fast" and port["folds"] == 3
        assert port["members"]["lightgbm"]["kind"] == "lightgbm"

    def test_search_adds_tuned_members_that_round_trip(self, small, tmp_path):
        frame = make_frame(600, seed=5)
        s = Screener().fit(
            frame,
            **fit_options(models=["lightgbm", "linear", "tabm"], tune=["lightgbm", "deep"], tune_trials=2),
        )
        names = s.fusion_.names
        assert names == ["lightgbm", "linear", "tabm", "lightgbm_tuned", "deep_tuned"]
        tuning = {t["kind"]: t for t in s.metrics_["tuning"]}
        assert set(tuning) == {"lightgbm", "deep"} and tuning["lightgbm"]["trials"] == 2
        assert tuning["lightgbm"]["best_valid_auc_pr"] >= tuning["lightgbm"]["default_valid_auc_pr"]
        # the searched parameters are the tuned member's
        assert s.metrics_["portfolio"]["members"]["lightgbm_tuned"]["params"] == tuning["lightgbm"]["params"]
        s.save(tmp_path / "a")
        import json

        manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
        assert manifest["models"]["deep_tuned"]["kind"] == "deep"
        assert manifest["models"]["tabm"]["config"]["k"] == 4
        again = Screener.load(tmp_path / "a")
        np.testing.assert_array_equal(again.score(frame), s.score(frame))
        assert s.embed(frame.head(5)).shape[0] == 5

    def test_same_seed_same_search(self, small):
        opts = fit_options(models=["linear"], tune=["lightgbm"], tune_trials=3)
        a, b = Screener().fit(small, **opts), Screener().fit(small, **opts)
        assert a.metrics_["tuning"][0]["params"] == b.metrics_["tuning"][0]["params"]
        np.testing.assert_array_equal(a.score(small), b.score(small))


@pytest.fixture(scope="module")
def fitted(small):
    opts = fit_options(models=["lightgbm", "linear", "tabm"])
    return {live: Screener().fit(small, **opts, live_model=live) for live in ("fast", "full")}


class TestLiveModel:
    """``live_model``: the fast fusion charges members for their inference cost."""

    def test_full_keeps_the_greedy_selection(self, fitted):
        s = fitted["full"]
        live = s.metrics_["live"]
        assert live["model"] == "full" and "dropped" not in live
        assert s.fusion_.weights == [live["full_weights"][n] for n in s.fusion_.names]

    def test_fast_reports_what_it_dropped_and_saved(self, fitted):
        s, full = fitted["fast"], fitted["full"]
        live = s.metrics_["live"]
        assert live["model"] == "fast"
        # the same members and out-of-fold logits: the full selection is the same in both fits
        assert live["full_weights"] == full.metrics_["live"]["full_weights"]
        assert live["cost_us_per_row"] <= live["cost_us_per_row_full"]
        for name in live["dropped"]:
            assert s.fusion_.weights[s.fusion_.names.index(name)] == 0
        budget = min(0.005, 0.03 * live["oof_auc_pr_full"])
        assert live["oof_auc_pr_full"] - live["oof_auc_pr"] <= budget + 1e-12
        assert live["full"]["auc_pr"] == pytest.approx(full.metrics_["winnow"]["auc_pr"])

    def test_fast_is_the_default_and_the_choice_is_saved(self, fitted, tmp_path):
        s = fitted["fast"]
        assert s.config.live_model == "fast"
        again = Screener.load(s.save(tmp_path / "a"))
        assert again.config.live_model == "fast"
        np.testing.assert_array_equal(again.fusion_.weights, s.fusion_.weights)

    def test_unknown_live_model_is_refused(self, small):
        with pytest.raises(ConfigError, match="live_model"):
            Screener().fit(small, **fit_options(live_model="fastest"))
