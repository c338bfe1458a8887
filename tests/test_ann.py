"""VectorIndex: recall against exact search, ids, k beyond the size, save/load with checksums,
determinism; near_duplicate_groups on injected near copies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from winnow.errors import ArtifactError, ConfigError, DataError
from winnow.similarity.ann import VectorIndex, near_duplicate_groups


def clustered(n: int = 6000, dim: int = 24, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Points around random centres: structured like real embeddings, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    x = c[rng.integers(0, centres, n)] + rng.normal(0, 0.35, (n, dim))
    return x.astype(np.float32)


def brute_force(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    s = q.astype(np.float64) @ b.T.astype(np.float64)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x = clustered()
    return x[:5800], x[5800:]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def test_exact_matches_brute_force(data):
    base, queries = data
    vi = VectorIndex(base.shape[1], exact=True)
    vi.add(base)
    ids, sims = vi.search(queries, 10)
    assert recall(ids, brute_force(base, queries, 10)) > 0.999
    assert ids.dtype == np.int64 and sims.dtype == np.float32 and ids.shape == (200, 10)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # best first


def test_approximate_recall_against_exact(data):
    base, queries = data
    exact, ann = VectorIndex(base.shape[1], exact=True), VectorIndex(base.shape[1], seed=0)
    exact.add(base)
    ann.add(base)
    truth = exact.search(queries, 10)[0]
    assert recall(ann.search(queries, 10)[0], truth) >= 0.95


def test_ids_map_back_and_default_to_row_numbers(data):
    base, _ = data
    vi = VectorIndex(base.shape[1])
    vi.add(base[:100])
    vi.add(base[100:200])  # running row numbers continue
    assert vi.search(base[150], 1)[0][0, 0] == 150
    custom = VectorIndex(base.shape[1], exact=True)
    custom.add(base[:50], ids=np.arange(50) * 7 + 1_000_000_000_000)
    ids, sims = custom.search(base[[3, 10]], 1)
    assert ids[:, 0].tolist() == [3 * 7 + 1_000_000_000_000, 10 * 7 + 1_000_000_000_000]
    assert np.allclose(sims[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("exact", [True, False])
def test_k_larger_than_the_index(exact):
    x = clustered(30, 8)
    vi = VectorIndex(8, exact=exact)
    vi.add(x)
    ids, sims = vi.search(x[:2], 50)
    assert ids.shape == (2, 50)
    assert sorted(ids[0, :30].tolist()) == list(range(30))
    assert np.all(ids[:, 30:] == -1) and np.all(np.isneginf(sims[:, 30:]))
    empty = VectorIndex(8, exact=exact)
    assert np.all(empty.search(x[:1], 3)[0] == -1)


def test_exact_ties_go_to_the_earlier_id():
    v = np.ones((5, 4), np.float32)
    vi = VectorIndex(4, exact=True)
    vi.add(v, ids=np.array([50, 40, 30, 20, 10]))
    assert vi.search(v[:1], 3)[0][0].tolist() == [50, 40, 30]  # added order = position order


def test_bad_inputs_are_named():
    vi = VectorIndex(4)
    with pytest.raises(DataError, match="shape"):
        vi.add(np.zeros((3, 5), np.float32))
    with pytest.raises(DataError, match="record 1"):
        vi.add(np.array([[1, 0, 0, 0], [np.nan, 0, 0, 0]], np.float32))
    with pytest.raises(DataError, match=">= 0"):
        vi.add(np.eye(4, dtype=np.float32), ids=np.array([0, 1, -1, 3]))
    with pytest.raises(ConfigError, match="metric"):
        VectorIndex(4, metric="hamming")


@pytest.mark.parametrize("exact", [True, False])
def test_save_load_round_trip(data, tmp_path, exact):
    base, queries = data
    vi = VectorIndex(base.shape[1], exact=exact)
    vi.add(base, ids=np.arange(len(base)) + 10)
    vi.meta = {"built_from": "test"}
    vi.save(tmp_path / "ix")
    back = VectorIndex.load(tmp_path / "ix")
    assert len(back) == len(vi) and back.meta == {"built_from": "test"} and back.exact == exact
    a, b = vi.search(queries, 10), back.search(queries, 10)
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])


@pytest.mark.parametrize("target", ["index.hnswlib", "ids.npy", "manifest.json"])
def test_tampered_index_is_refused(data, tmp_path, target):
    base, _ = data
    vi = VectorIndex(base.shape[1])
    vi.add(base[:500])
    vi.save(tmp_path / "ix")
    path = tmp_path / "ix" / target
    if target == "manifest.json":
        man = json.loads(path.read_text())
        man["count"] = 1
        path.write_text(json.dumps(man))
    else:
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 0xFF
        path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"sha256|checksum"):
        VectorIndex.load(tmp_path / "ix")


def test_missing_index_folder_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match=r"manifest\.json"):
        VectorIndex.load(tmp_path / "nothing")


def test_same_vectors_same_index_and_results(data, tmp_path):
    base, queries = data
    runs = []
    for i in range(2):
        vi = VectorIndex(base.shape[1], seed=3)
        vi.add(base)
        vi.save(tmp_path / f"ix{i}")
        runs.append(vi.search(queries, 10))
    assert (tmp_path / "ix0" / "index.hnswlib").read_bytes() == (
        tmp_path / "ix1" / "index.hnswlib"
    ).read_bytes()
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("exact", [True, False])
def test_near_duplicate_groups_find_injected_copies(exact):
    rng = np.random.default_rng(7)
    base = clustered(3000, 32, centres=300, seed=1)
    sources = np.array([5, 5, 5, 900, 2999])  # row 5 copied three times: one group of four
    copies = base[sources] * 1.01 + rng.normal(0, 0.01, (len(sources), 32)).astype(np.float32)
    x = np.vstack([base, copies])
    groups = near_duplicate_groups(x, threshold=0.995, exact=exact)
    assert groups.dtype == np.int64 and groups.shape == (len(x),)
    for j, src in enumerate(sources):
        assert groups[3000 + j] == groups[src] == src  # group id = first row of the group
    lonely = np.setdiff1d(np.arange(3000), sources)
    assert np.array_equal(groups[lonely], lonely)  # nothing else is joined
    assert np.array_equal(groups, near_duplicate_groups(x, threshold=0.995, exact=exact))


def test_near_duplicate_groups_chain_beyond_k():
    # 12 exact copies with k=3: each row links to a few, union-find joins them all
    x = np.vstack([np.tile([[1.0, 2.0, 3.0]], (12, 1)), np.eye(3)]).astype(np.float32)
    groups = near_duplicate_groups(x, threshold=0.999, k=3)
    assert groups[:12].tolist() == [0] * 12 and groups[12:].tolist() == [12, 13, 14]


def test_approximate_search_copes_with_many_identical_vectors():
    x = np.vstack([np.tile([[1.0, 0.0, 0.5, 0.2]], (600, 1)), np.eye(4)]).astype(np.float32)
    vi = VectorIndex(4)
    vi.add(x)
    ids, sims = vi.search(x[:1], 500)
    assert (ids[0] >= 0).all() and len(set(ids[0].tolist())) == 500
    assert np.allclose(sims[0], 1.0, atol=1e-5)
    groups = near_duplicate_groups(x, threshold=0.999, k=5, exact=False)
    assert (groups[:600] == 0).all() and groups[600:].tolist() == [600, 601, 602, 603]


@pytest.mark.parametrize("exact", [True, False])
def test_near_duplicate_groups_by_distance(exact):
    # points on a line 1 apart, a copy 0.04 from row 3 and one 0.06 from row 7: radius 0.05
    x = np.zeros((12, 4), np.float32)
    x[:10, 0] = np.arange(10)
    x[10], x[11] = x[3] + [0, 0.04, 0, 0], x[7] + [0, 0, 0.06, 0]
    groups = near_duplicate_groups(x, max_distance=0.05, exact=exact)
    assert groups[10] == 3 and groups[11] == 11 and np.array_equal(groups[:10], np.arange(10))
    # scale matters for distance, not for cosine: rows 1..9 all point the same way
    assert (near_duplicate_groups(x[:10], threshold=0.999, exact=exact)[1:] == 1).all()
    with pytest.raises(ConfigError):
        near_duplicate_groups(x, max_distance=-1.0)
