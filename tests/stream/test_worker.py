"""In-process checks: entry decoding, sink parsing, Parquet replacement, a record that crashes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.stream.helpers import (
    as_fields,
    assert_sink_matches,
    expected,
    feed,
    read_dead,
    read_duckdb,
    wait_done,
)
from winnow.errors import ConfigError
from winnow.io.sinks import (
    DuckDBSink,
    ParquetSink,
    PostgresSink,
    RedisStreamSink,
    SinkBatch,
    SinkRow,
    open_sink,
)
from winnow.stream.records import DecodeError, decode_entry


def test_decode_flat_map_and_json_field() -> None:
    assert decode_entry({b"a": b"1.5", b"b": b""}) == {"a": "1.5", "b": None}
    assert decode_entry({b"d": b'{"a": 1, "b": null}'}, json_field="d") == {"a": 1, "b": None}
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        decode_entry({b"a": b"\xff"})
    with pytest.raises(DecodeError, match="missing"):
        decode_entry({b"a": b"1"}, json_field="d")
    with pytest.raises(DecodeError, match="not an object"):
        decode_entry({b"d": b"[1]"}, json_field="d")


@pytest.mark.parametrize("protocol", [2, 3])
def test_source_reads_entries_as_sent_in_either_protocol(redis_server: Any, protocol: int) -> None:
    """Replies are read without redis-py's parsing; RESP2 and RESP3 shapes give the same entries,
    and an entry deleted while pending comes back without fields."""
    from winnow.stream.source import RedisSource

    stream = f"protocol-{protocol}"
    url = f"{redis_server.url}?protocol={protocol}"
    src = RedisSource(url, stream, "g", "c1", dead_letter=f"{stream}-dl")
    src.connect()
    try:
        assert src.client.connection_pool.get_connection().protocol == protocol
        a = src.client.xadd(stream, {"x": "1", "y": ""}).decode()
        b = src.client.xadd(stream, {"x": "2", "y": "é"}).decode()
        new = src.read_new(10, 10)
        assert [(e.id, e.pairs, e.deliveries) for e in new] == [
            (a, [b"x", b"1", b"y", b""], 1),
            (b, [b"x", b"2", b"y", "é".encode()], 1),
        ]
        src.client.xdel(stream, b)
        again = src.read_pending("0", 10)
        assert [(e.id, e.fields) for e in again] == [(a, {b"x": b"1", b"y": b""}), (b, None)]
        assert again[0].deliveries == 2
        cursor, claimed, deleted = src.claim("0-0", 10, 0)
        assert cursor == "0-0" and [(e.id, e.deliveries) for e in claimed] == [(a, 3)] and deleted == [b]
    finally:
        src.close()


def test_open_sink_names_every_kind_and_rejects_others(tmp_path: Path) -> None:
    assert isinstance(open_sink(f"duckdb:{tmp_path}/a.duckdb"), DuckDBSink)
    assert isinstance(open_sink(f"{tmp_path}/a.duckdb"), DuckDBSink)
    assert isinstance(open_sink("postgresql://u@h:5432/db"), PostgresSink)
    assert isinstance(open_sink("redis://127.0.0.1:1/0"), RedisStreamSink)
    assert isinstance(open_sink(f"parquet:{tmp_path}"), ParquetSink)
    with pytest.raises(ConfigError, match="--sink"):
        open_sink("kafka://x")
    with pytest.raises(ConfigError, match="--table"):
        open_sink(f"duckdb:{tmp_path}/a.duckdb", "drop table;")


def _row(i: int) -> SinkRow:
    from datetime import datetime

    return SinkRow(f"1-{i}", 0.5, True, None, ["a"], f"1-{i}", "{}", datetime(2024, 1, 1))


def test_parquet_replay_with_other_batch_cuts_keeps_each_entry_once(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path, "sel")
    sink.open()
    sink.write(SinkBatch([_row(i) for i in range(1, 5)], None, [f"1-{i}" for i in range(1, 5)]))
    sink.write(SinkBatch([_row(i) for i in range(5, 9)], None, [f"1-{i}" for i in range(5, 9)]))
    # redelivered as 3..6: the rows move to the new file, the old files keep the rest
    sink.write(SinkBatch([_row(i) for i in range(3, 7)], None, [f"1-{i}" for i in range(3, 7)]))
    import pyarrow.parquet as pq

    files = {
        p.name: sorted(pq.read_table(p).column("id").to_pylist())
        for p in (tmp_path / "sel").glob("*.parquet")
    }
    assert files == {
        "part-1-1_1-4.parquet": ["1-1", "1-2"],
        "part-1-5_1-8.parquet": ["1-7", "1-8"],
        "part-1-3_1-6.parquet": ["1-3", "1-4", "1-5", "1-6"],
    }


def test_bad_options_are_config_errors(artifact: Path) -> None:
    from winnow.stream import run

    with pytest.raises(ConfigError, match="--batch-size"):
        run(artifact, source="redis://127.0.0.1:1/0", stream="s", batch_size=0)
    with pytest.raises(ConfigError, match="--source"):
        run(artifact, source="http://x", stream="s")


def _drain(worker: Any, client: Any, stream: str) -> None:
    """Run ``worker`` in a thread until every entry of ``stream`` is acknowledged, then stop it."""
    t = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    t.start()
    try:
        wait_done(client, stream, timeout=30)
    finally:
        worker.stop()
        t.join(10)


class _Exploding:
    """The real scorer, except that a record named BOOM makes the whole call raise."""

    def __init__(self, scorer: Any) -> None:
        self.inner = scorer
        self.id_column = scorer.id_column
        self.monitor = None

    def score_records(self, records: list[Any], **kw: Any) -> Any:
        if any(r.get("firstname") == "BOOM" for r in records):
            raise RuntimeError("boom")
        return self.inner.score_records(records, **kw)

    def score_text_table(self, table: Any, **kw: Any) -> Any:
        if "BOOM" in table.column("firstname").to_pylist():
            raise RuntimeError("boom")
        return self.inner.score_text_table(table, **kw)


def test_a_record_that_crashes_scoring_is_isolated_retried_then_dead_lettered(
    redis_server: Any, scorer: Any, records: list[Any], names: dict[str, str], tmp_path: Path
) -> None:
    from winnow.stream.source import RedisSource
    from winnow.stream.worker import StreamWorker

    r = redis_server.client()
    stream = names["stream"]
    ids = feed(r, stream, records[:30])
    boom = r.xadd(stream, {**as_fields(records[30]), "firstname": "BOOM"}).decode()
    ids += feed(r, stream, records[31:60])
    good = records[:30] + records[31:60]

    source = RedisSource(redis_server.url, stream, "winnow", "t1", dead_letter=f"{stream}:dead", block_ms=50)
    path = tmp_path / "out.duckdb"
    w = StreamWorker(_Exploding(scorer), source, DuckDBSink(path), max_retries=2, claim_idle_ms=100)  # type: ignore[arg-type]
    _drain(w, r, stream)
    assert w.metrics.counts.batch_failures >= 2
    (letter,) = read_dead(r, f"{stream}:dead")
    assert letter["entry_id"] == boom and letter["kind"] == "retries"
    assert "RuntimeError: boom" in letter["reason"]
    assert_sink_matches(read_duckdb(path, "selected"), expected(scorer, ids, good))


class _Wrapped:
    """A real sink behind a wrapper whose ``write`` a test replaces."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.description = inner.description

    def open(self) -> None:
        self.inner.open()

    def write(self, batch: SinkBatch) -> None:
        self.inner.write(batch)

    def close(self) -> None:
        self.inner.close()


class _Flaky(_Wrapped):
    """A sink whose first ``fail`` writes find it unreachable."""

    def __init__(self, inner: Any, fail: int) -> None:
        super().__init__(inner)
        self.fail = fail

    def write(self, batch: SinkBatch) -> None:
        from winnow.io.sinks import SinkUnavailable

        if self.fail:
            self.fail -= 1
            raise SinkUnavailable("down for the test")
        self.inner.write(batch)


def test_an_unreachable_sink_is_retried_in_place_and_dead_letters_nothing(
    redis_server: Any, scorer: Any, records: list[Any], names: dict[str, str], tmp_path: Path
) -> None:
    from winnow.stream.source import RedisSource
    from winnow.stream.worker import StreamWorker

    r = redis_server.client()
    stream = names["stream"]
    ids = feed(r, stream, records[:80])
    source = RedisSource(redis_server.url, stream, "winnow", "t1", dead_letter=f"{stream}:dead", block_ms=50)
    path = tmp_path / "out.duckdb"
    # max_retries=1: a redelivery would dead-letter, so the retries must not redeliver
    w = StreamWorker(scorer, source, _Flaky(DuckDBSink(path), 3), max_retries=1, max_backoff=0.05)  # type: ignore[arg-type]
    _drain(w, r, stream)
    assert w.metrics.counts.sink_retries == 3
    assert w.metrics.counts.dead_lettered == 0
    assert_sink_matches(read_duckdb(path, "selected"), expected(scorer, ids, records[:80]))


class _Poisoned(_Wrapped):
    """A DuckDB sink that refuses any batch holding the record of entry ``bad`` (as a database
    refuses a value it cannot store), and keeps the order of the batches it was given."""

    def __init__(self, inner: Any, bad: str) -> None:
        super().__init__(inner)
        self.bad = bad
        self.seen: list[str] = []

    def write(self, batch: SinkBatch) -> None:
        if self.bad in batch.entry_ids:
            raise ValueError("value out of range for the test")
        self.seen += batch.entry_ids
        self.inner.write(batch)


def test_a_sink_write_failing_in_the_writer_thread_is_retried_entry_by_entry(
    redis_server: Any, scorer: Any, records: list[Any], names: dict[str, str], tmp_path: Path
) -> None:
    """Sink commits run in their own thread while the next batch is scored; a commit that fails
    for a record is isolated like a scoring failure: the others are stored once, in order."""
    from winnow.stream.source import RedisSource
    from winnow.stream.worker import StreamWorker

    r = redis_server.client()
    stream = names["stream"]
    ids = feed(r, stream, records[:60])
    bad = ids[25]
    source = RedisSource(redis_server.url, stream, "winnow", "t1", dead_letter=f"{stream}:dead", block_ms=50)
    path = tmp_path / "out.duckdb"
    sink = _Poisoned(DuckDBSink(path, audit=True), bad)
    w = StreamWorker(scorer, source, sink, batch_size=10, max_retries=1, claim_idle_ms=100, audit=True)  # type: ignore[arg-type]
    _drain(w, r, stream)
    assert w.metrics.counts.batch_failures == 1  # the batch; its redelivery is dead-lettered unscored
    (letter,) = read_dead(r, f"{stream}:dead")
    assert letter["entry_id"] == bad and letter["kind"] == "retries"
    assert "ValueError: value out of range" in letter["reason"]
    good = [i for i in ids if i != bad]
    assert sink.seen == good  # each entry once, in stream order
    assert_sink_matches(read_duckdb(path, "selected"), expected(scorer, good, records[:25] + records[26:60]))


def test_postgres_sink_separates_bad_values_from_outages(postgres: str, names: dict[str, str]) -> None:
    import psycopg

    from winnow.io.sinks import SinkUnavailable

    sink = PostgresSink(postgres, names["table"])
    sink.open()
    bad = _row(1)
    bad.record = '{"firstname": "\\u0000"}'  # PostgreSQL cannot store NUL in text or jsonb
    with pytest.raises(psycopg.DataError):
        sink.write(SinkBatch([bad], None, [bad.entry_id]))
    sink.write(SinkBatch([_row(2)], None, ["1-2"]))  # the connection is still usable
    sink.close()
    with pytest.raises(SinkUnavailable):
        PostgresSink("postgresql://postgres@127.0.0.1:1/postgres", "t").open()


def test_public_names_and_cheap_cli_import() -> None:
    import subprocess
    import sys

    import winnow.stream

    assert sorted(winnow.stream.__all__) == ["StreamSummary", "StreamWorker", "open_sink", "run"]
    heavy = "('redis', 'duckdb', 'psycopg', 'lightgbm')"
    code = f"import sys, winnow.stream.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("json_entries", [False, True])
def test_the_worker_offers_what_it_selects_for_review(
    redis_server: Any,
    scorer: Any,
    records: list[Any],
    names: dict[str, str],
    tmp_path: Path,
    json_entries: bool,
) -> None:
    """`--review`: every selected record and a sample of the others go to the review queue,
    after their batch is in the sink; every scored record is counted."""
    import json as _json

    from winnow.review.queue import sampled
    from winnow.review.store import ReviewStore
    from winnow.stream.source import RedisSource
    from winnow.stream.worker import StreamWorker

    r = redis_server.client()
    stream = names["stream"]
    batch = records[:400]
    if json_entries:
        ids = [r.xadd(stream, {"json": _json.dumps(rec)}).decode() for rec in batch]
    else:
        ids = feed(r, stream, batch)
    source = RedisSource(redis_server.url, stream, "winnow", "t1", dead_letter=f"{stream}:dead", block_ms=50)
    store = ReviewStore(f"duckdb:{tmp_path / 'reviews.duckdb'}").open()
    w = StreamWorker(
        scorer,
        source,
        DuckDBSink(tmp_path / "out.duckdb"),
        batch_size=64,
        review=store,
        review_sample=0.2,
        json_field="json" if json_entries else None,
    )
    _drain(w, r, stream)
    store.open()  # closed with the worker: open it again to look
    try:
        queued = {q["id"]: q for q in store.pending(1000)}
        stats = store.stats()
    finally:
        store.close()
    want = expected(scorer, ids, batch)
    chosen = {i for i, v in want.items() if v.selected}
    sample = {i for i, v in want.items() if not v.selected and sampled(i, 0.2)}
    assert chosen and sample and set(queued) == chosen | sample
    assert stats["screened"] == 400 and stats["selected"] == len(chosen)
    some = next(iter(sample))
    assert queued[some]["record"]["firstname"] == str(batch[ids.index(some)]["firstname"])
    assert queued[some]["score"] == pytest.approx(want[some].score)


@pytest.mark.parametrize("kind", ["duckdb", "parquet", "postgresql"])
def test_the_worker_writes_the_digest_of_each_ended_period(
    redis_server: Any,
    scorer: Any,
    records: list[Any],
    names: dict[str, str],
    tmp_path: Path,
    kind: str,
    request: Any,
) -> None:
    """`--digest-every`: once a period has ended, the worker digests it from its own sink's
    audit table between two commits (a DuckDB file it holds included)."""
    import json
    import time
    from datetime import UTC, datetime, timedelta

    from winnow.stream.digests import PeriodicDigest, period_start
    from winnow.stream.source import RedisSource
    from winnow.stream.worker import StreamWorker

    def utcnow() -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

    if kind == "duckdb":
        sink: Any = DuckDBSink(tmp_path / "out.duckdb", audit=True)
    elif kind == "parquet":
        sink = ParquetSink(tmp_path / "out", audit=True)
    else:
        sink = PostgresSink(request.getfixturevalue("postgres"), names["table"], audit=True)
    every = timedelta(seconds=4)
    time.sleep((period_start(utcnow(), every) + every - utcnow()).total_seconds() + 0.05)  # a fresh period
    period = period_start(utcnow(), every)
    r = redis_server.client()
    stream = names["stream"]
    feed(r, stream, records[:300])
    source = RedisSource(redis_server.url, stream, "winnow", "t1", dead_letter=f"{stream}:dead", block_ms=50)
    digests = PeriodicDigest(scorer.screener, every, tmp_path / "digests")
    w = StreamWorker(scorer, source, sink, batch_size=100, audit=True, digests=digests)
    t = threading.Thread(target=w.run, kwargs={"handle_signals": False})
    t.start()
    try:
        wait_done(r, stream, timeout=30)
        assert not digests.written and utcnow() < period + every  # the period has not ended yet
        time.sleep((period + every - utcnow()).total_seconds() + 0.05)
        feed(r, stream, records[300:301])  # the first batch after the period's end
        wait_done(r, stream, timeout=30)
    finally:
        w.stop()
        t.join(10)
    [path] = digests.written
    assert path.name == f"digest-{period:%Y%m%dT%H%M}.html" and path.read_text().startswith("<!doctype html>")
    d = json.loads(path.with_suffix(".json").read_text())
    assert d["scored"] == 300 and d["period"]["since"] == period.isoformat() + "Z" and digests.failures == 0
