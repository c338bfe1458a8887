"""The compilers on their own: LightGBM -> ONNX exact, network -> ONNX, int8, pruning."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from winnow import Screener
from winnow.models.gbdt import tree_matrix


@pytest.fixture(scope="module")
def original(original_dir):
    return Screener.load(original_dir)


@pytest.fixture(scope="module")
def x(original, resume_table):
    return original.prepare(resume_table)[0]


def _session(model: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def test_trees_compile_exactly_with_categorical_splits_and_missing_values(original, x):
    from winnow.optimise.trees import booster_to_onnx

    booster = original.learners_["lightgbm"].booster_
    text = booster.model_to_string()
    assert "num_cat=" in text and any(
        int(line.split("=")[1]) > 0 for line in text.splitlines() if line.startswith("num_cat=")
    ), "the model should have categorical splits for this test to mean something"
    sess = _session(booster_to_onnx(text))
    m = tree_matrix(x)
    rng = np.random.default_rng(0)
    holes = m.copy()
    holes[rng.random(m.shape) < 0.3] = np.nan  # missing values where training had none
    n_num = x.m.num.shape[1]
    odd = m.copy()
    odd[:, n_num:] = rng.integers(-3, 60, odd[:, n_num:].shape)  # unseen and negative categories
    for case in (m, holes, odd):
        got = sess.run(None, {"X": case.astype(np.float64)})[0].ravel()
        want = booster.predict(case, raw_score=True)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_network_export_matches_torch_and_int8_stays_close(original, x):
    from winnow.optimise.export import export_net
    from winnow.optimise.quantize import quantize_int8

    deep = original.learners_["deep"]
    want = deep.predict_logit(x)
    model = export_net(deep.net_, x.dense, x.m.cat)
    assert not deep.net_.training, "exporting must not switch the member's dropout on"
    np.testing.assert_array_equal(deep.predict_logit(x), want)
    feeds = {"x_num": x.dense.astype(np.float32), "x_cat": x.m.cat.astype(np.int64)}
    logit, emb = _session(model).run(["logit", "embedding"], feeds)
    np.testing.assert_allclose(logit, want, atol=1e-4)
    np.testing.assert_allclose(emb, deep.embed(x), atol=1e-4)
    q = quantize_int8(model)
    assert len(q) < len(model) / 2
    assert q == quantize_int8(model), "quantization must be deterministic"
    zq = _session(q).run(["logit"], feeds)[0]
    assert np.abs(zq - want).mean() < 0.05 * want.std()


def test_pruning_removes_units_and_round_trips(original, x):
    from winnow.optimise.prune import prune_deep

    deep = original.learners_["deep"]
    pruned, detail = prune_deep(deep, x, 0.5)
    assert list(pruned.hidden) == detail["hidden_after"] == [max(1, round(h / 2)) for h in deep.hidden]
    linears = [m for m in pruned.net_.mlp if hasattr(m, "weight")]
    assert [m.out_features for m in linears] == list(pruned.hidden)
    assert pruned.net_.head.in_features == pruned.hidden[-1]
    cfg, files = pruned.state()
    again = type(pruned).from_state(cfg, files)
    np.testing.assert_array_equal(again.predict_logit(x), pruned.predict_logit(x))
    # the mean of the removed units is folded into the next bias: close, not equal
    z, z0 = pruned.predict_logit(x), deep.predict_logit(x)
    assert np.corrcoef(z, z0)[0, 1] > 0.95


def test_pruning_an_ensemble_network(original, x):
    """A TabM-style network (k members): the head keeps one output per member."""
    from winnow.models.base import FitContext
    from winnow.models.deepnet import DeepLearner
    from winnow.optimise.prune import prune_deep

    if "k" not in DeepLearner.__init__.__code__.co_varnames:
        pytest.skip("this DeepLearner has no ensemble variant")
    y = (np.arange(len(x)) % 7 == 0).astype(np.int64)
    train = type(x)(x.m, x.dense, y).take(np.arange(600))
    cards = tuple(int(c) for c in original.prep_.cardinalities())
    net = DeepLearner(k=3, hidden=(32, 16), max_epochs=2).fit(
        train, None, FitContext(seed=0, cat_cardinalities=cards)
    )
    pruned, detail = prune_deep(net, train, 0.5)
    assert detail["hidden_after"] == [16, 8]
    assert pruned.net_.head.out_features == 3
    assert np.isfinite(pruned.predict_logit(train)).all()
