"""The entity rows of a Parquet event log built by Ray tasks are the local build's rows, and a
screen on Ray as of a date selects the same customers as the local engine."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from winnow import Screener
from winnow.events.sequence import SCORE

pytest.importorskip("ray")
os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"})


def test_ray_build_and_screen_equal_the_local_ones(event_screener, big_log, tmp_path):
    _, art = event_screener
    s = Screener.load(art)
    log = big_log[1]
    local = s.screen(log, as_of="1998-10-01", out=tmp_path / "local.parquet")
    ray = s.screen(log, as_of="1998-10-01", out=tmp_path / "ray.parquet", engine="ray", workers=2,
                   keep_parts=True)  # fmt: skip
    assert ray.summary.rows_scored == local.summary.rows_scored
    a, b = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    assert a.column("customer").to_pylist() == b.column("customer").to_pylist()
    assert a.column("score").equals(b.column("score"))
    # the parts hold the local build's rows, split by entity: the same features; the sequence
    # encoder's score up to float32 rounding (its matrix products see other batch shapes)
    parts = pq.read_table(tmp_path / "ray.parquet.entities").sort_by("customer")
    whole = s.entity_table(log, "1998-10-01")
    features = [c for c in whole.column_names if c != SCORE]
    assert parts.select(features).equals(whole.select(features))
    np.testing.assert_allclose(parts.column(SCORE).to_numpy(), whole.column(SCORE).to_numpy(), atol=1e-5)
