"""Named business rules beside the model, as fraud and lead-screening teams use them.

A rule is an expression over a record's fields (see :mod:`winnow.expressions`) and an action:
``select`` forces the record into the selection, ``exclude`` keeps it out whatever its score.
The response names the rule that fired (reason ``rule:<name>``). The same rules apply in batch
screening, the HTTP service and the stream worker. When both kinds fire, ``exclude`` wins.

Config (TOML)::

    [[winnow.rules]]
    name = "big_foreign_order"
    when = "amount > 10000 and country != home_country"
    action = "select"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from winnow.errors import ConfigError
from winnow.expressions import NUMBER, TEXT, Expression


class Rule(BaseModel):
    """One named rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    when: str
    action: Literal["select", "exclude"] = "select"


@dataclass
class RuleHits:
    """Per row: the first rule that forces selection / exclusion (None where none fired)."""

    select: list[str | None]
    exclude: list[str | None]

    def forced(self) -> np.ndarray:
        return np.array([s is not None for s in self.select], dtype=bool)

    def excluded(self) -> np.ndarray:
        return np.array([e is not None for e in self.exclude], dtype=bool)

    def name(self, i: int) -> str | None:
        return self.exclude[i] or self.select[i]


#: the expression type of each column role (:class:`winnow.config.Role` values; roles not
#: listed, such as ids and dates: a column may hold anything)
ROLE_TYPES = {"numeric": NUMBER, "boolean": NUMBER, "categorical": TEXT, "text": TEXT, "image": TEXT}


class RuleSet:
    """Compiled rules, evaluated on a whole batch at once.

    ``roles`` (column -> role, the artifact's schema) type-checks every rule now: a rule whose
    column types cannot work, or that is not a condition, is refused with a ConfigError naming
    it, before any record is scored. Evaluation itself never fails (see :mod:`winnow.expressions`).
    """

    def __init__(self, rules: list[Rule] | None = None, roles: Mapping[str, str] | None = None) -> None:
        self.rules = list(rules or [])
        self._compiled = [(r, Expression(r.when, option=f"rules.{r.name}")) for r in self.rules]
        if roles is not None:
            types = {name: ROLE_TYPES[role] for name, role in roles.items() if role in ROLE_TYPES}
            for rule, expr in self._compiled:
                kind = expr.check_types(types, f"rules.{rule.name}")
                if kind in (NUMBER, TEXT):
                    raise ConfigError(
                        f"rules.{rule.name}",
                        rule.when,
                        "a condition (a comparison, `in`, `is None`, and/or/not)",
                        f"It gives a {kind}, not true/false.",
                    )

    def __bool__(self) -> bool:
        return bool(self.rules)

    @property
    def columns(self) -> list[str]:
        names: list[str] = []
        for _, expr in self._compiled:
            names += [n for n in expr.names if n not in names]
        return names

    def evaluate(self, table: pa.Table) -> RuleHits:
        n = table.num_rows
        hits = RuleHits(select=[None] * n, exclude=[None] * n)
        if not self._compiled:
            return hits
        for rule, expr in self._compiled:
            if any(name not in table.column_names for name in expr.names):
                continue  # a rule over fields this input lacks never fires (every value missing)
            fired = np.broadcast_to(np.asarray(expr.evaluate_table(table), dtype=bool), (n,))
            target = hits.select if rule.action == "select" else hits.exclude
            for i in np.flatnonzero(fired):
                if target[i] is None:
                    target[i] = rule.name
        return hits
