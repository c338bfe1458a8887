"""The stream worker: Redis stream in, scored micro-batches out, nothing lost, nothing doubled.

One loop, in this order:

1. open the sink (retry with backoff while it is unreachable);
2. connect to Redis and make sure the consumer group exists;
3. re-process this consumer's own pending entries (a previous run died before acknowledging);
4. claim entries other consumers left pending longer than ``claim_idle_ms`` (``XAUTOCLAIM``);
5. read new entries in micro-batches; every ``claim_idle_ms / 2`` go back to step 4.

A batch is scored with :meth:`winnow.online.OnlineScorer.score_records`, the selected rows
(and, with ``audit``, every scored row) are written to the sink in one commit, entries that
cannot be scored go to the dead-letter stream, and only then are the entries acknowledged.
Reading, scoring and the sink are pipelined: while batch *n* is scored, batch *n + 1* is read
and batch *n - 1*'s sink commit runs in its own thread; batch *n - 1* is dead-lettered and
acknowledged (on this thread) once its commit is done, before batch *n*'s commit starts, so
commits and acknowledgements keep the stream's order.
A crash anywhere before the acknowledgement leaves the entries pending; they are delivered
again and the idempotent sink write makes the replay harmless. An entry delivered more than
``max_retries`` times is dead-lettered instead of tried again.

If a batch raises, its entries are retried one by one so that one bad entry cannot hold back
the others; an entry that still fails stays pending and comes back through step 4.

Lost Redis connections are retried with exponential backoff, then the worker resumes from
step 3. SIGTERM / SIGINT finish the current batch and stop; a second signal stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from winnow.artifact import manifest_version
from winnow.errors import ConfigError
from winnow.io.sinks import Sink, SinkBatch, SinkRow, SinkUnavailable, open_sink
from winnow.review.queue import ReviewQueue
from winnow.stream.digests import PeriodicDigest
from winnow.stream.metrics import Accounting, StreamMetrics
from winnow.stream.records import (
    DeadLetter,
    DecodeError,
    Entry,
    decode_columns,
    decode_entry,
    raw_json,
    to_outcome,
    unique_by_id,
)
from winnow.stream.source import RedisSource

if TYPE_CHECKING:
    from winnow.online import OnlineScorer, RecordResult, ScoredRecords
    from winnow.review.store import ReviewStore

log = logging.getLogger("winnow.stream")

DEFAULT_SINK = "duckdb:winnow-stream.duckdb"


class _Stop(BaseException):
    """Raised by the signal handler while the worker waits (never inside a batch)."""


@dataclass
class StreamSummary:
    """What a worker did between start and stop."""

    stream: str
    group: str
    consumer: str
    sink: str
    seconds: float
    counts: Accounting

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "group": self.group,
            "consumer": self.consumer,
            "sink": self.sink,
            "seconds": round(self.seconds, 3),
            **self.counts.to_json(),
        }


_READ_SLICE_MS = 250  # a stop signal is seen within this while waiting for entries


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


def _passthrough() -> tuple[type[BaseException], ...]:
    """What a batch never catches: Redis outages (reconnect) and stop requests."""
    return (*_redis_errors(), _Stop)


@dataclass
class _Unsettled:
    """A scored batch whose commit has not finished: the sink write (running in the writer
    thread when ``write`` is set), then its dead letters and acknowledgements."""

    entries: list[Entry]
    batch: SinkBatch | None
    dead: list[DeadLetter]
    acked: list[str]
    selected: int
    t0: float
    write: Future[None] | None = None
    #: offers to the review queue, written once the batch is acknowledged
    review: list[Any] | None = None


class StreamWorker:
    """Scores a Redis stream into a sink; see the module docstring for the guarantees.

    Parameters
    ----------
    scorer : the :class:`~winnow.online.OnlineScorer` every batch goes through.
    source : the consumer (stream, group, consumer name, dead-letter stream).
    sink : where rows go (built by :func:`~winnow.io.sinks.open_sink`, not yet opened).
    batch_size : entries per micro-batch.
    max_retries : an entry that failed this many times is dead-lettered on its next delivery.
    claim_idle_ms : entries pending longer than this are claimed from their consumer (and own
        failed entries retried).
    threshold : overrides the artifact's score threshold.
    reasons : reason codes kept per selected record.
    json_field : read each record as a JSON object from this field instead of the flat map.
    audit : also write every scored record to the sink's ``*_scored`` table.
    max_backoff : the longest wait between reconnect attempts, seconds.
    pipelined : commit a batch to the sink in a writer thread while the next one is scored;
        False waits for each commit first (bench/stream_sink_latency.py compares the two).
    """

    def __init__(
        self,
        scorer: OnlineScorer,
        source: RedisSource,
        sink: Sink,
        *,
        batch_size: int = 2000,
        max_retries: int = 5,
        claim_idle_ms: int = 60_000,
        threshold: float | None = None,
        reasons: int = 3,
        json_field: str | None = None,
        audit: bool = False,
        review: ReviewStore | None = None,
        review_sample: float = 0.05,
        digests: PeriodicDigest | None = None,
        max_backoff: float = 10.0,
        metrics: StreamMetrics | None = None,
        pipelined: bool = True,
    ) -> None:
        self.scorer, self.source, self.sink = scorer, source, sink
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.claim_idle_ms = claim_idle_ms
        self.threshold = threshold
        self.reasons = reasons
        self.json_field = json_field
        self.audit = audit
        #: ``--review``: the store, the queue of offers, and the artifact version they carry
        self.review = review
        self._queue = ReviewQueue(review_sample) if review is not None else None
        self._version = manifest_version(scorer.screener.manifest()) if review is not None else ""
        #: ``--digest-every``: the digest of each ended period, from this worker's own sink
        self.digests = digests
        self.max_backoff = max_backoff
        self.metrics = metrics or StreamMetrics()
        self._stop = False
        self._interruptible = False
        self._redis_failures = 0
        self._connected_once = False
        self._last_error: dict[str, str] = {}
        self._next_backlog = 0.0
        self.pipelined = pipelined
        self._writer: ThreadPoolExecutor | None = None
        # the batch whose commit has not finished (its write may be running in the writer thread)
        self._unsettled: _Unsettled | None = None

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Ask the worker to finish its current batch and return from :meth:`run`."""
        self._stop = True

    def _on_signal(self, signum: int, _frame: Any) -> None:
        first = not self._stop
        self._stop = True
        if first:
            log.info("%s: finishing the current batch, then stopping", signal.Signals(signum).name)
        if self._interruptible or not first:
            raise _Stop()

    @contextlib.contextmanager
    def _idle(self) -> Iterator[None]:
        """A wait a stop signal may cut short (nothing is half-done during it)."""
        if self._stop:
            raise _Stop()
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, 0.1 * 2**attempt) * random.uniform(0.5, 1.0)

    # ------------------------------------------------------------------ main loop
    def run(self, *, handle_signals: bool = True) -> StreamSummary:
        """Work until stopped (signal or :meth:`stop`); returns what was done."""
        import redis

        start = time.monotonic()
        previous: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        down = _redis_errors()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="winnow-sink")
        try:
            self._open_sink()
            while not self._stop:
                try:
                    self._connect()
                    self._recover_own()
                    self._claim_sweep()
                    self._loop()
                    self._settle()
                except down as e:
                    self._abandon()
                    self._redis_down(e)
                except redis.ResponseError as e:
                    if "NOGROUP" not in str(e):
                        raise
                    log.warning("consumer group %r is gone; re-creating it", self.source.group)
                    with self._idle():
                        time.sleep(0.1)
        except _Stop:
            pass
        finally:
            self._abandon()
            self._writer.shutdown(wait=True)
            self._writer = None
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            with contextlib.suppress(Exception):
                self.sink.close()
            with contextlib.suppress(Exception):
                self.source.close()
            if self.review is not None:
                self.review.close()
        s = self.source
        c = self.metrics.counts
        log.info(
            "stopped: %d selected, %d not selected, %d dead-lettered "
            "(%d recovered, %d claimed, %d reconnects)",
            c.selected,
            c.not_selected,
            c.dead_lettered,
            c.recovered,
            c.claimed,
            c.reconnects,
        )
        elapsed = time.monotonic() - start
        return StreamSummary(s.stream, s.group, s.consumer, self.sink.description, elapsed, c)

    def _open_sink(self) -> None:
        attempt = 0
        while True:
            try:
                self.sink.open()
                log.info("sink: %s", self.sink.description)
                return
            except SinkUnavailable as e:
                delay = self._backoff(attempt)
                log.warning("sink unavailable (%s); retrying in %.1fs", e, delay)
                with self._idle():
                    time.sleep(delay)
                attempt += 1

    def _connect(self) -> None:
        self.source.connect()
        if not self._connected_once:
            self._connected_once = True
            log.info("connected to Redis: consumer %r of group %r", self.source.consumer, self.source.group)
        if self._redis_failures:
            log.info("reconnected to Redis after %d failed attempts", self._redis_failures)
            self.metrics.event("reconnects")
        self._redis_failures = 0

    def _redis_down(self, e: BaseException) -> None:
        delay = self._backoff(self._redis_failures)
        self._redis_failures += 1
        log.warning("Redis unreachable (%s); reconnecting in %.1fs", e, delay)
        with contextlib.suppress(Exception):
            self.source.close()
        with self._idle():
            time.sleep(delay)

    def _loop(self) -> None:
        every = max(self.claim_idle_ms / 2000, 0.05)
        next_claim = time.monotonic() + every
        # while a full batch is scored, the next one is read (a backlog: Redis and the socket
        # work while this thread scores); entries read ahead are processed before stopping
        ahead: Future[list[Entry]] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="winnow-read-ahead") as pool:
            try:
                while not self._stop:
                    now = time.monotonic()
                    # no read ahead starts within 0.5 s of a sweep (below): a sweep waits a batch at most
                    if ahead is None and now >= next_claim:
                        self._claim_sweep()
                        next_claim = now + every
                    if now >= self._next_backlog:
                        self.metrics.backlog(*self.source.backlog())
                        self.metrics.tick()
                        if self.scorer.monitor is not None:
                            self.metrics.drift.set(self.scorer.monitor.report())
                        self._next_backlog = now + 1.0
                    if ahead is not None:
                        entries, ahead = ahead.result(), None
                    else:
                        self._settle()  # nothing read ahead: commit before waiting for entries
                        entries = self._read_new()
                    if len(entries) >= self.batch_size and not self._stop and now + 0.5 < next_claim:
                        ahead = pool.submit(self.source.read_new, self.batch_size, 1)
                    if entries:
                        self._process(entries)
            except BaseException:
                if ahead is not None:
                    # delivered but not processed: pending, recovered after the reconnect / restart
                    with contextlib.suppress(Exception):
                        ahead.result()
                raise
            if ahead is not None and (left := ahead.result()):
                self._process(left)

    def _read_new(self) -> list[Entry]:
        """Wait up to ``block_ms`` for new entries, in slices short enough to notice a stop signal.

        The read itself is never interrupted: once Redis has delivered entries to this consumer,
        they are processed before the worker stops (interrupting the read would leave them
        pending until the next run).
        """
        deadline = time.monotonic() + self.source.block_ms / 1000
        while True:
            left_ms = (deadline - time.monotonic()) * 1000
            entries = self.source.read_new(self.batch_size, block_ms=min(_READ_SLICE_MS, max(left_ms, 1)))
            if entries or left_ms <= _READ_SLICE_MS or self._stop:
                return entries

    def _recover_own(self) -> None:
        cursor, total = "0", 0
        while not self._stop:
            entries = self.source.read_pending(cursor, self.batch_size)
            if not entries:
                break
            cursor = entries[-1].id
            total += len(entries)
            self.metrics.event("recovered", len(entries))
            self._process(entries)
        if total:
            log.info("re-processed %d pending entries of consumer %r", total, self.source.consumer)

    def _claim_sweep(self) -> None:
        cursor = "0-0"
        while not self._stop:
            cursor, entries, deleted = self.source.claim(cursor, self.batch_size, self.claim_idle_ms)
            if deleted:
                why = "deleted from the stream while pending"
                self._dead_letter([DeadLetter(d, "deleted", why, 0, "null", pending=False) for d in deleted])
            if entries:
                log.info("claimed %d entries pending longer than %d ms", len(entries), self.claim_idle_ms)
                self.metrics.event("claimed", len(entries))
                self._process(entries)
            if cursor == "0-0":
                break

    # ------------------------------------------------------------------ one batch
    def _process(self, entries: list[Entry]) -> None:
        try:
            self._handle(entries, defer=self.pipelined and len(entries) > 1)
        except _passthrough():
            raise
        except Exception as e:
            self._one_by_one(entries, e)

    def _one_by_one(self, entries: list[Entry], e: Exception) -> None:
        """After a batch failed with ``e``: each entry on its own, its commit waited for."""
        passthrough = _passthrough()
        self.metrics.event("batch_failures")
        if len(entries) == 1:
            self._failed(entries[0], e)
            return
        log.warning("batch of %d failed (%s: %s); retrying entry by entry", len(entries), type(e).__name__, e)
        for entry in entries:
            try:
                self._handle([entry])
            except passthrough:
                raise
            except Exception as err:
                self._failed(entry, err)

    def _failed(self, entry: Entry, e: Exception) -> None:
        if len(self._last_error) > 10_000:
            self._last_error.clear()
        self._last_error[entry.id] = f"{type(e).__name__}: {e}"
        log.error(
            "entry %s failed (delivery %d): %s: %s; it stays pending and is retried after %d ms",
            entry.id,
            entry.deliveries,
            type(e).__name__,
            e,
            self.claim_idle_ms,
        )

    def _handle(self, entries: list[Entry], *, defer: bool = False) -> None:
        """Score ``entries`` and commit them: sink write, dead letters, acknowledgement.

        With ``defer`` the sink write starts in the writer thread and the rest waits for
        :meth:`_settle`; otherwise everything is done before returning. Either way the previous
        batch is settled first.
        """
        t0 = time.monotonic()
        dead: list[DeadLetter] = []
        fresh: list[Entry] = []
        for e in entries:
            if e.pairs is None:
                why = "deleted from the stream before it was processed"
                dead.append(DeadLetter(e.id, "deleted", why, e.deliveries, "null"))
            elif e.deliveries > self.max_retries:
                last = self._last_error.get(e.id, "unknown (a worker stopped before acknowledging it)")
                why = f"failed {e.deliveries - 1} times (max_retries={self.max_retries}); last error: {last}"
                dead.append(DeadLetter(e.id, "retries", why, e.deliveries, raw_json(e.fields)))
            else:
                fresh.append(e)
        # (id, row to store or None) per scored entry, in entry order; acknowledged: all of them
        outcomes: list[tuple[str, SinkRow | None]] = []
        acked: list[str] = []
        now = datetime.now(UTC).replace(tzinfo=None)
        for e, rec, res, quiet_id in self._score(fresh, dead):
            if res is None:
                # scored, not selected, stored nowhere: counted, acknowledged, kept for upserts
                outcomes.append((quiet_id, None))  # type: ignore[arg-type]
                acked.append(e.id)
                if self._queue is not None:
                    self._queue.count(self._version, 1, 0)
                continue
            out = to_outcome(
                e, rec, res, id_column=self.scorer.id_column, scored_at=now, keep_unselected=self.audit
            )
            if isinstance(out, DeadLetter):
                dead.append(out)
            else:
                outcomes.append((out.id, out))
                acked.append(out.entry_id)
                if self._queue is not None:
                    self._queue.offer(
                        self._version, out.id, out.score, out.selected, out.rule, out.reasons, rec
                    )
        stored = unique_by_id(outcomes)
        batch = None
        if outcomes:
            batch = SinkBatch(
                selected=[r for r in stored if r.selected],
                scored=stored if self.audit else None,
                entry_ids=acked,
            )
        n_sel = sum(row.selected for row in stored)
        this = _Unsettled(entries, batch, dead, acked, n_sel, t0)
        if self._queue is not None:
            this.review = self._queue.drain()
        self._settle()
        if batch is not None and defer and self._writer is not None:
            this.write = self._writer.submit(self.sink.write, batch)
            self._unsettled = this
            return
        self._unsettled = this
        self._settle()

    def _settle(self) -> None:
        """Finish the batch whose commit is under way: wait for its sink write (retried here
        while the sink is unavailable; a batch that fails otherwise is retried entry by entry),
        then dead-letter and acknowledge it."""
        this, self._unsettled = self._unsettled, None
        if this is None:
            return
        if this.write is not None:
            try:
                this.write.result()
            except SinkUnavailable as e:
                self._write(this.batch, failed=e)  # type: ignore[arg-type]
            except _passthrough():
                raise
            except Exception as e:
                self._one_by_one(this.entries, e)
                return
        elif this.batch is not None:
            self._write(this.batch)
        self._dead_letter(this.dead)
        self.source.ack(this.acked)
        if this.review and self.review is not None:
            try:  # best effort: the records are in the sink whatever happens here
                ReviewQueue.write(self.review, this.review)
            except Exception as e:  # a review store down must not stop the stream
                log.warning("review queue not written (%s): %s", type(e).__name__, e)
        while self.digests is not None and self.digests.due():  # the sink is idle between commits
            self.digests.write(self.sink)
        for entry in this.entries:
            self._last_error.pop(entry.id, None)
        kinds: dict[str, int] = {}
        for d in this.dead:
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
        self.metrics.batch(this.selected, len(this.acked) - this.selected, kinds, time.monotonic() - this.t0)

    def _abandon(self) -> None:
        """Drop the unsettled batch (Redis is down or the worker stops abnormally): wait for its
        write to end; its entries stay pending and come back (the sink write is idempotent)."""
        this, self._unsettled = self._unsettled, None
        if this is not None and this.write is not None:
            with contextlib.suppress(Exception):
                this.write.result()

    def _score(
        self,
        entries: list[Entry],
        dead: list[DeadLetter],
    ) -> list[tuple[Entry, dict[str, Any], RecordResult | None, str | None]]:
        """(entry, record, result, None) for each entry whose record is stored somewhere, and
        (entry, {}, None, record id) for a scored, not-selected entry nothing stores; entries
        that do not decode go to ``dead``. In entry order.

        Flat-map entries are decoded and typed column by column, and record dicts are only
        built where the sink or a dead letter keeps the record. JSON entries, and batches with
        irregular entries, are decoded one by one.
        """
        if not entries:
            return []
        table = decode_columns([e.pairs for e in entries]) if self.json_field is None else None  # type: ignore[misc]
        if table is None:
            todo: list[tuple[Entry, dict[str, Any]]] = []
            for e in entries:
                try:
                    todo.append((e, decode_entry(e.fields, self.json_field)))  # type: ignore[arg-type]
                except DecodeError as err:
                    dead.append(DeadLetter(e.id, "decode", str(err), e.deliveries, raw_json(e.fields)))
            if not todo:
                return []
            results = self.scorer.score_records(
                [r for _, r in todo], threshold=self.threshold, reasons=self.reasons
            )
            return [(e, rec, res, None) for (e, rec), res in zip(todo, results, strict=True)]
        sc = self.scorer.score_text_table(table, threshold=self.threshold, reasons=self.reasons)
        need = self._stored(sc, entries)
        recs = dict(zip(need.tolist(), table.take(need).to_pylist(), strict=True)) if need.size else {}
        by_entry = self.scorer.id_column is None
        return [
            (e, {}, None, e.id if by_entry else str(sc.ids[j]))
            if (rec := recs.get(j)) is None
            else (e, rec, sc.result(j), None)
            for j, e in enumerate(entries)
        ]

    def _stored(self, sc: ScoredRecords, entries: list[Entry]) -> np.ndarray:
        """Positions whose record text goes somewhere: the sink (selected, or every row when
        auditing) or a dead letter (an error, no usable score, or no id)."""
        if self.audit:
            return np.arange(len(sc))
        keep = sc.selected | ~np.isfinite(sc.scores)  # NaN where a record was not scored
        if self.scorer.id_column is not None:
            keep |= np.array([v is None or v == "" for v in sc.ids], dtype=bool)
        if self._queue is not None:  # the review sample of the not-selected records
            ids = [e.id for e in entries] if self.scorer.id_column is None else [str(v) for v in sc.ids]
            keep |= np.array([self._queue.wants(rid, False) for rid in ids], dtype=bool)
        return np.flatnonzero(keep)

    def _write(self, batch: SinkBatch, failed: SinkUnavailable | None = None) -> None:
        """Write ``batch``, retrying in place while the sink is unavailable (``failed``: the
        first attempt, made elsewhere, failed with it)."""
        attempt = 0
        while True:
            if failed is None:
                try:
                    self.sink.write(batch)
                    return
                except SinkUnavailable as e:
                    failed = e
            if self._stop:
                log.warning("sink unavailable while stopping; the batch stays pending for the next run")
                raise _Stop() from failed
            self.metrics.event("sink_retries")
            delay = self._backoff(attempt)
            log.warning("sink unavailable (%s); retrying the batch in %.1fs", failed, delay)
            with self._idle():
                time.sleep(delay)
            failed = None
            attempt += 1

    def _dead_letter(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        self.source.dead_letter(letters)
        for d in letters[:3]:
            log.warning("dead-lettered %s (%s): %s", d.entry_id, d.kind, d.reason)
        if len(letters) > 3:
            log.warning("... and %d more dead-lettered in this batch", len(letters) - 3)


# ---------------------------------------------------------------------------------- entry point
def _check(option: str, value: float | None, low: float, expected: str, high: float | None = None) -> None:
    if value is not None and (value < low or (high is not None and value > high)):
        raise ConfigError(option, value, expected)


def _digests(
    screener: Any, every: str | None, folder: str | Path | None, reviews: str | None
) -> PeriodicDigest | None:
    if every is None or folder is None:
        return None
    from winnow.report.digest import parse_span

    return PeriodicDigest(screener, parse_span(every, "--digest-every"), Path(folder), reviews=reviews)


def run(
    artifact: str | Path,
    *,
    source: str,
    stream: str,
    group: str = "winnow",
    consumer: str | None = None,
    sink: str = DEFAULT_SINK,
    table: str | None = None,
    audit: bool = False,
    dead_letter: str | None = None,
    batch_size: int = 2000,
    block_ms: int = 1000,
    max_retries: int = 5,
    claim_idle_ms: int = 60_000,
    threshold: float | None = None,
    reasons: int = 3,
    json_field: str | None = None,
    threads: int = 1,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    max_backoff: float = 10.0,
    monitor_window: int = 10_000,
    audit_fraction: float = 0.0,
    audit_file: str | Path | None = None,
    verify_key: str | Path | None = None,
    review: str | None = None,
    review_sample: float = 0.05,
    digest_every: str | None = None,
    digest_out: str | Path | None = None,
    handle_signals: bool = True,
    on_ready: Callable[[StreamWorker], None] | None = None,
) -> StreamSummary:
    """Load an artifact and score a Redis stream into a sink until stopped.

    The consumer name defaults to the host name: keep it stable across restarts so that a
    restarted worker finds its own pending entries. See :class:`StreamWorker` for the options.
    """
    from winnow.online import OnlineScorer
    from winnow.screener import Screener

    _check("--batch-size", batch_size, 1, "an integer >= 1")
    _check("--block-ms", block_ms, 1, "milliseconds >= 1 (0 would block forever)")
    _check("--max-retries", max_retries, 1, "an integer >= 1")
    _check("--claim-idle-ms", claim_idle_ms, 1, "milliseconds >= 1")
    _check("--threshold", threshold, 0.0, "a probability between 0 and 1", 1.0)
    _check("--reasons", reasons, 0, "an integer >= 0")
    _check("--threads", threads, 0, "an integer >= 0 (0 = all cores)")
    _check("--max-backoff", max_backoff, 0.01, "seconds >= 0.01")
    _check("--monitor-window", monitor_window, 1, "an integer >= 1")
    _check("--audit-fraction", audit_fraction, 0.0, "a share in [0, 1]", 1.0)
    if audit_fraction > 0 and audit_file is None:
        raise ConfigError(
            "--audit-fraction", audit_fraction, "a share in [0, 1], with --audit-file when above 0"
        )
    _check("--review-sample", review_sample, 0.0, "a share in [0, 1]", 1.0)
    if (digest_every is None) != (digest_out is None) or (digest_every is not None and not audit):
        raise ConfigError(
            "--digest-every",
            digest_every,
            "a span with --digest-out DIR and --audit (digests read the audit table)",
        )
    if digest_every is not None and sink.startswith("redis"):
        raise ConfigError(
            "--digest-every", digest_every, "a DuckDB, PostgreSQL or Parquet sink (not a Redis stream)"
        )
    the_sink = open_sink(sink, table, audit=audit)
    store = None
    if review is not None:
        from winnow.review.store import ReviewStore

        store = ReviewStore(review).open()
    src = RedisSource(
        source,
        stream,
        group,
        consumer or socket.gethostname(),
        dead_letter=dead_letter or f"{stream}:dead",
        block_ms=block_ms,
    )
    screener = Screener.load(artifact, verify_key=verify_key)
    screener.set_threads(threads)
    metrics = StreamMetrics()
    if metrics_port is not None:
        metrics.serve(metrics_port, metrics_host)
        log.info("metrics on http://%s:%d/metrics", metrics_host, metrics_port)
    from winnow.monitor import DriftMonitor

    monitor = None
    if screener.reference_ is not None:
        monitor = DriftMonitor(
            screener.reference_, window=monitor_window, audit_fraction=audit_fraction, audit_path=audit_file
        )
    worker = StreamWorker(
        OnlineScorer(screener, monitor=monitor),
        src,
        the_sink,
        batch_size=batch_size,
        max_retries=max_retries,
        claim_idle_ms=claim_idle_ms,
        threshold=threshold,
        reasons=reasons,
        json_field=json_field,
        audit=audit,
        max_backoff=max_backoff,
        metrics=metrics,
        review=store,
        review_sample=review_sample,
        digests=_digests(screener, digest_every, digest_out, review),
    )
    log.info(
        "worker %r on stream %r group %r (%s), dead letters to %r",
        src.consumer,
        stream,
        group,
        source.split("@")[-1],
        src.dead_letter_stream,
    )
    if on_ready is not None:
        on_ready(worker)
    try:
        return worker.run(handle_signals=handle_signals)
    finally:
        metrics.stop()
