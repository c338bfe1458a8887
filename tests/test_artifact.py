"""The artifact folder: safe formats, verified hashes, clear errors on any tampering."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from winnow import Screener
from winnow.artifact import FORMAT, FORMAT_VERSION, _canonical, read_artifact, sha256_bytes, write_artifact
from winnow.errors import ArtifactError


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _rewrite_manifest(path: Path, change) -> None:
    """Edit the manifest and re-seal it, as a careful forger (or an old writer) would."""
    man = _manifest(path)
    change(man)
    man["checksum"] = sha256_bytes(_canonical(man))
    (path / "manifest.json").write_text(json.dumps(man))


class TestLayout:
    def test_files(self, artifact_dir):
        files = sorted(p.relative_to(artifact_dir).as_posix() for p in artifact_dir.rglob("*") if p.is_file())
        assert files == [
            "evaluation.safetensors",
            "manifest.json",
            "models/lightgbm.txt",
            "models/linear.json",
            "monitor.json",
            "preprocess.json",
        ]

    def test_no_pickle_anywhere(self, artifact_dir):
        for p in artifact_dir.rglob("*"):
            if p.is_file():
                assert not p.read_bytes().startswith(b"\x80"), f"{p} looks like a pickle"
                assert p.suffix in {".json", ".txt", ".safetensors"}

    def test_manifest_content(self, artifact_dir, fitted):
        man = _manifest(artifact_dir)
        assert man["format"] == FORMAT and man["format_version"] == FORMAT_VERSION
        assert man["winnow_version"] == fitted.version_
        assert man["config"]["target"] == "churn" and man["config"]["positive"] == ["yes"]
        assert {s["name"] for s in man["schema"]} >= {"spend", "visits", "region", "member", "signup"}
        assert man["threshold"]["value"] == pytest.approx(fitted.threshold_.value)
        assert "auc_pr" in man["metrics"]["winnow"]
        assert set(man["models"]) == {"lightgbm", "linear"}

    def test_manifest_hashes_every_file(self, artifact_dir):
        man = _manifest(artifact_dir)
        on_disk = {p.relative_to(artifact_dir).as_posix() for p in artifact_dir.rglob("*") if p.is_file()}
        assert set(man["files"]) == on_disk - {"manifest.json"}
        for rel, digest in man["files"].items():
            assert hashlib.sha256((artifact_dir / rel).read_bytes()).hexdigest() == digest
        assert man["checksum"] == sha256_bytes(_canonical(man))

    def test_preprocess_state_is_json(self, artifact_dir):
        state = json.loads((artifact_dir / "preprocess.json").read_text())
        assert {"features", "hour_columns"} <= set(state)


class TestLoad:
    def test_load_scores_identically(self, artifact_dir, fitted, train_frame):
        loaded = Screener.load(artifact_dir)
        np.testing.assert_array_equal(loaded.score(train_frame), fitted.score(train_frame))
        assert loaded.threshold_ == fitted.threshold_
        assert loaded.config == fitted.config
        assert loaded.input_columns == fitted.input_columns

    def test_save_over_an_existing_artifact(self, fitted, tmp_path):
        path = tmp_path / "s"
        fitted.save(path)
        (path / "stale.txt").write_text("old")
        fitted.save(path)
        assert not (path / "stale.txt").exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary folders left
        Screener.load(path)

    def test_save_returns_the_path(self, fitted, tmp_path):
        assert fitted.save(tmp_path / "x") == tmp_path / "x"


class TestLowLevel:
    def test_round_trip(self, tmp_path):
        write_artifact(tmp_path / "a", {"models": {}, "k": [1, 2]}, {"sub/b.json": b"{}", "c.txt": b"hi"})
        got = read_artifact(tmp_path / "a")
        assert got.files == {"sub/b.json": b"{}", "c.txt": b"hi"}
        assert got.manifest["k"] == [1, 2]

    def test_numpy_values_are_stored_as_json(self, tmp_path):
        write_artifact(tmp_path / "a", {"x": np.float32(1.5), "v": np.arange(3)}, {})
        man = read_artifact(tmp_path / "a").manifest
        assert man["x"] == 1.5 and man["v"] == [0, 1, 2]


class TestCorrupted:
    def test_edited_model_file(self, artifact_copy):
        p = artifact_copy / "models" / "lightgbm.txt"
        p.write_text(p.read_text().replace("learning_rate", "learning_rat3", 1))
        with pytest.raises(ArtifactError, match=r"models/lightgbm\.txt.*sha256"):
            Screener.load(artifact_copy)

    def test_edited_linear_weights(self, artifact_copy):
        p = artifact_copy / "models" / "linear.json"
        payload = json.loads(p.read_text())
        payload["intercept"] += 1.0
        p.write_text(json.dumps(payload))
        with pytest.raises(ArtifactError, match="tampered"):
            Screener.load(artifact_copy)

    def test_edited_manifest(self, artifact_copy):
        man = _manifest(artifact_copy)
        man["threshold"]["value"] = 0.0001
        (artifact_copy / "manifest.json").write_text(json.dumps(man))
        with pytest.raises(ArtifactError, match="checksum mismatch"):
            Screener.load(artifact_copy)

    def test_missing_file(self, artifact_copy):
        (artifact_copy / "preprocess.json").unlink()
        with pytest.raises(ArtifactError, match=r"'preprocess\.json' listed in the manifest is missing"):
            Screener.load(artifact_copy)

    def test_missing_manifest(self, artifact_copy):
        (artifact_copy / "manifest.json").unlink()
        with pytest.raises(ArtifactError, match=r"no manifest\.json"):
            Screener.load(artifact_copy)

    def test_manifest_not_json(self, artifact_copy):
        (artifact_copy / "manifest.json").write_text("{not json")
        with pytest.raises(ArtifactError, match="not valid JSON"):
            Screener.load(artifact_copy)

    def test_not_a_winnow_manifest(self, artifact_copy):
        (artifact_copy / "manifest.json").write_text('{"format": "something-else"}')
        with pytest.raises(ArtifactError, match="not a winnow-screener manifest"):
            Screener.load(artifact_copy)

    def test_newer_format_version(self, artifact_copy):
        _rewrite_manifest(artifact_copy, lambda m: m.update(format_version=FORMAT_VERSION + 1))
        with pytest.raises(ArtifactError, match="newer than this winnow reads") as info:
            Screener.load(artifact_copy)
        assert "Upgrade winnow" in str(info.value)

    def test_newer_format_version_even_if_checksum_is_stale(self, artifact_copy):
        man = _manifest(artifact_copy)
        man["format_version"] = FORMAT_VERSION + 5
        (artifact_copy / "manifest.json").write_text(json.dumps(man))
        with pytest.raises(ArtifactError, match="newer"):
            Screener.load(artifact_copy)

    def test_missing_format_version(self, artifact_copy):
        _rewrite_manifest(artifact_copy, lambda m: m.pop("format_version"))
        with pytest.raises(ArtifactError, match="no format_version"):
            Screener.load(artifact_copy)

    def test_unknown_older_format_version(self, artifact_copy):
        # a version this winnow has no migration for must be refused cleanly, not crash
        _rewrite_manifest(artifact_copy, lambda m: m.update(format_version=0))
        with pytest.raises(ArtifactError):
            Screener.load(artifact_copy)

    def test_unknown_model_type(self, artifact_copy):
        forest = lambda m: m["models"].update(forest={**m["models"]["linear"], "kind": "forest"})  # noqa: E731
        _rewrite_manifest(artifact_copy, forest)
        with pytest.raises(ArtifactError, match="unknown model types"):
            Screener.load(artifact_copy)

    def test_file_entry_outside_the_folder(self, artifact_copy):
        outside = artifact_copy.parent / "secret.txt"
        outside.write_text("x")
        digest = sha256_bytes(b"x")
        _rewrite_manifest(artifact_copy, lambda m: m["files"].update({"../secret.txt": digest}))
        with pytest.raises(ArtifactError, match="outside the artifact"):
            Screener.load(artifact_copy)

    def test_incomplete_manifest(self, artifact_copy):
        _rewrite_manifest(artifact_copy, lambda m: m.pop("fusion"))
        with pytest.raises(ArtifactError, match="incomplete or invalid"):
            Screener.load(artifact_copy)

    def test_resealed_unparseable_model_file(self, artifact_copy):
        # hashes regenerated over a broken model: loading must still end in an ArtifactError
        (artifact_copy / "models" / "lightgbm.txt").write_text("this is not a LightGBM model")
        digest = sha256_bytes(b"this is not a LightGBM model")
        _rewrite_manifest(artifact_copy, lambda m: m["files"].update({"models/lightgbm.txt": digest}))
        with pytest.raises(ArtifactError):
            Screener.load(artifact_copy)

    def test_not_a_folder(self, tmp_path):
        f = tmp_path / "file"
        f.write_text("x")
        with pytest.raises(ArtifactError, match="is not a folder"):
            Screener.load(f)
        with pytest.raises(ArtifactError, match="is not a folder"):
            Screener.load(tmp_path / "missing")


def test_manifest_without_member_kinds_loads(artifact_copy):
    """Artifacts written before members had kinds name each model by its kind."""

    def strip(m):
        for entry in m["models"].values():
            entry.pop("kind")

    before = Screener.load(artifact_copy)
    _rewrite_manifest(artifact_copy, strip)
    again = Screener.load(artifact_copy)
    assert {n: type(v) for n, v in again.learners_.items()} == {
        n: type(v) for n, v in before.learners_.items()
    }


def test_held_out_evaluation_rows_are_kept(artifact_copy):
    s = Screener.load(artifact_copy)
    ev = s.evaluation_
    assert set(ev) >= {"y", "score", "logistic_regression"}
    assert len(ev["y"]) == len(ev["score"]) == s.metrics_["split"]["test"]
    from sklearn.metrics import average_precision_score

    assert average_precision_score(ev["y"], ev["score"]) == pytest.approx(s.metrics_["winnow"]["auc_pr"])
