"""Hashed TF-IDF for free-text columns: word uni- and bigrams hashed into a fixed space.

Hashing needs no vocabulary, so only the inverse document frequencies of the n-grams seen in
training are stored (as arrays in safetensors). Rows are sublinear-tf x idf, L2-normalised;
the linear model learns a weight per hashed n-gram, which on review-like text is the strong
classic baseline. The deep sentence encoders are a separate stage.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

N_FEATURES = 1 << 18


class TextHasher:
    """Fits idf weights on training documents; transforms documents to sparse rows."""

    def __init__(self, n_features: int = N_FEATURES) -> None:
        self.n_features = n_features
        self.n_docs_ = 0
        self.idf_: np.ndarray | None = None

    def _vectorizer(self):  # type: ignore[no-untyped-def]
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(
            n_features=self.n_features,
            ngram_range=(1, 2),
            alternate_sign=False,
            norm=None,
            lowercase=True,
            token_pattern=r"(?u)\b\w+\b",
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
        assert self.idf_ is not None
        x = self._vectorizer().transform(self._docs(col)).tocsr()
        x.data = (1.0 + np.log(x.data)) * self.idf_[x.indices]
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ x, dtype=np.float32)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        assert self.idf_ is not None
        return {f"{prefix}.idf": self.idf_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str, n_docs: int) -> TextHasher:
        idf = arrays[f"{prefix}.idf"].astype(np.float32)
        obj = cls(n_features=len(idf))
        obj.idf_, obj.n_docs_ = idf, n_docs
        return obj
