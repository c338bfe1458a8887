"""Bulk scoring with an Arrow IPC stream body on ``POST /v1/score``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from winnow.serve.arrow_body import ARROW_STREAM

TARGET = "received_callback"


def _stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def _post(client: Any, body: bytes) -> Any:
    return client.post("/v1/score", content=body, headers={"Content-Type": ARROW_STREAM})


def test_arrow_scores_equal_the_json_route_and_the_screener(client, resume_table, artifact) -> None:
    from winnow import Screener

    rows = resume_table.drop([TARGET]).slice(0, 200)
    r = _post(client, _stream(rows))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(ARROW_STREAM)
    out = pa.ipc.open_stream(r.content).read_all()
    assert out.column_names == ["score", "error"] and out.num_rows == 200
    assert r.headers["X-Scored"] == "200" and r.headers["X-Rejected"] == "0"
    expected = Screener.load(artifact).score(rows)
    np.testing.assert_allclose(out.column("score").to_numpy(), expected, rtol=0, atol=1e-12)
    via_json = client.post("/v1/score", json=rows.slice(0, 5).to_pylist()).json()["results"]
    np.testing.assert_allclose([x["score"] for x in via_json], expected[:5], atol=1e-12)


def test_a_bad_record_is_rejected_with_its_reason_and_the_others_scored(client, resume_table) -> None:
    rows = resume_table.drop([TARGET]).slice(0, 3)
    years = rows.column("years_college").cast(pa.string()).to_pylist()
    years[1] = "four"
    rows = rows.set_column(rows.schema.get_field_index("years_college"), "years_college", pa.array(years))
    out = pa.ipc.open_stream(_post(client, _stream(rows)).content).read_all()
    scores, errors = out.column("score").to_pylist(), out.column("error").to_pylist()
    assert scores[1] is None and "years_college" in errors[1] and "'four'" in errors[1]
    assert scores[0] is not None and scores[2] is not None and errors[0] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [(b"", 400, "empty_body"), (b"not arrow at all", 400, "invalid_arrow")],
)
def test_bodies_that_are_not_arrow_streams(client, body, status, code) -> None:
    r = _post(client, body)
    assert r.status_code == status and r.json()["error"]["code"] == code


def test_missing_columns_and_too_many_records(client, resume_table) -> None:
    rows = resume_table.drop([TARGET, "race"]).slice(0, 2)
    r = _post(client, _stream(rows))
    assert r.status_code == 422 and "race" in r.json()["error"]["message"]
    many = resume_table.drop([TARGET]).slice(0, 501)  # the client fixture allows 500
    r = _post(client, _stream(many))
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_records"


def test_openapi_documents_the_arrow_body(client) -> None:
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/v1/score"]["post"]
    assert ARROW_STREAM in op["requestBody"]["content"]
    assert "application/json" in op["requestBody"]["content"]
    assert ARROW_STREAM in op["responses"]["200"]["content"]


def test_arrow_records_reach_the_drift_monitor(client, resume_table) -> None:
    before = client.get("/v1/monitor").json()["records_seen"]
    rows = resume_table.drop([TARGET]).slice(0, 40)
    assert _post(client, _stream(rows)).status_code == 200
    assert client.get("/v1/monitor").json()["records_seen"] == before + 40
