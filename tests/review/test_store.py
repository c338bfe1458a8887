"""The review store: queue, verdicts, labels and figures, in DuckDB and in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from winnow.errors import ConfigError, DataError
from winnow.review.store import ReviewStore, Screened, is_store_url, label_of, wilson


def _screened(i: int, selected: bool, score: float) -> Screened:
    return Screened(f"r{i}", score, selected, None, [f"spend = {i}"], {"spend": i, "region": "east"}, "v1")


@pytest.fixture(params=["duckdb", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReviewStore]:
    if request.param == "duckdb":
        url = f"duckdb:{tmp_path / 'reviews.duckdb'}"
    else:
        import psycopg

        dsn = request.getfixturevalue("postgres")
        with psycopg.connect(dsn, autocommit=True) as con:  # a fresh database per test
            name = f"reviews_{abs(hash(tmp_path)) % 10**9}"
            con.execute(f"CREATE DATABASE {name}")
        url = dsn.rsplit("/", 1)[0] + "/" + name
    with ReviewStore(url) as s:
        yield s


def test_store_urls_are_told_from_tables_and_files() -> None:
    assert is_store_url("duckdb:reviews.duckdb") and is_store_url("duckdb:///tmp/r.duckdb")
    assert is_store_url("postgresql://u@h/db")
    assert not is_store_url("duckdb:shop.duckdb?table=orders")
    assert not is_store_url("postgresql://u@h/db?table=t") and not is_store_url("labels.csv")
    with pytest.raises(ConfigError, match="review store URL"):
        ReviewStore("reviews.csv")


def test_a_verdict_means_a_label() -> None:
    assert label_of("right", True) == 1 and label_of("wrong", True) == 0
    assert label_of("right", False) == 0 and label_of("wrong", False) == 1


def test_wilson_interval() -> None:
    low, high = wilson(8, 10)
    assert 0.5 < low < 0.8 < high < 0.95
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(10, 10)
    assert high == 1.0 and low > 0.7


def test_queue_verdicts_and_figures(store: ReviewStore) -> None:
    rows = [_screened(i, True, 0.9 - i / 100) for i in range(6)] + [
        _screened(i, False, 0.1) for i in range(6, 10)
    ]
    store.add_screened(rows, screened=100, selected=6, version="v1")
    pending = store.pending(limit=50)
    assert [p["id"] for p in pending[:6]] == [f"r{i}" for i in range(6)]  # selected, best first
    assert not any(p["selected"] for p in pending[6:]) and len(pending) == 10
    assert pending[0]["record"] == {"spend": 0, "region": "east"} and pending[0]["reasons"] == ["spend = 0"]

    for i in range(4):
        assert store.record_verdict(f"r{i}", "right", "ana") == 1
    assert store.record_verdict("r4", "wrong", "ana", note="a reseller") == 0
    assert store.record_verdict("r6", "wrong", "ben") == 1  # a not-selected record that was high-value
    assert store.record_verdict("r7", "right", "ben") == 0
    stats = store.stats()
    assert stats["reviewed"] == 7 and stats["reviewed_selected"] == 5 and stats["reviewed_not_selected"] == 2
    assert stats["precision"]["value"] == pytest.approx(4 / 5)
    assert stats["precision"]["low"] < 0.8 < stats["precision"]["high"]
    # caught: 4/5 of 6 selected = 4.8; missed: 1/2 of 94 not selected = 47
    assert stats["recall_estimate"] == pytest.approx(4.8 / (4.8 + 47))
    assert stats["lift_estimate"] == pytest.approx(0.8 / ((4.8 + 47) / 100))
    assert [p["id"] for p in store.pending()] == ["r5", "r8", "r9"]

    store.record_verdict("r4", "right", "cy")  # the latest verdict wins
    assert store.stats()["precision"]["value"] == pytest.approx(1.0)
    reviewed = {r["id"]: r for r in store.reviewed()}
    assert reviewed["r4"]["reviewer"] == "cy" and reviewed["r4"]["label"] == 1
    assert reviewed["r6"]["record"] == {"spend": 6, "region": "east"}

    with pytest.raises(DataError, match="not in the review queue"):
        store.record_verdict("nope", "right", "ana")
    with pytest.raises(DataError, match="not one of right, wrong"):
        store.record_verdict("r5", "maybe", "ana")
    with pytest.raises(DataError, match="reviewer"):
        store.record_verdict("r5", "right", "  ")


def test_totals_add_up_per_version(store: ReviewStore) -> None:
    store.add_screened([_screened(1, True, 0.8)], screened=10, selected=1, version="v1")
    store.add_screened([_screened(1, True, 0.7)], screened=5, selected=1, version="v1")  # screened again
    store.add_screened([], screened=20, selected=2, version="v2")
    stats = store.stats()
    assert stats["screened"] == 35 and stats["selected"] == 4
    [entry] = store.pending()
    assert entry["score"] == pytest.approx(0.7)  # the latest screening of a record replaces it


def test_a_duckdb_file_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(9)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        time.sleep(0.1)
        with pytest.raises(DataError, match="one process per file"):
            ReviewStore(f"duckdb:{path}").open()
    finally:
        holder.kill()
        holder.wait()
