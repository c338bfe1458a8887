"""Rules are total: what cannot work is refused when the rules are read against the schema,
with the rule's name and the reason; what is accepted always evaluates (missing is false)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from winnow.errors import ConfigError
from winnow.rules import Rule, RuleSet

ROLES = {"amount": "numeric", "country": "categorical", "home": "categorical", "note": "text"}


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("amount + country > 1", "country is text; arithmetic needs numbers"),
        ("country > 5", "country (text) is compared with 5 (number)"),
        ("amount == 'big'", "amount (number) is compared with 'big' (text)"),
        ("amount", "It gives a number, not true/false."),
        ("lower(country)", "It gives a text, not true/false."),
        ("lower(amount) == 'x'", "lower() takes text, not amount"),
        ("log(country) > 1", "log() takes number, not country"),
        ("country in ('US', 1)", "mixes types"),
        ("(amount if amount > 1 else 'none') == 1", "different types"),
        ("amount in (1, 2) and country in (3,)", "country (text) is compared with (3,) (number)"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_by_name(when: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        RuleSet([Rule(name="r1", when=when)], roles=ROLES)
    assert e.value.option == "rules.r1" and reason in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("when", "message"),
    [("x is 1", "is None"), ("x in y", "list of literals"), ("[x, y] == 1", "only after `in`")],
)
def test_unsupported_forms_are_refused_when_read(when: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"rules\.r1") as e:
        RuleSet([Rule(name="r1", when=when)])
    assert message in str(e.value)


TABLE = pa.table(
    {
        "amount": pa.array([5.0, None, 20_000.0, 300.0], pa.float64()),
        "country": pa.array(["US", "FR", None, "ca"], pa.string()),
        "home": pa.array(["US", "US", "US", "CA"], pa.string()),
        "note": pa.array(["Urgent wire", None, "ok", "URGENT"], pa.string()),
        "free": pa.array(["12", "abc", None, "7.5"], pa.string()),  # not in the schema
    }
)


@pytest.mark.parametrize(
    ("when", "fired"),
    [
        ("country in ('US', 'CA')", [True, False, False, False]),
        ("upper(country) in ('US', 'CA')", [True, False, False, True]),
        ("country not in ('US',)", [False, True, False, True]),  # missing is neither in nor out
        ("amount is None", [False, True, False, False]),
        ("country is not None and amount > 100", [False, False, False, True]),
        ("amount > 10000 or country != home", [False, True, True, True]),
        ("contains(lower(note), 'urgent')", [True, False, False, True]),
        ("startswith(note, 'Urg') or endswith(note, 'NT')", [True, False, False, True]),
        ("length(note) > 5", [True, False, False, True]),
        ("(amount if amount is not None else 0) < 10", [True, True, False, False]),
        ("('big' if amount > 1000 else 'small') == 'big'", [False, False, True, False]),
        ("free > 10", [True, False, False, False]),  # text read as a number; not one: missing
        ("amount * 2 > 500", [False, False, True, True]),
    ],
)
def test_the_language_evaluates_without_error(when: str, fired: list[bool]) -> None:
    hits = RuleSet([Rule(name="r", when=when)], roles=ROLES).evaluate(TABLE)
    assert list(hits.forced()) == fired


def test_exclude_wins_and_names_the_rule() -> None:
    rules = RuleSet(
        [
            Rule(name="big", when="amount > 100", action="select"),
            Rule(name="foreign", when="country not in ('US', 'CA', 'ca')", action="exclude"),
        ],
        roles=ROLES,
    )
    hits = rules.evaluate(TABLE)
    assert [hits.name(i) for i in range(4)] == [None, "foreign", "big", "big"]
    assert np.array_equal(hits.excluded(), [False, True, False, False])
