"""Every sink holds exactly what OnlineScorer.score_records says, once, even after a replay."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.stream.conftest import free_port
from tests.stream.helpers import (
    assert_sink_matches,
    expected,
    feed,
    read_duckdb,
    read_parquet,
    read_postgres,
    read_redis_stream,
    wait_done,
)


def _sink(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, names: dict[str, str]
) -> tuple[Any, ...]:
    """(--sink value, --table value, reader of the selected rows, reader of the audit rows)."""
    table = names["table"]
    if kind == "duckdb":
        path = tmp_path / "out.duckdb"
        return (
            f"duckdb:{path}",
            table,
            lambda: read_duckdb(path, table),
            lambda: read_duckdb(path, table + "_scored"),
        )
    if kind == "postgres":
        dsn = request.getfixturevalue("postgres")
        return dsn, table, lambda: read_postgres(dsn, table), lambda: read_postgres(dsn, table + "_scored")
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        key = f"out:{names['tag']}"
        r = server.client()
        return (
            server.url,
            key,
            lambda: read_redis_stream(r, key),
            lambda: read_redis_stream(r, key + ":scored"),
        )
    folder = tmp_path / "pq"
    return (
        f"parquet:{folder}",
        table,
        lambda: read_parquet(folder / table),
        lambda: read_parquet(folder / f"{table}_scored"),
    )


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "redis", "parquet"])
def test_sink_equals_scorer_and_replay_adds_nothing(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    names: dict[str, str],
    redis_server: Any,
    worker: Any,
    scorer: Any,
    records: list[dict[str, Any]],
) -> None:
    r = redis_server.client()
    stream = names["stream"]
    sink, table, read_selected, read_scored = _sink(kind, request, tmp_path, names)
    port = free_port()
    w = worker(
        redis_server.url,
        stream,
        "--sink",
        sink,
        "--table",
        table,
        "--audit",
        "--batch-size",
        "100",
        "--block-ms",
        "200",
        "--metrics-port",
        str(port),
        "--audit-fraction",
        "0.5",
        "--audit-file",
        str(tmp_path / "audit.jsonl"),
    )
    recs = records[:600]
    ids: list[str] = []
    # three waves, so the first pass cuts batches differently from the replay below
    for lo, hi in ((0, 150), (150, 420), (420, 600)):
        ids += feed(r, stream, recs[lo:hi])
        wait_done(r, stream)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for name in ("winnow_stream_lag", "winnow_stream_pending", "winnow_stream_records_per_second"):
        assert name in metrics
    assert 'winnow_stream_records_total{outcome="selected"}' in metrics
    # drift gauges follow within a second or two (set on the worker's once-a-second tick)
    deadline = time.monotonic() + 10
    while "winnow_drift_window_records 600.0" not in metrics and time.monotonic() < deadline:
        time.sleep(0.2)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "winnow_drift_window_records 600.0" in metrics and "winnow_drift_feature_psi{" in metrics
    # about half of the not-selected records were kept for audit, none of the selected
    audited = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert 100 < len(audited) < 500 and all(0 <= a["score"] <= 1 for a in audited)

    # replay: the group delivers every entry again, as after a crash that lost all acks
    r.xgroup_setid(stream, "winnow", "0")
    wait_done(r, stream)
    summary = w.terminate()
    assert summary["processed"] == 2 * len(recs)
    assert summary["dead_lettered"] == 0

    want = expected(scorer, ids, recs)
    assert sum(v.selected for v in want.values()) > 10
    assert any(v.rule == "veteran" for v in want.values())
    assert_sink_matches(read_selected(), want)
    assert_sink_matches(read_scored(), want, audit=True)
