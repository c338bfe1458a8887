"""Shared fixtures: the real data folder, synthetic tables and screeners fitted once."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import fit_options, make_frame

REPO = Path(__file__).resolve().parents[1]
# the sentence encoder's embedding cache: one per test session, never the user's
os.environ.setdefault("WINNOW_CACHE_DIR", tempfile.mkdtemp(prefix="winnow-test-cache-"))
SHARED_DATA = REPO / ".." / "shared" / "data"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """DSN of a throwaway PostgreSQL 15 cluster on a free loopback port."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="winnow-pg-"))
    as_root = os.geteuid() == 0
    prefix: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    data = folder / "data"
    run = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    subprocess.run(
        [
            *prefix,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        **run,  # type: ignore[call-overload]
    )
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *prefix,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "server.log"),
            "-w",
            "-o",
            opts,
            "start",
        ],
        **run,  # type: ignore[call-overload]
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(folder, ignore_errors=True)


#: where Debian and others put a Chromium binary
CHROMIUM_BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


@pytest.fixture(scope="session")
def chromium() -> str:
    """A Chromium binary for the browser tests (CI installs Debian's); skipped, saying so, without one."""
    for name in CHROMIUM_BINARIES:
        exe = shutil.which(name)
        if exe:
            return exe
    pytest.skip(
        f"no Chromium binary on PATH (looked for {', '.join(CHROMIUM_BINARIES)}): apt-get install chromium"
    )
