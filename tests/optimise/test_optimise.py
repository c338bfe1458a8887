"""``optimise_artifact`` end to end on a real screener: accuracy kept, artifact sound, reasons kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.optimise.conftest import TOLERANCE
from winnow import Screener
from winnow.artifact import read_artifact
from winnow.errors import ArtifactError, ConfigError
from winnow.models.onnx_model import OnnxLearner
from winnow.optimise.command import DEFAULT_STEPS, stage_count


def _top(scores: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-scores, kind="stable")[:k].tolist())


def test_scores_match_within_tolerance_and_selection_is_kept(original_dir, optimised, resume_table):
    out, report = optimised
    before = Screener.load(original_dir).score(resume_table)
    after = Screener.load(out).score(resume_table)
    diff = np.abs(after - before)
    assert diff.max() <= TOLERANCE
    assert report["final"]["cost"]["max_abs_score_change"] == pytest.approx(diff.max(), abs=1e-12)
    k = int(np.ceil(0.05 * len(before)))  # the artifact's default budget: top 5%
    kept = len(_top(before, k) & _top(after, k)) / k
    assert kept >= 0.97
    assert report["final"]["cost"]["selected_kept"] >= 0.97
    assert abs(report["final"]["cost"]["auc_pr_change"]) < 0.01


def test_every_step_applied_and_recorded(optimised):
    out, report = optimised
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == ["prune", "onnx", "quantize", "trees"]
    assert all(s["accepted"] for s in steps.values()), [s["members"] for s in steps.values()]
    assert report["kinds"] == {"lightgbm": "onnx", "deep": "onnx", "linear": "linear"}
    for s in steps.values():
        assert s["speed_before"]["rows_per_s"] > 0 and s["speed_after"]["latency_ms_p50"] > 0
        assert s["cost"]["max_abs_score_change"] <= TOLERANCE
    man = read_artifact(out).manifest
    assert man["optimisation"]["steps"] == json.loads(json.dumps(report["steps"]))
    assert man["models"]["lightgbm"]["kind"] == "onnx"
    assert man["models"]["deep"]["config"]["precision"] == "int8"


def test_every_stage_is_announced(optimised):
    _, report = optimised
    assert report["_stages_heard"] == [
        "reading the sample",
        "measuring the artifact as it is",
        "step prune (1 of 4)",
        "step onnx (2 of 4)",
        "step quantize (3 of 4)",
        "step trees (4 of 4)",
        "writing and checking the optimised artifact",
    ]
    assert len(report["_stages_heard"]) == stage_count(DEFAULT_STEPS)  # the CLI's bar counts these


def test_round_trip_and_checksums(optimised, resume_table, tmp_path):
    out, _ = optimised
    a = Screener.load(out)
    first = a.score(resume_table)
    again = Screener.load(a.save(tmp_path / "again")).score(resume_table)
    np.testing.assert_array_equal(first, again)
    contents = read_artifact(out)  # verifies every sha256 and the manifest checksum
    assert {"models/lightgbm.onnx", "models/deep.onnx", "models/lightgbm.lightgbm.txt"} <= set(
        contents.manifest["files"]
    )
    assert isinstance(a.learners_["deep"], OnnxLearner)


def test_pruning_shrank_the_network(original_dir, optimised):
    out, report = optimised
    prune = next(s for s in report["steps"] if s["step"] == "prune")
    deep = next(m for m in prune["members"] if m["member"] == "deep")
    widths_before = Screener.load(original_dir).learners_["deep"].hidden
    assert list(widths_before) == deep["hidden_before"]
    assert all(a < b for a, b in zip(deep["hidden_after"], deep["hidden_before"], strict=True))
    stand_in = Screener.load(out).learners_["deep"]
    assert list(stand_in.hidden) == deep["hidden_after"]
    assert deep["parameters_after"] < deep["parameters_before"]


def test_reasons_are_still_given(original_dir, optimised, resume_table, tmp_path):
    out, _ = optimised
    orig, opt = Screener.load(original_dir), Screener.load(out)
    x, _ = orig.prepare(resume_table.slice(0, 300))
    np.testing.assert_allclose(
        opt.learners_["lightgbm"].contributions(x), orig.learners_["lightgbm"].contributions(x)
    )
    result = opt.screen(resume_table, out=tmp_path / "top.parquet", rejects=tmp_path / "rej.jsonl")
    reasons = result.selected.column("reason_1").to_pylist()
    assert sum(r is not None for r in reasons) > 0.5 * len(reasons)


def test_embed_uses_the_onnx_network(optimised, resume_table):
    out, report = optimised
    widths = next(m for s in report["steps"] if s["step"] == "prune" for m in s["members"])["hidden_after"]
    emb = Screener.load(out).embed(resume_table.slice(0, 50))
    assert emb.shape == (50, widths[-1])
    assert np.isfinite(emb).all()


def test_tampered_onnx_file_is_refused(optimised, tmp_path):
    out, _ = optimised
    copy = tmp_path / "tampered"
    shutil.copytree(out, copy)
    f = copy / "models" / "deep.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        Screener.load(copy)


def test_refuses_a_change_beyond_the_tolerance(original_dir, resume_table):
    from winnow.optimise import optimise_screener

    screener = Screener.load(original_dir)
    opt, report = optimise_screener(
        screener, resume_table, steps=["quantize"], tolerance=1e-9, repeats=1, latency_records=5
    )
    (step,) = report["steps"]
    assert not step["accepted"]
    assert "exceeds the tolerance" in step["members"][0]["reason"]
    assert opt.learners_["deep"].name == "deep"


def test_bad_options_are_config_errors(original_dir, resume_table, tmp_path):
    from winnow.optimise import optimise_artifact

    with pytest.raises(ConfigError, match="--step"):
        optimise_artifact(original_dir, tmp_path / "o", resume_table, steps=["distil"])
    with pytest.raises(ConfigError, match="--tolerance"):
        optimise_artifact(original_dir, tmp_path / "o", resume_table, tolerance=0)
    with pytest.raises(ArtifactError, match="being optimised"):
        optimise_artifact(original_dir, original_dir, resume_table)


def test_an_optimised_artifact_is_not_optimised_again(optimised, resume_table, tmp_path):
    from winnow.optimise import optimise_artifact

    out, _ = optimised
    with pytest.raises(ArtifactError, match="already optimised"):
        optimise_artifact(out, tmp_path / "twice", resume_table)


def test_onnx_learner_cannot_be_fitted_and_needs_its_model():
    from winnow.models.base import make_learner

    learner = make_learner("onnx")
    assert isinstance(learner, OnnxLearner)
    with pytest.raises(NotImplementedError):
        learner.fit(None, None, None)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="no model file"):
        OnnxLearner.from_state({"inputs": "net"}, {})


def test_speeds_are_measured_not_assumed(optimised):
    _, report = optimised
    base, final = report["baseline"]["speed"], report["final"]["speed"]
    assert base["latency_calls"] == final["latency_calls"] == 20
    assert base["rows_per_s"] > 0 and final["rows_per_s"] > 0
    assert Path(report["sample"]["data"]).name == "resume_callbacks.parquet"
