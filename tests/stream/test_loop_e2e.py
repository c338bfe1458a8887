"""The loop with people, end to end: a stream of records is screened into a sink, the week is
digested, reviewers judge what was selected (and a sample of the rest) on the service's review
routes, and their verdicts train a challenger that is promoted.

The world changed after the champion was fitted (high-value now means the opposite of what
spend said), so the reviewers' verdicts carry news the champion does not know.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tests.helpers import fit_options, make_frame
from tests.serve.conftest import TestClient
from tests.stream.helpers import feed, wait_done


def _flipped_world(n: int, seed: int) -> Any:
    f = make_frame(n, seed=seed)
    z = -np.log(f["spend"].fillna(f["spend"].median())) + np.random.default_rng(seed).normal(0, 0.3, n)
    f["churn"] = np.where(z > np.quantile(z, 0.8), "yes", "no")
    f["customer_id"] = f["customer_id"] + 100_000  # new customers
    return f


def test_stream_sink_digest_reviews_retrain(redis_server: Any, tmp_path: Path) -> None:
    import threading

    from winnow import Screener
    from winnow.io.sinks import DuckDBSink
    from winnow.online import OnlineScorer
    from winnow.report.digest import build_digest
    from winnow.report.digest_page import digest_html
    from winnow.retrain import retrain
    from winnow.review.store import ReviewStore
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings
    from winnow.stream.source import RedisSource
    from winnow.stream.worker import StreamWorker

    old = make_frame(800, seed=21)
    champion = Screener().fit(old, **fit_options())
    art = champion.save(tmp_path / "champion")
    world = _flipped_world(1500, seed=22)
    truth = dict(zip(world["customer_id"].astype(str), world["churn"].eq("yes"), strict=True))
    records = json.loads(world.drop(columns=["churn"]).to_json(orient="records", date_format="iso"))

    # 1. the stream worker screens the records into a DuckDB sink (every scored row audited)
    #    and offers the selected ones and a 30% sample of the others for review
    r = redis_server.client()
    feed(r, "events", records)
    reviews = f"duckdb:{tmp_path / 'reviews.duckdb'}"
    sink = tmp_path / "sink.duckdb"
    worker = StreamWorker(
        OnlineScorer(Screener.load(art)),
        RedisSource(redis_server.url, "events", "winnow", "w1", dead_letter="events:dead", block_ms=50),
        DuckDBSink(sink, "selected", audit=True),
        batch_size=200,
        audit=True,
        review=ReviewStore(reviews).open(),
        review_sample=0.3,
    )
    t = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    t.start()
    try:
        wait_done(r, "events", timeout=60)
    finally:
        worker.stop()
        t.join(10)

    # 2. the digest of what was screened, from the sink's audit table
    from winnow.io.readers import open_source

    audit: pa.Table = open_source(f"duckdb:{sink}?table=selected_scored").read_all()
    assert audit.num_rows == 1500
    d = build_digest(audit, champion, reviews=reviews)
    assert d["scored"] == 1500 and d["selected"] == sum(audit.column("selected").to_pylist())
    assert d["themes"] and d["reviews"]["reviewed"] == 0
    assert "What was screened" in digest_html(d)

    # 3. reviewers judge the queue on the service's review routes
    app = create_app(ServeSettings(artifact=art, review=reviews), api_keys=ApiKeys())
    with TestClient(app) as c:
        queue = c.get("/v1/review/queue", params={"limit": 500}).json()["records"]
        assert queue and all(q["record"] for q in queue)
        while queue:
            for q in queue:
                right = truth[q["id"]] == q["selected"]
                verdict = {"id": q["id"], "verdict": "right" if right else "wrong", "reviewer": "ana"}
                assert c.post("/v1/review/verdicts", json=verdict).status_code == 200
            queue = c.get("/v1/review/queue", params={"limit": 500}).json()["records"]
        stats = c.get("/v1/review/stats").json()
    assert stats["screened"] == 1500 and stats["reviewed"] > 400
    assert stats["precision"]["value"] < 0.3  # the changed world: the champion's picks are poor

    # 4. the digest now carries the realised precision
    assert build_digest(audit, champion, reviews=reviews)["reviews"]["reviewed"] == stats["reviewed"]

    # 5. the verdicts are the labels of a challenger, which wins on held-out verdicts
    res = retrain(Screener.load(art), old, reviews, holdout=0.3)
    assert res.promoted
    assert res.challenger_metrics["budget"]["precision"] > res.champion_metrics["budget"]["precision"]
    assert res.lineage["data_added"]["source"] == reviews
