"""The pretrained sentence encoder for text columns: offline, cached, in the fitted pipeline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from winnow import Screener
from winnow.prep.encoder import DIM, TextEncoder


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return TextEncoder(cache_dir=tmp_path_factory.mktemp("emb-cache"))


@pytest.fixture(scope="module")
def reviews(shared_data):
    df = pd.read_parquet(shared_data / "fine_food_reviews.parquet")
    df = df[["review", "score"]].sample(600, random_state=0).reset_index(drop=True)
    df["review"] = df["review"].str.slice(0, 300)  # short texts keep the test quick
    return df


def test_embeddings_are_the_known_model_and_missing_text_is_zero(encoder):
    v = encoder.encode(["A man is eating food.", "A man is eating a piece of bread.", None, "  "])
    assert v.shape == (4, DIM) and v.dtype == np.float32
    assert np.linalg.norm(v[0]) == pytest.approx(1.0, abs=1e-5)
    assert float(v[0] @ v[1]) == pytest.approx(0.755, abs=0.01)  # the published value for this model
    assert not v[2].any() and not v[3].any()


def test_cache_serves_repeats_without_the_model(encoder, tmp_path):
    texts = ["winnow screens data", "another sentence here", "winnow screens data"]
    fresh = TextEncoder(cache_dir=tmp_path)
    a = fresh.encode(texts)
    assert fresh.computed == 2  # the repeated text is embedded once
    again = TextEncoder(cache_dir=tmp_path)  # a new process would see the same file
    b = again.encode(texts)
    assert again.computed == 0 and len(again.cache) == 2
    np.testing.assert_array_equal(a, b)


def test_screener_learns_from_embeddings_and_round_trips(reviews, tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "cache"))
    opts = {"target": "score", "positive": "great", "models": ["linear"], "folds": 2, "threads": 1}
    s = Screener().fit(reviews, **opts, text="encoder")
    assert s.prep_.encoded_ == ["review"] and s.prep_.text_blocks() == [("review", DIM)]
    assert s.metrics_["winnow"]["auc_pr"] > reviews["score"].eq("great").mean() + 0.1
    s.save(tmp_path / "a")
    again = Screener.load(tmp_path / "a")
    x = reviews.drop(columns=["score"]).head(50)
    np.testing.assert_allclose(again.score(x), s.score(x), rtol=1e-6)
    # reasons name the text column; the online path embeds too
    from winnow.online import OnlineScorer

    recs = json.loads(x.head(5).to_json(orient="records"))
    res = OnlineScorer(again).score_records(recs, threshold=0.0, reasons=3)
    assert all(r.score is not None for r in res)
    assert any(reason.startswith("review=") for r in res for reason in r.reasons)


def test_both_puts_tfidf_then_embeddings(reviews, tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "cache"))
    opts = {"target": "score", "positive": "great", "models": ["linear"], "folds": 2, "threads": 1}
    s = Screener().fit(reviews.head(300), **opts, text="both")
    blocks = s.prep_.text_blocks()
    assert [b[0] for b in blocks] == ["review", "review"] and blocks[1][1] == DIM
    assert s.config.text == "both"
