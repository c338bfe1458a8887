"""Vector search over row embeddings: :class:`VectorIndex` (approximate or exact k-nearest
neighbours) and :func:`near_duplicate_groups` (rows that are near copies in embedding space).

The approximate index is an HNSW graph from hnswlib, chosen on 1M real 128-dim embeddings
against faiss (HNSW, IVF), hnswlib and usearch (bench/ann.py, bench/RESULTS.md): with the same
graph settings it built in about half the time of the others and answered 1.7-2.3x more queries
per second at the same recall@10, in the same memory. ``exact=True`` is brute force (BLAS matrix
products in bounded chunks): the reference, and the better choice below some tens of thousands
of vectors.

Determinism: with ``threads=1`` (the default) building and searching are deterministic: the same
vectors added in the same order with the same ``seed`` (it draws the graph's levels) give
byte-identical saved indexes and identical results. With more threads the graph depends on
thread timing: results may differ slightly between runs (recall stays the same). Exact search
is always deterministic; ties go to the earlier id.

Saved form: a folder with ``manifest.json`` (settings, metadata, sha256 of every file and of
the manifest itself), ``ids.npy`` and either ``index.hnswlib`` (hnswlib's own format) or
``vectors.npy``; :meth:`VectorIndex.load` verifies every checksum before building anything.

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(1000, 16)).astype(np.float32)
>>> vi = VectorIndex(16)
>>> vi.add(x, ids=np.arange(1000, 2000))
>>> ids, sims = vi.search(x[:2], k=3)
>>> ids[:, 0].tolist(), bool(np.allclose(sims[:, 0], 1.0, atol=1e-5))
([1000, 1001], True)
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from winnow.artifact import dumps, replace_folder, sealed, sha256_file, verify
from winnow.errors import ArtifactError, ConfigError, DataError

INDEX_FORMAT = "winnow-vector-index"
INDEX_FORMAT_VERSION = 1
#: rows per block in exact search: bounds the (queries x rows) similarity block in memory
EXACT_BLOCK = 65_536


class VectorIndex:
    """k-nearest-neighbour search by cosine similarity (or inner product, or L2 distance).

    Parameters
    ----------
    dim : vector width.
    metric : ``cosine`` (vectors are L2-normalised on the way in), ``ip`` (inner product) or
        ``l2`` (similarity = minus the squared Euclidean distance).
    exact : brute force instead of the HNSW graph.
    seed : seeds the graph's random level draws.
    threads : threads for adding and searching; None = 1 (deterministic; see the module
        docstring), 0 = every core.
    connectivity, expansion_add, expansion_search : HNSW graph degree and the candidate list
        sizes when adding and searching (higher: better recall, slower).

    ``meta`` is a JSON-able dict stored with the index (what it was built from).
    """

    METRICS: ClassVar[tuple[str, ...]] = ("cosine", "ip", "l2")

    def __init__(
        self,
        dim: int,
        *,
        metric: str = "cosine",
        exact: bool = False,
        seed: int = 0,
        threads: int | None = None,
        connectivity: int = 16,
        expansion_add: int = 100,
        expansion_search: int = 64,
    ) -> None:
        if metric not in self.METRICS:
            raise ConfigError("metric", metric, "one of " + ", ".join(self.METRICS))
        if int(dim) < 1:
            raise ConfigError("dim", dim, "an integer >= 1")
        self.dim, self.metric, self.exact, self.seed = int(dim), metric, bool(exact), int(seed)
        self.threads = threads
        self.connectivity, self.expansion_add = int(connectivity), int(expansion_add)
        self.expansion_search = int(expansion_search)
        self.meta: dict[str, Any] = {}
        self._ids: list[np.ndarray] = []
        self._n = 0
        self._vectors: list[np.ndarray] = []  # exact
        self._graph: Any = None  # hnswlib.Index

    # ------------------------------------------------------------------ building
    def __len__(self) -> int:
        return self._n

    def _threads(self) -> int:
        return 1 if self.threads is None else (self.threads or os.cpu_count() or 1)

    def _prepare(self, vectors: np.ndarray, what: str) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise DataError(
                f"{what}: expected vectors of shape (n, {self.dim}), received {tuple(v.shape)}",
                hint="Pass embeddings of the width the index was created with.",
            )
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            raise DataError(
                f"{what}: vector is not finite (NaN or inf)",
                record=int(np.flatnonzero(bad)[0]),
                hint="Drop or repair rows with missing embeddings first.",
            )
        if self.metric == "cosine":
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            v = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
        return np.ascontiguousarray(v)

    def _space(self) -> str:
        # cosine: the vectors are normalised here, so inner product is the cosine
        return "l2" if self.metric == "l2" else "ip"

    def _new_graph(self, capacity: int) -> Any:
        hnswlib = _hnswlib()
        g = hnswlib.Index(space=self._space(), dim=self.dim)
        g.init_index(
            max_elements=capacity,
            M=self.connectivity,
            ef_construction=self.expansion_add,
            random_seed=self.seed,
        )
        g.set_num_threads(self._threads())
        return g

    def add(self, vectors: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Add vectors; ``ids`` (int64, >= 0) default to running row numbers 0, 1, 2, ..."""
        v = self._prepare(vectors, "add")
        if ids is None:
            ids = np.arange(self._n, self._n + len(v), dtype=np.int64)
        ids = np.asarray(ids)
        if ids.shape != (len(v),) or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise DataError(
                f"add: expected {len(v)} integer ids, received an array of shape {ids.shape} "
                f"and type {ids.dtype}",
                hint="Give one int64 id per vector.",
            )
        ids = ids.astype(np.int64)
        if ids.size and int(ids.min()) < 0:
            raise DataError(
                "add: ids must be >= 0 (-1 marks a missing neighbour)",
                record=int(np.flatnonzero(ids < 0)[0]),
                hint="Use row numbers or other non-negative ids.",
            )
        if not len(v):
            return
        if self.exact:
            self._vectors.append(v)
        else:
            need = self._n + len(v)
            if self._graph is None:
                self._graph = self._new_graph(max(need, 1024))
            elif need > self._graph.get_max_elements():
                self._graph.resize_index(max(need, 2 * self._graph.get_max_elements()))
            # the graph's labels are positions; ``ids`` map them back, so any int64 ids work
            labels = np.arange(self._n, need, dtype=np.uint64)
            self._graph.add_items(v, labels, num_threads=self._threads())
        self._ids.append(ids)
        self._n += len(v)

    def ids(self) -> np.ndarray:
        """The id of every vector, in the order added."""
        if len(self._ids) != 1:
            self._ids = [np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)]
        return self._ids[0]

    def vectors(self) -> np.ndarray:
        """The stored vectors of an exact index (normalised for ``cosine``), in the order added."""
        if not self.exact:
            raise ConfigError("exact", False, "an exact index (an HNSW graph keeps no plain copy)")
        if len(self._vectors) != 1:
            self._vectors = [
                np.concatenate(self._vectors) if self._vectors else np.zeros((0, self.dim), np.float32)
            ]
        return self._vectors[0]

    # ------------------------------------------------------------------ searching
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar vectors to each query: (ids int64 (q, k), similarities
        float32 (q, k)), best first; id -1 (similarity -inf) where the index holds fewer."""
        if int(k) < 1:
            raise ConfigError("k", k, "an integer >= 1")
        k = int(k)
        q = self._prepare(queries, "search")
        ids = np.full((len(q), k), -1, np.int64)
        sims = np.full((len(q), k), -np.inf, np.float32)
        if not self._n or not len(q):
            return ids, sims
        kk = min(k, self._n)
        if self.exact:
            # queries in chunks too: the similarity block stays at most 2**24 floats (64 MiB)
            step = max(1, 2**24 // EXACT_BLOCK)
            parts = [self._exact(q[i : i + step], kk) for i in range(0, len(q), step)]
            pos, s = np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts])
        else:
            pos, s = self._approx(q, kk)
        all_ids = self.ids()
        found = pos >= 0
        ids[:, :kk] = np.where(found, all_ids[np.maximum(pos, 0)], -1)
        sims[:, :kk] = np.where(found, s, -np.inf)
        return ids, sims

    def _similarity(self, q: np.ndarray, block: np.ndarray) -> np.ndarray:
        s = q @ block.T
        if self.metric == "l2":
            s = 2 * s - (q * q).sum(1)[:, None] - (block * block).sum(1)[None, :]
        return s

    def _exact(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self._vectors) > 1:
            self._vectors = [np.concatenate(self._vectors)]
        base = self._vectors[0]
        best_pos = np.zeros((len(q), 0), np.int64)
        best_sim = np.zeros((len(q), 0), np.float32)
        for start in range(0, len(base), EXACT_BLOCK):
            s = self._similarity(q, base[start : start + EXACT_BLOCK])
            pos = np.broadcast_to(np.arange(start, start + s.shape[1]), s.shape)
            pos = np.concatenate([best_pos, pos], axis=1)
            s = np.concatenate([best_sim, s.astype(np.float32)], axis=1)
            if s.shape[1] > k:
                # keep k per query; the final sort breaks ties by position
                part = np.argpartition(-s, k - 1, axis=1)[:, :k]
                cut = np.take_along_axis(s, part, 1).min(axis=1, keepdims=True)
                keep = s >= cut
                if not (keep.sum(1) > k).any():
                    best_pos, best_sim = np.take_along_axis(pos, part, 1), np.take_along_axis(s, part, 1)
                    continue
                # a tie at the k-th place: every tied row stays a candidate, so the earlier wins
                width = int(keep.sum(1).max())
                order = np.argsort(~keep, axis=1, kind="stable")[:, :width]
                pos, s = np.take_along_axis(pos, order, 1), np.take_along_axis(s, order, 1)
                s = np.where(np.take_along_axis(keep, order, 1), s, -np.inf)
            best_pos, best_sim = pos, s
        order = np.lexsort((best_pos, -best_sim), axis=1)[:, :k] if best_pos.size else best_pos
        pos = np.take_along_axis(best_pos, order, 1)
        s = np.take_along_axis(best_sim, order, 1)
        return np.where(np.isfinite(s), pos, -1), s

    def _approx(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        g = self._graph
        # the candidate list must be at least k long to return k neighbours
        g.set_ef(max(self.expansion_search, k))
        try:
            labels, dist = g.knn_query(q, k=k, num_threads=self._threads())
        except RuntimeError:
            # hnswlib found fewer than k for some query (many identical vectors can do this):
            # widen the search to every vector, and failing that compare with all of them
            g.set_ef(self._n)
            try:
                labels, dist = g.knn_query(q, k=k, num_threads=self._threads())
            except RuntimeError:
                base = np.asarray(g.get_items(np.arange(self._n)), dtype=np.float32)
                exact = VectorIndex(
                    self.dim, metric="ip" if self.metric == "cosine" else self.metric, exact=True
                )
                exact.add(base)
                return exact._exact(q, k)
        pos = np.asarray(labels, dtype=np.int64)
        dist = np.asarray(dist, dtype=np.float32)
        s = -dist if self.metric == "l2" else 1.0 - dist
        # graph order can tie-break differently from exact search: sort by (similarity, id)
        order = np.lexsort((pos, -s), axis=1)
        return np.take_along_axis(pos, order, 1), np.take_along_axis(s, order, 1).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def _settings(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "metric": self.metric,
            "exact": self.exact,
            "seed": self.seed,
            "connectivity": self.connectivity,
            "expansion_add": self.expansion_add,
            "expansion_search": self.expansion_search,
        }

    def save(self, path: str | Path) -> None:
        """Write the index folder atomically (replacing one already there)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            (tmp / "ids.npy").write_bytes(_npy(self.ids()))
            if self.exact:
                if len(self._vectors) > 1:
                    self._vectors = [np.concatenate(self._vectors)]
                base = self._vectors[0] if self._vectors else np.zeros((0, self.dim), np.float32)
                (tmp / "vectors.npy").write_bytes(_npy(base))
            elif self._graph is not None:
                self._graph.save_index(str(tmp / "index.hnswlib"))
            manifest: dict[str, Any] = {
                "format": INDEX_FORMAT,
                "format_version": INDEX_FORMAT_VERSION,
                "backend": "numpy" if self.exact else f"hnswlib {_hnswlib_version()}",
                "count": self._n,
                "settings": self._settings(),
                "meta": self.meta,
                "files": {f.name: sha256_file(f) for f in sorted(tmp.iterdir())},
            }
            (tmp / "manifest.json").write_text(dumps(sealed(manifest), indent=2))
            replace_folder(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> VectorIndex:
        """Read and verify an index folder written by :meth:`save`; raises
        :class:`~winnow.errors.ArtifactError` on a missing, modified or unknown file."""
        path = Path(path)
        mpath = path / "manifest.json"
        if not mpath.is_file():
            raise ArtifactError(
                path,
                "is not a vector index folder (no manifest.json)",
                "Pass the folder an index was saved to.",
            )
        try:
            man = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArtifactError(path, f"manifest.json is not valid JSON ({e})") from e
        if not isinstance(man, dict) or man.get("format") != INDEX_FORMAT:
            raise ArtifactError(path, f"manifest.json is not a {INDEX_FORMAT} manifest")
        if man.get("format_version") != INDEX_FORMAT_VERSION:
            raise ArtifactError(
                path,
                f"vector index format {man.get('format_version')} is not one this winnow reads "
                f"({INDEX_FORMAT_VERSION})",
                "Rebuild the index.",
            )
        verify(path, man, "Rebuild the index.", keep=False)
        try:
            st = man["settings"]
            obj = cls(
                st["dim"],
                metric=st["metric"],
                exact=st["exact"],
                seed=st["seed"],
                connectivity=st["connectivity"],
                expansion_add=st["expansion_add"],
                expansion_search=st["expansion_search"],
            )
            obj.meta = dict(man.get("meta", {}))
            ids = np.load(path / "ids.npy", allow_pickle=False).astype(np.int64)
            obj._ids, obj._n = [ids], int(ids.size)
            if obj.exact:
                obj._vectors = [np.load(path / "vectors.npy", allow_pickle=False)]
            elif obj._n:
                # verified above; hnswlib reads its own file format (no code runs from it)
                graph = _hnswlib().Index(space=obj._space(), dim=obj.dim)
                graph.load_index(str(path / "index.hnswlib"), max_elements=obj._n)
                if graph.get_current_count() != obj._n:
                    raise ValueError("the graph file does not hold the vectors the ids name")
                graph.set_num_threads(obj._threads())
                obj._graph = graph
        except (KeyError, TypeError, ValueError) as e:
            raise ArtifactError(
                path, f"the index content is incomplete or invalid ({e!r})", "Rebuild the index."
            ) from e
        return obj

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "hnsw"
        return f"VectorIndex({self._n:,} x {self.dim}, {self.metric}, {kind})"


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _hnswlib() -> Any:
    from winnow.extras import require

    return require("hnswlib")


def _hnswlib_version() -> str:
    from importlib.metadata import version

    return version("hnswlib")


# ---------------------------------------------------------------------------- near duplicates
def near_duplicate_groups(
    embeddings: np.ndarray,
    threshold: float = 0.98,
    *,
    max_distance: float | None = None,
    k: int = 10,
    exact: bool | None = None,
    seed: int = 0,
    threads: int | None = None,
    batch_rows: int = 65_536,
) -> np.ndarray:
    """A group id per row: rows whose cosine similarity is at least ``threshold`` are linked,
    and linked rows (transitively) share a group. With ``max_distance``, rows at most that
    Euclidean distance apart are linked instead (``threshold`` is then not used).

    Each row's ``k`` nearest neighbours are looked up in a :class:`VectorIndex` (exact below
    50,000 rows unless ``exact`` says otherwise) in bounded query batches, pairs at or above
    ``threshold`` are joined with union-find. A group's id is its smallest row number, so a
    row that is a near copy of nothing has its own row number, and the result does not depend
    on the order neighbours are found in. A group larger than ``k + 1`` is still found whole
    when its members chain (each has a near neighbour in the group).

    Returns
    -------
    numpy.ndarray
        int64 (n,), ``groups[i] == i`` for the first row of each group.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"near_duplicate_groups: expected a 2-d array, received shape {x.shape}")
    if max_distance is not None:
        if not max_distance >= 0:
            raise ConfigError("max_distance", max_distance, "a distance >= 0")
        metric, threshold = "l2", -(float(max_distance) ** 2)  # l2 similarity = -squared distance
    elif not -1.0 <= threshold <= 1.0:
        raise ConfigError("threshold", threshold, "a cosine similarity between -1 and 1")
    else:
        metric = "cosine"
    n = len(x)
    parent = np.arange(n, dtype=np.int64)
    if n < 2:
        return parent
    exact = n < 50_000 if exact is None else exact
    vi = VectorIndex(x.shape[1], metric=metric, exact=exact, seed=seed, threads=threads)
    vi.add(x)
    kk = min(k + 1, n)  # + itself

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = int(parent[root])
        while parent[i] != root:  # path compression
            parent[i], i = root, int(parent[i])
        return root

    for start in range(0, n, batch_rows):
        ids, sims = vi.search(x[start : start + batch_rows], kk)
        rows = np.repeat(np.arange(start, start + len(ids)), kk)
        hit = (sims.ravel() >= threshold) & (ids.ravel() >= 0) & (ids.ravel() != rows)
        for a, b in zip(rows[hit].tolist(), ids.ravel()[hit].tolist(), strict=True):
            ra, rb = find(a), find(b)
            if ra != rb:
                # the smaller row number is the root: group id = first row of the group
                parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)], dtype=np.int64)
