"""Near-duplicate records: rows that differ only by small noise in numbers and typos in text.

Two rows are *near-duplicates* when, in every compared column,

* numeric, boolean and datetime values are close: the root mean square of their differences, each
  in standard deviations of its column, is at most ``tolerance`` (missing only matches missing;
  a constant column must match exactly),
* categorical values are equal,
* text values have a character 4-gram Jaccard similarity of at least ``text_similarity``.

Finding them is candidate generation followed by that exact check, so the check decides and the
candidates only need to be complete:

1. *Quantised rows*: every numeric value is cut into cells one standard deviation wide, at a
   random offset per hash table; a row's key hashes its cells, its categories and, when the table
   has text, one MinHash band of each text column (64 permutations in 16 bands of 4). Rows that
   share a key in any of the tables are candidates. A copy with noise of 0.05 standard deviations
   in 16 columns shares a key in one table with probability >= 0.44, in one of 8 tables >= 0.99.
2. *Sorted neighbourhood*: within a key, rows are sorted along a random direction of the scaled
   numbers (a new one per table) and each is compared with its next ``window`` rows, so one
   crowded key costs ``n * window`` checks, not ``n**2``.
3. The verified pairs are joined into clusters (connected components). Exact duplicates are
   near-duplicates too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from winnow.config import Role
from winnow.schema import ColumnSpec

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

NUMERIC_ROLES = (Role.NUMERIC, Role.BOOLEAN, Role.DATETIME)
_PRIME = np.uint64((1 << 61) - 1)
_SHINGLE = 4
_BANDS, _BAND_ROWS = 16, 4


@dataclass
class NearDuplicates:
    """Clusters of near-duplicate rows.

    ``group[i]`` is the position of the first row of row ``i``'s cluster (so the first row of a
    cluster has ``group[i] == i``), or -1 when row ``i`` has no near-duplicate. ``pairs`` is the
    number of verified pairs that formed the clusters.
    """

    group: np.ndarray
    pairs: int
    columns: list[str]

    @property
    def in_cluster(self) -> np.ndarray:
        return self.group >= 0

    @property
    def redundant(self) -> np.ndarray:
        """Rows that repeat an earlier row of their cluster (what de-duplication would drop)."""
        return (self.group >= 0) & (self.group != np.arange(len(self.group)))

    @property
    def clusters(self) -> int:
        return int(((self.group >= 0) & (self.group == np.arange(len(self.group)))).sum())

    def cluster_sizes(self) -> np.ndarray:
        """Size of each row's cluster (1 for a row with no near-duplicate)."""
        sizes = np.ones(len(self.group), dtype=np.int64)
        g = self.group[self.group >= 0]
        if len(g):
            counts = np.bincount(g, minlength=len(self.group))
            sizes[self.group >= 0] = counts[g]
        return sizes


def _mix(h: np.ndarray, v: np.ndarray, salt: int) -> np.ndarray:
    """Fold the int64 column ``v`` into the running uint64 hash ``h`` (splitmix-style)."""
    x = v.astype(np.uint64) + np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (h * np.uint64(0x100000001B3)) ^ x


def shingles(texts: pa.Array | list) -> csr_matrix:
    """Binary character 4-gram sets of each text (lower-cased, hashed to 2**22 columns)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    values = texts.to_pylist() if isinstance(texts, pa.Array | pa.ChunkedArray) else list(texts)
    values = ["" if v is None else str(v) for v in values]
    vec = HashingVectorizer(
        analyzer="char",
        ngram_range=(_SHINGLE, _SHINGLE),
        n_features=1 << 22,
        binary=True,
        norm=None,
        alternate_sign=False,
        lowercase=True,
    )
    x = vec.transform(values).tocsr()
    x.sort_indices()
    return x


def minhash(x: csr_matrix, seed: int, perms: int = _BANDS * _BAND_ROWS) -> np.ndarray:
    """MinHash signatures (n, perms) of the rows of a binary sparse matrix; empty rows get 0."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, int(_PRIME) - 1, size=perms, dtype=np.uint64)
    b = rng.integers(0, int(_PRIME) - 1, size=perms, dtype=np.uint64)
    n = x.shape[0]
    sig = np.zeros((n, perms), dtype=np.uint64)
    nonempty = np.diff(x.indptr) > 0
    if not nonempty.any():
        return sig
    idx = x.indices.astype(np.uint64)
    starts = x.indptr[:-1][nonempty]
    for p in range(perms):
        # a*x+b mod 2**61-1 with wrapping arithmetic: a universal-enough hash for shingle ids
        h = (a[p] * idx + b[p]) % _PRIME
        sig[nonempty, p] = np.minimum.reduceat(h, starts)
    return sig


def _jaccard(x: csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    sizes = np.diff(x.indptr).astype(np.float64)
    inter = np.asarray(x[i].multiply(x[j]).sum(axis=1)).ravel()
    union = sizes[i] + sizes[j] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(union > 0, inter / union, 1.0)  # two empty texts are equal
    return sim


@dataclass
class _Columns:
    num: np.ndarray  # (n, d) float64, NaN = missing
    scale: np.ndarray  # (d,)
    cat: np.ndarray  # (n, c) int64 codes, -1 = missing
    text: list[csr_matrix]
    names: list[str]


def _columns(typed: pa.Table, specs: list[ColumnSpec]) -> _Columns:
    num, cat, text, names = [], [], [], []
    for s in specs:
        if not s.used or s.name not in typed.column_names:
            continue
        col = typed.column(s.name).combine_chunks()
        names.append(s.name)
        if s.role in NUMERIC_ROLES:
            num.append(np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64))
        elif s.role == Role.CATEGORICAL:
            codes = pc.dictionary_encode(col).indices
            cat.append(np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64))
        elif s.role == Role.TEXT:
            text.append(shingles(col))
    n = typed.num_rows
    x = np.column_stack(num) if num else np.zeros((n, 0))
    with np.errstate(invalid="ignore"):
        scale = np.nanstd(x, axis=0) if len(x) else np.ones(x.shape[1])
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 0.0)
    c = np.column_stack(cat) if cat else np.zeros((n, 0), dtype=np.int64)
    return _Columns(x, scale, c, text, names)


def _candidates(cols: _Columns, tables: int, window: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(cols.num)
    rng = np.random.default_rng(seed)
    sigs = [minhash(t, seed + 1 + k) for k, t in enumerate(cols.text)]
    width = np.where(cols.scale > 0, cols.scale, 1.0)
    scaled = np.where(np.isnan(cols.num), 0.0, cols.num / width) if cols.num.shape[1] else np.zeros((n, 0))
    pairs_i, pairs_j = [], []
    for t in range(tables):
        h = np.full(n, np.uint64(0x9E3779B97F4A7C15), dtype=np.uint64)
        offset = rng.random((cols.num.shape[1],))
        for d in range(cols.num.shape[1]):
            v = cols.num[:, d]
            cell = np.floor(v / width[d] + offset[d])
            cell = np.where(np.isnan(v), -(2**62), np.clip(cell, -(2**61), 2**61)).astype(np.int64)
            h = _mix(h, cell, 1000 + d)
        for d in range(cols.cat.shape[1]):
            h = _mix(h, cols.cat[:, d], 5000 + d)
        band = t % _BANDS
        for k, sig in enumerate(sigs):
            part = sig[:, band * _BAND_ROWS : (band + 1) * _BAND_ROWS]
            for r in range(_BAND_ROWS):
                h = _mix(h, part[:, r].astype(np.int64), 9000 + 97 * k + r)
        # within a key, rows sorted along a random direction: near rows end up next to each other
        order_key = scaled @ rng.normal(size=scaled.shape[1]) if scaled.shape[1] else np.zeros(n)
        o = np.lexsort((order_key, h))
        hs = h[o]
        for w in range(1, window + 1):
            same = hs[w:] == hs[:-w]
            if not same.any():
                break
            pairs_i.append(o[:-w][same])
            pairs_j.append(o[w:][same])
    if not pairs_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i = np.concatenate(pairs_i)
    j = np.concatenate(pairs_j)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    # sort + neighbour test (np.unique's hashing was far slower on millions of pairs)
    packed = np.sort(lo.astype(np.int64) * n + hi)
    packed = packed[np.r_[True, packed[1:] != packed[:-1]]]
    return packed // n, packed % n


def _verify(
    cols: _Columns, i: np.ndarray, j: np.ndarray, tolerance: float, text_similarity: float
) -> np.ndarray:
    ok = np.ones(len(i), dtype=bool)
    sq = np.zeros(len(i))
    d_num = cols.num.shape[1]
    for d in range(d_num):
        a, b = cols.num[i, d], cols.num[j, d]
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        ok &= nan_a == nan_b
        if cols.scale[d] > 0:
            z = np.where(nan_a | nan_b, 0.0, (a - b) / cols.scale[d])
            sq += z * z
        else:  # a constant column: equal or not
            ok &= nan_a | (a == b)
    if d_num:
        ok &= np.sqrt(sq / d_num) <= tolerance
    for d in range(cols.cat.shape[1]):
        ok &= cols.cat[i, d] == cols.cat[j, d]
    for t in cols.text:
        if ok.any():
            sel = np.flatnonzero(ok)
            ok[sel] &= _jaccard(t, i[sel], j[sel]) >= text_similarity
    return ok


def near_duplicates(
    typed: pa.Table,
    specs: list[ColumnSpec],
    *,
    tolerance: float = 0.05,
    text_similarity: float = 0.7,
    tables: int | None = None,
    window: int = 10,
    seed: int = 0,
) -> NearDuplicates:
    """Clusters of near-duplicate rows of ``typed`` (a table coerced to ``specs``' roles).

    Only the columns ``specs`` uses are compared (ids and ignored columns are not).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = typed.num_rows
    cols = _columns(typed, specs)
    if n < 2 or not cols.names:
        return NearDuplicates(np.full(n, -1, dtype=np.int64), 0, cols.names)
    tables = tables or (_BANDS if cols.text else 8)
    i, j = _candidates(cols, tables, window, seed)
    keep = _verify(cols, i, j, tolerance, text_similarity) if len(i) else np.zeros(0, bool)
    i, j = i[keep], j[keep]
    group = np.full(n, -1, dtype=np.int64)
    if len(i):
        graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        touched = np.zeros(n, bool)
        touched[i] = touched[j] = True
        # the first row of each component names it
        first = np.full(label.max() + 1, n, dtype=np.int64)
        np.minimum.at(first, label, np.arange(n))
        group[touched] = first[label[touched]]
    return NearDuplicates(group, len(i), cols.names)
