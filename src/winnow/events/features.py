"""Features generated from an event log, in the manner of deep feature synthesis.

For each entity seen before a cut date, from its events in the history before the cut:
``events_count_<w>``, ``<col>_sum_<w>``, ``<col>_mean_<w>``, ``<col>_max_<w>`` over each window
``w``; ``<col>_min_<h>``, ``<col>_std_<h>`` and ``active_days_<h>`` over the whole history ``h``;
trends ``<col>_trend_<w>`` (this window against the one before it, in [-1, 1]) where two windows
fit in the history; ``recency_days``, ``tenure_days`` (capped at the history + 1 day, so a later
cut with a longer past sees the same range), ``gap_mean_days``, ``gap_max_days``,
``gap_last_days``; per-value shares of low-cardinality text columns (``carrier_share_UA_90d``)
and distinct counts of the others.

The definitions (columns, values, windows) are learned once, from the events before the first
cut, stored in the artifact (:meth:`EventFeatures.to_json`) and replayed when screening: the
same SQL for any cut. Every query reads only ``t < cut`` for features and only
``cut <= t < cut + label window`` for the label: neither can see the other side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from winnow.errors import DataError
from winnow.events.log import EventLog, quote
from winnow.events.spec import AS_OF, EventsConfig, parse_duration, parse_label, window_name

#: gap features (days between the entity's events in the history)
GAPS = ("gap_mean_days", "gap_max_days", "gap_last_days")
#: default windows (days) kept where shorter than the history
DEFAULT_WINDOWS = (7, 30, 90, 365)
#: a text column with at most this many distinct values before the first cut gets per-value shares
MAX_CATEGORIES = 50
#: shares for at most this many of its most frequent values
TOP_VALUES = 10
_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
    "BOOLEAN",
)


def _is_numeric(duck_type: str) -> bool:
    return duck_type.upper() in _NUMERIC or duck_type.upper().startswith("DECIMAL")


def _slug(text: str) -> str:
    return re.sub(r"\W+", "_", str(text)).strip("_")[:40] or "blank"


def sql_timestamp(d: date) -> str:
    return f"TIMESTAMP '{d.isoformat()} 00:00:00'"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class EventFeatures:
    """The learned definitions: which columns, which values, which windows (see module docstring)."""

    entity: str
    time: str
    numeric: list[str]
    #: text column -> the values that get a share
    categories: dict[str, list[str]]
    #: text columns with too many values for shares: their distinct count only
    distinct: list[str]
    #: (name, days), ascending; the last is the history
    windows: list[tuple[str, int]]
    label: str
    label_days: int
    names: list[str] = field(default_factory=list)

    @property
    def history(self) -> tuple[str, int]:
        return self.windows[-1]

    @classmethod
    def learn(cls, log: EventLog, cfg: EventsConfig) -> EventFeatures:
        first_cut = cfg.as_of[0]
        first, _ = log.span()
        if first is None or first.date() >= first_cut:
            raise DataError(
                f"no events before the first cut {first_cut}",
                column=cfg.time,
                hint=f"Choose an --as-of after the first event ({first}).",
            )
        if cfg.history:
            history = (window_name(cfg.history), parse_duration(cfg.history))
        else:
            days = max((first_cut - first.date()).days, 1)
            history = (f"{days}d", days)
        if cfg.windows:
            wins = sorted({(window_name(w), parse_duration(w)) for w in cfg.windows}, key=lambda x: x[1])
            wins = [w for w in wins if w[1] < history[1]]
        else:
            wins = [(f"{d}d", d) for d in DEFAULT_WINDOWS if d < history[1]]
        chosen = cfg.columns if cfg.columns is not None else list(log.types)
        missing = [c for c in chosen if c not in log.types]
        if missing:
            raise DataError(
                "event column not found",
                column=missing[0],
                hint=f"Columns found: {', '.join(log.types)}.",
            )
        agg, col = parse_label(cfg.label)
        if col is not None and col not in log.types:
            raise DataError("the label's column is not in the event log", column=col)
        if col is not None and not _is_numeric(log.types[col]):
            raise DataError(
                f"{agg}() needs a numeric column", column=col, hint="Use count() or a number column."
            )
        numeric = [c for c in chosen if _is_numeric(log.types[c])]
        categories: dict[str, list[str]] = {}
        distinct: list[str] = []
        before = f"t < {sql_timestamp(first_cut)}"
        for c in chosen:
            if c in numeric or not log.types[c].upper().startswith(("VARCHAR", "ENUM")):
                continue
            n = log.con.execute(f"SELECT count(DISTINCT {quote(c)}) FROM events WHERE {before}").fetchall()[
                0
            ][0]
            if n > MAX_CATEGORIES:
                distinct.append(c)
                continue
            rows = log.con.execute(
                f"SELECT {quote(c)} AS v, count(*) AS n FROM events WHERE {before} AND v IS NOT NULL "
                f"GROUP BY v ORDER BY n DESC, v LIMIT {TOP_VALUES}"
            ).fetchall()
            categories[c] = [str(r[0]) for r in rows]
        out = cls(
            entity=cfg.entity,
            time=cfg.time,
            numeric=numeric,
            categories=categories,
            distinct=distinct,
            windows=[*wins, history],
            label=cfg.label,
            label_days=parse_duration(cfg.label_window),
        )
        out.names = [name for name, _ in out._feature_sql(first_cut)] + list(GAPS)
        return out

    # ------------------------------------------------------------------ SQL
    def _feature_sql(self, cut: date) -> list[tuple[str, str]]:
        """(name, SQL expression over the entity's events before the cut), in output order."""
        c = sql_timestamp(cut)
        hname, hdays = self.history
        since = {days: f"t >= {c} - INTERVAL {days} DAY" for _, days in self.windows}
        out: list[tuple[str, str]] = []
        for wname, days in self.windows:
            out.append((f"events_count_{wname}", f"count(*) FILTER (WHERE {since[days]})"))
        for col in self.numeric:
            q, s = quote(col), _slug(col)
            x = f"CAST({q} AS DOUBLE)"
            for wname, days in self.windows:
                out.append((f"{s}_sum_{wname}", f"coalesce(fsum({x}) FILTER (WHERE {since[days]}), 0)"))
                out.append((f"{s}_mean_{wname}", f"favg({x}) FILTER (WHERE {since[days]})"))
                out.append((f"{s}_max_{wname}", f"max({x}) FILTER (WHERE {since[days]})"))
            out.append((f"{s}_min_{hname}", f"min({x}) FILTER (WHERE {since[hdays]})"))
            out.append((f"{s}_std_{hname}", f"stddev_samp({x}) FILTER (WHERE {since[hdays]})"))
        for wname, days in self.windows:
            if 2 * days > hdays:
                continue
            prev = f"t >= {c} - INTERVAL {2 * days} DAY AND t < {c} - INTERVAL {days} DAY"
            for label, x in [
                ("events", "1.0"),
                *[(_slug(col), f"CAST({quote(col)} AS DOUBLE)") for col in self.numeric],
            ]:
                now_s = f"coalesce(fsum({x}) FILTER (WHERE {since[days]}), 0)"
                prev_s = f"coalesce(fsum({x}) FILTER (WHERE {prev}), 0)"
                out.append(
                    (
                        f"{label}_trend_{wname}",
                        f"coalesce(({now_s} - {prev_s}) / nullif(abs({now_s}) + abs({prev_s}), 0), 0)",
                    )
                )
        out.append((f"active_days_{hname}", f"count(DISTINCT CAST(t AS DATE)) FILTER (WHERE {since[hdays]})"))
        cap = hdays + 1
        out.append(("recency_days", f"least(epoch({c} - max(t)) / 86400.0, {cap})"))
        out.append(("tenure_days", f"least(epoch({c} - min(t)) / 86400.0, {cap})"))
        for col, values in self.categories.items():
            q, s = quote(col), _slug(col)
            seen: set[str] = set()
            for v in values:
                name = f"{s}_share_{_slug(v)}_{hname}"
                while name in seen:
                    name += "_"
                seen.add(name)
                hit = f"CASE WHEN CAST({q} AS VARCHAR) = {_lit(v)} THEN 1.0 ELSE 0.0 END"
                out.append((name, f"favg({hit}) FILTER (WHERE {since[hdays]})"))
        for col in self.distinct:
            out.append(
                (
                    f"{_slug(col)}_distinct_{hname}",
                    f"count(DISTINCT {quote(col)}) FILTER (WHERE {since[hdays]})",
                )
            )
        return out

    def entity_table(self, log: EventLog, cut: date, with_label: bool = False) -> pa.Table:
        """One row per entity with an event before ``cut``: the entity, ``as_of`` and the features
        (and the label over the window after the cut when ``with_label``), sorted by entity."""
        return log.con.sql(self.entity_query(log, cut, with_label)).to_arrow_table()

    def entity_query(self, log: EventLog, cut: date, with_label: bool) -> str:
        """The query of :meth:`entity_table`, its parts built first: the aggregates, the gaps and
        the label go to tables of the log's on-disk database, so each step stays within DuckDB's
        memory limit (as one query, the join and sort of ~50 columns of millions of entities
        did not)."""
        c = sql_timestamp(cut)
        hdays = self.history[1]
        exprs = self._feature_sql(cut)
        tag = cut.strftime("%Y%m%d")
        selects = ",\n  ".join(f"{sql} AS {quote(name)}" for name, sql in exprs)
        gap = "epoch(t - lag(t) OVER (PARTITION BY e ORDER BY t)) / 86400.0"
        log.con.execute(
            f"CREATE OR REPLACE TABLE agg_{tag} AS SELECT e,\n  {selects}\n"
            f"FROM events WHERE t < {c} GROUP BY e"
        )
        log.con.execute(f"""CREATE OR REPLACE TABLE gaps_{tag} AS
  SELECT e, avg(g) AS gap_mean_days, max(g) AS gap_max_days, arg_max(g, t) AS gap_last_days
  FROM (SELECT e, t, {gap} AS g FROM (
    SELECT DISTINCT e, t FROM events WHERE t < {c} AND t >= {c} - INTERVAL {hdays} DAY))
  WHERE g IS NOT NULL GROUP BY e""")
        label_join, label_col = "", ""
        if with_label:
            agg, col = parse_label(self.label)
            x = "1" if col is None else f"CAST({quote(col)} AS DOUBLE)"
            fn = {"count": "count(*)", "sum": f"fsum({x})", "max": f"max({x})", "mean": f"favg({x})"}[agg]
            end = f"{c} + INTERVAL {self.label_days} DAY"
            log.con.execute(
                f"CREATE OR REPLACE TABLE label_{tag} AS "
                f"SELECT e, {fn} AS y FROM events WHERE t >= {c} AND t < {end} GROUP BY e"
            )
            label_join = f"LEFT JOIN label_{tag} lab USING (e)"
            fill = "coalesce(lab.y, 0)" if agg in ("count", "sum", "max") else "lab.y"
            label_col = f", CAST({fill} AS DOUBLE) AS {quote(self.label_name)}"
        return f"""
SELECT a.e AS {quote(self.entity)}, DATE '{cut.isoformat()}' AS {AS_OF},
  {", ".join(f"a.{quote(n)}" for n, _ in exprs)},
  g.gap_mean_days, g.gap_max_days, g.gap_last_days{label_col}
FROM agg_{tag} a LEFT JOIN gaps_{tag} g USING (e) {label_join}
ORDER BY a.e
"""

    @property
    def label_name(self) -> str:
        agg, col = parse_label(self.label)
        return f"future_{_slug(col) if col else 'events'}_{agg}"

    def check_label_window(self, log: EventLog, cut: date) -> None:
        """Refuse a training cut whose label window runs past the last event (its labels would
        be cut short)."""
        _, last = log.span()
        end = cut + timedelta(days=self.label_days)
        if last is None or last.date() < end - timedelta(days=1):
            latest = (last.date() - timedelta(days=self.label_days - 1)) if last is not None else None
            raise DataError(
                f"the label window after {cut} ends {end}, after the last event ({last})",
                column=self.time,
                hint=f"Choose --as-of dates on or before {latest}, or a shorter --label-window.",
            )

    # ------------------------------------------------------------------ artifact
    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "time": self.time,
            "numeric": self.numeric,
            "categories": self.categories,
            "distinct": self.distinct,
            "windows": [list(w) for w in self.windows],
            "label": self.label,
            "label_days": self.label_days,
            "names": self.names,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EventFeatures:
        return cls(
            entity=d["entity"],
            time=d["time"],
            numeric=list(d["numeric"]),
            categories={k: list(v) for k, v in d["categories"].items()},
            distinct=list(d["distinct"]),
            windows=[(str(n), int(days)) for n, days in d["windows"]],
            label=d["label"],
            label_days=int(d["label_days"]),
            names=list(d["names"]),
        )
