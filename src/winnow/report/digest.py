"""``winnow digest``: what a screener screened over a period, for the people who act on it.

The input is screening output with one row per scored record: the stream worker's audit table
(``--audit``: ``<table>_scored`` in DuckDB or PostgreSQL, or its Parquet folder), or any table
with a ``score`` column, the record's fields as columns or as one JSON ``record`` column, and
optionally ``selected``, ``scored_at``, ``id``, ``reasons`` and ``rule``: a ``winnow screen``
output (its selected rows, ranked, ``reason_1..N``), a ``winnow score`` output, or the
service's audit file (JSON lines of not-selected records with ``audited_at``).

The digest (:func:`build_digest`, a JSON-able dict) holds:

- **volume**: records scored and selected per ``interval``, the selection rate against
  the rate the artifact expects (its threshold's share of held-out rows);
- **top**: the best-scored selected records with their reasons;
- **themes**: the selected records grouped in the screener's embedding (k-means, seeded): each
  theme's size, mean score, the field values over-represented in it and, for text fields, the
  words that set it apart from the other selected records (log-odds with a prior);
- **new**: themes that hold many more of this period's selected records than of the previous
  period's (same length, just before), the score's drift from the previous period (PSI) and the
  inputs that drifted most from the training reference;
- **expected** and **reviews**: the precision and lift a selection of this size should give
  (from the fit's held-out rows), and where a review store is given, the realised precision and
  the recall estimate from people's verdicts.

Nothing in it depends on when it is written: the same input and options give the same bytes.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from winnow.config import Role
from winnow.errors import DataError

if TYPE_CHECKING:
    from winnow.screener import Screener

_WORD = re.compile(r"[a-z][a-z']+")
_STOP = frozenset(
    "the a an and or but of to in on for with is it this that was are be as at by from not have has had "
    "i you he she we they my me our your his her its their them so if very just too all can will would "
    "there what when which who than then out up about into more some no do did does been were one".split()
)
MAX_THEMES = 6


@dataclass(frozen=True)
class Period:
    since: datetime | None
    until: datetime | None

    def label(self) -> str:
        if self.since is None or self.until is None:
            return "all records"
        return f"{self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} UTC"


def parse_span(text: str, option: str = "--every") -> timedelta:
    """``15m``, ``6h``, ``1d``, ``1w`` as a time span."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not m or int(m.group(1)) == 0:
        from winnow.errors import ConfigError

        raise ConfigError(option, text, "a span like 15m, 6h, 1d or 1w")
    n, unit = int(m.group(1)), m.group(2)
    return {
        "m": timedelta(minutes=n),
        "h": timedelta(hours=n),
        "d": timedelta(days=n),
        "w": timedelta(weeks=n),
    }[unit]


def screened_frame(table: pa.Table, screener: Screener) -> pd.DataFrame:
    """The screening output as one frame: ``score``, ``selected``, ``scored_at`` (or missing),
    ``id``, ``reasons`` (lists) and ``rule``, then every field of the records."""
    names = table.column_names
    if "score" not in names:
        raise DataError(
            "the screening output has no score column",
            hint="Give the stream worker's audit table (--audit), a `screen` or `score` output, or "
            "the service's audit file.",
        )
    if "selected" in names:
        selected = table.column("selected").to_pandas().fillna(False).astype(bool)
    else:  # a `screen` output holds its selected rows (ranked); an audit file the others
        selected = pd.Series("rank" in names, index=range(table.num_rows), dtype=bool)
    meta = pd.DataFrame(
        {"score": pd.to_numeric(table.column("score").to_pandas(), errors="coerce"), "selected": selected}
    )
    when = next((c for c in ("scored_at", "audited_at") if c in names), None)
    meta["scored_at"] = (
        pd.to_datetime(table.column(when).to_pandas(), utc=True).dt.tz_localize(None) if when else pd.NaT
    )
    id_col = "id" if "id" in names else screener.id_column
    meta["id"] = table.column(id_col).to_pandas().astype(str) if id_col and id_col in names else None
    meta["rule"] = table.column("rule").to_pandas() if "rule" in names else None
    reason_cols = sorted((c for c in names if re.fullmatch(r"reason_\d+", c)), key=lambda c: int(c[7:]))
    if "reasons" in names:
        meta["reasons"] = [_as_list(v) for v in table.column("reasons").to_pylist()]
    elif reason_cols:  # a `screen` output: reason_1..N
        cols = [table.column(c).to_pylist() for c in reason_cols]
        meta["reasons"] = [[r for r in row if isinstance(r, str) and r] for row in zip(*cols, strict=True)]
    else:
        meta["reasons"] = None
    if "record" in names:
        records = [  # JSON text (a sink), or already an object (JSON lines such as the audit file)
            v if isinstance(v, dict) else json.loads(v) if isinstance(v, str) and v else {}
            for v in table.column("record").to_pylist()
        ]
        fields = pd.DataFrame.from_records(records)
    else:
        meta_cols = (
            "score",
            "selected",
            "scored_at",
            "audited_at",
            "rule",
            "reasons",
            "entry_id",
            "rank",
            "row",
        )
        keep = [c for c in names if c not in meta_cols and c not in reason_cols]
        fields = table.select(keep).to_pandas()
    fields = fields.drop(columns=[c for c in fields.columns if c in meta.columns], errors="ignore")
    return pd.concat([meta.reset_index(drop=True), fields.reset_index(drop=True)], axis=1)


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        try:
            got = json.loads(v)
        except json.JSONDecodeError:
            return [v]
        return [str(x) for x in got] if isinstance(got, list) else [str(got)]
    return [str(x) for x in v]


def _window(
    frame: pd.DataFrame, since: datetime | None, until: datetime | None
) -> tuple[pd.DataFrame, pd.DataFrame, Period, Period]:
    """This period's rows and the previous period's (the same length, just before)."""
    t = frame["scored_at"]
    if t.isna().all():
        return frame, frame.iloc[0:0], Period(None, None), Period(None, None)
    until = until or (t.max() + pd.Timedelta(microseconds=1)).to_pydatetime()
    since = since or (t.min()).to_pydatetime()
    span = until - since
    now = frame[(t >= since) & (t < until)]
    before = frame[(t >= since - span) & (t < since)]
    return now, before, Period(since, until), Period(since - span, since)


def _volume(now: pd.DataFrame, period: Period, interval: timedelta | None) -> list[dict[str, Any]]:
    if period.since is None or now.empty:
        n, sel = len(now), int(now["selected"].sum())
        return [{"start": None, "scored": n, "selected": sel, "rate": sel / n if n else 0.0}]
    assert period.until is not None
    span = period.until - period.since
    step = interval or (timedelta(hours=1) if span <= timedelta(days=2) else timedelta(days=1))
    k = ((now["scored_at"] - period.since) / step).astype(int)
    out = []
    for i in range(math.ceil(span / step)):
        part = now[k == i]
        n, sel = len(part), int(part["selected"].sum())
        start = period.since + i * step
        out.append(
            {"start": start.isoformat() + "Z", "scored": n, "selected": sel, "rate": sel / n if n else 0.0}
        )
    return out


def _top(now: pd.DataFrame, screener: Screener, top: int) -> list[dict[str, Any]]:
    chosen = (
        now[now["selected"]].sort_values(["score", "id"], ascending=[False, True], kind="stable").head(top)
    )
    if chosen.empty:
        return []
    reasons = list(chosen["reasons"]) if chosen["reasons"].notna().any() else _reasons(chosen, screener)
    details = _reason_details(chosen, screener)
    out = []
    for (_, row), why, objects in zip(chosen.iterrows(), reasons, details, strict=True):
        out.append(
            {
                "id": None if row["id"] is None else str(row["id"]),
                "score": round(float(row["score"]), 6),
                "rule": row["rule"] if isinstance(row["rule"], str) else None,
                "reasons": list(why),
                "reason_details": objects,
            }
        )
    return out


def _reason_details(rows: pd.DataFrame, screener: Screener) -> list[list[dict[str, Any]]]:
    """The top records' reasons as ``{column, value, contribution}`` objects, computed again
    from their fields (a sink keeps the reasons as text)."""
    sb = screener.score_batch(_fields(rows, screener))
    found: list[list[dict[str, Any]]] = [[] for _ in range(len(rows))]
    ok = np.flatnonzero(sb.ok)
    if ok.size:
        objects = screener.reason_objects(sb.inputs.take(ok), sb.typed, top=3, rows=ok)
        for j, obj in zip(ok.tolist(), objects, strict=True):
            found[j] = [{**o, "contribution": round(cast(float, o["contribution"]), 4)} for o in obj]
    return found


def _fields(frame: pd.DataFrame, screener: Screener) -> pa.Table:
    cols = screener.input_columns
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(
            f"the screening output lacks fields the screener uses: {', '.join(missing[:10])}",
            hint="Give the audit table with its record column, or the records' fields as columns.",
        )
    return pa.Table.from_pandas(frame[cols].reset_index(drop=True), preserve_index=False)


def _reasons(rows: pd.DataFrame, screener: Screener) -> list[list[str]]:
    scored = screener.score(_fields(rows, screener), output="pandas", reasons=3)
    cols = [c for c in scored.columns if c.startswith("reason_")]
    return [[r for r in row if isinstance(r, str) and r] for row in scored[cols].itertuples(index=False)]


def _words(text: Any) -> list[str]:
    return [w for w in _WORD.findall(str(text).lower()) if w not in _STOP] if isinstance(text, str) else []


def _distinct_words(texts: list[Any], inside: np.ndarray, n: int = 6) -> list[str]:
    """Words more common inside the group than in the rest (log-odds, prior 1; at least 3 uses)."""
    counts_in: Counter[str] = Counter()
    counts_out: Counter[str] = Counter()
    for t, flag in zip(texts, inside, strict=True):
        (counts_in if flag else counts_out).update(set(_words(t)))
    n_in, n_out = max(int(inside.sum()), 1), max(int((~inside).sum()), 1)
    scored = [
        (math.log((c + 1) / (n_in + 2)) - math.log((counts_out[w] + 1) / (n_out + 2)), w)
        for w, c in counts_in.items()
        if c >= 3
    ]
    return [w for s, w in sorted(scored, key=lambda x: (-x[0], x[1])) if s > 0][:n]


def _over_represented(group: pd.DataFrame, rest: pd.DataFrame, screener: Screener, n: int = 3) -> list[str]:
    """Field values (categories) or directions (numbers) that set the group apart."""
    found: list[tuple[float, str]] = []
    for spec in screener.specs_:
        if not spec.used or spec.name not in group.columns:
            continue
        if spec.role in (Role.CATEGORICAL, Role.BOOLEAN):
            g = group[spec.name].astype(str).value_counts(normalize=True)
            r = rest[spec.name].astype(str).value_counts(normalize=True)
            if g.empty:
                continue
            value, share = g.index[0], float(g.iloc[0])
            other = float(r.get(value, 0.0)) if len(rest) else 0.0
            if share >= 0.4 and share - other >= 0.2:
                found.append((share - other, f"{spec.name} = {value} ({share:.0%} vs {other:.0%})"))
        elif spec.role == Role.NUMERIC:
            g = pd.to_numeric(group[spec.name], errors="coerce").dropna()
            r = pd.to_numeric(rest[spec.name], errors="coerce").dropna()
            if len(g) < 3 or len(r) < 3:
                continue
            scale = float(np.nanstd(np.concatenate([g.to_numpy(), r.to_numpy()]))) or 1.0
            gap = (float(g.median()) - float(r.median())) / scale
            if abs(gap) >= 0.5:
                word = "high" if gap > 0 else "low"
                found.append(
                    (abs(gap) / 2, f"{word} {spec.name} (median {g.median():.4g} vs {r.median():.4g})")
                )
    return [text for _, text in sorted(found, key=lambda x: (-x[0], x[1]))[:n]]


def _themes(
    now: pd.DataFrame, before: pd.DataFrame, screener: Screener, seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from sklearn.cluster import KMeans

    from winnow.similarity.embedding import embed_all

    chosen = now[now["selected"]].reset_index(drop=True)
    if len(chosen) < 10:
        return [], {"kind": None, "note": "fewer than 10 selected records: no themes"}
    x = embed_all(screener, _fields(chosen, screener))
    k = int(min(MAX_THEMES, max(2, round(math.sqrt(len(chosen) / 8)))))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    labels = km.labels_
    prev = before[before["selected"]].reset_index(drop=True)
    prev_share = np.zeros(k)
    if len(prev):
        prev_labels = km.predict(embed_all(screener, _fields(prev, screener)).astype(x.dtype))
        prev_share = np.bincount(prev_labels, minlength=k) / len(prev)
    texts = [s.name for s in screener.specs_ if s.used and s.role == Role.TEXT and s.name in chosen.columns]
    themes: list[dict[str, Any]] = []
    for c in range(k):
        inside = labels == c
        group, rest = chosen[inside], chosen[~inside]
        share = float(inside.mean())
        best = group.sort_values(["score", "id"], ascending=[False, True], kind="stable").head(3)
        words = {t: _distinct_words(list(chosen[t]), inside) for t in texts}
        themes.append(
            {
                "theme": c + 1,
                "records": int(inside.sum()),
                "share": round(share, 4),
                "mean_score": round(float(group["score"].mean()), 4),
                "set_apart_by": _over_represented(group, rest, screener),
                "words": {t: w for t, w in words.items() if w},
                "examples": [None if v is None else str(v) for v in best["id"]],
                "previous_share": round(float(prev_share[c]), 4) if len(prev) else None,
                "new": bool(len(prev) >= 10 and share >= 0.1 and prev_share[c] < share / 3),
            }
        )
    themes.sort(key=lambda t: (-t["records"], t["theme"]))
    for i, t in enumerate(themes):
        t["theme"] = i + 1
    return themes, {"kind": "k-means in the screener's embedding", "k": k}


def _psi(now: np.ndarray, before: np.ndarray, bins: int = 10) -> float | None:
    if len(now) < 20 or len(before) < 20:
        return None
    edges = np.unique(np.quantile(before, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return None
    edges[0], edges[-1] = -np.inf, np.inf
    a = np.histogram(now, edges)[0] / len(now) + 1e-4
    b = np.histogram(before, edges)[0] / len(before) + 1e-4
    return float(np.sum((a - b) * np.log(a / b)))


def build_digest(
    table: pa.Table,
    screener: Screener,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    every: timedelta | None = None,
    interval: timedelta | None = None,
    top: int = 20,
    reviews: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The digest of ``table`` (screening output) for the period ``[since, until)``: by default
    from the first record to just after the last; with ``every`` (and no ``since``) the last
    ``every`` before ``until``, as a scheduled digest wants (``--every 1d`` from cron: the last
    day). ``interval``: the volume table's step (default: hours up to two days, else days)."""
    frame = screened_frame(table, screener)
    if every is not None and since is None:
        t = frame["scored_at"]
        if t.isna().all():
            raise DataError(
                "--every needs a scored_at column", hint="Give the audit table, or leave --every out."
            )
        end = until or (t.max() + pd.Timedelta(microseconds=1)).to_pydatetime()
        since, until = end - every, end
    now, before, period, previous = _window(frame, since, until)
    if now.empty:
        raise DataError(
            f"no screened records in the period {period.label()}", hint="Check --since / --until."
        )
    n, sel = len(now), int(now["selected"].sum())
    themes, how = _themes(now, before, screener, seed)
    drift = None
    if len(now) >= 50 and sel:
        report = screener.monitor(_fields(now, screener))
        drift = [
            {"feature": f["feature"], "psi": round(float(f["psi"]), 4), "status": f["status"]}
            for f in report.get("features", [])[:5]
            if f.get("psi") is not None
        ]
    out: dict[str, Any] = {
        "period": {"label": period.label(), "since": _iso(period.since), "until": _iso(period.until)},
        "previous": {"label": previous.label(), "records": len(before)} if len(before) else None,
        "artifact": {"target": screener.target_["description"], "version": screener.version_},
        "scored": n,
        "selected": sel,
        "selection_rate": sel / n,
        "expected_rate": float(screener.threshold_.fraction),
        "volume": _volume(now, period, interval),
        "top": _top(now, screener, top),
        "themes": themes,
        "themes_method": how,
        "new": {
            "themes": [t["theme"] for t in themes if t["new"]],
            "score_psi": _round(_psi(now["score"].to_numpy(), before["score"].to_numpy())),
            "selection_rate_before": (float(before["selected"].mean()) if len(before) else None),
            "drifted_inputs": drift,
        },
        "expected": screener.expected_at(sel / n) if sel else None,
        "reviews": None,
    }
    if reviews is not None:
        from winnow.review.store import ReviewStore

        with ReviewStore(reviews) as store:
            out["reviews"] = store.stats()
    return out


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat() + "Z"


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)
