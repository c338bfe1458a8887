"""One small real screener (resume call-backs: LightGBM + deep network + linear), optimised once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

RESUME = "resume_callbacks.parquet"
TOLERANCE = 0.01


@pytest.fixture(scope="session")
def resume_table(shared_data: Path) -> pa.Table:
    return pq.read_table(shared_data / RESUME)


@pytest.fixture(scope="session")
def resume_path(shared_data: Path) -> Path:
    return shared_data / RESUME


@pytest.fixture(scope="session")
def original_dir(resume_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from winnow import Screener

    screener = Screener().fit(
        resume_path,
        target="received_callback",
        positive="1",
        models=["lightgbm", "deep", "linear"],
        folds=2,
        threads=1,
        seed=0,
        # every step needs a weighted network to work on: the fast live model drops this one
        live_model="full",
    )
    return screener.save(tmp_path_factory.mktemp("optimise") / "original")


@pytest.fixture(scope="session")
def optimised(original_dir: Path, resume_path: Path) -> tuple[Path, dict[str, Any]]:
    """(optimised artifact folder, report): every step, one timing repetition."""
    from winnow.optimise import optimise_artifact

    out = original_dir.parent / "optimised"
    stages: list[str] = []
    report = optimise_artifact(
        original_dir,
        out,
        resume_path,
        tolerance=TOLERANCE,
        repeats=1,
        latency_records=20,
        on_stage=stages.append,
    )
    report["_stages_heard"] = stages  # for the progress test; not part of the written manifest
    return out, report
