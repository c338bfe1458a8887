"""Vector search over row embeddings: :class:`VectorIndex` (approximate or exact k-nearest
neighbours) and :func:`near_duplicate_groups` (rows that are near copies in embedding space).

The approximate index is an HNSW graph from usearch, chosen on 1M real 128-dim embeddings
against faiss (HNSW, IVF), hnswlib and usearch itself (bench/ann.py, bench/RESULTS.md): at the
same recall@10 it answered the most queries per second and built the fastest. ``exact=True``
is brute force (BLAS matrix products in bounded chunks): the reference, and the better choice
below some tens of thousands of vectors.

Determinism: with ``threads=1`` (the default) building and searching are deterministic: the same
vectors added in the same order give byte-identical saved indexes and identical results.
With more threads the graph depends on thread timing: results may differ slightly between
runs (recall stays the same). Exact search is always deterministic; ties go to the earlier id.

Saved form: a folder with ``manifest.json`` (settings, metadata, sha256 of every file and of
the manifest itself), ``ids.npy`` and either ``index.usearch`` (usearch's own format) or
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

from winnow.artifact import dumps, sha256_bytes
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
    seed : recorded with the index; the graph's own level draws are fixed by usearch, so the
        same vectors in the same order give the same index whatever the seed.
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
        expansion_add: int = 128,
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
        self._graph: Any = None  # usearch.index.Index

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

    def _new_graph(self) -> Any:
        try:
            from usearch.index import Index
        except ImportError as e:  # pragma: no cover - a dependency of winnow
            raise ImportError("the vector index needs usearch: pip install 'usearch>=2.16,<3'") from e
        metric = "l2sq" if self.metric == "l2" else "ip"
        return Index(
            ndim=self.dim,
            metric=metric,
            dtype="f32",
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=self.expansion_search,
        )

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
            if self._graph is None:
                self._graph = self._new_graph()
            # the graph's keys are positions; ``ids`` map them back, so any int64 ids work
            keys = np.arange(self._n, self._n + len(v), dtype=np.uint64)
            self._graph.add(keys, v, threads=self._threads())
        self._ids.append(ids)
        self._n += len(v)

    def ids(self) -> np.ndarray:
        """The id of every vector, in the order added."""
        if len(self._ids) != 1:
            self._ids = [np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)]
        return self._ids[0]

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
        # the search list must be at least k long to return k neighbours
        g.expansion_search = max(self.expansion_search, k)
        m = g.search(q, k, threads=self._threads())
        keys = np.zeros((len(q), k), np.int64)
        dist = np.zeros((len(q), k), np.float32)
        if hasattr(m, "counts"):  # several queries: (q, k) arrays and a count per query
            counts = np.asarray(m.counts, np.int64).reshape(len(q))
            keys[:] = np.asarray(m.keys).reshape(len(q), -1)[:, :k]
            dist[:] = np.asarray(m.distances).reshape(len(q), -1)[:, :k]
        else:  # one query: only the neighbours found
            found_keys = np.asarray(m.keys).ravel()[:k]
            counts = np.array([found_keys.size])
            keys[0, : found_keys.size] = found_keys
            dist[0, : found_keys.size] = np.asarray(m.distances).ravel()[:k]
        found = np.arange(k)[None, :] < counts[:, None]
        s = -dist if self.metric == "l2" else 1.0 - dist
        # graph order can tie-break differently from exact search: sort by (similarity, id)
        pos = np.where(found, keys, -1)
        s = np.where(found, s, -np.inf).astype(np.float32)
        order = np.lexsort((np.where(found, pos, np.iinfo(np.int64).max), -s), axis=1)
        return np.take_along_axis(pos, order, 1), np.take_along_axis(s, order, 1)

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
        files = {"ids.npy": _npy(self.ids())}
        if self.exact:
            if len(self._vectors) > 1:
                self._vectors = [np.concatenate(self._vectors)]
            base = self._vectors[0] if self._vectors else np.zeros((0, self.dim), np.float32)
            files["vectors.npy"] = _npy(base)
        elif self._graph is not None:
            files["index.usearch"] = bytes(self._graph.save())
        manifest: dict[str, Any] = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "backend": "numpy" if self.exact else f"usearch {_usearch_version()}",
            "count": self._n,
            "settings": self._settings(),
            "meta": self.meta,
            "files": {rel: sha256_bytes(data) for rel, data in files.items()},
        }
        manifest["checksum"] = sha256_bytes(_canonical(manifest))
        _write_folder(Path(path), {**files, "manifest.json": dumps(manifest, indent=2).encode()})

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
        if man.get("checksum") != sha256_bytes(_canonical(man)):
            raise ArtifactError(
                path,
                "manifest.json was modified after it was written (checksum mismatch)",
                "Rebuild the index.",
            )
        blobs: dict[str, bytes] = {}
        for rel, digest in man["files"].items():
            fpath = path / rel
            if not fpath.is_file():
                raise ArtifactError(
                    path, f"file {rel!r} listed in the manifest is missing", "Rebuild the index."
                )
            data = fpath.read_bytes()
            if sha256_bytes(data) != digest:
                raise ArtifactError(
                    path,
                    f"file {rel!r} does not match its sha256 (corrupted or tampered)",
                    "Rebuild the index.",
                )
            blobs[rel] = data
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
            ids = np.load(io.BytesIO(blobs["ids.npy"]), allow_pickle=False).astype(np.int64)
            obj._ids, obj._n = [ids], int(ids.size)
            if obj.exact:
                obj._vectors = [np.load(io.BytesIO(blobs["vectors.npy"]), allow_pickle=False)]
            elif "index.usearch" in blobs:
                from usearch.index import Index

                graph = Index.restore(blobs["index.usearch"])
                if graph is None or len(graph) != obj._n:
                    raise ValueError("the graph file does not hold the vectors the ids name")
                graph.expansion_search = obj.expansion_search
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


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _usearch_version() -> str:
    import usearch

    return str(getattr(usearch, "__version__", "?"))


def _write_folder(path: Path, files: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for rel, data in files.items():
            (tmp / rel).write_bytes(data)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------- near duplicates
def near_duplicate_groups(
    embeddings: np.ndarray,
    threshold: float = 0.98,
    *,
    k: int = 10,
    exact: bool | None = None,
    seed: int = 0,
    threads: int | None = None,
    batch_rows: int = 65_536,
) -> np.ndarray:
    """A group id per row: rows whose cosine similarity is at least ``threshold`` are linked,
    and linked rows (transitively) share a group.

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
    if not -1.0 <= threshold <= 1.0:
        raise ConfigError("threshold", threshold, "a cosine similarity between -1 and 1")
    n = len(x)
    parent = np.arange(n, dtype=np.int64)
    if n < 2:
        return parent
    vi = VectorIndex(x.shape[1], exact=n < 50_000 if exact is None else exact, seed=seed, threads=threads)
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
