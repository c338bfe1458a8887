"""The exception hierarchy, exit codes and messages built from structured fields."""

from __future__ import annotations

import pytest

from winnow.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    NotFittedError,
    SchemaError,
    WinnowError,
)


@pytest.mark.parametrize(
    ("cls", "code"), [(ConfigError, 2), (DataError, 3), (SchemaError, 3), (ArtifactError, 4)]
)
def test_exit_codes(cls, code):
    assert cls.exit_code == code


def test_hierarchy():
    assert issubclass(SchemaError, DataError)
    for cls in (ConfigError, DataError, SchemaError, ArtifactError, NotFittedError):
        assert issubclass(cls, WinnowError)
    # callers may catch the matching built-in
    assert issubclass(ConfigError, ValueError)
    assert issubclass(DataError, ValueError)
    assert issubclass(NotFittedError, RuntimeError)


def test_config_error_message_names_option_expected_and_received():
    e = ConfigError("--budget", "abc", "a fraction like 0.05", "Try 0.05.")
    assert (e.option, e.received, e.expected, e.hint) == (
        "--budget",
        "abc",
        "a fraction like 0.05",
        "Try 0.05.",
    )
    assert str(e) == "--budget: expected a fraction like 0.05, received 'abc'. Try 0.05."


def test_data_error_message_has_record_and_column():
    e = DataError("bad value", column="spend", record=7, hint="Fix it.")
    assert e.column == "spend" and e.record == 7
    assert str(e) == "record 7, column 'spend': bad value. Fix it."
    assert str(DataError("plain")) == "plain"


def test_schema_error_lists_missing_and_wrong_type():
    e = SchemaError("mismatch;", missing=["a", "b"], wrong_type=[("c", "numbers", "string")])
    assert e.missing == ["a", "b"]
    assert e.wrong_type == [("c", "numbers", "string")]
    msg = str(e)
    assert "missing columns: 'a', 'b'." in msg
    assert "column 'c': expected numbers, received string." in msg


def test_artifact_error_names_path_and_problem():
    e = ArtifactError("/x/y", "is broken", "Refit.")
    assert e.path == "/x/y" and e.problem == "is broken"
    assert str(e) == "artifact '/x/y': is broken. Refit."


def test_not_fitted_error_says_how_to_fix():
    assert "call .fit(...) or Screener.load(path)" in str(NotFittedError())
    assert str(NotFittedError("Preprocessor")).startswith("Preprocessor is not fitted")
