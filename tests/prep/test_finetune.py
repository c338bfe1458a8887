"""Fine-tuning the sentence encoder on the labels: it learns, only the top layers change, the
tuned layers travel in the artifact (checksummed, hashed into the encoder's name) and replay."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from winnow import Screener
from winnow.config import ScreenConfig
from winnow.errors import ConfigError
from winnow.prep.encoder import TextEncoder, load_model
from winnow.prep.finetune import FineTuner


@pytest.fixture(scope="module")
def reviews(shared_data):
    df = pd.read_parquet(shared_data / "fine_food_reviews.parquet")
    df = df[["review", "score"]].sample(500, random_state=1).reset_index(drop=True)
    df["review"] = df["review"].str.slice(0, 200)  # short texts keep the test quick
    return df


@pytest.fixture(scope="module")
def tagged(reviews):
    """Reviews ending in a batch code; the label is the code, a single token that the pretrained
    sentence embedding barely reflects: a task fine-tuning must learn."""
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(int)
    texts = [
        r[:120] + (" warehouse batch qx7" if t else " warehouse batch b12")
        for r, t in zip(reviews["review"].head(400), y, strict=True)
    ]
    return texts, y


@pytest.fixture(scope="module")
def tuned(tagged):
    texts, y = tagged
    return FineTuner(layers=1, max_epochs=2, patience=2, lr=1e-4).fit(texts, y, seed=0, threads=2)


def test_fine_tuning_learns_what_the_probe_cannot(tuned):
    h = tuned.history_
    assert h["fit_texts"] + h["valid_texts"] == 400 and h["valid_texts"] == 80
    assert h["best_epoch"] == h["epochs"] == 2
    # the linear probe on the frozen embedding is the starting point; the tuned layer beats it
    assert h["valid_loss"] < 0.25 * h["valid_loss_start"]


def test_same_seed_same_weights(tagged, tuned):
    texts, y = tagged
    again = FineTuner(layers=1, max_epochs=2, patience=2, lr=1e-4).fit(texts, y, seed=0, threads=2)
    assert again.model_id == tuned.model_id


def test_only_the_top_layer_changes(tuned, reviews):
    base, model = load_model(), tuned.model()
    layers = [k for k in tuned.state_ if k.startswith("layer")]
    assert {k.split(".")[0] for k in layers} == {"layer5"}  # the top of six
    b, t = base[0].auto_model, model[0].auto_model
    for i in range(5):
        for (k, v), (_, w) in zip(
            b.encoder.layer[i].state_dict().items(), t.encoder.layer[i].state_dict().items(), strict=True
        ):
            assert np.array_equal(v.numpy(), w.numpy()), (i, k)
    assert not np.array_equal(
        b.encoder.layer[5].output.dense.weight.detach().numpy(),
        t.encoder.layer[5].output.dense.weight.detach().numpy(),
    )
    texts = reviews["review"].head(8).tolist()
    frozen = TextEncoder(cache_dir=None).encode(texts)
    mine = TextEncoder(cache_dir=None, model=model, name=tuned.model_id).encode(texts)
    assert np.allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(frozen, mine, atol=1e-3)


def test_state_round_trips_and_damage_is_refused(tuned, reviews):
    d = json.loads(json.dumps(tuned.to_json()))
    arrays = tuned.arrays("tuned.review")
    again = FineTuner.from_state(d, arrays, "tuned.review")
    assert again.model_id == tuned.model_id
    texts = reviews["review"].head(8).tolist()
    a = TextEncoder(cache_dir=None, model=tuned.model(), name=tuned.model_id).encode(texts)
    b = TextEncoder(cache_dir=None, model=again.model(), name=again.model_id).encode(texts)
    np.testing.assert_array_equal(a, b)
    bad = dict(arrays)
    key = next(k for k in bad if k.endswith("output.dense.bias"))
    bad[key] = bad[key] + 1e-3
    with pytest.raises(ConfigError, match="damaged"):
        FineTuner.from_state(d, bad, "tuned.review")


def test_one_class_is_refused():
    with pytest.raises(ConfigError, match="both classes"):
        FineTuner().fit(["good"] * 20, np.ones(20))


def test_screener_fits_with_a_tuned_encoder_and_replays_it(reviews, tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "cache"))
    opts = {"target": "score", "positive": "great", "models": ["linear"], "folds": 2, "threads": 2}
    # a 4 s limit gives fine-tuning 1 s: the first epoch completes, no second one starts
    s = Screener().fit(reviews, **opts, text="both", finetune_text=True, time_limit=4)
    log = s.metrics_["text_finetune"]["review"]
    assert log["epochs"] == 1 and log["layers"] == 2
    assert s.metrics_["winnow"]["auc_pr"] > reviews["score"].eq("great").mean() + 0.1
    s.save(tmp_path / "a")
    manifest = json.loads((tmp_path / "a" / "preprocess.json").read_text())
    assert manifest["encoded"]["tuned"]["review"]["model_id"].startswith("all-MiniLM-L6-v2-ft-")
    again = Screener.load(tmp_path / "a")
    x = reviews.drop(columns=["score"]).head(40)
    np.testing.assert_allclose(again.score(x), s.score(x), rtol=1e-5)
    # the tuned encoder's embeddings are cached under its own name, apart from the pretrained one's
    assert any("-ft-" in p.name for p in (tmp_path / "cache").iterdir())


def test_fine_tuning_needs_the_encoder(reviews, tmp_path):
    with pytest.raises(ValueError, match="text = 'encoder' or 'both'"):
        ScreenConfig(target="score", positive=["great"], finetune_text=True)
    from typer.testing import CliRunner

    from winnow.cli import app

    reviews.head(50).to_parquet(tmp_path / "r.parquet")
    args = ["fit", str(tmp_path / "r.parquet"), "--target", "score", "--positive", "great"]
    r = CliRunner().invoke(app, [*args, "--finetune-text", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "--text both" in r.output
    assert not (tmp_path / "s").exists()
