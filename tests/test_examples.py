"""The examples run as their docstrings say."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_sentiment_watch_streams_screens_and_digests(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH (apt-get install redis-server)")
    out = tmp_path / "watch"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "sentiment_watch.py"),
            "--out",
            str(out),
            "--preset",
            "fast",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "reviews screened" in r.stdout
    html = (out / "digest.html").read_text()
    assert html.startswith("<!doctype html>") and "Themes" in html
    md = (out / "digest.md").read_text()
    assert "## Top records" in md
    from winnow.review.store import ReviewStore

    with ReviewStore(f"duckdb:{out / 'reviews.duckdb'}") as store:
        stats = store.stats()
        pending = store.pending(1000)
    assert stats["screened"] == 1000  # the test split, every review counted
    assert pending and any(p["selected"] for p in pending) and json.dumps(pending[0]["record"])
