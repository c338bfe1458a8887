"""``winnow serve --review``: screened records queued for people, verdicts stored, figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import TestClient
from winnow.review.queue import record_id, sampled
from winnow.review.store import ReviewStore

KEY = "review-key-3c5e7a9b1d2f4a6c"


@pytest.fixture
def served(artifact: Path, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    url = f"duckdb:{tmp_path / 'reviews.duckdb'}"
    settings = ServeSettings(artifact=artifact, max_records=500, review=url, review_sample=0.25)
    with TestClient(create_app(settings, api_keys=ApiKeys([KEY])), raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = KEY
        yield c, url


def test_screened_records_wait_for_review_and_verdicts_move_the_figures(
    served: tuple[Any, str], records: list[dict]
) -> None:
    client, _ = served
    batch = records[:200]
    r = client.post("/v1/screen", json={"records": batch, "budget": 20})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    chosen = [res for res in results if res["selected"]]
    assert len(chosen) == 20
    ids = [record_id(res["id"], rec) for res, rec in zip(results, batch, strict=True)]
    sample = [i for i, res in zip(ids, results, strict=True) if not res["selected"] and sampled(i, 0.25)]
    assert 10 < len(sample) < 90  # about a quarter of the 180 others

    q = client.get("/v1/review/queue", params={"limit": 500})
    assert q.status_code == 200, q.text
    queue = q.json()
    listed = [x["id"] for x in queue["records"]]
    assert len(listed) == 20 + len(sample) and set(listed) == {ids[results.index(c)] for c in chosen} | set(
        sample
    )
    assert all(x["selected"] for x in queue["records"][:20])
    assert queue["stats"]["screened"] == 200 and queue["stats"]["selected"] == 20
    assert queue["stats"]["precision"] is None

    first = queue["records"][0]
    assert first["reasons"] and first["record"] == batch[ids.index(first["id"])]
    v = client.post("/v1/review/verdicts", json={"id": first["id"], "verdict": "right", "reviewer": "ana"})
    assert v.status_code == 200, v.text
    assert v.json()["label"] == 1 and v.json()["stats"]["precision"]["value"] == 1.0
    client.post("/v1/review/verdicts", json={"id": listed[1], "verdict": "wrong", "reviewer": "ana"})
    missed = client.post(
        "/v1/review/verdicts", json={"id": listed[-1], "verdict": "wrong", "reviewer": "ben"}
    )
    assert missed.json()["label"] == 1  # a not-selected record judged wrong was high-value
    stats = client.get("/v1/review/stats").json()
    assert stats["precision"]["value"] == 0.5 and 0 < stats["recall_estimate"] < 1

    metrics = client.get("/metrics").text
    assert "winnow_review_precision 0.5" in metrics
    assert 'winnow_reviews_total{verdict="wrong"} 2.0' in metrics


def test_review_routes_want_the_key_and_refuse_what_is_not_queued(served: tuple[Any, str]) -> None:
    client, _ = served
    page = client.get("/review", headers={"X-API-Key": ""})
    assert page.status_code == 200 and "winnow review" in page.text  # the page holds no data
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/v1/review/queue", headers={"X-API-Key": "nope"}).status_code == 401
    r = client.post("/v1/review/verdicts", json={"id": "ghost", "verdict": "right", "reviewer": "ana"})
    assert r.status_code == 404 and "not in the review queue" in r.json()["error"]["message"]
    r = client.post("/v1/review/verdicts", json={"id": "ghost", "verdict": "maybe", "reviewer": "ana"})
    assert r.status_code == 422
    assert "/v1/review/verdicts" in client.get("/openapi.json").json()["paths"]


def test_without_review_there_are_no_review_routes(client: Any) -> None:
    assert client.get("/review").status_code == 404
    assert client.get("/v1/review/queue").status_code == 404


def test_offers_made_before_shutdown_are_written(artifact: Path, tmp_path: Path, records: list[dict]) -> None:
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    url = f"duckdb:{tmp_path / 'r.duckdb'}"
    app = create_app(ServeSettings(artifact=artifact, review=url, review_sample=1.0), api_keys=ApiKeys())
    with TestClient(app) as c:
        assert c.post("/v1/screen", json={"records": records[:30]}).status_code == 200
    with ReviewStore(url) as store:  # the service is closed: the file is free, every offer in it
        assert len(store.pending(100)) == 30 and store.stats()["screened"] == 30


def test_several_workers_need_postgresql(artifact: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from winnow.cli import app

    r = CliRunner().invoke(
        app, ["serve", str(artifact), "--workers", "2", "--review", f"duckdb:{tmp_path / 'r.duckdb'}"]
    )
    assert r.exit_code != 0 and "PostgreSQL" in r.output
