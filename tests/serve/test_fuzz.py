"""A sweep of generated bad inputs: never a 5xx, always valid JSON back, the service keeps working.

The generator (seeded, so a failure replays) mutates real records and request envelopes: random
JSON types in place of fields, missing and extra keys, nested objects and arrays, huge and odd
strings, NaN/Infinity literals, integers beyond 64 bits, wrong options, truncated and damaged
bytes, other content types and oversize batches.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import TestClient

SEED = 20240611
CASES = 360

_STRINGS = [
    "",
    " ",
    "abc",
    "1e5",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "true",
    "yes",
    "2024-02-30",
    "\x00",
    "\ud800",
    "é" * 50,
    "🙂" * 20,
    "1" * 5000,
    "<script>",
    "' OR 1=1 --",
]
_NUMBERS: list[Any] = [
    0,
    -1,
    2**63,
    -(2**63),
    10**30,
    10**400,
    0.0,
    -0.0,
    1e308,
    -1e308,
    5e-324,
    float("nan"),
    float("inf"),
    float("-inf"),
]


def rand_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["none", "bool", "num", "num", "str", "str", "list", "dict", "huge"])
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "num":
        return rng.choice([*_NUMBERS, rng.uniform(-1e9, 1e9), rng.randint(-(10**6), 10**6)])
    if kind == "str":
        return rng.choice(_STRINGS)
    if kind == "huge":
        return "x" * rng.choice([10_000, 200_000])
    if depth > 2:
        return []
    if kind == "list":
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(_STRINGS[:6]) + str(i): rand_value(rng, depth + 1) for i in range(rng.randint(0, 4))}


def mutate_record(rng: random.Random, record: dict[str, Any]) -> Any:
    rec = dict(record)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["set", "set", "drop", "extra", "replace"])
        key = rng.choice(list(record))
        if op == "set":
            rec[key] = rand_value(rng)
        elif op == "drop":
            rec.pop(key, None)
        elif op == "extra":
            rec[rng.choice(_STRINGS) or "k"] = rand_value(rng)
        else:
            return rand_value(rng)
    return rec


def bad_bodies(
    records: list[dict[str, Any]], n: int, seed: int = SEED
) -> Iterator[tuple[str, bytes, str | None]]:
    """(route, body, content type) triples."""
    rng = random.Random(seed)
    for _ in range(n):
        route = rng.choice(["/v1/screen", "/v1/screen", "/v1/score"])
        ctype: str | None = "application/json"
        shape = rng.choice(["value", "record", "batch", "batch", "options", "bytes", "ctype", "many"])
        if shape == "value":
            doc: Any = rand_value(rng)
        elif shape == "record":
            doc = mutate_record(rng, rng.choice(records))
        elif shape in ("batch", "ctype"):
            doc = {
                "records": [
                    mutate_record(rng, r) if rng.random() < 0.5 else r for r in rng.sample(records, 6)
                ]
            }
            if shape == "ctype":
                ctype = rng.choice(
                    [
                        None,
                        "text/plain",
                        "application/xml",
                        "multipart/form-data",
                        "application/json; charset=latin-1",
                        "application/problem+json",
                        "*/*",
                    ]
                )
        elif shape == "options":
            doc = {"records": rng.sample(records, 3)}
            for opt in rng.sample(["threshold", "budget", "reasons", "records", "extra"], rng.randint(1, 3)):
                doc[opt] = rand_value(rng)
        elif shape == "many":
            doc = {"records": [records[0]] * rng.choice([0, 1, 499, 500, 501, 800])}
        else:
            text = json.dumps({"records": rng.sample(records, 2)}).encode()
            cut = rng.choice(["truncate", "flip", "prefix", "garbage"])
            if cut == "truncate":
                body = text[: rng.randint(0, len(text) - 1)]
            elif cut == "flip":
                b = bytearray(text)
                for _ in range(rng.randint(1, 5)):
                    b[rng.randrange(len(b))] = rng.randrange(256)
                body = bytes(b)
            elif cut == "prefix":
                body = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b")]}'\n", b"\x00"]) + text
            else:
                body = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
            yield route, body, ctype
            continue
        yield route, json.dumps(doc, allow_nan=True).encode(), ctype


def _no_constants(name: str) -> Any:
    raise AssertionError(f"response contains the non-JSON constant {name}")


@pytest.mark.parametrize("seed", [SEED])
def test_no_5xx_for_bad_input(client: TestClient, records: list[dict], seed: int) -> None:
    statuses: dict[int, int] = {}
    for i, (route, body, ctype) in enumerate(bad_bodies(records, CASES, seed)):
        headers = {"content-type": ctype} if ctype else {}
        r = client.post(route, content=body, headers=headers)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (i, route, body[:300], r.text[:500])
        doc = json.loads(r.text, parse_constant=_no_constants)
        if r.status_code >= 400:
            assert doc["error"]["message"] and doc["error"]["status"] == r.status_code
        else:
            assert len(doc["results"]) >= 1
            for x in doc["results"]:
                assert (x["score"] is None) == ("error" in x)
    # the sweep reached both sides: partial successes and every kind of refusal
    assert statuses.get(200, 0) > 20 and {400, 415, 422} <= set(statuses), statuses
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/screen", json=records[0]).status_code == 200


def test_admin_reload_bodies(artifact: Path) -> None:
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    admin = "fuzz-admin-key-0123456789abcdef"
    app = create_app(
        ServeSettings(artifact=artifact, reload_root=artifact.parent),
        api_keys=ApiKeys(),
        admin_keys=ApiKeys([admin]),
    )
    rng = random.Random(SEED)
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(25):
            doc = {"path": rand_value(rng)} if rng.random() < 0.7 else rand_value(rng)
            r = client.post(
                "/v1/admin/reload",
                content=json.dumps(doc).encode(),
                headers={"content-type": "application/json", "X-Admin-Key": admin},
            )
            assert r.status_code in (200, 400, 403, 404, 409, 413, 422), r.text[:300]
