"""Safe expressions for the user's baseline rule: arithmetic only, never code."""

from __future__ import annotations

import numpy as np
import pytest

from winnow.errors import ConfigError
from winnow.expressions import Expression

COLS = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([0.0, 10.0, -1.0])}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", [1.0, 2.0, 3.0]),
        ("a * 2 + b", [2.0, 14.0, 5.0]),
        ("(a - 1) / 2", [0.0, 0.5, 1.0]),
        ("a ** 2 % 5", [1.0, 4.0, 4.0]),
        ("-a", [-1.0, -2.0, -3.0]),
        ("+a", [1.0, 2.0, 3.0]),
        ("log1p(b * 0) + sqrt(a * a)", [1.0, 2.0, 3.0]),
        ("max(a, b)", [1.0, 10.0, 3.0]),
        ("min(a, 2)", [1.0, 2.0, 2.0]),
        ("abs(b)", [0.0, 10.0, 1.0]),
        ("a > 1", [False, True, True]),
        ("1 < a <= 2", [False, True, False]),
        ("a == 2 or b < 0", [False, True, True]),
        ("a > 1 and not b > 5", [False, False, True]),
        ("a != 3", [True, True, False]),
    ],
)
def test_evaluate(text, expected):
    np.testing.assert_allclose(Expression(text).evaluate(COLS), expected)


def test_names_are_collected_without_functions():
    assert Expression("log1p(spend) * 2 + visits - spend").names == ["spend", "visits"]


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "a.real",
        "a[0]",
        "lambda: 1",
        "[a for a in b]",
        "open('x')",
        "[a, b]",
        "a in b",
        "a in (b, 1)",
        "a is 1",
        "lower(a, b)",
        "f'{a}'",
        "a @ b",
        "a << 1",
        "log(x=a)",
        "(lambda: a)()",
    ],
)
def test_anything_but_arithmetic_is_refused(text):
    with pytest.raises(ConfigError) as info:
        Expression(text)
    assert info.value.option == "--baseline"


def test_syntax_error_is_a_config_error():
    with pytest.raises(ConfigError, match="Syntax error"):
        Expression("a +", option="rule")


def test_unknown_column_at_evaluation():
    with pytest.raises(ConfigError, match="Unknown: zzz"):
        Expression("a + zzz").evaluate(COLS)


def test_division_by_zero_does_not_raise():
    out = Expression("a / b").evaluate(COLS)
    assert np.isinf(out[0]) and out[1] == pytest.approx(0.2)
