"""The service keeps its OpenAPI contract: schemathesis against the real server, every check.

The server runs as ``winnow serve`` does (uvicorn in a subprocess on a loopback port) with
scoring keys, admin keys and a reload root. schemathesis reads ``/openapi.json`` and sends
generated requests to every operation: schema-valid ones must be accepted, schema-violating
ones refused with a 4xx, every answer must match its documented status, content type, headers
and body schema, and routes behind a key must refuse a request without it. A fixed seed and
no example database make the run the same every time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.test_e2e import KEY, Server

ADMIN = "contract-admin-key-3c5e7a9b1d3f"
MIN_CASES = 1000


@pytest.fixture(scope="module")
def contract_server(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("contract")
    folder = root / "screener"
    shutil.copytree(artifact, folder)
    admin_keys = root / "admin_keys"
    admin_keys.write_text(ADMIN + "\n")
    admin_keys.chmod(0o600)
    server = Server(
        folder,
        root / "server.log",
        admin_key_file=str(admin_keys),
        reload_root=str(root),
        max_records=50,
        access_log=False,
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_generated_requests_keep_the_contract(contract_server: Server, tmp_path: Path) -> None:
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{contract_server.url}/openapi.json",
        "--checks", "all",
        "--max-examples", "500",
        "--seed", "1",
        "--generation-database", "none",
        "--header", f"X-API-Key: {KEY}",
        "--header", f"X-Admin-Key: {ADMIN}",
        "--request-timeout", "30",
        "--workers", "1",
        "--no-color",
        "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    out = run.stdout + run.stderr
    summary = re.search(r"(\d+) generated, (\d+) passed", out)
    assert run.returncode == 0 and summary is not None, out[-6000:]
    generated, passed = int(summary[1]), int(summary[2])
    print(f"schemathesis: {generated} cases generated, {passed} passed, 0 failures")
    assert generated >= MIN_CASES and passed == generated, out[-3000:]
    assert "Tested: 9" in out, out[-3000:]  # every operation, the admin route included
