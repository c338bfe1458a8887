"""ScreenConfig and Budget: parsing, validation and the messages users see."""

from __future__ import annotations

import pytest

from winnow.config import MODEL_NAMES, Budget, Role, ScreenConfig
from winnow.errors import ConfigError


class TestBudgetParse:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("0.05", Budget(fraction=0.05)),
            (0.2, Budget(fraction=0.2)),
            ("1000", Budget(count=1000)),
            (1000, Budget(count=1000)),
            ("1", Budget(count=1)),
            (1.0, Budget(count=1)),
            (None, Budget(fraction=0.05)),
        ],
    )
    def test_fraction_or_count(self, value, expected):
        assert Budget.parse(value) == expected

    def test_min_precision(self):
        assert Budget.parse(None, min_precision=0.8) == Budget(min_precision=0.8)

    @pytest.mark.parametrize("value", ["abc", "0", 0, -3, "1.5", 2.5, ""])
    def test_invalid_budget_names_the_option(self, value):
        with pytest.raises(ConfigError) as info:
            Budget.parse(value)
        assert info.value.option == "--budget"
        assert info.value.received == value

    @pytest.mark.parametrize("value", [0, 1.5, -0.1])
    def test_invalid_min_precision(self, value):
        with pytest.raises(ConfigError) as info:
            Budget.parse(None, min_precision=value)
        assert info.value.option == "--min-precision"

    def test_budget_and_min_precision_together_is_an_error(self):
        with pytest.raises(ConfigError, match="only one of the two"):
            Budget.parse("0.1", min_precision=0.8)

    def test_exactly_one_field(self):
        with pytest.raises(ValueError):
            Budget(fraction=0.1, count=10)
        with pytest.raises(ValueError):
            Budget()

    @pytest.mark.parametrize(
        ("budget", "text"),
        [
            (Budget(fraction=0.05), "top 5.00%"),
            (Budget(count=1500), "top 1,500"),
            (Budget(min_precision=0.8), "precision >= 80%"),
        ],
    )
    def test_describe(self, budget, text):
        assert budget.describe() == text

    def test_frozen(self):
        b = Budget(fraction=0.1)
        with pytest.raises(ValueError):
            b.fraction = 0.2  # type: ignore[misc]


class TestScreenConfig:
    def test_defaults(self):
        cfg = ScreenConfig.build(target="y", positive="1")
        assert cfg.positive == ["1"]
        assert cfg.budget == Budget(fraction=0.05)
        assert cfg.preset == "balanced" and cfg.models is None and cfg.tune is None
        assert (cfg.seed, cfg.folds, cfg.small_data_rows, cfg.test_fraction) == (0, None, 50_000, 0.2)

    def test_presets_models_and_tune_are_checked(self):
        with pytest.raises(ConfigError, match="preset"):
            ScreenConfig.build(target="y", positive="1", preset="fastest")
        with pytest.raises(ConfigError, match="models"):
            ScreenConfig.build(target="y", positive="1", models=["lightgbm", "lightgbm"])
        with pytest.raises(ConfigError, match="tune"):
            ScreenConfig.build(target="y", positive="1", tune=["linear"])
        cfg = ScreenConfig.build(target="y", positive="1", models=list(MODEL_NAMES), tune=["deep"])
        assert cfg.models == list(MODEL_NAMES) and cfg.tune == ["deep"]

    @pytest.mark.parametrize(
        ("positive", "expected"),
        [(1, ["1"]), (True, ["True"]), ("yes", ["yes"]), (["a", "b"], ["a", "b"]), ([1, 2], ["1", "2"])],
    )
    def test_positive_is_stored_as_text(self, positive, expected):
        assert ScreenConfig.build(target="y", positive=positive).positive == expected

    @pytest.mark.parametrize(
        ("budget", "expected"), [(0.1, Budget(fraction=0.1)), ("250", Budget(count=250))]
    )
    def test_budget_from_number_or_text(self, budget, expected):
        assert ScreenConfig.build(target="y", positive="1", budget=budget).budget == expected

    def test_none_overrides_are_ignored(self):
        cfg = ScreenConfig.build(target="y", positive="1", seed=None, id=None)
        assert cfg.seed == 0 and cfg.id is None

    def test_positive_and_top_fraction_are_exclusive(self):
        with pytest.raises(ConfigError, match="exactly one of `positive`"):
            ScreenConfig.build(target="y", positive="1", top_fraction=0.1)
        with pytest.raises(ConfigError, match="exactly one of `positive`"):
            ScreenConfig.build(target="y")

    def test_missing_target_names_the_field(self):
        with pytest.raises(ConfigError) as info:
            ScreenConfig.build(positive="1")
        assert info.value.option == "target"

    @pytest.mark.parametrize("models", [["xgboost"], [], ["lightgbm", "forest"]])
    def test_unknown_models(self, models):
        with pytest.raises(ConfigError, match="subset of"):
            ScreenConfig.build(target="y", positive="1", models=models)

    def test_target_cannot_be_dropped(self):
        with pytest.raises(ConfigError, match="cannot also be dropped"):
            ScreenConfig.build(target="y", positive="1", drop=["y"])

    @pytest.mark.parametrize(
        ("field", "value"),
        [("folds", 1), ("folds", 50), ("top_fraction", 1.5), ("time_limit", 0), ("test_fraction", 0.95)],
    )
    def test_out_of_range_values_name_the_field(self, field, value):
        extra = {"positive": "1"} if field != "top_fraction" else {}
        with pytest.raises(ConfigError) as info:
            ScreenConfig.build(target="y", **extra, **{field: value})
        assert info.value.option == field
        assert info.value.received == value

    def test_unknown_field_is_rejected(self):
        with pytest.raises(ConfigError) as info:
            ScreenConfig.build(target="y", positive="1", colour="blue")
        assert info.value.option == "colour"

    def test_roles_are_parsed(self):
        cfg = ScreenConfig.build(target="y", positive="1", roles={"zip": "categorical"})
        assert cfg.roles == {"zip": Role.CATEGORICAL}

    def test_json_round_trip(self):
        cfg = ScreenConfig.build(
            target="y", top_fraction=0.1, budget=500, roles={"a": "text"}, drop=["b"], models=["linear"]
        )
        again = ScreenConfig.model_validate(cfg.model_dump(mode="json"))
        assert again == cfg


class TestToml:
    def test_winnow_table_with_overrides(self, tmp_path):
        f = tmp_path / "task.toml"
        f.write_text(
            '[winnow]\ntarget = "churn"\npositive = "yes"\nbudget = 0.1\nmodels = ["linear"]\n'
            'drop = ["a"]\n[winnow.roles]\nzip = "categorical"\n'
        )
        cfg = ScreenConfig.build(f, seed=7, budget=None)
        assert cfg.target == "churn" and cfg.positive == ["yes"]
        assert cfg.budget == Budget(fraction=0.1)
        assert cfg.models == ["linear"] and cfg.drop == ["a"] and cfg.seed == 7
        assert cfg.roles == {"zip": Role.CATEGORICAL}

    def test_top_level_keys_without_table(self, tmp_path):
        f = tmp_path / "task.toml"
        f.write_text('target = "spend"\ntop_fraction = 0.1\nbudget = 100\n')
        cfg = ScreenConfig.build(f)
        assert cfg.top_fraction == 0.1 and cfg.budget == Budget(count=100)

    def test_cli_overrides_win(self, tmp_path):
        f = tmp_path / "task.toml"
        f.write_text('[winnow]\ntarget = "churn"\npositive = "yes"\n')
        assert ScreenConfig.build(f, target="other").target == "other"

    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigError) as info:
            ScreenConfig.build(tmp_path / "nope.toml", target="y", positive="1")
        assert info.value.option == "--config"

    def test_invalid_toml(self, tmp_path):
        f = tmp_path / "bad.toml"
        f.write_text("[winnow\ntarget = ")
        with pytest.raises(ConfigError, match="valid TOML"):
            ScreenConfig.build(f)


def test_one_list_of_members_and_kinds() -> None:
    """The member names the config accepts are the portfolio's members, and every member's
    kind is a learner an artifact can hold."""
    from winnow.models.base import LEARNER_KINDS, learner_class
    from winnow.models.portfolio import MEMBERS

    assert set(MODEL_NAMES) == set(MEMBERS)
    for member in MEMBERS.values():
        assert member.kind in LEARNER_KINDS
    assert {learner_class(k).__name__ for k in LEARNER_KINDS} == {
        "LightGBMLearner",
        "LinearLearner",
        "DeepLearner",
        "CatBoostLearner",
        "OnnxLearner",
    }
