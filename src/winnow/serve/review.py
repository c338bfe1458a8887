"""``winnow serve --review STORE``: the service keeps what it screens for people to judge.

Every ``/v1/screen`` result with a score is offered to the review queue: each selected record,
and a seeded sample of the others (``--review-sample``, by record id, so a record is sampled or
not whatever request carries it). Offers wait in memory on the event loop and a background
task writes them to the store (:class:`winnow.review.store.ReviewStore`) every half second on
a worker thread, so a screen never waits for the database.

Routes: ``GET /review`` (the page: no data in it, so it needs no key), and behind the
service's keys like every ``/v1/`` route ``GET /v1/review/queue``, ``POST /v1/review/verdicts``
and ``GET /v1/review/stats``. The realised precision and the recall estimate are also
Prometheus gauges (``winnow_review_precision``, ``winnow_review_recall_estimate``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from winnow.review.page import PAGE
from winnow.review.queue import ReviewQueue, record_id
from winnow.review.store import VERDICTS, ReviewStore
from winnow.serve.parsing import ClientError

#: seconds between two writes of the waiting offers
FLUSH_INTERVAL_S = 0.5

page = APIRouter()
api = APIRouter()


class ReviewDesk:
    """The queue of offers waiting to be written, the store, and the writer task."""

    def __init__(self, store: ReviewStore, sample: float, seed: int = 0) -> None:
        self.store = store
        self.queue = ReviewQueue(sample, seed)
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    def offer(self, version: str, records: list[Any], results: list[dict[str, Any]]) -> None:
        """Note one screen's results (on the event loop: no I/O here)."""
        for record, r in zip(records, results, strict=True):
            if "error" in r or r.get("score") is None:
                continue
            rid = record_id(r.get("id"), record)
            self.queue.offer(
                version, rid, r["score"], bool(r.get("selected")), r.get("rule"), r.get("reasons", []), record
            )

    async def flush(self) -> None:
        """Write what waits (one writer at a time; offers made meanwhile wait for the next)."""
        async with self._flushing:
            drained = self.queue.drain()
            if drained:
                await asyncio.to_thread(ReviewQueue.write, self.store, drained)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self.flush()

    def start(self) -> None:
        self.store.open()
        self._task = asyncio.create_task(self._run(), name="winnow-review-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
        self.store.close()


class Verdict(BaseModel):
    """A person's verdict on one queued record."""

    id: str = Field(description="The record's id as the queue lists it.")
    verdict: str = Field(description="`right`: the screen decided well; `wrong`: it did not.")
    reviewer: str = Field(min_length=1, max_length=200)
    note: str | None = Field(None, max_length=2000)


def _desk(request: Request) -> ReviewDesk:
    desk = request.app.state.winnow.review
    assert desk is not None  # the routes exist only with --review
    return desk


async def _stats(request: Request, desk: ReviewDesk) -> dict[str, Any]:
    stats = await asyncio.to_thread(desk.store.stats)
    request.app.state.winnow.metrics.observe_reviews(stats)
    return stats


@page.get("/review", include_in_schema=False)
async def review_page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-store", "Content-Security-Policy": _CSP})


#: the page loads nothing from elsewhere and talks only to this service
_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"


@api.get("/v1/review/queue", summary="Records waiting for review, and the figures so far")
async def review_queue(request: Request, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    """The selected records first (best score first), then the sample of the others."""
    desk = _desk(request)
    await desk.flush()
    records = await asyncio.to_thread(desk.store.pending, limit)
    return {"records": records, "stats": await _stats(request, desk)}


@api.post("/v1/review/verdicts", summary="Store a verdict on a queued record")
async def review_verdict(request: Request, body: Verdict) -> dict[str, Any]:
    """The label it means (1 = high-value) and the figures after it."""
    if body.verdict not in VERDICTS:
        raise ClientError(
            422,
            "invalid_verdict",
            f"verdict {body.verdict!r} is not right or wrong",
            'Send "right" or "wrong".',
        )
    desk = _desk(request)
    from winnow.errors import DataError

    try:
        label = await asyncio.to_thread(
            desk.store.record_verdict, body.id, body.verdict, body.reviewer, body.note
        )
    except DataError as e:
        raise ClientError(404, "not_in_queue", str(e), e.hint or "") from None
    request.app.state.winnow.metrics.reviews.labels(verdict=body.verdict).inc()
    return {"id": body.id, "label": label, "stats": await _stats(request, desk)}


@api.get("/v1/review/stats", summary="Realised precision and the recall estimate")
async def review_stats(request: Request) -> dict[str, Any]:
    return await _stats(request, _desk(request))
