"""API keys (env, file, constant-time check, never logged) and settings validation."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.serve.conftest import TestClient
from winnow.errors import ConfigError
from winnow.serve.security import ApiKeys
from winnow.serve.settings import ServeSettings

KEY = "k3y-0f-the-t3st-service-1234567890"
OLD = "an-older-key-still-accepted-0987"
ADMIN = "the-admin-key-of-this-service-55"


def test_admin_keys_are_not_scoring_keys(tmp_path: Path) -> None:
    f = tmp_path / "admin"
    f.write_text(f"{ADMIN}\n{KEY}\n")
    with pytest.raises(ConfigError, match="--admin-key-file") as e:
        ApiKeys.admin(f, ApiKeys([KEY]))
    assert KEY not in str(e.value)
    assert ApiKeys.admin(f, ApiKeys([OLD])).check(ADMIN)
    assert not ApiKeys.admin(None, ApiKeys([KEY])).enabled
    with pytest.raises(ConfigError, match="--admin-key-file"):
        ApiKeys.admin(tmp_path / "absent", ApiKeys())


def test_no_key_beyond_loopback_without_saying_so(caplog: pytest.LogCaptureFixture) -> None:
    from winnow.serve.security import check_exposure

    for host in ("127.0.0.1", "::1", "localhost"):
        check_exposure(host, ApiKeys(), insecure_no_auth=False)
    check_exposure("0.0.0.0", ApiKeys([KEY]), insecure_no_auth=False)
    with pytest.raises(ConfigError, match="--insecure-no-auth") as e:
        check_exposure("0.0.0.0", ApiKeys(), insecure_no_auth=False)
    assert e.value.exit_code == 2
    caplog.set_level(logging.WARNING)
    check_exposure("10.1.2.3", ApiKeys(), insecure_no_auth=True)
    assert "--insecure-no-auth" in caplog.text


def test_keys_from_env_and_file(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    f.write_text(f"# rotated 2024-05\n\n{OLD}\n")
    os.chmod(f, 0o600)
    keys = ApiKeys.from_sources(f, environ={"WINNOW_API_KEY": f"{KEY}, "})
    assert keys.enabled and keys.check(KEY) and keys.check(OLD)
    assert not keys.check(None) and not keys.check("") and not keys.check(KEY[:-1])
    assert KEY not in repr(keys) and OLD not in repr(keys)
    assert not ApiKeys.from_sources(None, environ={}).enabled
    assert ApiKeys().check(None)
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="at least one key"):
        ApiKeys.from_sources(empty, environ={})
    with pytest.raises(ConfigError, match="readable"):
        ApiKeys.from_sources(tmp_path / "absent", environ={})


def test_routes_want_the_key(
    artifact: Path, tmp_path: Path, records: list[dict], caplog: pytest.LogCaptureFixture
) -> None:
    from winnow.serve.app import create_app

    f = tmp_path / "keys"
    f.write_text(OLD + "\n")
    keys = ApiKeys.from_sources(f, environ={"WINNOW_API_KEY": KEY})
    caplog.set_level(logging.DEBUG)
    app = create_app(
        ServeSettings(artifact=artifact, api_key_file=f), api_keys=keys, admin_keys=ApiKeys([ADMIN])
    )
    with TestClient(app) as c:
        for path in ("/v1/screen", "/v1/score"):
            r = c.post(path, json=records[0])
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
            assert "X-API-Key" in r.json()["error"]["hint"]
            r = c.post(path, json=records[0], headers={"X-API-Key": KEY + "x"})
            assert r.status_code == 401
            assert KEY not in r.text
        assert c.post("/v1/screen", json=records[0], headers={"X-API-Key": KEY}).status_code == 200
        assert c.post("/v1/score", json=records[0], headers={"x-api-key": OLD}).status_code == 200
        assert c.get("/v1/model").status_code == 401
        # admin routes want the admin key, in its own header: a scoring key is not enough
        for headers in ({}, {"X-API-Key": KEY}, {"X-Admin-Key": KEY}, {"X-API-Key": ADMIN}):
            r = c.post("/v1/admin/reload", headers=headers)
            assert r.status_code == 401 and "X-Admin-Key" in r.json()["error"]["hint"], headers
        assert c.post("/v1/admin/reload", headers={"X-Admin-Key": ADMIN}).status_code == 200
        assert c.get("/v1/model", headers={"X-API-Key": KEY}).status_code == 200
        # probes and scrapers need no key
        for path in ("/healthz", "/readyz", "/metrics"):
            assert c.get(path).status_code == 200
        doc = c.get("/openapi.json").json()
        schemes = doc["components"]["securitySchemes"]
        assert schemes["ApiKey"]["name"] == "X-API-Key" and schemes["AdminKey"]["name"] == "X-Admin-Key"
        assert doc["paths"]["/v1/admin/reload"]["post"]["security"] == [{"AdminKey": []}]
        metrics = c.get("/metrics").text
    assert 'status="401"' in metrics
    assert KEY not in caplog.text and OLD not in caplog.text


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_records", 0),
        ("max_body_bytes", 10),
        ("request_timeout_s", float("nan")),
        ("batch_wait_ms", -1),
        ("threads", True),
        ("reasons", 21),
    ],
)
def test_settings_are_checked(option: str, value: object) -> None:
    with pytest.raises(ConfigError):
        ServeSettings(artifact=Path("x"), **{option: value})  # type: ignore[arg-type]


def test_settings_travel_through_the_environment(tmp_path: Path) -> None:
    s = ServeSettings(artifact=tmp_path, api_key_file=tmp_path / "k", watch=True, max_records=7)
    env = {"WINNOW_SERVE_SETTINGS": s.to_env()}
    assert ServeSettings.from_env(env) == s
    assert ServeSettings.from_env({"WINNOW_ARTIFACT": str(tmp_path)}).artifact == tmp_path
    with pytest.raises(ConfigError):
        ServeSettings.from_env({})
    with pytest.raises(ConfigError):
        ServeSettings.from_env({"WINNOW_SERVE_SETTINGS": '{"artifact": "x", "nope": 1}'})


def test_serve_refuses_an_open_public_address(artifact: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from winnow.cli import app

    env = {"WINNOW_API_KEY": ""}
    r = CliRunner().invoke(app, ["serve", str(artifact), "--host", "0.0.0.0"], env=env)
    assert r.exit_code == 2 and "--insecure-no-auth" in r.output, r.output
    shared = tmp_path / "admin"
    shared.write_text(KEY + "\n")
    r = CliRunner().invoke(
        app, ["serve", str(artifact), "--admin-key-file", str(shared)], env={"WINNOW_API_KEY": KEY}
    )
    assert r.exit_code == 2 and "not also scoring keys" in r.output, r.output
