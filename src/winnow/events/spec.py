"""What a user says about an event log: whose events, when, cut at which dates, labelled how.

``winnow fit EVENTS --entity customer_id --time date --as-of 1997-10-01 --label-window 39w
--target 'sum(amount)' --top-fraction 0.1`` becomes an :class:`EventsConfig` inside the
:class:`~winnow.config.ScreenConfig`: the features come from the events *before* each cut, the
label from the events in the window *after* it. Light: pydantic only (``winnow --help`` stays cheap).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: aggregates a label can be: the value of the entity's events in the label window
LABEL_AGGREGATES = ("count", "sum", "max", "mean")
_DURATION = re.compile(r"^\s*(\d+)\s*([dwy])\s*$")
_UNIT_DAYS = {"d": 1, "w": 7, "y": 365}
_LABEL = re.compile(r"^\s*(count|sum|max|mean)\s*\(\s*([A-Za-z_][\w ]*?)?\s*\)\s*$")
#: the column of an entity table that names its cut date
AS_OF = "as_of"
#: the column marking stacked cuts' rows train / test (whole entities on one side)
SPLIT = "split"


def parse_duration(text: str) -> int:
    """``'39w'`` -> 273 days; ``'90d'``; ``'1y'`` = 365 days."""
    m = _DURATION.match(str(text))
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 90d, 13w or 1y")
    return int(m.group(1)) * _UNIT_DAYS[m.group(2)]


def parse_label(text: str) -> tuple[str, str | None]:
    """``'sum(amount)'`` -> ``('sum', 'amount')``; ``'count()'`` -> ``('count', None)``."""
    m = _LABEL.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a label like count(), sum(amount), max(amount) or mean(amount)")
    agg, col = m.group(1), (m.group(2) or None)
    if agg != "count" and col is None:
        raise ValueError(f"{agg}() needs a column: {agg}(amount)")
    return agg, col


def as_date(value: object) -> date:
    """A cut date from a date, a datetime (its day) or ISO text (``1998-07-01``, a time after it
    ignored); a ConfigError names ``--as-of`` for anything else."""
    from winnow.errors import ConfigError

    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ConfigError("--as-of", value, "a date like 1998-07-01") from None


def window_name(text: str) -> str:
    """The suffix a feature over this window carries: ``'13w'`` stays ``13w``, ``'090d'`` -> ``90d``."""
    m = _DURATION.match(str(text))
    assert m is not None
    return f"{int(m.group(1))}{m.group(2)}"


class EventsConfig(BaseModel):
    """How an event log becomes one row per entity as of a date (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    #: column naming whose event it is (a customer, a card, an aircraft)
    entity: str
    #: column with each event's time (a date, a timestamp, or ISO text)
    time: str
    #: cut dates: features from before each, label from the window after it; several cuts stack
    #: into one training table (each entity row tagged with its cut in ``as_of``)
    as_of: list[date] = Field(min_length=1)
    #: the label's aggregate over the window after the cut: count(), sum(col), max(col), mean(col)
    label: str = "count()"
    #: how long after the cut the label looks
    label_window: str = "30d"
    #: feature windows before the cut (``7d``, ``13w``, ...); None = those of 7d/30d/90d/365d
    #: shorter than the history, then the history itself
    windows: list[str] | None = None
    #: how far back features look (the longest window); None = from the first event to the first cut
    history: str | None = None
    #: event columns to use (numbers are summed/averaged, low-cardinality text gets shares);
    #: None = every column but the entity and the time
    columns: list[str] | None = None
    #: also train a sequence encoder (a GRU over each entity's last events) and use its
    #: out-of-fold score as a feature
    sequence: bool = False
    #: events per entity the sequence encoder reads (the most recent)
    sequence_length: int = Field(default=32, ge=2, le=512)

    @field_validator("as_of", mode="before")
    @classmethod
    def _dates(cls, v: object) -> object:
        from winnow.errors import ConfigError

        items = v if isinstance(v, list | tuple) else [v]
        try:
            return [as_date(item) for item in items]
        except ConfigError as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="after")
    def _check(self) -> EventsConfig:
        parse_label(self.label)
        parse_duration(self.label_window)
        for w in [*(self.windows or []), *([self.history] if self.history else [])]:
            parse_duration(w)
        if self.entity == self.time:
            raise ValueError("the entity and the time must be different columns")
        if len(set(self.as_of)) != len(self.as_of):
            raise ValueError("each --as-of date once")
        self.as_of = sorted(self.as_of)
        return self

    @property
    def label_column(self) -> str:
        """The entity table's label column: ``future_amount_sum``, ``future_events_count``."""
        agg, col = parse_label(self.label)
        return f"future_{col.replace(' ', '_') if col else 'events'}_{agg}"
