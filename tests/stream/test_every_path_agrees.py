"""One selection policy: the same records through every path select the same rows.

The records go through the Python API (``Screener.screen``), the CLI's local engine
(``winnow screen``), the Ray engine, the HTTP service and the stream worker (a real Redis and a
real worker process writing DuckDB), with

* a count budget (batch paths and the service: a stream has no end to take a top k of),
* the artifact's threshold, fitted for a minimum precision (every path),
* a threshold given at screening time (the service and the stream worker),

and a ``select`` rule and an ``exclude`` rule that both fire. Every path must give the same
selected records, ranks (where the path has ranks), scores, rules and reasons.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import fit_options, make_frame
from tests.stream.helpers import WorkerProcess, feed, read_duckdb, wait_done
from winnow import Screener
from winnow.config import Budget

pytest.importorskip("ray")
os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"})

RULES = [
    {"name": "loyal", "when": "visits >= 7 and region not in ('nowhere', 'x')", "action": "select"},
    {
        "name": "west_big",
        "when": "lower(region) in ('west',) and (spend if spend is not None else 0) > 40",
        "action": "exclude",
    },
]
BUDGET = 25
N_REASONS = 3
#: a row's outcome: (id, rank or None, score, rule, reasons)
Row = tuple[int, int | None, float, str | None, tuple[str, ...]]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("paths")
    s = Screener().fit(
        make_frame(700, seed=0),
        **fit_options(rules=RULES, budget=Budget(min_precision=0.5)),
    )
    artifact = s.save(root / "screener")
    frame = make_frame(300, seed=7).drop(columns=["churn", "future_spend"])
    data = root / "records.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data, row_group_size=100)
    return {"root": root, "artifact": artifact, "data": data, "screener": Screener.load(artifact)}


def _from_table(table: pa.Table) -> list[Row]:
    """Rows of a batch output (rank, customer_id, score, rule, reason_1..N), in rank order."""
    out = []
    for r in table.to_pylist():
        reasons = tuple(r[f"reason_{i}"] for i in range(1, N_REASONS + 1) if r[f"reason_{i}"] is not None)
        out.append((r["customer_id"], r["rank"], r["score"], r["rule"], reasons))
    return out


def _from_service(body: dict[str, Any]) -> list[Row]:
    rows = [
        (int(r["id"]), r["rank"], r["score"], r["rule"], tuple(r["reasons"]))
        for r in body["results"]
        if r["selected"]
    ]
    return sorted(rows, key=lambda x: x[1])


def _same(got: list[Row], want: list[Row], *, label: str, ranks: bool = True) -> None:
    if not ranks:
        got = sorted((i, None, s, ru, re) for i, _, s, ru, re in got)
        want = sorted((i, None, s, ru, re) for i, _, s, ru, re in want)
    assert [r[0] for r in got] == [r[0] for r in want], label
    for g, w in zip(got, want, strict=True):
        assert g[1] == w[1] and g[3] == w[3] and g[4] == w[4], (label, g, w)
        assert math.isclose(g[2], w[2], rel_tol=0, abs_tol=1e-12), (label, g, w)


def _batch_paths(case: dict[str, Any], tmp: Path, budget: int | None) -> dict[str, list[Row]]:
    """Python API, the CLI's local engine and the Ray engine."""
    from typer.testing import CliRunner

    from winnow.cli import app
    from winnow.engines.ray_engine import screen_ray

    out: dict[str, list[Row]] = {}
    res = case["screener"].screen(case["data"], budget=budget, reasons=N_REASONS)
    out["python"] = _from_table(res.selected)
    cli_out = tmp / "cli.parquet"
    args = ["screen", str(case["artifact"]), str(case["data"]), "--out", str(cli_out), "--quiet"]
    run = CliRunner().invoke(app, args + ([] if budget is None else ["--budget", str(budget)]))
    assert run.exit_code == 0, run.output
    out["cli"] = _from_table(pq.read_table(cli_out))
    ray_out = tmp / "ray.parquet"
    screen_ray(case["artifact"], case["data"], out=ray_out, budget=budget, workers=2, unit_rows=100)
    out["ray"] = _from_table(pq.read_table(ray_out))
    return out


def _service(case: dict[str, Any], options: dict[str, Any]) -> list[Row]:
    from fastapi.testclient import TestClient

    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    records = pq.read_table(case["data"]).to_pylist()
    for r in records:
        r["signup"] = r["signup"].isoformat()
    app = create_app(ServeSettings(artifact=case["artifact"]), api_keys=ApiKeys())
    with TestClient(app) as c:
        resp = c.post("/v1/screen", json={"records": records, "reasons": N_REASONS, **options})
    assert resp.status_code == 200, resp.text
    return _from_service(resp.json())


def _stream(case: dict[str, Any], redis_server: Any, tag: str, *args: str) -> list[Row]:
    """The real worker on a real Redis stream, selected rows read back from DuckDB (no ranks)."""
    client = redis_server.client()
    stream, table, db = f"paths-{tag}", f"sel_{tag}", case["root"] / f"{tag}.duckdb"
    cmd = [sys.executable, "-m", "winnow.stream", str(case["artifact"]), "--source", redis_server.url]
    cmd += ["--stream", stream, "--sink", f"duckdb:{db}", "--table", table, "--block-ms", "100"]
    cmd += ["--reasons", str(N_REASONS), *args]
    w = WorkerProcess(cmd, case["root"] / f"worker-{tag}")
    try:
        w.wait_ready()
        feed(client, stream, pq.read_table(case["data"]).to_pylist())
        wait_done(client, stream)
        w.terminate()
    finally:
        w.kill()
    return [(int(r["id"]), None, r["score"], r["rule"], tuple(r["reasons"])) for r in read_duckdb(db, table)]


def test_every_path_selects_the_same_records(case: dict[str, Any], tmp_path: Path, redis_server: Any) -> None:
    # a count budget: the batch paths and the service (one request holding every record)
    (tmp_path / "budget").mkdir()
    by_budget = _batch_paths(case, tmp_path / "budget", BUDGET)
    by_budget["service"] = _service(case, {"budget": BUDGET})
    want = by_budget["python"]
    # the budget's places, plus the records the select rule puts in beyond them
    assert len(want) > BUDGET and any(r[3] == "loyal" and r[1] > BUDGET for r in want)
    for name, got in by_budget.items():
        _same(got, want, label=f"budget, {name}")

    # the artifact's threshold, fitted for precision >= 0.5: every path, the stream included
    (tmp_path / "threshold").mkdir()
    by_threshold = _batch_paths(case, tmp_path / "threshold", None)
    by_threshold["service"] = _service(case, {})
    want = by_threshold["python"]
    assert 0 < len(want) < 300 and any(r[3] == "loyal" for r in want)
    for name, got in by_threshold.items():
        _same(got, want, label=f"artifact threshold, {name}")
    _same(_stream(case, redis_server, "artifact"), want, ranks=False, label="artifact threshold, stream")

    # a threshold chosen when screening: the service and the stream worker
    chosen = _service(case, {"threshold": 0.3})
    assert len(chosen) != len(want)
    stream = _stream(case, redis_server, "chosen", "--threshold", "0.3")
    _same(stream, chosen, ranks=False, label="threshold 0.3, stream")


def test_an_excluded_record_never_takes_a_budget_place(case: dict[str, Any]) -> None:
    """The rule was applied after the top k in the service once: an excluded record used up a
    place, and the budget selected fewer records than the batch path."""
    from winnow.online import OnlineScorer

    scorer = OnlineScorer(case["screener"])
    records = pq.read_table(case["data"]).to_pylist()
    results = scorer.score_records(records, budget=Budget(count=BUDGET), reasons=0)
    chosen = {r.index for r in results if r.selected}
    competing = sorted((r for r in results if r.rule != "west_big"), key=lambda r: (-r.score, r.index))
    loyal = {r.index for r in results if r.rule == "loyal"}
    assert chosen == {r.index for r in competing[:BUDGET]} | loyal
    excluded = [r for r in results if r.rule == "west_big"]
    assert excluded and not any(r.selected for r in excluded)
    # the excluded records would have taken places on their scores alone
    assert any(r.score > competing[BUDGET - 1].score for r in excluded)
    ranks = sorted((r.rank, -r.score) for r in results if r.selected)
    assert [k for k, _ in ranks] == list(range(1, len(chosen) + 1))
    assert [s for _, s in ranks] == sorted(s for _, s in ranks)
