"""Crashes, stuck sinks, dead consumers, bad records and a Redis restart: nothing lost or doubled."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.stream.helpers import (
    as_fields,
    assert_sink_matches,
    expected,
    feed,
    group_state,
    read_dead,
    read_duckdb,
    read_postgres,
    wait_done,
    wait_pending,
)


@contextlib.contextmanager
def table_locked(dsn: str, table: str) -> Iterator[None]:
    """Hold an exclusive lock on the sink table: a worker writing to it blocks mid-batch."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        # SHARE blocks writers only: the worker can still check the tables exist
        conn.execute(f'LOCK TABLE "{table}", "{table}_scored" IN SHARE MODE')
        try:
            yield
        finally:
            conn.rollback()


def _pg_args(dsn: str, table: str) -> tuple[str, ...]:
    # --audit: every batch writes (to <table>_scored), even one without a selected record
    return ("--sink", dsn, "--table", table, "--audit", "--batch-size", "100", "--block-ms", "200")


@contextlib.contextmanager
def stuck_batch(
    r: Any, url: str, dsn: str, names: dict[str, str], worker: Any, records: list[Any]
) -> Iterator:
    """Worker 'a' holds a batch of 100 of 300 entries it cannot commit (the table is locked),
    the next 100, scored while the first is written, and (once that one is taken up) possibly
    the last 100, read ahead: 200 or 300 pending, as fast as the machine gets there.

    Yields (worker, entry ids); the lock is released when the block ends.
    """
    from winnow.io.sinks import PostgresSink

    stream, table = names["stream"], names["table"]
    sink = PostgresSink(dsn, table, audit=True)
    sink.open()  # the table exists before it is locked
    sink.close()
    with table_locked(dsn, table):
        ids = feed(r, stream, records[:300])
        a = worker(url, stream, *_pg_args(dsn, table), consumer="a")
        wait_pending(r, stream, "a", 200)
        yield a, ids


def test_sigkill_mid_batch_then_restart_reprocesses_own_pending(
    redis_server: Any, postgres: str, worker: Any, scorer: Any, records: list[Any], names: dict[str, str]
) -> None:
    r = redis_server.client()
    stream, table = names["stream"], names["table"]
    with stuck_batch(r, redis_server.url, postgres, names, worker, records) as (a, ids):
        a.proc.kill()  # SIGKILL while the batch is being written
        a.proc.wait(10)
    pending = group_state(r, stream)["pending"]
    assert pending in (200, 300)  # at most three batches in flight: committing, scored, read ahead
    assert read_postgres(postgres, table) == []

    again = worker(redis_server.url, stream, *_pg_args(postgres, table), consumer="a")
    wait_done(r, stream)
    summary = again.terminate()
    assert summary["recovered"] == pending
    assert f"re-processed {pending} pending entries" in again.log()
    assert_sink_matches(read_postgres(postgres, table), expected(scorer, ids, records[:300]))


def test_second_consumer_claims_entries_of_a_dead_one(
    redis_server: Any, postgres: str, worker: Any, scorer: Any, records: list[Any], names: dict[str, str]
) -> None:
    r = redis_server.client()
    stream, table = names["stream"], names["table"]
    with stuck_batch(r, redis_server.url, postgres, names, worker, records) as (a, ids):
        a.proc.kill()
        a.proc.wait(10)
    pending = group_state(r, stream)["pending"]

    args = _pg_args(postgres, table)
    b = worker(redis_server.url, stream, *args, "--claim-idle-ms", "500", consumer="b")
    wait_done(r, stream)
    summary = b.terminate()
    assert pending in (200, 300) and summary["claimed"] == pending
    consumers = {c["name"].decode(): c["pending"] for c in r.xinfo_consumers(stream, "winnow")}
    assert consumers == {"a": 0, "b": 0}
    assert_sink_matches(read_postgres(postgres, table), expected(scorer, ids, records[:300]))


def test_sigterm_finishes_the_current_batch_then_exits(
    redis_server: Any, postgres: str, worker: Any, scorer: Any, records: list[Any], names: dict[str, str]
) -> None:
    r = redis_server.client()
    stream, table = names["stream"], names["table"]
    with stuck_batch(r, redis_server.url, postgres, names, worker, records) as (a, ids):
        a.proc.terminate()
        a.wait_log("finishing the current batch")
        time.sleep(0.3)
        assert a.proc.poll() is None, "the worker left before its batch was committed"
    assert a.proc.wait(30) == 0
    summary = a.summary()
    done = summary["processed"]
    assert done in (200, 300)  # the batch being written, the one scored, maybe the one read ahead
    g = group_state(r, stream)
    assert g["pending"] == 0 and g["lag"] == 300 - done  # the rest waits for the next worker
    assert_sink_matches(read_postgres(postgres, table), expected(scorer, ids[:done], records[:done]))


def test_sigterm_while_waiting_exits_at_once(
    redis_server: Any, worker: Any, names: dict[str, str], tmp_path: Path
):
    w = worker(
        redis_server.url, names["stream"], "--sink", f"duckdb:{tmp_path / 'x.duckdb'}", "--block-ms", "20000"
    )
    t = time.monotonic()
    summary = w.terminate()
    assert time.monotonic() - t < 5
    assert summary["processed"] == 0


def test_unscorable_records_go_to_the_dead_letter_stream(
    redis_server: Any, worker: Any, scorer: Any, records: list[Any], names: dict[str, str], tmp_path: Path
) -> None:
    r = redis_server.client()
    stream = names["stream"]
    # an entry that already failed 5 times: delivered to w1 and never acknowledged
    r.xgroup_create(stream, "winnow", id="0", mkstream=True)
    poison = r.xadd(stream, as_fields(records[3])).decode()
    r.xreadgroup("winnow", "w1", {stream: ">"}, count=1)
    r.xclaim(stream, "winnow", "w1", 0, [poison], retrycount=5)
    good = feed(r, stream, records[:50])
    bad_value = r.xadd(stream, {**as_fields(records[0]), "years_experience": "abc"}).decode()
    missing = r.xadd(stream, {k: v for k, v in as_fields(records[1]).items() if k != "race"}).decode()
    not_utf8 = r.xadd(stream, {**as_fields(records[2]), "firstname": b"\xff\xfe"}).decode()
    good += feed(r, stream, records[50:100])

    path = tmp_path / "out.duckdb"
    w = worker(
        redis_server.url, stream, "--sink", f"duckdb:{path}", "--max-retries", "3", "--block-ms", "200"
    )
    wait_done(r, stream)
    summary = w.terminate()
    assert summary["dead_lettered"] == 4
    assert summary["selected"] + summary["not_selected"] == 100

    dead = {d["entry_id"]: d for d in read_dead(r, f"{stream}:dead")}
    assert set(dead) == {poison, bad_value, missing, not_utf8}
    assert dead[poison]["kind"] == "retries" and dead[poison]["deliveries"] == "6"
    assert dead[bad_value]["kind"] == "invalid" and dead[bad_value]["field"] == "years_experience"
    assert "'abc'" in dead[bad_value]["reason"]
    assert dead[missing]["kind"] == "invalid" and dead[missing]["field"] == "race"
    assert dead[not_utf8]["kind"] == "decode" and "firstname" in dead[not_utf8]["reason"]
    assert '"years_experience":"abc"' in dead[bad_value]["record"]
    assert_sink_matches(read_duckdb(path, "selected"), expected(scorer, good, records[:100]))


def test_worker_reconnects_after_a_redis_restart(
    make_redis: Any, worker: Any, scorer: Any, records: list[Any], names: dict[str, str], tmp_path: Path
) -> None:
    server = make_redis()
    r = server.client()
    stream = names["stream"]
    path = tmp_path / "out.duckdb"
    w = worker(server.url, stream, "--sink", f"duckdb:{path}", "--block-ms", "200", "--max-backoff", "0.5")
    ids = feed(r, stream, records[:200])
    wait_done(r, stream)
    server.restart(down_seconds=1.5)
    r = server.client()
    ids += feed(r, stream, records[200:400])
    wait_done(r, stream)
    summary = w.terminate()
    assert summary["reconnects"] >= 1
    assert "Redis unreachable" in w.log()
    assert_sink_matches(read_duckdb(path, "selected"), expected(scorer, ids, records[:400]))
