"""Fixtures of the report tests: one small screener with a baseline rule, fitted once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import fit_options, make_frame


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: renders the report in a real headless browser (chromium)")


@pytest.fixture(scope="session")
def ruled():
    """A screener fitted with a baseline rule (``spend``), so all three scorers are compared."""
    from winnow import Screener

    return Screener().fit(make_frame(600, seed=0), **fit_options(baseline="spend"))


@pytest.fixture(scope="session")
def ruled_dir(ruled, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ruled.save(tmp_path_factory.mktemp("report-artifact") / "screener")


@pytest.fixture(scope="session")
def new_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 unlabelled records to screen, as Parquet."""
    frame: pd.DataFrame = make_frame(300, seed=7).drop(columns=["churn", "future_spend"])
    path = tmp_path_factory.mktemp("report-data") / "new.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def report_path(ruled_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from winnow.report import write_report

    return write_report(ruled_dir, tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture(scope="session")
def report_with_data(ruled_dir: Path, new_records: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from winnow.report import write_report

    return write_report(
        ruled_dir, tmp_path_factory.mktemp("report-data-out") / "report.html", data=new_records
    )
