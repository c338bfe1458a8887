"""The deep tabular network: embeddings, MLP, early stopping, learned features."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.helpers import learner_inputs  # noqa: E402
from winnow.models.base import FitContext  # noqa: E402
from winnow.models.deepnet import DeepLearner, PeriodicEmbedding, TabularNet  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return learner_inputs(300, seed=0)


@pytest.fixture(scope="module")
def model(data):
    train, valid, cards = data
    return DeepLearner(hidden=(24, 8), max_epochs=10, patience=2).fit(
        train, valid, FitContext(seed=0, threads=1, cat_cardinalities=cards)
    )


def test_periodic_embedding_shape():
    emb = PeriodicEmbedding(3, 4, frequencies=5)
    out = emb(torch.zeros(7, 3))
    assert out.shape == (7, 3, 4)
    assert (out >= 0).all()  # ReLU


def test_network_shapes():
    net = TabularNet(n_num=3, cards=[5, 2], dim=4, hidden=(16, 6))
    xn, xc = torch.zeros(9, 3), torch.zeros(9, 2, dtype=torch.int64)
    assert net(xn, xc).shape == (9,)
    assert net.embed(xn, xc).shape == (9, 6)


def test_network_without_numeric_features():
    net = TabularNet(n_num=0, cards=[3], dim=4, hidden=(8,))
    assert net(torch.zeros(2, 0), torch.zeros(2, 1, dtype=torch.int64)).shape == (2,)


def test_embed_is_the_last_hidden_layer(model, data):
    _, valid, _ = data
    e = model.embed(valid)
    assert e.shape == (len(valid), 8) and e.dtype == np.float32
    # the logit is the head applied to the embedding
    head = model.net_.head
    z = (torch.from_numpy(e) @ head.weight.T + head.bias).squeeze(-1).detach().numpy()
    np.testing.assert_allclose(z, model.predict_logit(valid), rtol=1e-4, atol=1e-4)


def test_early_stopping_bounds_epochs(model):
    assert 1 <= model.best_rounds_ <= 10


def test_eval_mode_is_deterministic(model, data):
    _, valid, _ = data
    np.testing.assert_array_equal(model.predict_logit(valid), model.predict_logit(valid))


def test_state_is_safetensors(model):
    cfg, files = model.state()
    assert set(files) == {"safetensors"}
    assert cfg["hidden"] == [24, 8] and cfg["cards"] == model.cards_


def test_ensemble_network_averages_member_probabilities():
    torch.manual_seed(0)
    net = TabularNet(n_num=3, cards=[5], dim=4, hidden=(16, 6), k=4).eval()
    xn, xc = torch.randn(9, 3), torch.zeros(9, 1, dtype=torch.int64)
    z = net.member_logits(xn, xc)
    assert z.shape == (9, 4)
    p = torch.sigmoid(z).mean(-1)
    assert torch.allclose(torch.sigmoid(net(xn, xc)), p, atol=1e-5)
    assert net.embed(xn, xc).shape == (9, 6)
    # members differ: their adapters start as different random signs
    assert not torch.allclose(z[:, 0], z[:, 1])
    assert set(net.adapter.detach().unique().tolist()) <= {-1.0, 1.0}


def test_ensemble_learner_fits_round_trips_and_is_seeded(data):
    train, valid, cards = data
    ctx = FitContext(seed=3, threads=1, cat_cardinalities=cards)

    def fit():
        return DeepLearner(hidden=(16, 8), k=4, max_epochs=4, patience=2).fit(train, valid, ctx)

    a, b = fit(), fit()
    np.testing.assert_array_equal(a.predict_logit(valid), b.predict_logit(valid))
    cfg, files = a.state()
    assert cfg["k"] == 4
    again = DeepLearner.from_state(cfg, files)
    np.testing.assert_allclose(again.predict_logit(valid), a.predict_logit(valid), rtol=1e-6)
    assert again.embed(valid).shape == (len(valid), 8)
