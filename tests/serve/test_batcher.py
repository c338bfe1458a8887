"""Micro-batching: coalescing, grouping by options, per-request indices, bad-record isolation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from winnow.serve.batcher import MicroBatcher, reindex, score_safely
from winnow.serve.registry import LoadedModel, load_model


@pytest.fixture(scope="module")
def model(artifact: Path) -> LoadedModel:
    return load_model(artifact)


def test_concurrent_requests_share_micro_batches(model: LoadedModel, records: list[dict]) -> None:
    batches: list[tuple[int, int]] = []

    async def main() -> list[Any]:
        b = MicroBatcher(max_wait_s=0.05, on_batch=lambda n, r, _s: batches.append((n, r)))
        outs = await asyncio.gather(*(b.submit(model, [rec]) for rec in records[:40]))
        await b.close()
        return outs

    outs = asyncio.run(main())
    assert sum(n for n, _ in batches) == 40
    assert len(batches) <= 4, batches  # 40 requests, not 40 model calls
    direct = model.scorer.score_records(records[:40])
    for out, d in zip(outs, direct, strict=True):
        assert len(out) == 1 and out[0].index == 0
        assert out[0].score == d.score and out[0].selected == d.selected and out[0].reasons == d.reasons


def test_options_are_kept_per_request(model: LoadedModel, records: list[dict]) -> None:
    bad = {**records[11], "honors": "many"}
    jobs = [
        {"records": records[0:5], "threshold": None},
        {"records": records[5:10], "threshold": 0.0},
        {"records": [records[10], bad, records[12]], "threshold": 0.0},
        {"records": records[20:30], "budget": 2},
        {"records": records[30:40], "budget": 3},
    ]

    async def main() -> list[Any]:
        from winnow.config import Budget

        b = MicroBatcher(max_wait_s=0.05)
        outs = await asyncio.gather(
            *(
                b.submit(
                    model,
                    j["records"],
                    threshold=j.get("threshold"),
                    budget=Budget(count=j["budget"]) if "budget" in j else None,
                )
                for j in jobs
            )
        )
        await b.close()
        return outs

    default, zero, mixed, top2, top3 = asyncio.run(main())
    thr = model.screener.threshold_.value
    assert [r.selected for r in default] == [r.score >= thr for r in default]
    assert all(r.selected for r in zero)
    assert [r.index for r in mixed] == [0, 1, 2]
    assert mixed[1].error is not None and mixed[1].error.row == 1
    assert mixed[1].error.describe("field").startswith("record 1, field 'honors'")
    assert mixed[0].selected and mixed[2].selected
    assert sum(r.selected for r in top2) == 2 and sum(r.selected for r in top3) == 3


def test_a_record_that_breaks_scoring_is_isolated(model: LoadedModel, records: list[dict]) -> None:
    batch = [records[0], {**records[1], "years_experience": 10**400}, records[2]]
    alone = model.scorer.score_records(batch)  # an out-of-range number is a per-record error
    assert alone[1].error is not None and alone[1].error.column == "years_experience"

    class Exploding:
        """A scorer that breaks on one record, to exercise the batcher's isolation."""

        def score_records(self, recs, **kw):  # type: ignore[no-untyped-def]
            if any(r.get("years_experience") == 10**400 for r in recs):
                raise OverflowError("boom")
            return model.scorer.score_records(recs, **kw)

    out = score_safely(Exploding(), batch, threshold=None, budget=None, reasons=3)
    assert [r.index for r in out] == [0, 1, 2]
    assert out[1].error is not None and out[1].error.describe("field").startswith("record 1:")
    direct = model.scorer.score_records([records[0], records[2]])
    assert out[0].score == direct[0].score and out[2].score == direct[1].score


def test_reindex_renumbers_the_error(model: LoadedModel) -> None:
    [res] = model.scorer.score_records([{"x": 1}])
    moved = reindex(res, 7)
    assert moved.index == 7 and moved.error is not None and moved.error.row == 7
    assert moved.error.describe("field").startswith("record 7") and res.error is not None
    assert res.error.describe("field").startswith("record 0")


def test_closed_batcher_refuses_and_cancelled_requests_cost_nothing(
    model: LoadedModel, records: list[dict]
) -> None:
    from winnow.serve.batcher import BatcherClosed

    seen: list[int] = []

    async def main() -> None:
        b = MicroBatcher(max_wait_s=0.1, on_batch=lambda n, _r, _s: seen.append(n))
        t = asyncio.create_task(b.submit(model, records[:3]))
        await asyncio.sleep(0.01)
        t.cancel()  # a client that timed out
        keep = await b.submit(model, records[3:4])
        assert len(keep) == 1
        await b.close()
        with pytest.raises(BatcherClosed):
            await b.submit(model, records[:1])

    asyncio.run(main())
    assert seen == [1]


def test_arrow_tables_of_one_schema_are_scored_together(model: LoadedModel, resume_table) -> None:
    """Arrow bodies waiting together: one scoring call per schema, each request its own answer;
    a table the screener refuses (a column missing) gets its own error, the others are scored."""
    import numpy as np
    import pyarrow as pa

    from winnow.serve.parsing import ClientError

    rows = resume_table.drop(["received_callback"])
    tables = [rows.slice(i * 30, 30) for i in range(6)]
    broken = rows.slice(200, 10).drop([rows.column_names[0]])
    batches: list[tuple[int, int]] = []

    async def main() -> list[Any]:
        b = MicroBatcher(max_wait_s=0.05, on_batch=lambda n, r, _s: batches.append((n, r)))
        outs = await asyncio.gather(
            *(b.submit_table(model, t) for t in [*tables[:3], broken, *tables[3:]]),
            return_exceptions=True,
        )
        await b.close()
        return outs

    outs = asyncio.run(main())
    assert sum(r for _, r in batches) == 7 and len(batches) <= 2, batches
    err = outs.pop(3)
    assert isinstance(err, ClientError) and err.status == 422 and rows.column_names[0] in err.message
    for t, out in zip(tables, outs, strict=True):
        got = pa.ipc.open_stream(out.body).read_all()
        assert got.num_rows == t.num_rows and (out.scored, out.rejected) == (t.num_rows, 0)
        expected = model.screener.score_batch(t).scores
        np.testing.assert_allclose(got.column("score").to_numpy(), expected, rtol=0, atol=1e-12)


def test_small_micro_batches_are_scored_on_the_event_loop(model: LoadedModel, records: list[dict]) -> None:
    """Up to ``inline_records`` JSON records are scored on the loop's own thread, larger
    micro-batches on the scoring thread; the results are the same either way."""
    import threading

    from winnow.serve import batcher as batcher_module

    where: list[tuple[int, int]] = []
    score_jobs = batcher_module._score_jobs

    def spy(jobs: list[Any]) -> list[Any]:
        where.append((sum(len(j.records) for j in jobs), threading.get_ident()))
        return score_jobs(jobs)

    async def main() -> tuple[list[Any], list[Any], int]:
        b = MicroBatcher(inline_records=8)
        small = await asyncio.gather(*(b.submit(model, [rec]) for rec in records[:3]))
        big = await b.submit(model, records[:20])
        await b.close()
        return small, big, threading.get_ident()

    batcher_module._score_jobs = spy
    try:
        small, big, loop_thread = asyncio.run(main())
    finally:
        batcher_module._score_jobs = score_jobs
    sizes = [n for n, _ in where]
    assert sum(sizes[:-1]) == 3 and sizes[-1] == 20  # three single requests, then one of 20
    assert all(t == loop_thread for _, t in where[:-1])
    assert where[-1][1] != loop_thread  # 20 records: the scoring thread
    direct = model.scorer.score_records(records[:20])
    assert [o[0].score for o in small] == [d.score for d in direct[:3]]
    assert [r.score for r in big] == [d.score for d in direct]
    assert [r.reasons for r in big] == [d.reasons for d in direct]
