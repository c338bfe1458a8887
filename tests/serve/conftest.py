"""Fixtures of the HTTP service tests: a screener fitted once on real data, apps, clients.

The screener is fitted on ``shared/data/resume_callbacks.parquet`` (target ``received_callback``,
positive ``1``, LightGBM + linear, 3 folds) once per test session and saved to a temporary
folder; tests that change artifact files work on copies.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

with warnings.catch_warnings():
    # starlette's TestClient says on import that it would rather run on httpx2: nothing to act on
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

RESUME = "resume_callbacks.parquet"
TARGET = "received_callback"
FIT: dict[str, Any] = {
    "target": TARGET,
    "positive": "1",
    "models": ["lightgbm", "linear"],
    "folds": 3,
    "threads": 1,
    "seed": 0,
}


@pytest.fixture(scope="session")
def resume_table(shared_data: Path) -> pa.Table:
    return pq.read_table(shared_data / RESUME)


@pytest.fixture(scope="session")
def records(resume_table: pa.Table) -> list[dict[str, Any]]:
    """300 records as a client sends them (no target); treat as read-only."""
    return resume_table.drop([TARGET]).slice(0, 300).to_pylist()


@pytest.fixture(scope="session")
def artifact(resume_table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The screener saved once; copy it (``artifact_copy``) before changing files."""
    from winnow import Screener

    return Screener().fit(resume_table, **FIT).save(tmp_path_factory.mktemp("serve") / "screener")


@pytest.fixture(scope="session")
def artifact_b(resume_table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A different model of the same task (linear only, other seed): the "new version"."""
    from winnow import Screener

    options = {**FIT, "models": ["linear"], "folds": 2, "seed": 1}
    return Screener().fit(resume_table, **options).save(tmp_path_factory.mktemp("serve_b") / "screener")


@pytest.fixture
def artifact_copy(artifact: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "screener"
    shutil.copytree(artifact, dst)
    return dst


@pytest.fixture(scope="module")
def client(artifact: Path) -> Iterator[Any]:
    """A TestClient of the service on ``artifact`` (lifespan running), shared by a module."""
    from winnow.serve.app import create_app
    from winnow.serve.security import ApiKeys
    from winnow.serve.settings import ServeSettings

    app = create_app(
        ServeSettings(artifact=artifact, max_records=500, max_body_bytes=2_000_000), api_keys=ApiKeys()
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
