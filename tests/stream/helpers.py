"""Feeding streams, running the worker process and reading every kind of sink back."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


def typed_records(path: Path, target: str) -> list[dict[str, Any]]:
    return pq.read_table(path).drop([target]).to_pylist()


def as_fields(record: dict[str, Any]) -> dict[str, str]:
    """How a producer writes a record to a flat Redis map: strings, '' for a missing value."""
    return {k: "" if v is None else str(v) for k, v in record.items()}


def feed(client: Any, stream: str, records: list[dict[str, Any]]) -> list[str]:
    """XADD the records in order (as a producer would write them); returns their entry ids."""
    pipe = client.pipeline(transaction=False)
    for rec in records:
        pipe.xadd(stream, as_fields(rec))
    return [i.decode() for i in pipe.execute()]


def group_state(client: Any, stream: str, group: str = "winnow") -> dict[str, Any]:
    for g in client.xinfo_groups(stream):
        if g["name"].decode() == group:
            return g
    return {}


def wait_done(client: Any, stream: str, group: str = "winnow", timeout: float = 60) -> None:
    """Until every entry of the stream was delivered to the group and acknowledged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = client.xinfo_stream(stream)["last-generated-id"]
        g = group_state(client, stream, group)
        if g and g["pending"] == 0 and g["last-delivered-id"] == last:
            return
        time.sleep(0.1)
    raise AssertionError(f"stream {stream} not drained in {timeout}s: {group_state(client, stream, group)}")


def wait_pending(client: Any, stream: str, consumer: str, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    have = 0
    while time.monotonic() < deadline:
        for c in client.xinfo_consumers(stream, "winnow"):
            if c["name"].decode() == consumer:
                have = c["pending"]
        if have >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"consumer {consumer} has {have} pending entries, expected {n}")


class WorkerProcess:
    """One ``python -m winnow.stream`` subprocess with its output in files."""

    def __init__(self, cmd: list[str], base: Path) -> None:
        self.cmd = cmd
        self.out, self.err = base.with_suffix(".out"), base.with_suffix(".err")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)

    def log(self) -> str:
        return self.err.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "connected to Redis" in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log()}")

    def wait_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the worker log after {timeout}s:\n{self.log()}")

    def terminate(self, timeout: float = 30) -> dict[str, Any]:
        """SIGTERM, wait for a clean exit, return the summary line the worker printed."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        assert rc == 0, f"worker exited with {rc}:\n{self.log()}"
        return self.summary()

    def summary(self) -> dict[str, Any]:
        lines = [ln for ln in self.out.read_text().splitlines() if ln.startswith("{")]
        assert lines, f"no summary printed:\n{self.log()}"
        return json.loads(lines[-1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# ----------------------------------------------------------------------------- reading sinks
def read_duckdb(path: Path, table: str) -> list[dict[str, Any]]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(f'SELECT * FROM "{table}"').arrow().read_all().to_pylist()


def read_postgres(dsn: str, table: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
    for r in rows:
        r["record"] = json.dumps(r["record"])
    return rows


def read_redis_stream(client: Any, key: str) -> list[dict[str, Any]]:
    out = []
    for _, f in client.xrange(key):
        d = {k.decode(): v.decode() for k, v in f.items()}
        d["score"] = float(d["score"])
        d["selected"] = d["selected"] == "1"
        d["rule"] = d["rule"] or None
        d["reasons"] = json.loads(d["reasons"])
        out.append(d)
    return out


def read_parquet(folder: Path) -> list[dict[str, Any]]:
    files = sorted(p for p in folder.glob("part-*.parquet"))
    rows: list[dict[str, Any]] = []
    for p in files:
        rows += pq.read_table(p).to_pylist()
    return rows


def read_dead(client: Any, key: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange(key)]


# ------------------------------------------------------------------------------- comparison
def expected(scorer: Any, ids: list[str], records: list[dict[str, Any]]) -> dict[str, Any]:
    """OnlineScorer.score_records on the same records, by entry id."""
    results = scorer.score_records(records)
    return dict(zip(ids, results, strict=True))


def assert_sink_matches(rows: list[dict[str, Any]], want: dict[str, Any], *, audit: bool = False) -> None:
    """Sink rows equal the scorer's results: each id once, same score, rule and reasons.

    ``audit``: the rows are every scored record, otherwise the selected ones only.
    """
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids in the sink"
    expected_ids = {k for k, v in want.items() if audit or v.selected}
    assert set(ids) == expected_ids
    for r in rows:
        w = want[r["id"]]
        assert r["entry_id"] == r["id"]
        assert math.isclose(r["score"], w.score, rel_tol=0, abs_tol=1e-12), (r["id"], r["score"], w.score)
        assert r["selected"] == w.selected
        assert r["rule"] == w.rule
        assert list(r["reasons"]) == w.reasons
