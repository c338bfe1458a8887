"""POST /v1/explain: every field's contribution as objects, for every record, adding up."""

from __future__ import annotations

from typing import Any

import numpy as np

from winnow import Screener


def test_explain_gives_objects_that_add_up(client: Any, artifact: Any, records: list[dict]) -> None:
    batch = records[:40]
    r = client.post("/v1/explain", json={"records": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scored"] == 40 and body["rejected"] == 0
    s = Screener.load(artifact)
    np.testing.assert_allclose([x["score"] for x in body["results"]], s.score(batch), rtol=1e-12)
    fields = set(s.input_columns)
    for res in body["results"]:
        parts = res["contributions"]
        assert {p["column"] for p in parts} <= fields and len(parts) >= 1
        sizes = [abs(p["contribution"]) for p in parts]
        assert sizes == sorted(sizes, reverse=True)  # largest effect first
        total = sum(p["contribution"] for p in parts) + res["base"] + res["residual"]
        assert abs(total - res["logit"]) < 1e-9
        if s.fusion_.calibration == "platt" and not s.fusion_.log_odds_shift:
            assert abs(1 / (1 + np.exp(-res["logit"])) - res["score"]) < 1e-9
    # the same numbers as Screener.explain, for selected and not-selected records alike
    table = s.explain(batch)
    first = {p["column"]: p["contribution"] for p in body["results"][0]["contributions"]}
    for column, value in first.items():
        assert abs(table.column(f"contribution_{column}")[0].as_py() - value) < 1e-9


def test_explain_names_bad_records(client: Any, records: list[dict]) -> None:
    bad = {**records[0], "years_experience": "lots"}
    r = client.post("/v1/explain", json={"records": [records[1], bad]})
    assert r.status_code == 200, r.text
    ok, err = r.json()["results"]
    assert "contributions" in ok and err["error"]["field"] == "years_experience"
    r = client.post("/v1/explain", json=bad)
    assert r.status_code == 422 and "years_experience" in r.json()["error"]["message"]
