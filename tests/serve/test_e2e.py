"""The real service: uvicorn in a subprocess on a loopback port, talked to over HTTP.

One server for the module (API key from the environment, watched artifact folder), started
through :func:`winnow.serve.cli.serve` exactly as ``winnow serve`` runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.serve.test_registry import corrupt
from winnow import Screener

KEY = "e2e-key-9f2c1d7e4b6a8c0d2e4f"
ADMIN = "e2e-admin-key-5a7c9e1b3d5f7a9c"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``serve(...)`` in a subprocess; logs to a file."""

    def __init__(self, artifact: Path, log: Path, **options: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        args = ", ".join(f"{k}={v!r}" for k, v in {"port": self.port, **options}.items())
        code = (
            "from pathlib import Path; from winnow.serve.cli import serve; "
            f"serve(Path({str(artifact)!r}), {args})"
        )
        env = {**os.environ, "WINNOW_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}
        env.pop("WINNOW_SERVE_SETTINGS", None)
        self._out = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=self._out, stderr=subprocess.STDOUT, env=env
        )

    def wait_ready(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("server not ready:\n" + self.log.read_text()[-3000:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def served(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    folder = tmp_path_factory.mktemp("e2e") / "screener"
    shutil.copytree(artifact, folder)
    admin_keys = folder.parent / "admin_keys"
    admin_keys.write_text(ADMIN + "\n")
    admin_keys.chmod(0o600)
    server = Server(
        folder,
        folder.parent / "server.log",
        admin_key_file=str(admin_keys),
        reload_root=str(tmp_path_factory.getbasetemp()),
        watch=True,
        watch_interval=0.2,
        max_records=500,
        max_body_bytes=1_000_000,
        timeout=20.0,
    )
    try:
        server.wait_ready()
        yield server, folder
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http(served: tuple[Server, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[0].url, headers={"X-API-Key": KEY}, timeout=30) as c:
        yield c


def test_screen_over_http(http: httpx.Client, artifact: Path, records: list[dict]) -> None:
    r = http.post("/v1/screen", json={"records": records[:100]})
    assert r.status_code == 200, r.text
    served = np.array([x["score"] for x in r.json()["results"]])
    np.testing.assert_allclose(served, Screener.load(artifact).score(pd.DataFrame(records[:100])), rtol=1e-12)
    one = http.post("/v1/screen", json=records[3]).json()["results"][0]
    assert one["score"] == pytest.approx(served[3], rel=1e-12)
    assert http.get("/v1/model").json()["fields"][0]["name"] == "job_ad_id"


def test_bad_input_over_http(served: tuple[Server, Path], http: httpx.Client, records: list[dict]) -> None:
    h = {"content-type": "application/json"}
    assert http.post("/v1/screen", content=b'{"records": [', headers=h).status_code == 400
    assert http.post("/v1/screen", content=b"{}", headers={"content-type": "text/csv"}).status_code == 415
    big = b'{"records": [' + b",".join([json.dumps(records[0]).encode()] * 1500) + b"]}"
    r = http.post("/v1/screen", content=big, headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"records": ['
        for _ in range(1500):
            yield json.dumps(records[0]).encode() + b","
        yield b"{}]}"

    r = http.post("/v1/screen", content=chunks(), headers=h)
    assert r.status_code == 413
    r = http.post("/v1/screen", content=b'{"records": [{"job_ad_id": NaN}, 1]}', headers=h)
    assert r.status_code == 422 and len(r.json()["results"]) == 2
    with httpx.Client(base_url=served[0].url) as anon:
        assert anon.post("/v1/screen", json=records[0]).status_code == 401
        assert anon.post("/v1/screen", json=records[0], headers={"X-API-Key": "nope"}).status_code == 401
        assert anon.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200


def test_hot_reload_under_load(
    served: tuple[Server, Path], http: httpx.Client, artifact_b: Path, records: list[dict], tmp_path: Path
) -> None:
    server, folder = served
    a = http.get("/v1/model").json()["version"]
    b = Screener.load(artifact_b)
    stop = threading.Event()
    per_thread: list[list[tuple[int, str | None]]] = [[] for _ in range(4)]

    def load(seen: list[tuple[int, str | None]]) -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=30) as c:
            i = 0
            while not stop.is_set():
                batch = records[i % 200 : i % 200 + 1 + i % 7]
                r = c.post("/v1/screen", json={"records": batch})
                seen.append((r.status_code, r.json().get("model_version")))
                i += 1

    threads = [threading.Thread(target=load, args=(seen,)) for seen in per_thread]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        b.save(folder)  # a new version lands in the watched folder
        deadline = time.monotonic() + 30
        while http.get("/v1/model").json()["version"] == a:
            assert time.monotonic() < deadline, "the watched folder was not reloaded"
            time.sleep(0.1)
        new = http.get("/v1/model").json()["version"]
        time.sleep(0.5)
        corrupt(folder)  # a broken version lands: refused, the new one keeps serving
        deadline = time.monotonic() + 30
        while 'winnow_model_reloads_total{result="refused"} 1.0' not in http.get("/metrics").text:
            assert time.monotonic() < deadline, "the corrupted folder was not noticed"
            time.sleep(0.1)
        time.sleep(0.5)
        assert http.get("/v1/model").json()["version"] == new
        # the admin endpoint: a broken folder is refused, a good one swapped in
        broken = tmp_path / "broken"
        shutil.copytree(folder, broken)
        assert http.post("/v1/admin/reload", json={"path": str(broken)}).status_code == 401
        admin = {"X-Admin-Key": ADMIN}
        r = http.post("/v1/admin/reload", json={"path": str(broken)}, headers=admin)
        assert r.status_code == 409 and new in r.json()["error"]["message"]
        r = http.post("/v1/admin/reload", json={"path": "/etc"}, headers=admin)
        assert r.status_code == 403 and "reload root" in r.json()["error"]["message"]
        r = http.post("/v1/admin/reload", json={"path": str(artifact_b)}, headers=admin)
        assert r.status_code == 200 and r.json()["version"] == new  # same artifact as the watched save
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    seen = [x for t in per_thread for x in t]
    assert {s for s, _ in seen} == {200}
    assert len(seen) > 40 and {v for _, v in seen} == {a, new}
    for t in per_thread:  # a client's next request, sent after a new-version answer, is never old
        versions = [v for _, v in t]
        assert a not in versions[versions.index(new) :]
    assert "refused" in server.log.read_text()


def test_sigterm_stops_cleanly_and_keys_are_not_logged(
    served: tuple[Server, Path], http: httpx.Client
) -> None:
    server, _ = served
    assert http.get("/readyz").status_code == 200
    # uvicorn drains, runs the shutdown, then re-raises the signal so supervisors see it
    assert server.stop() in (0, -signal.SIGTERM)
    log = server.log.read_text()
    assert "Application shutdown complete" in log and "Traceback" not in log
    assert KEY not in log
    assert "POST /v1/screen HTTP/1.1" in log  # the access log was on
