"""Drift monitoring: reference profile at fit, PSI / Wasserstein / unseen share on live windows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.helpers import fit_options, make_frame
from winnow import Screener
from winnow.monitor import DriftMonitor, Reference, noise, psi, status
from winnow.online import OnlineScorer


@pytest.fixture(scope="module")
def screener():
    return Screener().fit(make_frame(1500, seed=11), **fit_options())


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(
        frame.drop(columns=["churn", "future_spend"]).to_json(orient="records", date_format="iso")
    )


def test_psi_reading():
    e = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(e, e) == pytest.approx(0.0)
    assert status(psi(np.array([0.24, 0.26, 0.25, 0.25]), e)) == "stable"
    assert status(psi(np.array([0.7, 0.1, 0.1, 0.1]), e)) == "major"


def test_psi_noise_of_small_windows_matches_sampling():
    """Samples from the reference itself: mean PSI is about (bins - 1) / n, the noise subtracted."""
    rng = np.random.default_rng(0)
    e = np.full(20, 0.05)
    n = 200
    draws = [psi(np.bincount(rng.integers(0, 20, n), minlength=20) / n, e) for _ in range(300)]
    assert np.mean(draws) == pytest.approx(noise(e, n), rel=0.25)
    assert status(np.mean(draws)) != "stable" and status(np.mean(draws) - noise(e, n)) == "stable"


def test_reference_is_saved_with_the_artifact(screener, tmp_path):
    ref = screener.reference_
    assert ref is not None and ref.rows > 1000 and 0 < ref.selection_rate < 1
    names = {f.name for f in ref.features}
    assert any(f.source == "spend" for f in ref.features) and any(f.kind == "cat" for f in ref.features)
    assert all(abs(sum(f.expected) - 1) < 1e-9 for f in ref.features)
    screener.save(tmp_path / "a")
    again = Screener.load(tmp_path / "a").reference_
    assert again == ref and {f.name for f in again.features} == names
    assert Reference.from_json(json.loads(json.dumps(ref.to_json()))) == ref


def test_same_distribution_is_stable_and_a_shift_is_flagged(screener):
    same = OnlineScorer(screener, monitor=DriftMonitor(screener.reference_, window=2000))
    same.score_records(_records(make_frame(1500, seed=12)))
    rep = same.monitor.report()
    assert rep["window_records"] == 1500 and rep["summary"]["features_major"] == 0
    assert rep["score"]["status"] in ("stable", "moderate")

    shifted = make_frame(1500, seed=13)
    shifted["spend"] = shifted["spend"] * 8  # prices went up
    shifted["region"] = "atlantis"  # a region never seen in training
    drift = OnlineScorer(screener, monitor=DriftMonitor(screener.reference_, window=2000))
    drift.score_records(_records(shifted))
    rep = drift.monitor.report()
    by = {r["column"]: r for r in rep["features"]}
    assert by["spend"]["status"] == "major" and by["spend"]["wasserstein"] > 1.0
    assert by["region"]["unseen_or_rare"] == pytest.approx(1.0)
    assert by["region"]["status"] == "major"
    assert rep["features"][0]["psi"] >= rep["features"][-1]["psi"]  # worst first
    assert rep["selection"]["expected_rate"] == screener.reference_.selection_rate


def test_window_keeps_the_latest_records(screener):
    mon = DriftMonitor(screener.reference_, window=100)
    sc = OnlineScorer(screener, monitor=mon)
    recs = _records(make_frame(300, seed=14))
    for i in range(0, 300, 70):
        sc.score_records(recs[i : i + 70])
    rep = mon.report()
    assert rep["window_records"] == 100 and rep["records_seen"] == 300


def test_audit_sample_of_not_selected_records(screener, tmp_path):
    path = tmp_path / "audit.jsonl"
    mon = DriftMonitor(screener.reference_, audit_fraction=0.5, audit_path=path, seed=3)
    sc = OnlineScorer(screener, monitor=mon)
    results = sc.score_records(_records(make_frame(400, seed=15)))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == mon.audited and 100 < len(lines) < 300
    not_selected = {r.id for r in results if not r.selected}
    assert all(x["id"] in not_selected for x in lines)
    assert set(lines[0]) == {"audited_at", "id", "score", "record"}
    with pytest.raises(ValueError, match="audit path"):
        DriftMonitor(screener.reference_, audit_fraction=0.1)


def test_empty_window(screener):
    rep = DriftMonitor(screener.reference_).report()
    assert rep["window_records"] == 0 and rep["features"] == []
