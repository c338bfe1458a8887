"""SCARF pretraining: the encoder learns, the deep network starts from it, unlabelled rows count."""

from __future__ import annotations

import numpy as np
import torch

from tests.helpers import FAST, make_frame
from winnow import Screener
from winnow.models.base import FitContext, Inputs
from winnow.models.deepnet import DeepLearner
from winnow.models.pretrain import architecture_key, pretrain_encoder
from winnow.prep.preprocessor import Matrices


def _inputs(n: int = 600, seed: int = 0) -> Inputs:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    num = np.column_stack([z[:, 0], z[:, 0] + 0.1 * rng.normal(size=n), z[:, 1], rng.normal(size=n)])
    cat = (z[:, 1:2] > 0).astype(np.int64) + 1
    return Inputs(
        Matrices(num.astype(np.float32), cat), num.astype(np.float32), (z[:, 0] > 0).astype(np.int64)
    )


def test_encoder_learns_and_is_seeded() -> None:
    x = _inputs()
    ctx = FitContext(seed=0, threads=1, cat_cardinalities=(3,))
    key, state, rep = pretrain_encoder(x, ctx, dim=8, hidden=(32, 16), epochs=8)
    assert rep["epochs"] == 8 and rep["loss_last"] < rep["loss_first"]
    assert key == architecture_key(4, [3], 8, (32, 16))
    assert set(k.split(".")[0] for k in state) == {"num_emb", "cat_emb", "mlp"}
    _, again, _ = pretrain_encoder(x, ctx, dim=8, hidden=(32, 16), epochs=8)
    assert all(torch.equal(state[k], again[k]) for k in state)


def test_deep_learner_starts_from_pretrained_weights() -> None:
    x = _inputs()
    ctx = FitContext(seed=0, threads=1, cat_cardinalities=(3,))
    key, state, _ = pretrain_encoder(x, ctx, dim=8, hidden=(32, 16), epochs=2)
    shifted = {k: v + 0.5 for k, v in state.items()}  # unmistakable weights
    with_pre = FitContext(seed=0, threads=1, cat_cardinalities=(3,), pretrained={key: shifted})
    learner = DeepLearner(dim=8, hidden=(32, 16)).fit(x, None, with_pre, rounds=1)
    plain = DeepLearner(dim=8, hidden=(32, 16)).fit(x, None, ctx, rounds=1)
    w = shifted["mlp.0.weight"]
    assert (learner.net_.state_dict()["mlp.0.weight"] - w).abs().mean() < 0.05
    assert (plain.net_.state_dict()["mlp.0.weight"] - w).abs().mean() > 0.4
    # another architecture does not take them
    other = DeepLearner(dim=8, hidden=(64,)).fit(x, None, with_pre, rounds=1)
    assert other.net_ is not None


def test_fit_pretrain_uses_rows_without_a_target() -> None:
    df = make_frame(700, seed=5)
    df.loc[df.index[400:], "churn"] = None  # 300 rows without a label
    opts = dict(target="churn", positive="yes", id="customer_id", drop=["future_spend"])
    s = Screener().fit(df, pretrain=True, **{**FAST, "models": ["lightgbm", "tabm"]}, **opts)
    rep = s.metrics_["pretrain"]
    assert rep[0]["member"] == "tabm" and rep[0]["unlabelled_rows"] == 300
    assert rep[0]["rows"] > 300 and rep[0]["loss_last"] < rep[0]["loss_first"]
    fast_only = Screener().fit(df, pretrain=True, **FAST, **opts)
    assert "pretrain" not in fast_only.metrics_
    assert any("--pretrain has no effect" in w for w in fast_only.warnings_)
