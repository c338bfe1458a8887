"""Shared fixtures: the real data folder, synthetic tables and screeners fitted once."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import fit_options, make_frame

REPO = Path(__file__).resolve().parents[1]
# the sentence encoder's embedding cache: one per test session, never the user's
os.environ.setdefault("WINNOW_CACHE_DIR", tempfile.mkdtemp(prefix="winnow-test-cache-"))
SHARED_DATA = REPO / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data`` next to the repository folder (real public data sets)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA.resolve()} is absent (it sits next to the repository)")
    return SHARED_DATA.resolve()


@pytest.fixture(scope="session")
def train_frame() -> pd.DataFrame:
    """600 synthetic customers; treat as read-only (copy before changing)."""
    return make_frame(600, seed=0)


@pytest.fixture(scope="session")
def fitted(train_frame: pd.DataFrame):
    """A screener fitted once on ``train_frame`` with LightGBM + linear; do not modify it."""
    from winnow import Screener

    return Screener().fit(train_frame, **fit_options())


@pytest.fixture(scope="session")
def artifact_dir(fitted, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fitted`` saved once; tests that change files must work on a copy (``artifact_copy``)."""
    return fitted.save(tmp_path_factory.mktemp("artifact") / "screener")


@pytest.fixture
def artifact_copy(artifact_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "screener"
    shutil.copytree(artifact_dir, dst)
    return dst


@pytest.fixture(scope="session")
def fitted_deep():
    """A screener with all three learners (the deep network included), on a small table."""
    from winnow import Screener

    frame = make_frame(400, seed=1)
    return Screener().fit(frame, **fit_options(models=["lightgbm", "linear", "deep"]))


@pytest.fixture(scope="session")
def winnow_exe() -> str:
    """The ``winnow`` console script of the interpreter running the tests."""
    candidate = Path(sys.executable).parent / ("winnow.exe" if os.name == "nt" else "winnow")
    exe = str(candidate) if candidate.exists() else shutil.which("winnow")
    if exe is None:
        pytest.fail("the `winnow` console script is not installed: run `pip install -e .`")
    return exe
