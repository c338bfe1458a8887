"""Concurrent requests coalesced into micro-batches, scored off the event loop.

Scoring one record costs about as much as scoring fifty (fixed costs of Arrow, preprocessing
and LightGBM per call), so requests that arrive together are scored together. The batcher takes
the first waiting request, then whatever else arrives within ``max_wait_s`` (bounded by
``max_records``), and scores them in one worker thread while the event loop goes on reading and
parsing the next requests; whatever queued meanwhile forms the next batch, so batches grow with
the load by themselves. A micro-batch of at most ``inline_records`` JSON records is scored on
the event loop itself: for a few records the hop to the thread and back (two wake-ups, the GIL
handed over twice, each wait up to the interpreter's 5 ms switch interval under load) cost more
than the scoring, and it was what set the service's tail latency (bench/RESULTS.md).

Requests are grouped by (model, threshold, reasons) and each group goes through one call of
:meth:`winnow.online.OnlineScorer.score_records`, the one scoring function; results are split
back per request with their own record indices. Arrow IPC bodies are grouped by (model,
schema) and scored as one table (:func:`winnow.serve.arrow_body.score_tables`). A request
with a ``budget`` is a group of its own: its top-k is over its own records. A request keeps
the model it was admitted with, so a model swap never changes the model of a request already
waiting.

If a call raises (a record that breaks something beyond validation), the records responsible
are found by bisection and answered with a per-record error; the others are scored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

import pyarrow as pa

from winnow.config import Budget
from winnow.io.rejects import Reject
from winnow.online import OnlineScorer, RecordResult, rerank
from winnow.serve.arrow_body import ArrowAnswer, score_tables
from winnow.serve.parsing import ClientError
from winnow.serve.registry import LoadedModel

log = logging.getLogger("winnow.serve")


class BatcherClosed(RuntimeError):
    """The service is shutting down and takes no new work."""


@dataclass
class _Job:
    model: LoadedModel
    records: list[Any] | pa.Table  # a table: an Arrow IPC body, answered with an ArrowAnswer
    threshold: float | None
    budget: Budget | None
    reasons: int
    future: asyncio.Future[Any]


def reindex(result: RecordResult, index: int) -> RecordResult:
    """The same result numbered as record ``index`` of its own request."""
    if result.index == index:
        return result
    err = result.error.at(index) if result.error is not None else None
    return replace(result, index=index, error=err)


def _failed(index: int, exc: BaseException) -> RecordResult:
    what = f"{type(exc).__name__}: {str(exc)[:200]}"
    return RecordResult(
        index=index,
        error=Reject(
            index,
            f"could not be scored ({what}); check its values, e.g. numbers too large for a 64-bit float",
            value=what,
            expected="a record the model can score",
        ),
    )


def _culprits(scorer: OnlineScorer, records: Sequence[Any], idx: list[int]) -> dict[int, BaseException]:
    """Indices of the records that make scoring raise on their own (bisection)."""
    try:
        # threshold 0 selects every record, so the reasons and rules paths run too
        scorer.score_records([records[i] for i in idx], threshold=0.0, reasons=1)
        return {}
    except Exception as e:  # looking for exactly these records
        if len(idx) == 1:
            return {idx[0]: e}
    mid = len(idx) // 2
    return {**_culprits(scorer, records, idx[:mid]), **_culprits(scorer, records, idx[mid:])}


def score_safely(
    scorer: OnlineScorer,
    records: Sequence[Any],
    *,
    threshold: float | None,
    budget: Budget | None,
    reasons: int,
) -> list[RecordResult]:
    """``scorer.score_records``; a record that makes it raise gets a per-record error instead."""
    recs = list(records)
    try:
        return scorer.score_records(recs, threshold=threshold, budget=budget, reasons=reasons)
    except Exception as first:  # isolate the records responsible; re-raised below if none is
        bad = _culprits(scorer, recs, list(range(len(recs))))
        if not bad:
            raise
        log.warning("%d record(s) could not be scored (%s); the others were", len(bad), type(first).__name__)
    results: list[RecordResult | None] = [None] * len(recs)
    for i, e in bad.items():
        results[i] = _failed(i, e)
    good = [i for i in range(len(recs)) if i not in bad]
    if good:
        sub = scorer.score_records(
            [recs[i] for i in good], threshold=threshold, budget=budget, reasons=reasons
        )
        for r, i in zip(sub, good, strict=True):
            results[i] = reindex(r, i)
    return [r for r in results if r is not None]


def _score_group(jobs: list[_Job]) -> list[list[RecordResult]] | list[ArrowAnswer | ClientError]:
    first = jobs[0]
    if isinstance(first.records, pa.Table):
        return score_tables(first.model.scorer, [j.records for j in jobs])  # type: ignore[misc]
    records = [r for j in jobs for r in j.records]  # type: ignore[union-attr]
    results = score_safely(
        first.model.scorer, records, threshold=first.threshold, budget=first.budget, reasons=first.reasons
    )
    out, start = [], 0
    for j in jobs:
        part = [reindex(r, i) for i, r in enumerate(results[start : start + len(j.records)])]
        out.append(rerank(part) if len(jobs) > 1 else part)
        start += len(j.records)
    return out


def _group_key(i: int, job: _Job) -> tuple[Any, ...]:
    """Requests with the same key are scored in one call: Arrow tables of one schema, or JSON
    records with the same threshold and reasons; a request with a budget is a group of its own."""
    if isinstance(job.records, pa.Table):
        return ("arrow", id(job.model), job.records.schema)
    if job.budget is not None:
        return ("budget", i)
    return (id(job.model), job.threshold, job.reasons)


def _score_jobs(jobs: list[_Job]) -> list[Any]:
    """Runs in the worker thread: one scoring call per group of compatible requests; each
    job's outcome is its results, or the exception that answers it."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, j in enumerate(jobs):
        groups.setdefault(_group_key(i, j), []).append(i)
    out: list[Any] = [RuntimeError("not scored")] * len(jobs)
    for idx in groups.values():
        try:
            for i, res in zip(idx, _score_group([jobs[i] for i in idx]), strict=True):
                out[i] = res
        except Exception as e:  # not caused by a record: fails these requests only (500, logged)
            log.exception("scoring failed for %d request(s)", len(idx))
            for i in idx:
                out[i] = e
    return out


class MicroBatcher:
    """Coalesces concurrent scoring requests; one worker thread scores.

    Parameters
    ----------
    max_wait_s : how long to wait for more requests after the first one (0 = take what is queued).
    max_records : most records per micro-batch (a larger single request is scored alone).
    inline_records : micro-batches of at most this many JSON records are scored on the event
        loop (0: every micro-batch on the scoring thread).
    on_batch : called after each micro-batch with (records, requests, seconds).
    """

    def __init__(
        self,
        *,
        max_wait_s: float = 0.0,
        max_records: int = 4096,
        inline_records: int = 0,
        on_batch: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.max_wait_s, self.max_records, self.on_batch = max_wait_s, max_records, on_batch
        self.inline_records = inline_records
        self._queue: asyncio.Queue[_Job | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._carry: _Job | None = None
        self.closed = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self.closed

    def start(self) -> None:
        """Start the batching task on the running event loop (idempotent)."""
        if self._task is not None or self.closed:
            return
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="winnow-score")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="winnow-batcher")

    async def submit(
        self,
        model: LoadedModel,
        records: list[Any],
        *,
        threshold: float | None = None,
        budget: Budget | None = None,
        reasons: int = 3,
    ) -> list[RecordResult]:
        """Score ``records`` with ``model`` in the next micro-batch; one result per record."""
        return await self._enqueue(model, records, threshold, budget, reasons)  # type: ignore[no-any-return]

    async def submit_table(self, model: LoadedModel, table: pa.Table) -> ArrowAnswer:
        """Score an Arrow body's table in the next micro-batch, with the other tables of its
        schema; raises the request's :class:`ClientError` when it is refused."""
        return await self._enqueue(model, table, None, None, 0)  # type: ignore[no-any-return]

    async def _enqueue(
        self,
        model: LoadedModel,
        records: list[Any] | pa.Table,
        threshold: float | None,
        budget: Budget | None,
        reasons: int,
    ) -> Any:
        if self.closed:
            raise BatcherClosed("the service is shutting down")
        self.start()
        assert self._queue is not None
        job = _Job(model, records, threshold, budget, reasons, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def close(self) -> None:
        """Take no new work, finish what is queued, stop the worker thread."""
        self.closed = True
        if self._task is not None and self._queue is not None:
            self._queue.put_nowait(None)
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def _next(self, timeout: float | None) -> _Job | Literal[False] | None:
        """The next job; False when none came within ``timeout`` (None = closing)."""
        assert self._queue is not None
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            if timeout is not None and timeout <= 0:
                return False
        if timeout is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._next(None)
            if first is None or first is False:
                break
            jobs, n = [first], len(first.records)
            deadline = loop.time() + self.max_wait_s
            while n < self.max_records:
                job = await self._next(deadline - loop.time())
                if job is False:
                    break
                if job is None:
                    stopping = True
                    break
                assert isinstance(job, _Job)
                if n + len(job.records) > self.max_records:
                    self._carry = job
                    break
                jobs.append(job)
                n += len(job.records)
            await self._score(loop, jobs)
        if self._carry is not None:  # closing: what was queued still gets an answer
            await self._score(loop, [self._carry])
            self._carry = None

    def _inline(self, jobs: list[_Job]) -> bool:
        """Few JSON records are scored on the event loop itself: for them the hop to the
        scoring thread and back (two wake-ups, the GIL handed over twice) costs more than the
        scoring, which holds the GIL in small numpy calls anyway."""
        total = 0
        for j in jobs:
            if isinstance(j.records, pa.Table):
                return False
            total += len(j.records)
        return total <= self.inline_records

    async def _score(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        live = [j for j in jobs if not j.future.done()]  # timed-out requests cost nothing
        if not live:
            return
        t0 = time.perf_counter()
        try:
            if self._inline(live):
                outcome = _score_jobs(live)
            else:
                outcome = await loop.run_in_executor(self._executor, _score_jobs, live)
        except Exception as e:  # the executor itself failed: answer every waiting request
            outcome = [e] * len(live)
        for job, res in zip(live, outcome, strict=True):
            if job.future.done():
                continue
            if isinstance(res, BaseException):
                job.future.set_exception(res)
            else:
                job.future.set_result(res)
        if self.on_batch is not None:
            self.on_batch(sum(len(j.records) for j in live), len(live), time.perf_counter() - t0)
