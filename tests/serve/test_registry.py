"""Model swaps: atomic, refused when broken, watched folder, in-flight requests on the old model."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import TestClient
from winnow import Screener
from winnow.serve.batcher import MicroBatcher
from winnow.serve.registry import ModelRegistry, ReloadRefused, load_model


def corrupt(folder: Path) -> None:
    """Flip bytes of a model file, as a bad copy or disk would."""
    target = next((folder / "models").iterdir())
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["model file", "manifest", "missing", "not a folder"])
def test_broken_artifacts_are_refused(
    artifact: Path, artifact_copy: Path, tmp_path: Path, damage: str
) -> None:
    reg = ModelRegistry(artifact)
    before = reg.current
    refused: list[Exception] = []
    reg.on_refused = refused.append
    if damage == "model file":
        corrupt(artifact_copy)
    elif damage == "manifest":
        m = json.loads((artifact_copy / "manifest.json").read_text())
        m["threshold"]["value"] = 0.0
        (artifact_copy / "manifest.json").write_text(json.dumps(m))
    elif damage == "missing":
        shutil.rmtree(artifact_copy)
    else:
        shutil.rmtree(artifact_copy)
        artifact_copy.write_text("x")
    with pytest.raises(ReloadRefused) as info:
        reg.reload(artifact_copy)
    assert "keeps serving" in str(info.value)
    assert reg.current is before and reg.path == artifact
    assert reg.last_error and len(refused) == 1


def test_in_flight_requests_finish_on_the_old_model(
    artifact_copy: Path, artifact_b: Path, records: list[dict]
) -> None:
    reg = ModelRegistry(artifact_copy)
    a = reg.current
    batches: list[int] = []

    async def main() -> tuple[Any, Any]:
        b = MicroBatcher(max_wait_s=0.3, on_batch=lambda _n, r, _s: batches.append(r))
        first = asyncio.create_task(b.submit(reg.current, records[:5]))
        await asyncio.sleep(0.02)
        await reg.areload(artifact_b)  # swap while `first` waits in the batcher
        second = await b.submit(reg.current, records[:5])
        out = await first, second
        await b.close()
        return out

    old, new = asyncio.run(main())
    bmodel = reg.current
    assert bmodel is not a and bmodel.version != a.version
    assert [r.score for r in old] == [r.score for r in a.scorer.score_records(records[:5])]
    assert [r.score for r in new] == [r.score for r in bmodel.scorer.score_records(records[:5])]
    assert [r.score for r in old] != [r.score for r in new]


def test_watched_folder_reloads_and_refuses(artifact_copy: Path, artifact_b: Path) -> None:
    reg = ModelRegistry(artifact_copy)
    a = reg.current.version
    refused: list[Exception] = []
    reg.on_refused = refused.append

    async def wait_for(cond: Any, seconds: float = 10.0) -> None:
        for _ in range(int(seconds / 0.05)):
            if cond():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("timed out")

    async def main() -> None:
        task = asyncio.create_task(reg.watch(0.05))
        await asyncio.sleep(0.2)
        assert reg.current.version == a  # nothing changed, nothing reloaded
        Screener.load(artifact_b).save(artifact_copy)  # atomic folder swap, as `winnow fit --out` does
        await wait_for(lambda: reg.current.version != a)
        b = reg.current.version
        corrupt(artifact_copy)
        await wait_for(lambda: len(refused) == 1)
        await asyncio.sleep(0.4)  # a refused version is not retried while unchanged
        assert len(refused) == 1 and reg.current.version == b
        task.cancel()

    asyncio.run(main())
    assert reg.current.version == load_model(artifact_b).version


ADMIN = "admin-key-of-the-registry-test-42"


def test_admin_reload_endpoint(
    artifact_copy: Path, artifact_b: Path, tmp_path: Path, records: list[dict]
) -> None:
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    broken = tmp_path / "broken"
    shutil.copytree(artifact_b, broken)
    corrupt(broken)
    settings = ServeSettings(artifact=artifact_copy, reload_root=tmp_path.parent)
    app = create_app(settings, api_keys=ApiKeys(), admin_keys=ApiKeys([ADMIN]))
    with TestClient(app, headers={"X-Admin-Key": ADMIN}) as c:
        a = c.get("/v1/model").json()["version"]
        r = c.post("/v1/admin/reload")
        assert r.status_code == 200 and r.json()["changed"] is False
        r = c.post("/v1/admin/reload", json={"path": str(artifact_b)})
        assert r.status_code == 200, r.text
        b = r.json()["version"]
        assert r.json()["changed"] and r.json()["previous_version"] == a
        assert c.post("/v1/screen", json=records[0]).json()["model_version"] == b
        r = c.post("/v1/admin/reload", json={"path": str(broken)})
        assert r.status_code == 409 and r.json()["error"]["code"] == "artifact_refused"
        assert b in r.json()["error"]["message"]
        assert c.get("/v1/model").json()["version"] == b
        assert c.post("/v1/screen", json=records[0]).status_code == 200
        metrics = c.get("/metrics").text
        assert 'winnow_model_reloads_total{result="refused"} 1.0' in metrics
        assert f'version="{b}"' in metrics
        assert c.post("/v1/admin/reload", json={"path": 3}).status_code == 422
        assert c.post("/v1/admin/reload", json={"other": 1}).status_code == 422
        # outside the root: the same refusal whether the path exists or not, before any look
        for outside in ("/etc", "/no/such/folder", "../../../../etc", str(tmp_path.parent) + "/../x"):
            r = c.post("/v1/admin/reload", json={"path": outside})
            assert r.status_code == 403, outside
            assert r.json()["error"]["message"] == "the path is not under this service's reload root"
        assert c.post("/v1/admin/reload", headers={"X-Admin-Key": "nope"}).status_code == 401


def test_without_a_reload_root_only_the_served_folder_reloads(artifact_copy: Path, artifact_b: Path) -> None:
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    app = create_app(ServeSettings(artifact=artifact_copy), api_keys=ApiKeys(), admin_keys=ApiKeys([ADMIN]))
    with TestClient(app, headers={"X-Admin-Key": ADMIN}) as c:
        for other in (str(artifact_b), "/no/such/folder"):
            r = c.post("/v1/admin/reload", json={"path": other})
            assert r.status_code == 403
            assert "only the artifact folder it was started with" in r.json()["error"]["message"]
        r = c.post("/v1/admin/reload", json={"path": str(artifact_copy) + "/."})
        assert r.status_code == 200 and r.json()["changed"] is False


def test_no_admin_key_no_admin_routes(artifact_copy: Path) -> None:
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    app = create_app(ServeSettings(artifact=artifact_copy), api_keys=ApiKeys())
    with TestClient(app) as c:
        r = c.post("/v1/admin/reload", json={"path": str(artifact_copy)})
        assert r.status_code == 404 and "reload" not in r.text
        assert "/v1/admin/reload" not in c.get("/openapi.json").json()["paths"]


def test_a_broken_artifact_at_start_is_an_error(artifact_copy: Path) -> None:
    from winnow.serve.app import create_app
    from winnow.serve.settings import ServeSettings

    corrupt(artifact_copy)
    with pytest.raises(ReloadRefused, match="sha256"):
        create_app(ServeSettings(artifact=artifact_copy))
