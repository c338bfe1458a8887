"""The routes through FastAPI's TestClient: results, per-record errors, whole-request errors."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.serve.conftest import TestClient
from winnow import Screener


def post(client: Any, path: str, body: bytes | str, content_type: str | None = "application/json") -> Any:
    headers = {"content-type": content_type} if content_type else {}
    return client.post(path, content=body, headers=headers)


def test_one_record_is_screened(client: Any, records: list[dict]) -> None:
    r = client.post("/v1/screen", json=records[0])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scored"] == 1 and body["rejected"] == 0
    res = body["results"][0]
    assert set(res) == {"index", "id", "score", "selected", "reasons", "reason_details", "rule", "rank"}
    assert 0 <= res["score"] <= 1
    assert res["selected"] == (res["score"] >= body["threshold"])
    assert res["rank"] == (1 if res["selected"] else None)


def test_reasons_come_as_objects_too(client: Any, records: list[dict]) -> None:
    """`reason_details` are the column reasons of `reasons` as objects, in the same order."""
    from winnow.reasons import reason_text

    r = client.post("/v1/screen", json={"records": records[:40], "threshold": 0.0, "reasons": 3})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert all(res["selected"] for res in results)
    assert any(res["reason_details"] for res in results)
    for res in results:
        details = res["reason_details"]
        assert [reason_text(d) for d in details] == [x for x in res["reasons"] if not x.startswith("rule:")]
        assert all(set(d) == {"column", "value", "contribution"} for d in details)
        contributions = [d["contribution"] for d in details]
        assert all(c > 0 for c in contributions) and contributions == sorted(contributions, reverse=True)


def test_screen_equals_screener_score(client: Any, artifact: Any, records: list[dict]) -> None:
    """One scoring function: the service gives exactly the scores of Screener.score."""
    batch = records[:200]
    r = client.post("/v1/screen", json={"records": batch})
    assert r.status_code == 200, r.text
    served = np.array([x["score"] for x in r.json()["results"]])
    s = Screener.load(artifact)
    expected = s.score(pd.DataFrame(batch))
    np.testing.assert_allclose(served, expected, rtol=1e-12, atol=0)
    selected = np.array([x["selected"] for x in r.json()["results"]])
    np.testing.assert_array_equal(selected, expected >= s.threshold_.value)
    # a record alone scores as it does inside a batch
    one = client.post("/v1/score", json=batch[7]).json()["results"][0]["score"]
    assert one == pytest.approx(served[7], rel=1e-12)


def test_threshold_budget_and_reasons(client: Any, records: list[dict]) -> None:
    batch = records[:50]
    r = client.post("/v1/screen", json={"records": batch, "threshold": 0.0, "reasons": 2})
    body = r.json()
    assert body["selected"] == 50 and body["threshold"] == 0.0
    assert all(1 <= len(x["reasons"]) <= 2 for x in body["results"])
    r = client.post("/v1/screen", json={"records": batch, "budget": 5})
    body = r.json()
    assert body["selected"] == 5 and body["threshold"] is None
    scores = np.array([x["score"] for x in body["results"]])
    chosen = np.array([x["selected"] for x in body["results"]])
    assert scores[chosen].min() >= scores[~chosen].max()
    r = client.post("/v1/screen", json={"records": batch, "budget": 0.1})
    assert r.json()["selected"] == 5
    r = client.post("/v1/screen", json={"records": batch, "reasons": 0, "threshold": 0.0})
    assert all(x["reasons"] == [] for x in r.json()["results"])


def test_score_only(client: Any, records: list[dict]) -> None:
    r = client.post("/v1/score", json=records[:3])
    assert r.status_code == 200
    body = r.json()
    assert body["scored"] == 3
    assert set(body["results"][0]) == {"index", "id", "score"}
    r = client.post("/v1/score", json={"records": records[:3], "threshold": 0.5})
    assert r.status_code == 422 and "no options" in r.json()["error"]["message"]


def test_partial_batch_scores_good_records(client: Any, records: list[dict]) -> None:
    bad_type = {**records[1], "years_college": "four"}
    missing = {k: v for k, v in records[2].items() if k != "race"}
    nested = {**records[3], "job_city": {"name": "Boston"}}
    body = (
        "["
        + ",".join(
            [
                json.dumps(records[0]),
                json.dumps(bad_type),
                json.dumps(missing),
                json.dumps(nested),
                json.dumps(records[4]).replace('"honors": 0', '"honors": NaN'),
                '"not a record"',
                json.dumps({**records[5], "years_experience": 10**400}),
                json.dumps({**records[6], "id": "abc-6"}),
            ]
        )
        + "]"
    )
    r = post(client, "/v1/screen", body)
    assert r.status_code == 200, r.text
    out = r.json()
    res = out["results"]
    assert [x["index"] for x in res] == list(range(8))
    assert out["scored"] == 2 and out["rejected"] == 6
    assert "error" not in res[0] and res[0]["score"] is not None
    assert res[1]["error"]["field"] == "years_college" and "four" in res[1]["error"]["received"]
    assert res[2]["error"]["field"] == "race" and "missing" in res[2]["error"]["received"]
    assert res[3]["error"]["field"] == "job_city"
    assert res[4]["error"]["field"] == "honors" and "nan" in res[4]["error"]["received"]
    assert res[5]["error"]["expected"] == "a JSON object"
    assert res[6]["error"]["message"].startswith("record 6, field 'years_experience': expected")
    assert res[7]["id"] == "abc-6" and res[7]["score"] is not None
    for x in res[1:7]:
        assert x["score"] is None and x["selected"] is None
        assert x["error"]["message"].startswith((f"record {x['index']}:", f"record {x['index']},"))


def test_wholly_bad_requests_are_4xx_with_a_fix(client: Any, records: list[dict]) -> None:
    cases: list[tuple[bytes | str, str | None, int, str]] = [
        (b"", "application/json", 400, "empty_body"),
        (b'{"records": [', "application/json", 400, "malformed_json"),
        (b"\xff\xfe\x00garbage", "application/json", 400, "malformed_json"),
        ("[" * 100_000, "application/json", 400, "malformed_json"),
        (json.dumps(records[0]), "text/plain", 415, "unsupported_media_type"),
        (json.dumps(records[0]), "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"42", "application/json", 422, "invalid_body"),
        (b"null", "application/json", 422, "invalid_body"),
        (b"[]", "application/json", 422, "no_records"),
        (b'{"records": {}}', "application/json", 422, "invalid_records"),
        (json.dumps({"records": records[:2], "threshold": 2}), "application/json", 422, "invalid_option"),
        (json.dumps({"records": records[:2], "threshold": "0.5"}), "application/json", 422, "invalid_option"),
        (b'{"records": [{}], "threshold": NaN}', "application/json", 422, "invalid_option"),
        (json.dumps({"records": records[:2], "budget": -1}), "application/json", 422, "invalid_option"),
        (json.dumps({"records": records[:2], "budget": 2.5}), "application/json", 422, "invalid_option"),
        (json.dumps({"records": records[:2], "budget": 2, "threshold": 0.2}), None, 422, "invalid_option"),
        (json.dumps({"records": records[:2], "reasons": True}), None, 422, "invalid_option"),
        (json.dumps({"records": records[:2], "treshold": 0.2}), None, 422, "unknown_option"),
        (json.dumps({"records": [{"x": 1}, 3]}), None, 422, "invalid_records"),
        (json.dumps({"records": records[:1] * 501}), None, 422, "too_many_records"),
        (b'{"pad": "' + b"x" * 2_100_000 + b'"}', None, 413, "body_too_large"),
    ]
    for body, ctype, status, code in cases:
        r = post(client, "/v1/screen", body, ctype)
        assert r.status_code == status, (code, r.status_code, r.text[:300])
        err = r.json()["error"]
        assert err["code"] == code and err["status"] == status
        assert err["message"] and (err.get("hint") or status == 400)


def test_all_invalid_batch_lists_each_error(client: Any) -> None:
    r = client.post("/v1/screen", json={"records": [{"a": 1}, {"b": 2}]})
    assert r.status_code == 422
    body = r.json()
    assert body["error"]["code"] == "invalid_records"
    assert [x["error"]["index"] for x in body["results"]] == [0, 1]
    assert "GET /v1/model" in body["error"]["hint"]


def test_model_manifest(client: Any, artifact: Any) -> None:
    r = client.get("/v1/model")
    assert r.status_code == 200
    m = r.json()
    s = Screener.load(artifact)
    assert m["threshold"]["value"] == pytest.approx(s.threshold_.value)
    assert [f["name"] for f in m["fields"]] == s.input_columns
    assert m["metrics"]["winnow"]["roc_auc"] > 0.5
    assert len(m["version"]) == 12 and m["schema"]
    assert m["expected"] == s.expected_at(s.threshold_.fraction)
    assert m["expected"]["precision"]["low"] <= m["expected"]["precision"]["value"]
    json.dumps(m, allow_nan=False)


def test_health_ready_metrics(client: Any, records: list[dict]) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    client.post("/v1/screen", json={"records": records[:10], "threshold": 0.0})
    client.post("/v1/screen", content=b"{", headers={"content-type": "application/json"})
    text = client.get("/metrics").text
    version = ready.json()["model_version"]
    assert 'winnow_model_info{path="' in text and f'version="{version}"' in text
    assert 'winnow_http_requests_total{method="POST",route="/v1/screen",status="400"}' in text
    assert 'winnow_http_request_duration_seconds_bucket{le="0.001",route="/v1/screen"}' in text
    assert "winnow_records_selected_total" in text and "winnow_batch_records_bucket" in text
    scored = [
        ln for ln in text.splitlines() if ln.startswith('winnow_records_scored_total{route="/v1/screen"}')
    ]
    assert scored and float(scored[0].split()[-1]) >= 10


def test_openapi_shows_the_artifact_fields(client: Any, records: list[dict]) -> None:
    doc = client.get("/openapi.json").json()
    record = doc["components"]["schemas"]["Record"]
    assert set(record["required"]) == set(records[0])
    years = record["properties"]["years_college"]
    assert years["type"] == ["number", "boolean", "string", "null"] and years["pattern"].startswith("^")
    assert record["not"] == {"required": ["records"]}
    body = doc["paths"]["/v1/screen"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/ScreenRequest"} in body["anyOf"]
    assert "ScreenResponse" in doc["components"]["schemas"]


def test_unknown_route_and_method(client: Any) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/v1/screen")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_scores_are_finite_json(client: Any, records: list[dict]) -> None:
    r = client.post("/v1/screen", json={"records": records[:20]})
    for x in r.json()["results"]:
        assert math.isfinite(x["score"])


def test_slow_body_is_408_and_slow_scoring_is_503(artifact: Any, records: list[dict]) -> None:
    import asyncio

    import httpx

    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    app = create_app(ServeSettings(artifact=artifact, request_timeout_s=0.3), api_keys=ApiKeys())
    body = json.dumps(records[0]).encode()

    async def trickle() -> Any:
        yield body[:10]
        await asyncio.sleep(1.0)
        yield body[10:]

    async def stalled(*_args: Any, **_kw: Any) -> Any:
        await asyncio.sleep(5)

    async def main() -> tuple[Any, Any, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            ok = await c.post("/v1/screen", content=body)
            slow = await c.post("/v1/screen", content=trickle())
            app.state.winnow.batcher.submit = stalled
            busy = await c.post("/v1/screen", content=body)
            await app.state.winnow.batcher.close()
            return ok, slow, busy

    ok, slow, busy = asyncio.run(main())
    assert ok.status_code == 200
    assert slow.status_code == 408 and slow.json()["error"]["code"] == "request_timeout"
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"


def test_serve_command_exit_codes(tmp_path: Any, artifact: Any) -> None:
    import typer
    from typer.testing import CliRunner

    from winnow.serve.cli import serve

    app = typer.Typer()
    app.command("serve")(serve)
    app.command("other")(lambda: None)
    runner = CliRunner()
    r = runner.invoke(app, ["serve", str(tmp_path / "absent")])
    assert r.exit_code == 4 and "not a folder" in r.output
    r = runner.invoke(app, ["serve", str(artifact), "--max-records", "0"])
    assert r.exit_code == 2 and "--max-records" in r.output
    empty = tmp_path / "keys"
    empty.write_text("\n")
    r = runner.invoke(app, ["serve", str(artifact), "--api-key-file", str(empty)])
    assert r.exit_code == 2 and "at least one key" in r.output
    assert "--batch-wait-ms" in runner.invoke(app, ["serve", "--help"]).output


def test_rules_force_and_exclude(artifact: Any, tmp_path: Any, records: list[dict]) -> None:
    from winnow.rules import Rule
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    s = Screener.load(artifact)
    rules = [
        Rule(name="veteran", when="years_experience >= 20", action="select"),
        Rule(name="blocked", when="region == 'x'", action="exclude"),  # a field the model does not use
    ]
    s.config = s.config.model_copy(update={"rules": rules})
    ruled = s.save(tmp_path / "ruled")
    batch = [
        {**records[0], "years_experience": 25},
        {**records[1], "years_experience": 25, "region": "x"},
        {**records[2], "years_experience": 1, "region": "y"},
    ]
    with TestClient(create_app(ServeSettings(artifact=ruled), api_keys=ApiKeys())) as c:
        assert c.get("/v1/model").json()["rule_fields"] == ["region"]
        res = c.post("/v1/screen", json=batch).json()["results"]
    assert res[0]["selected"] and res[0]["rule"] == "veteran" and res[0]["reasons"][0] == "rule:veteran"
    assert not res[1]["selected"] and res[1]["rule"] == "blocked"
    assert res[2]["rule"] is None and res[2]["selected"] == (res[2]["score"] >= s.threshold_.value)


def test_integers_beyond_64_bits_are_handled(client: Any, records: list[dict]) -> None:
    """The fast JSON codec stops at 64-bit integers; parsing and answering fall back, never a 500."""
    rec = records[0]
    text_field = next(k for k, v in rec.items() if isinstance(v, str))
    body = json.dumps({"records": [{**rec, "honors": 2**70}, {**rec, text_field: 2**70}]})
    r = post(client, "/v1/screen", body)
    assert r.status_code == 200, r.text
    results = json.loads(r.text)["results"]
    assert len(results) == 2 and all(set(x) & {"score", "error", "errors"} for x in results)


def test_monitor_reports_drift_and_keeps_an_audit_sample(
    artifact: Any, resume_table: Any, records: list[dict], tmp_path: Any
) -> None:
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    audit = tmp_path / "audit.jsonl"
    settings = ServeSettings(artifact=artifact, monitor_window=300, audit_fraction=1.0, audit_file=audit)
    with TestClient(create_app(settings, api_keys=ApiKeys()), raise_server_exceptions=False) as c:
        assert c.get("/v1/monitor").json()["window_records"] == 0
        table = resume_table.drop(["received_callback"])
        spread = table.take(list(range(0, table.num_rows, table.num_rows // 200))[:200]).to_pylist()
        r = c.post("/v1/screen", json={"records": spread})
        selected = sum(x["selected"] for x in r.json()["results"])
        rep = c.get("/v1/monitor").json()
        assert rep["window_records"] == 200 and rep["records_seen"] == 200
        assert rep["summary"]["features_major"] == 0, rep["features"][:2]  # the training distribution
        assert {"psi", "status", "column"} <= set(rep["features"][0])
        # a shifted feed: every job city never seen in training
        shifted = [{**rec, "job_city": "Atlantis"} for rec in records[:300]]
        c.post("/v1/score", json={"records": shifted})
        rep = c.get("/v1/monitor").json()
        city = next(f for f in rep["features"] if f["column"] == "job_city")
        assert city["status"] == "major" and city["unseen_or_rare"] == 1.0
        text = c.get("/metrics").text
        assert 'winnow_drift_feature_psi{column="job_city"' in text
        assert "winnow_drift_window_records 300.0" in text
    # audit_fraction 1: every not-selected record of /v1/screen and /v1/score was kept
    lines = audit.read_text().splitlines()
    assert len(lines) >= 200 - selected
    with pytest.raises(Exception, match="audit"):
        ServeSettings(artifact=artifact, audit_fraction=0.1)


def test_scoring_lane_answers_as_the_router_does(artifact: Any, records: list[dict]) -> None:
    """The scoring POSTs skip FastAPI's router; the same request through the router answers the same."""
    import asyncio

    import httpx
    from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware

    from winnow.serve.app import create_app
    from winnow.serve.scoring_lane import ScoringLane
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    app = create_app(ServeSettings(artifact=artifact), api_keys=ApiKeys())
    stack = app.build_middleware_stack()
    # outermost the metrics middleware, then the lane, then FastAPI's own stack
    lane_mw = stack.app  # type: ignore[attr-defined]
    assert type(stack).__name__ == "_Observe" and isinstance(lane_mw, ScoringLane)
    assert set(lane_mw.routes) == {"/v1/screen", "/v1/score"}
    routed = AsyncExitStackMiddleware(app.router)  # what FastAPI puts around its router

    async def via_router(scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = app  # what the application sets before its middleware
        await routed(scope, receive, send)

    async def run() -> str:
        async with app.router.lifespan_context(app):
            lane = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=via_router), base_url="http://t")
            for path, body in (
                ("/v1/screen", {"records": records[:25], "budget": 5}),
                ("/v1/score", records[:7]),
                ("/v1/screen", records[3]),
            ):
                a, b = await lane.post(path, json=body), await direct.post(path, json=body)
                assert a.status_code == b.status_code == 200
                assert a.json() == b.json()
            return (await lane.get("/metrics")).text

    text = asyncio.run(run())  # lane requests are counted under their route
    assert 'winnow_http_requests_total{method="POST",route="/v1/score",status="200"}' in text


def test_ids_come_back_with_their_type(client: Any, records: list[dict]) -> None:
    long_id = 123456789012345678901234567890
    body = [{**records[0], "id": long_id}, {**records[1], "id": 7}, {**records[2], "id": "x-7"}]
    for route in ("/v1/screen", "/v1/score"):
        r = client.post(route, content=json.dumps(body), headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        ids = [x["id"] for x in json.loads(r.text)["results"]]
        assert ids == [long_id, 7, "x-7"] and type(ids[1]) is int, ids


def test_the_scoring_lane_answers_a_bug_with_a_logged_500(caplog: Any) -> None:
    """The lane sits outside FastAPI's error middleware, so it answers an unexpected error
    itself: 500 and the traceback in the service's log, never a dropped connection."""
    import asyncio

    import httpx
    from fastapi.responses import PlainTextResponse

    from winnow.serve.scoring_lane import ScoringLane
    from winnow.serve.security import ApiKeys

    async def broken(_request: Any) -> Any:
        raise RuntimeError("a bug")

    async def fallback(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("elsewhere")(scope, receive, send)

    lane = ScoringLane(fallback, routes={"/v1/score": (object(), broken)}, keys=ApiKeys())

    async def run() -> tuple[int, str, int]:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=lane), base_url="http://t")
        bad = await client.post("/v1/score", json={})
        other = await client.get("/v1/score")  # not the lane's: goes on unchanged
        return bad.status_code, bad.text, other.status_code

    with caplog.at_level("ERROR", logger="winnow.serve"):
        status, text, other = asyncio.run(run())
    assert (status, text, other) == (500, "Internal Server Error", 200)
    assert "scoring request failed" in caplog.text and "a bug" in caplog.text


def test_start_up_objects_are_frozen_while_serving(artifact: Any, artifact_b: Any) -> None:
    """The collector's full passes skip what start-up made while the service runs; a model swap
    thaws everything (the old model can go once its requests are done) and freezes again after
    the request timeout and a second; a stopped service leaves nothing frozen."""
    import gc
    import time

    from fastapi.testclient import TestClient

    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    app = create_app(ServeSettings(artifact=artifact, request_timeout_s=0.2), api_keys=ApiKeys())
    state = app.state.winnow
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000
        state.registry.reload(artifact_b)  # a swap: thawed now
        assert gc.get_freeze_count() == 0
        for _ in range(100):  # frozen again 1.2 s later
            time.sleep(0.05)
            if gc.get_freeze_count():
                break
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0


def test_a_stopped_service_is_not_frozen_again_by_a_pending_swap_timer() -> None:
    import gc
    import time

    from winnow.serve.state import FrozenStartUp

    frozen = FrozenStartUp(settle_s=0.1)
    frozen.freeze()
    frozen.swapped()  # a refreeze is due in 0.1 s ...
    frozen.close()  # ... but the service stops first
    time.sleep(0.3)
    assert gc.get_freeze_count() == 0 and not frozen.active
