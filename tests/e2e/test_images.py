"""An image column end to end: scikit-learn's digits rendered to PNG, "the digit is a 3" as
high-value; the CNN must learn it (API, saved artifact, rejects, service records and the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from tests.helpers import FAST, digits_frame, fast_toml
from winnow import Screener

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
# the images are written at 32 x 32 and embedded at 16 x 16: the resize is exercised, the fit is fast
IMAGE = {"image_size": 16, "image_epochs": 15}
TASK = {"target": "label", "positive": "yes", **FAST}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(1,500 rows to fit on, 297 held-out rows) of digits as PNG paths, ink, noise and the label."""
    frame = digits_frame(tmp_path_factory.mktemp("digits"), size=32)
    return frame.iloc[:1500].reset_index(drop=True), frame.iloc[1500:].reset_index(drop=True)


@pytest.fixture(scope="module")
def with_images(digits) -> Screener:
    return Screener().fit(digits[0], **TASK, **IMAGE)


def _ap(frame: pd.DataFrame, scores: np.ndarray) -> float:
    return float(average_precision_score(frame["label"] == "yes", scores))


def test_the_cnn_learns_the_digit(digits, with_images) -> None:
    train, held_out = digits
    without = Screener().fit(train.drop(columns="image"), **TASK)
    base = float((held_out["label"] == "yes").mean())
    ap_images = _ap(held_out, with_images.score(held_out))
    ap_without = _ap(held_out, without.score(held_out.drop(columns="image")))
    assert base < 0.12
    assert ap_images > 0.85, ap_images
    assert ap_images > ap_without + 0.5, (ap_images, ap_without)
    # the fit's own held-out test rows say the same
    assert with_images.metrics_["winnow"]["auc_pr"] > 0.85
    assert with_images.specs_[0].role == "image"
    cnn = with_images.metrics_["images"]["image"]
    assert cnn["kind"] == "cnn" and cnn["history"]["valid_images"] > 0
    assert with_images.importance_["image"] > 0.5


def test_saved_screener_replays_the_cnn_exactly(digits, with_images, tmp_path) -> None:
    _, held_out = digits
    path = with_images.save(tmp_path / "screener")
    manifest = json.loads((path / "manifest.json").read_text())
    assert "preprocess.safetensors" in manifest["files"]
    from safetensors.numpy import load_file

    tensors = load_file(str(path / "preprocess.safetensors"))
    assert any(k.startswith("image.image.conv.0.weight") for k in tensors)
    loaded = Screener.load(path)
    assert np.array_equal(loaded.score(held_out), with_images.score(held_out), equal_nan=True)


def test_unreadable_images_are_rejected_not_fatal(digits, with_images, tmp_path) -> None:
    _, held_out = digits
    broken = held_out.head(40).copy()
    (tmp_path / "bad.png").write_bytes(b"not an image")
    broken.loc[5, "image"] = str(tmp_path / "bad.png")
    broken.loc[7, "image"] = str(tmp_path / "gone.png")
    scores = with_images.score(broken)
    assert np.isnan(scores[[5, 7]]).all() and np.isfinite(np.delete(scores, [5, 7])).all()
    result = with_images.screen(
        broken, out=tmp_path / "top.csv", budget=5, rejects=tmp_path / "rejects.jsonl"
    )
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["column"]) for r in rejects] == [(5, "image"), (7, "image")]
    assert rejects[0]["reason"].startswith("not a readable image") and "bad.png" in rejects[0]["reason"]
    assert rejects[1]["reason"].startswith("image file not found") and "gone.png" in rejects[1]["reason"]
    assert result.summary.rows_rejected == 2


def test_service_records_with_unreadable_images_get_an_error(digits, with_images) -> None:
    from winnow.online import OnlineScorer

    _, held_out = digits
    good = held_out.iloc[0][["image", "ink", "noise"]].to_dict()
    results = OnlineScorer(with_images).score_records([good, {**good, "image": "/no/such/file.png"}])
    assert results[0].error is None and results[0].score == pytest.approx(with_images.score(held_out)[0])
    err = results[1].error
    assert err is not None and results[1].score is None
    assert err.column == "image" and "image file not found: '/no/such/file.png'" in err.reason


def test_same_seed_same_screener(digits) -> None:
    part = digits[0].head(600)
    a = Screener().fit(part, **TASK, image_size=16, image_epochs=4)
    b = Screener().fit(part, **TASK, image_size=16, image_epochs=4)
    assert np.array_equal(a.score(digits[1]), b.score(digits[1]))


def test_cli_with_user_weights_and_relative_paths(digits, winnow_exe, tmp_path) -> None:
    """``winnow fit --image-weights --image-root`` on a CSV of relative paths, then ``screen``."""
    import torch
    from safetensors.torch import save_file

    from winnow.prep.image import resnet18

    train, held_out = digits
    root = Path(train["image"][0]).parent
    table = pd.concat([train.head(150), held_out.head(150)])
    table["image"] = [Path(p).name for p in table["image"]]
    table.to_csv(tmp_path / "digits.csv", index=False)
    torch.manual_seed(0)
    weights = {k: v.contiguous() for k, v in resnet18().state_dict().items()}
    save_file(weights, str(tmp_path / "r18.safetensors"))
    cfg = fast_toml(tmp_path / "fast.toml", image_size=32)
    art = tmp_path / "art"
    r = subprocess.run(
        [winnow_exe, "fit", str(tmp_path / "digits.csv"), "--target", "label", "--positive", "yes",
         "--config", str(cfg), "--image-weights", str(tmp_path / "r18.safetensors"),
         "--image-root", str(root), "--out", str(art), "--no-report", "-q"],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["schema"][0] == {
        "name": "image",
        "role": "image",
        "reason": "image file paths",
        "root": str(root),
    }
    assert manifest["metrics"]["images"]["image"]["kind"] == "resnet18"
    r = subprocess.run(
        [winnow_exe, "screen", str(art), str(tmp_path / "digits.csv"), "--out", str(tmp_path / "top.csv"),
         "--budget", "20", "-q"],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / "top.csv")) == 20


def test_weights_that_are_not_a_resnet_stop_the_fit_with_the_fix(digits, tmp_path) -> None:
    from winnow.errors import ConfigError

    (tmp_path / "w.safetensors").write_bytes(b"{}")
    expected = r"image_weights: expected a safetensors file, received '.*w\.safetensors'"
    with pytest.raises(ConfigError, match=expected):
        Screener().fit(digits[0].head(100), **TASK, image_weights=str(tmp_path / "w.safetensors"))


def test_a_parquet_column_of_image_bytes(digits, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = digits[0].head(400)
    blobs = [Path(p).read_bytes() for p in frame["image"]]
    table = pa.table({"photo": pa.array(blobs, pa.binary()), "label": frame["label"].tolist()})
    pq.write_table(table, tmp_path / "photos.parquet")
    s = Screener().fit(tmp_path / "photos.parquet", **TASK, image_size=16, image_epochs=3)
    assert (s.specs_[0].role, s.specs_[0].reason) == ("image", "encoded image bytes")
    broken = table.slice(0, 5).set_column(0, "photo", pa.array([*blobs[:4], b"\x00garbage"], pa.binary()))
    scores = s.score(broken)
    assert np.isfinite(scores[:4]).all() and np.isnan(scores[4])
