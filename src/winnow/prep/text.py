"""Hashed TF-IDF for free-text columns: word uni- and bigrams hashed into a fixed space.

Hashing needs no vocabulary, so only the inverse document frequencies of the n-grams seen in
training are stored (as arrays in safetensors). Rows are sublinear-tf x idf, L2-normalised;
the linear model learns a weight per hashed n-gram, which on review-like text is the strong
classic baseline. The deep sentence encoders are a separate stage.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import HashingVectorizer

N_FEATURES = 1 << 18
TOKEN_PATTERN = r"(?u)\b\w+\b"
_TOKEN = re.compile(TOKEN_PATTERN)
_ONES = itertools.repeat(1)


def _grams(doc: str) -> list[str]:
    """The vectorizer's analyzer (lower case, word tokens, uni- and bigrams joined by a space),
    without its per-bigram slicing and joining: a long review's n-grams in half the time."""
    tokens = _TOKEN.findall(doc.lower())
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


class TextHasher:
    """Fits idf weights on training documents; transforms documents to sparse rows."""

    def __init__(self, n_features: int = N_FEATURES) -> None:
        self.n_features = n_features
        self.n_docs_ = 0
        self.idf_: np.ndarray | None = None
        self._vec: HashingVectorizer | None = None
        self._hashing: Any = None

    def _vectorizer(self):  # type: ignore[no-untyped-def]
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(
            n_features=self.n_features,
            ngram_range=(1, 2),
            alternate_sign=False,
            norm=None,
            lowercase=True,
            token_pattern=TOKEN_PATTERN,
            dtype=np.float32,
        )

    @staticmethod
    def _docs(col: pa.Array) -> list[str]:
        return [v if v is not None else "" for v in col.to_pylist()]

    def fit(self, col: pa.Array) -> TextHasher:
        counts = self._vectorizer().transform(self._docs(col))
        df = np.bincount(counts.indices, minlength=self.n_features).astype(np.float64)
        self.n_docs_ = counts.shape[0]
        self.idf_ = (np.log((1.0 + self.n_docs_) / (1.0 + df)) + 1.0).astype(np.float32)
        return self

    def transform(self, col: pa.Array) -> sp.csr_matrix:
        """Sublinear tf x idf rows, L2-normalised (float32).

        Computed on the CSR arrays directly: scipy's element-wise product, row sum and diagonal
        product cost ~0.35 ms of fixed overhead, most of scoring one review. The values are
        those of ``diags(1 / norms) @ x`` to the last bit, and each row keeps the entry order
        that product gave (descending columns), so that dot products with the row add up in
        the same order and scores do not move (tests/prep/test_text.py).
        """
        assert self.idf_ is not None
        indptr, indices, counts_of = self._counts(self._docs(col))
        data = ((1.0 + np.log(counts_of)) * self.idf_[indices]).astype(np.float32, copy=False)
        counts = np.diff(indptr)
        n = len(counts)
        sums = np.zeros(n, dtype=np.float32)
        full = np.flatnonzero(counts)
        if full.size:
            sums[full] = np.add.reduceat(data * data, indptr[full])
        norms = np.sqrt(sums)
        norms[norms == 0] = 1.0
        scale = (1.0 / norms).astype(np.float32, copy=False)
        rows = np.repeat(np.arange(n), counts)
        # reverse each row's entries: position p of row r takes entry indptr[r] + indptr[r+1] - 1 - p
        flip = indptr[rows] + indptr[rows + 1] - 1 - np.arange(len(data))
        out = data[flip] * scale[rows]
        return sp.csr_matrix((out, indices[flip], indptr), shape=(n, self.n_features), dtype=np.float32)

    def _counts(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, column, count) of every hashed n-gram of each document, columns ascending
        within a row: ``HashingVectorizer.transform``'s CSR arrays, without its two scipy
        matrices (their construction and checks cost ~0.2 ms a call, half of scoring a review).
        Where scikit-learn's hashing kernel cannot be imported, its public transform is used."""
        if self._vec is None:
            self._vec = self._vectorizer()
            try:
                from sklearn.feature_extraction._hashing_fast import transform as hashing

                self._hashing = hashing
            except ImportError:  # a scikit-learn that moved its kernel: the public path
                self._hashing = None
        if not docs:
            return np.zeros(1, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        if self._hashing is None:
            x = self._vec.transform(docs)
            return x.indptr, x.indices, x.data
        grams = (zip(_grams(d), _ONES, strict=False) for d in docs)  # _ONES never ends
        indices, indptr, _ones = self._hashing(grams, self.n_features, np.float32, False, seed=0)
        # sum duplicate columns within a row, columns sorted (scipy's sum_duplicates); every
        # n-gram was given the value 1 (no alternating sign), so a column's sum is its count
        rows = np.repeat(np.arange(len(docs), dtype=np.int64), np.diff(indptr))
        keys, times = np.unique(rows * self.n_features + indices, return_counts=True)
        counts = times.astype(np.float32)
        new_ptr = np.zeros(len(docs) + 1, dtype=np.int32)
        np.cumsum(np.bincount(keys // self.n_features, minlength=len(docs)), out=new_ptr[1:])
        return new_ptr, (keys % self.n_features).astype(np.int32), counts

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        assert self.idf_ is not None
        return {f"{prefix}.idf": self.idf_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str, n_docs: int) -> TextHasher:
        idf = arrays[f"{prefix}.idf"].astype(np.float32)
        obj = cls(n_features=len(idf))
        obj.idf_, obj.n_docs_ = idf, n_docs
        return obj
