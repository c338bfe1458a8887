"""Where reviews live: the records waiting for a person, and the verdicts people gave.

A store is a DuckDB file (``duckdb:reviews.duckdb``, ``duckdb:///abs/path.duckdb``) or a
PostgreSQL database (``postgresql://user@host/db``); winnow creates its three tables there:

- ``winnow_review_queue``: records a screen chose for review (every selected record, a seeded
  sample of the others) with score, selected flag, reasons, the record's JSON and the artifact
  version; keyed by record id (a record screened again replaces its earlier entry);
- ``winnow_reviews``: one verdict per record id (``right`` / ``wrong``, the latest wins) with
  the label it means (1 = high-value: a selected record judged right, or a not-selected one
  judged wrong), reviewer, note, time and artifact version;
- ``winnow_review_totals``: how many records were screened and selected in all, so the sample
  of not-selected records can be scaled up to estimate recall.

The figures (:meth:`ReviewStore.stats`): realised precision = right / reviewed among the
selected records, with a 90% Wilson interval; the recall estimate = the high-value records the
selection caught / (those plus the ones estimated missed: the share of sampled not-selected
records judged high-value times all not-selected records screened); the lift estimate = the
realised precision over the share of high-value records among all screened (caught + missed).

DuckDB allows one process per file: a service with several workers, or a review page beside a
running stream worker, needs PostgreSQL.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from winnow.errors import ConfigError, DataError
from winnow.extras import require

QUEUE, REVIEWS, TOTALS = "winnow_review_queue", "winnow_reviews", "winnow_review_totals"
VERDICTS = ("right", "wrong")
#: the z of a two-sided 90% interval
_Z90 = 1.6448536269514722
_EXAMPLE = "duckdb:reviews.duckdb, duckdb:///abs/path/reviews.duckdb or postgresql://user@host/db"

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {QUEUE} (id VARCHAR PRIMARY KEY, score DOUBLE PRECISION NOT NULL, "
    "selected BOOLEAN NOT NULL, rule VARCHAR, reasons VARCHAR NOT NULL, record VARCHAR NOT NULL, "
    "artifact_version VARCHAR NOT NULL, screened_at TIMESTAMP NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {REVIEWS} (id VARCHAR PRIMARY KEY, verdict VARCHAR NOT NULL, "
    "label INTEGER NOT NULL, selected BOOLEAN NOT NULL, score DOUBLE PRECISION NOT NULL, "
    "record VARCHAR NOT NULL, reviewer VARCHAR NOT NULL, note VARCHAR, "
    "artifact_version VARCHAR NOT NULL, reviewed_at TIMESTAMP NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {TOTALS} (artifact_version VARCHAR PRIMARY KEY, "
    "screened BIGINT NOT NULL, selected BIGINT NOT NULL)",
)


@dataclass(frozen=True)
class Screened:
    """One screened record offered for review."""

    id: str
    score: float
    selected: bool
    rule: str | None
    reasons: list[str]
    record: dict[str, Any]
    artifact_version: str


def is_store_url(text: str) -> bool:
    """Whether ``text`` names a review store rather than a file or a SQL table/query."""
    if text.startswith(("postgresql://", "postgres://")):
        return "table=" not in text and "query=" not in text
    return text.startswith("duckdb:") and "?" not in text


def _location(url: str) -> tuple[str, str]:
    if url.startswith("duckdb:"):
        path = url[len("duckdb:") :]
        path = path[2:] if path.startswith("//") else path
        if not path:
            raise ConfigError("--review", url, f"a review store URL ({_EXAMPLE})")
        return "duckdb", path
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql", url
    raise ConfigError("--review", url, f"a review store URL ({_EXAMPLE})")


def wilson(hits: int, n: int, z: float = _Z90) -> tuple[float, float]:
    """The Wilson score interval of a proportion (``(0, 1)`` when nothing was observed)."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def label_of(verdict: str, selected: bool) -> int:
    """1 (high-value) for a selected record judged right or a not-selected one judged wrong."""
    return int((verdict == "right") == selected)


class ReviewStore:
    """The review tables in one DuckDB file or PostgreSQL database; safe to share between
    threads (one connection, used under a lock)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine, self._dsn = _location(url)
        self._lock = threading.Lock()
        self._con: Any = None

    @property
    def shown(self) -> str:
        """The URL for messages, a password left out."""
        import re

        return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", self.url)

    def open(self) -> ReviewStore:
        if self._con is not None:
            return self
        if self.engine == "duckdb":
            duckdb = require("duckdb")
            Path(self._dsn).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._con = duckdb.connect(self._dsn)
            except duckdb.IOException as e:  # another process holds the file
                raise DataError(
                    f"cannot open the review store {self.shown}: {e}",
                    hint="DuckDB allows one process per file: stop the other one, or use PostgreSQL.",
                ) from e
        else:
            psycopg = require("psycopg")
            try:
                self._con = psycopg.connect(self._dsn, autocommit=True)
            except psycopg.Error as e:
                raise DataError(
                    f"cannot connect to the review store {self.shown}: {e}",
                    hint="Check the URL and the server.",
                ) from e
        for statement in _SCHEMA:
            self._execute(statement)
        return self

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> ReviewStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ SQL in both dialects
    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.engine == "postgresql" else statement

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        with self._lock:
            self._con.execute(self._sql(statement), params)

    def _executemany(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with self._lock:
            if self.engine == "duckdb":
                self._con.execute("BEGIN TRANSACTION")
                try:
                    self._con.executemany(statement, rows)
                    self._con.execute("COMMIT")
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
            else:
                with self._con.transaction(), self._con.cursor() as cur:
                    cur.executemany(self._sql(statement), rows)

    def _rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if self.engine == "duckdb":
                return list(self._con.execute(statement, params).fetchall())
            with self._con.cursor() as cur:
                cur.execute(self._sql(statement), params)
                return list(cur.fetchall())

    # ------------------------------------------------------------------ the queue
    def add_screened(self, rows: list[Screened], screened: int, selected: int, version: str) -> None:
        """Offer ``rows`` for review and count ``screened`` / ``selected`` records of ``version``
        (all of them, not only the rows offered)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        self._executemany(
            f"INSERT INTO {QUEUE} (id, score, selected, rule, reasons, record, artifact_version, "
            "screened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "score = excluded.score, selected = excluded.selected, rule = excluded.rule, "
            "reasons = excluded.reasons, record = excluded.record, "
            "artifact_version = excluded.artifact_version, screened_at = excluded.screened_at",
            [
                (
                    r.id,
                    r.score,
                    r.selected,
                    r.rule,
                    json.dumps(r.reasons),
                    json.dumps(r.record, default=str),
                    r.artifact_version,
                    now,
                )
                for r in rows
            ],
        )
        if screened:
            self._execute(
                f"INSERT INTO {TOTALS} (artifact_version, screened, selected) VALUES (?, ?, ?) "
                f"ON CONFLICT (artifact_version) DO UPDATE SET screened = {TOTALS}.screened + "
                f"excluded.screened, selected = {TOTALS}.selected + excluded.selected",
                (version, screened, selected),
            )

    def pending(self, limit: int = 50) -> list[dict[str, Any]]:
        """Records not yet reviewed: the selected first (best score first), then the sample of
        the others, each group the most recently screened first."""
        rows = self._rows(
            f"SELECT q.id, q.score, q.selected, q.rule, q.reasons, q.record, q.artifact_version, "
            f"q.screened_at FROM {QUEUE} q LEFT JOIN {REVIEWS} r ON r.id = q.id WHERE r.id IS NULL "
            "ORDER BY q.selected DESC, q.screened_at DESC, q.score DESC, q.id LIMIT ?",
            (int(limit),),
        )
        return [
            {
                "id": r[0],
                "score": float(r[1]),
                "selected": bool(r[2]),
                "rule": r[3],
                "reasons": json.loads(r[4]),
                "record": json.loads(r[5]),
                "artifact_version": r[6],
                "screened_at": r[7].isoformat() + "Z",
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ verdicts
    def record_verdict(self, record_id: str, verdict: str, reviewer: str, note: str | None = None) -> int:
        """Store a verdict on a queued record; returns the label it means. A second verdict on
        the same record replaces the first."""
        if verdict not in VERDICTS:
            raise DataError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        if not reviewer.strip():
            raise DataError("a verdict needs the reviewer's name", hint="Send a non-empty reviewer.")
        found = self._rows(
            f"SELECT selected, score, record, artifact_version FROM {QUEUE} WHERE id = ?", (record_id,)
        )
        if not found:
            raise DataError(
                f"record {record_id!r} is not in the review queue",
                hint="Review records listed by GET /v1/review/queue.",
            )
        selected, score, record, version = found[0]
        label = label_of(verdict, bool(selected))
        self._execute(
            f"INSERT INTO {REVIEWS} (id, verdict, label, selected, score, record, reviewer, note, "
            "artifact_version, reviewed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO "
            "UPDATE SET verdict = excluded.verdict, label = excluded.label, reviewer = excluded.reviewer, "
            "note = excluded.note, reviewed_at = excluded.reviewed_at",
            (
                record_id,
                verdict,
                label,
                bool(selected),
                float(score),
                record,
                reviewer.strip()[:200],
                (note or None) and note[:2000],
                version,
                datetime.now(UTC).replace(tzinfo=None),
            ),
        )
        return label

    def stats(self) -> dict[str, Any]:
        """Realised precision of the selection and the recall estimate, from the verdicts."""
        (sel_n, sel_right, ns_n, ns_wrong) = self._rows(
            f"SELECT COALESCE(SUM(CASE WHEN selected THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN selected AND verdict = 'right' THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN NOT selected THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN NOT selected AND verdict = 'wrong' THEN 1 ELSE 0 END), 0) "
            f"FROM {REVIEWS}"
        )[0]
        screened, selected = self._rows(
            f"SELECT COALESCE(SUM(screened), 0), COALESCE(SUM(selected), 0) FROM {TOTALS}"
        )[0]
        sel_n, sel_right, ns_n, ns_wrong = int(sel_n), int(sel_right), int(ns_n), int(ns_wrong)
        screened, selected = int(screened), int(selected)
        out: dict[str, Any] = {
            "reviewed": sel_n + ns_n,
            "reviewed_selected": sel_n,
            "reviewed_not_selected": ns_n,
            "screened": screened,
            "selected": selected,
            "precision": None,
            "recall_estimate": None,
        }
        if sel_n:
            low, high = wilson(sel_right, sel_n)
            out["precision"] = {"value": sel_right / sel_n, "low": low, "high": high, "level": 0.9}
        out["lift_estimate"] = None
        if sel_n and ns_n and selected:
            caught = sel_right / sel_n * selected
            missed = ns_wrong / ns_n * max(screened - selected, 0)
            out["recall_estimate"] = caught / (caught + missed) if caught + missed > 0 else None
            if caught + missed > 0 and screened:
                # realised precision over the estimated share of high-value records screened
                out["lift_estimate"] = (sel_right / sel_n) / ((caught + missed) / screened)
        return out

    def reviewed(self) -> list[dict[str, Any]]:
        """Every verdict with its record, oldest first (what retraining learns from)."""
        rows = self._rows(
            f"SELECT id, verdict, label, selected, score, record, reviewer, note, artifact_version, "
            f"reviewed_at FROM {REVIEWS} ORDER BY reviewed_at, id"
        )
        keys = ("id", "verdict", "label", "selected", "score", "record", "reviewer", "note",
                "artifact_version", "reviewed_at")  # fmt: skip
        out = []
        for r in rows:
            d = dict(zip(keys, r, strict=True))
            d["record"] = json.loads(d["record"])
            out.append(d)
        return out
