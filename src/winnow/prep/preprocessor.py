"""The fitted transform from typed columns to model matrices, replayed exactly at screening.

Each used column becomes one or more features, each remembering its source column so that
reasons can be named by the column the user knows:

* numeric, boolean: the value (missing stays NaN for the trees; imputed + indicator for the nets);
* datetime: year, month, day, weekday, hour (when times vary), epoch days;
* text: length in characters and words; for the linear model also hashed TF-IDF word n-grams
  and/or a pretrained sentence embedding (``text``: tfidf, encoder or both), in ``Matrices.text``;
* categorical: an integer code; 0 = missing, 1 = rare or unseen, 2.. = frequent categories;
* image: the embedding of a CNN fitted here (trained on the labelled training images, or a
  user's pretrained ResNet-18 used frozen; see :mod:`winnow.prep.image`), one numeric feature
  per embedding dimension (``<column>.image<j>``), NaN where the image is missing.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from winnow.config import Role
from winnow.errors import NotFittedError
from winnow.prep.encoder import DIM as ENCODER_DIM
from winnow.prep.encoder import MODEL as ENCODER_MODEL
from winnow.prep.encoder import TextEncoder
from winnow.prep.text import TextHasher
from winnow.schema import SMALL_BATCH, Coerced, ColumnSpec

if TYPE_CHECKING:
    from winnow.prep.finetune import FineTuner
    from winnow.prep.image import ImageEmbedder

MISSING_CODE = 0
RARE_CODE = 1
#: how text columns reach the models: hashed TF-IDF, sentence embeddings, or both
TEXT_MODES = ("tfidf", "encoder", "both")
_DAY = 86_400.0


@dataclass
class FeatureSpec:
    """One model input derived from a source column."""

    name: str
    source: str
    kind: str  # "num" or "cat"
    # numeric scaling for the dense view
    median: float = 0.0
    lo: float = 0.0
    hi: float = 0.0
    log: bool = False
    mean: float = 0.0
    std: float = 1.0
    has_missing: bool = False
    # categorical vocabulary (most frequent first)
    vocab: list[str] | None = None


@dataclass
class _Plan:
    """Per-feature arrays and lookups derived from a fitted feature list."""

    features: list[FeatureSpec]
    num: list[FeatureSpec]
    cat: list[FeatureSpec]
    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    log: np.ndarray
    missing: np.ndarray
    value_sets: list[pa.Array]
    codes: list[dict[str, int]]

    @classmethod
    def build(cls, features: list[FeatureSpec]) -> _Plan:
        num = [f for f in features if f.kind == "num"]
        cat = [f for f in features if f.kind == "cat"]

        def arr(attr: str) -> np.ndarray:
            return np.array([getattr(f, attr) for f in num], dtype=np.float64)

        return cls(
            features=features,
            num=num,
            cat=cat,
            lo=arr("lo"),
            hi=arr("hi"),
            mean=arr("mean"),
            std=arr("std"),
            log=np.array([f.log for f in num], dtype=bool),
            missing=np.array([j for j, f in enumerate(num) if f.has_missing], dtype=np.int64),
            value_sets=[pa.array(f.vocab or [], pa.string()) for f in cat],
            codes=[{v: i + 2 for i, v in enumerate(f.vocab or [])} for f in cat],
        )


@dataclass
class Matrices:
    """Model inputs for a batch: raw numeric features (NaN = missing), categorical codes and,
    when there are text columns, their hashed TF-IDF rows side by side."""

    num: np.ndarray  # float32 (n, p)
    cat: np.ndarray  # int64 (n, q)
    text: sp.csr_matrix | None = None  # float32 (n, text columns x hash size)

    def __len__(self) -> int:
        return int(self.num.shape[0])

    def take(self, idx: np.ndarray) -> Matrices:
        return Matrices(self.num[idx], self.cat[idx], None if self.text is None else self.text[idx])


def _datetime_parts(secs: np.ndarray, with_hour: bool) -> dict[str, np.ndarray]:
    ok = np.isfinite(secs)
    s = np.where(ok, secs, 0.0)
    days = np.floor(s / _DAY).astype("int64")
    d = days.astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    parts = {
        "year": d.astype("datetime64[Y]").astype(np.int64) + 1970,
        "month": months.astype(np.int64) % 12 + 1,
        "day": (d - months).astype(np.int64) + 1,
        "weekday": (days + 3) % 7,
        "epoch_days": s / _DAY,
    }
    if with_hour:
        parts["hour"] = (s % _DAY) // 3600
    return {k: np.where(ok, v.astype(np.float64), np.nan) for k, v in parts.items()}


# Arrow's ``\s`` (RE2) on ASCII text; its whitespace trim strips what ``str.strip`` strips
_RE2_SPACES = re.compile(r"[\t\n\f\r ]+")


def _text_parts(arr: pa.Array) -> dict[str, np.ndarray]:
    """Length in characters and word count of each text (NaN when missing)."""
    if len(arr) <= SMALL_BATCH:
        values = arr.to_pylist()
        if all(v is None or v.isascii() for v in values):
            # a few ASCII texts: Python's string methods give Arrow's numbers without five
            # compute calls (tests/prep/test_small_batches.py compares the two)
            return {
                "length": np.array([np.nan if v is None else len(v) for v in values], dtype=np.float64),
                "words": np.array([np.nan if v is None else _words(v) for v in values], dtype=np.float64),
            }
    length = pc.utf8_length(arr)
    words = pc.add(pc.count_substring_regex(pc.utf8_trim_whitespace(arr), r"\s+"), 1)
    words = pc.if_else(pc.equal(length, 0), 0, words)
    return {
        "length": pc.cast(length, pa.float64()).to_numpy(zero_copy_only=False),
        "words": pc.cast(words, pa.float64()).to_numpy(zero_copy_only=False),
    }


def _words(text: str) -> int:
    return len(_RE2_SPACES.findall(text.strip())) + 1 if text else 0


def _typed_column(typed: pa.Table | Coerced, name: str) -> pa.Array | np.ndarray | list:
    if isinstance(typed, Coerced):
        return typed.column(name)
    chunks = typed.column(name)
    return chunks.chunk(0) if chunks.num_chunks == 1 else chunks.combine_chunks()


def _floats(col: pa.Array | np.ndarray | list) -> np.ndarray:
    if isinstance(col, np.ndarray):
        return col.astype(np.float64, copy=False)
    return col.to_numpy(zero_copy_only=False).astype(np.float64)  # type: ignore[union-attr]


class Preprocessor:
    """Fits encoders and scalers on training columns and replays them on any batch.

    Parameters
    ----------
    min_category_count : categories seen fewer times in training are grouped as rare.
    max_categories : at most this many categories per column keep their own code.
    text : how text columns reach the linear model (``tfidf``, ``encoder`` or ``both``).
    image_weights : local safetensors file of ResNet-18 weights for image columns (frozen);
        None = a small CNN trained on the labels given to :meth:`fit`.
    image_size : side images are resized to (None: 32 for the CNN, 224 for the ResNet).
    image_epochs : most epochs the image CNN trains for.
    finetune_text : fine-tune the sentence encoder's top layers on the labels given to
        :meth:`fit`, one tuned encoder per text column (:mod:`winnow.prep.finetune`).
    finetune_seconds : seconds after which fine-tuning starts no new epoch (None: no limit).
    """

    def __init__(
        self,
        *,
        min_category_count: int = 10,
        max_categories: int = 200,
        text: str = "tfidf",
        image_weights: str | None = None,
        image_size: int | None = None,
        image_epochs: int = 30,
        finetune_text: bool = False,
        finetune_seconds: float | None = None,
    ) -> None:
        if text not in TEXT_MODES:
            raise ValueError(f"text must be one of {TEXT_MODES}")
        if finetune_text and text == "tfidf":
            raise ValueError("finetune_text needs text = 'encoder' or 'both'")
        self.finetune_text = finetune_text
        self.finetune_seconds = finetune_seconds
        #: fine-tuned sentence encoder of each text column (finetune_text)
        self.tuned_: dict[str, FineTuner] = {}
        self.min_category_count = min_category_count
        self.max_categories = max_categories
        self.text = text
        self.image_weights = image_weights
        self.image_size = image_size
        self.image_epochs = image_epochs
        #: fitted embedder of each image column
        self.images_: dict[str, ImageEmbedder] = {}
        self.features_: list[FeatureSpec] | None = None
        self._plan_cache: _Plan | None = None
        self.hour_columns_: list[str] = []
        self.text_: dict[str, TextHasher] = {}
        #: text columns embedded by the sentence encoder (after the hashed blocks in ``Matrices.text``)
        self.encoded_: list[str] = []
        self._encoders: dict[str, TextEncoder] = {}

    # ------------------------------------------------------------------ derivation
    def _derive(
        self, typed: pa.Table, specs: list[ColumnSpec], *, fitting: bool = False
    ) -> tuple[dict[str, tuple[str, np.ndarray]], dict[str, tuple[str, pa.Array]]]:
        num: dict[str, tuple[str, np.ndarray]] = {}
        cat: dict[str, tuple[str, pa.Array | list]] = {}
        for s in specs:
            if not s.used:
                continue
            col = _typed_column(typed, s.name)
            if s.role in (Role.NUMERIC, Role.BOOLEAN):
                num[s.name] = (s.name, _floats(col))
            elif s.role == Role.DATETIME:
                secs = _floats(col)
                parts = _datetime_parts(secs, with_hour=s.name in self.hour_columns_)
                for part, v in parts.items():
                    num[f"{s.name}.{part}"] = (s.name, v)
            elif s.role == Role.TEXT:
                for part, v in _text_parts(col).items():
                    num[f"{s.name}.{part}"] = (s.name, v)
            elif s.role == Role.CATEGORICAL:
                cat[s.name] = (s.name, col)
            elif s.role == Role.IMAGE:
                # the transform that follows a fit (the whole table) reuses the training rows'
                emb = self.images_[s.name].transform(col, remember=fitting)
                for j in range(emb.shape[1]):
                    num[f"{s.name}.image{j}"] = (s.name, emb[:, j].astype(np.float64))
        return num, cat

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        typed: pa.Table,
        specs: list[ColumnSpec],
        y: np.ndarray | None = None,
        *,
        seed: int = 0,
        threads: int = 1,
    ) -> Preprocessor:
        """Fit on typed training rows; ``y`` (0/1 per row) trains the image CNN when there are
        image columns (without labels they are embedded as small grey pixel grids)."""
        self.images_ = {}
        for s in specs:
            if s.role == Role.IMAGE and s.used:
                from winnow.prep.image import ImageEmbedder

                self.images_[s.name] = ImageEmbedder(
                    weights=self.image_weights, size=self.image_size, max_epochs=self.image_epochs
                ).fit(typed.column(s.name), y, seed=seed, threads=threads)
        self.hour_columns_ = []
        for s in specs:
            if s.role == Role.DATETIME:
                secs = typed.column(s.name).to_numpy(zero_copy_only=False).astype(np.float64)
                secs = secs[np.isfinite(secs)]
                if secs.size and np.any(secs % _DAY != 0):
                    self.hour_columns_.append(s.name)
        num, cat = self._derive(typed, specs, fitting=True)
        feats: list[FeatureSpec] = []
        for name, (source, v) in num.items():
            finite = v[np.isfinite(v)]
            f = FeatureSpec(name=name, source=source, kind="num", has_missing=bool(np.isnan(v).any()))
            if finite.size:
                f.median = float(np.median(finite))
                f.lo, f.hi = (float(q) for q in np.quantile(finite, [0.001, 0.999]))
                clipped = np.clip(finite, f.lo, f.hi)
                if f.lo >= 0 and f.hi > 0:
                    skew = float(np.mean((clipped - clipped.mean()) ** 3)) / (clipped.std() ** 3 + 1e-12)
                    f.log = bool(skew > 2.0)
                z = np.log1p(clipped) if f.log else clipped
                f.mean, f.std = float(z.mean()), float(z.std() or 1.0)
            feats.append(f)
        for name, (source, arr) in cat.items():
            counts = pc.value_counts(arr.drop_null()).to_pylist()
            counts.sort(key=lambda d: (-d["counts"], str(d["values"])))
            vocab = [str(d["values"]) for d in counts if d["counts"] >= self.min_category_count]
            feats.append(
                FeatureSpec(
                    name=name,
                    source=source,
                    kind="cat",
                    vocab=vocab[: self.max_categories],
                    has_missing=arr.null_count > 0,
                )
            )
        self.features_ = feats
        texts = [s.name for s in specs if s.role == Role.TEXT and s.used]
        self.text_ = {}
        if self.text in ("tfidf", "both"):
            self.text_ = {name: TextHasher().fit(typed.column(name).combine_chunks()) for name in texts}
        self.encoded_ = texts if self.text in ("encoder", "both") else []
        self.tuned_, self._encoders = {}, {}
        if self.finetune_text and self.encoded_:
            if y is None:
                raise ValueError("finetune_text needs the training labels y")
            from winnow.prep.finetune import FineTuner

            for name in self.encoded_:
                self.tuned_[name] = FineTuner(time_limit=self.finetune_seconds).fit(
                    typed.column(name).to_pylist(), y, seed=seed, threads=threads
                )
        return self

    def encoder(self, column: str) -> TextEncoder:
        """The sentence encoder of a text column: its fine-tuned copy, or the pretrained one."""
        if column not in self._encoders:
            ft = self.tuned_.get(column)
            self._encoders[column] = (
                TextEncoder() if ft is None else TextEncoder(model=ft.model(), name=ft.model_id)
            )
        return self._encoders[column]

    # ------------------------------------------------------------------ transform
    @property
    def features(self) -> list[FeatureSpec]:
        if self.features_ is None:
            raise NotFittedError("Preprocessor")
        return self.features_

    @property
    def num_features(self) -> list[FeatureSpec]:
        return self._plan().num

    @property
    def cat_features(self) -> list[FeatureSpec]:
        return self._plan().cat

    def _plan(self) -> _Plan:
        """What every transform reuses, built once per fitted feature list (not per batch)."""
        feats = self.features
        plan = self._plan_cache
        if plan is None or plan.features is not feats:
            plan = self._plan_cache = _Plan.build(feats)
        return plan

    def cardinalities(self) -> list[int]:
        """Number of codes of each categorical feature (vocab + missing + rare)."""
        return [len(f.vocab or []) + 2 for f in self.cat_features]

    def transform(self, typed: pa.Table | Coerced, specs: list[ColumnSpec]) -> Matrices:
        """Model inputs for typed rows: a table from :func:`winnow.schema.coerce`, or its
        :class:`~winnow.schema.Coerced` result (which skips building the table for few rows)."""
        num, cat = self._derive(typed, specs)
        n = len(typed.ok) if isinstance(typed, Coerced) else typed.num_rows
        nf, cf = self.num_features, self.cat_features
        X = np.empty((n, len(nf)), dtype=np.float32)
        big = float(np.finfo(np.float32).max)
        if nf:
            # beyond float32's range would turn into inf; NaN (missing) passes through
            stacked = np.column_stack([num[f.name][1] for f in nf]) if n else np.empty((0, len(nf)))
            X[:] = np.clip(stacked, -big, big)
        C = np.empty((n, len(cf)), dtype=np.int64)
        plan = self._plan()
        for j, f in enumerate(cf):
            arr = cat[f.name][1]
            if n <= SMALL_BATCH or isinstance(arr, list):
                # a hash table of the whole vocabulary per call would dominate a few records
                codes_of = plan.codes[j]
                values = arr if isinstance(arr, list) else arr.to_pylist()
                C[:, j] = [MISSING_CODE if v is None else codes_of.get(v, RARE_CODE) for v in values]
                continue
            # one Arrow call per column; the codes' arithmetic in numpy (each Arrow call costs
            # ~20 us however few the rows, which decided micro-batches of a few hundred rows)
            idx = pc.index_in(arr, value_set=plan.value_sets[j])
            if idx.null_count == 0:
                C[:, j] = idx.to_numpy()
                C[:, j] += 2
                continue
            found = idx.to_numpy(zero_copy_only=False)  # float64, NaN where not in the vocabulary
            C[:, j] = np.where(np.isnan(found), RARE_CODE, found + 2)
            if arr.null_count:
                C[arr.is_null().to_numpy(zero_copy_only=False), j] = MISSING_CODE
        text = None
        if self.text_ or self.encoded_:
            blocks = [h.transform(_typed_column(typed, name)) for name, h in self.text_.items()]
            for name in self.encoded_:
                emb = self.encoder(name).encode(_typed_column(typed, name).to_pylist())  # type: ignore[union-attr]
                blocks.append(sp.csr_matrix(emb))
            one = len(blocks) == 1 and sp.isspmatrix_csr(blocks[0]) and blocks[0].dtype == np.float32
            text = blocks[0] if one else sp.hstack(blocks, format="csr", dtype=np.float32)
        return Matrices(num=X, cat=C, text=text)

    def text_blocks(self) -> list[tuple[str, int]]:
        """(source column, width) of each text block in ``Matrices.text``, in order: hashed
        TF-IDF blocks, then sentence-embedding blocks."""
        return [(name, h.n_features) for name, h in self.text_.items()] + [
            (n, ENCODER_DIM) for n in self.encoded_
        ]

    def dense(self, m: Matrices) -> np.ndarray:
        """Scaled, imputed numeric features plus missing indicators, for linear and deep models."""
        plan = self._plan()
        p = len(plan.num)
        out = np.empty((len(m), p + len(plan.missing)), dtype=np.float32)
        # all columns at once: clip to the training quantiles, log1p the skewed, standardise
        v = np.clip(m.num.astype(np.float64), plan.lo, plan.hi)
        if plan.log.any():
            v[:, plan.log] = np.log1p(np.maximum(v[:, plan.log], 0.0))
        v = (v - plan.mean) / plan.std
        out[:, :p] = np.where(np.isnan(v), 0.0, v)
        out[:, p:] = np.isnan(m.num[:, plan.missing])
        return out

    def dense_names(self) -> list[tuple[str, str]]:
        """(feature name, source column) of each dense column."""
        nf = self.num_features
        names = [(f.name, f.source) for f in nf]
        names += [(f"{f.name}.missing", f.source) for f in nf if f.has_missing]
        return names

    # ------------------------------------------------------------------ state
    def to_json(self) -> dict:
        return {
            "min_category_count": self.min_category_count,
            "max_categories": self.max_categories,
            "hour_columns": self.hour_columns_,
            "features": [asdict(f) for f in self.features],
            "text": {name: {"n_docs": h.n_docs_} for name, h in self.text_.items()},
            "text_mode": self.text,
            "encoded": {
                "columns": self.encoded_,
                "model": ENCODER_MODEL,
                "dim": ENCODER_DIM,
                "tuned": {name: ft.to_json() for name, ft in self.tuned_.items()},
            },
            "images": {name: e.to_json() for name, e in self.images_.items()},
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Fitted arrays too large for JSON (text idf weights, image CNN weights, fine-tuned encoder
        layers), for safetensors."""
        out: dict[str, np.ndarray] = {}
        for name, h in self.text_.items():
            out.update(h.arrays(f"text.{name}"))
        for name, e in self.images_.items():
            out.update(e.arrays(f"image.{name}"))
        for name, ft in self.tuned_.items():
            out.update(ft.arrays(f"tuned.{name}"))
        return out

    def set_threads(self, threads: int) -> None:
        """Threads the image embedders use at screening."""
        for e in self.images_.values():
            e.threads = max(int(threads), 1)

    @classmethod
    def from_json(cls, d: dict, arrays: dict[str, np.ndarray] | None = None) -> Preprocessor:
        p = cls(
            min_category_count=d["min_category_count"],
            max_categories=d["max_categories"],
            text=d.get("text_mode", "tfidf"),
        )
        enc = d.get("encoded", {"columns": []})
        if enc["columns"] and (enc["model"], enc["dim"]) != (ENCODER_MODEL, ENCODER_DIM):
            raise ValueError(f"text encoder {enc['model']}/{enc['dim']} is not this winnow's {ENCODER_MODEL}")
        p.encoded_ = list(enc["columns"])
        if enc.get("tuned"):
            from winnow.prep.finetune import FineTuner

            p.finetune_text = True
            p.tuned_ = {
                name: FineTuner.from_state(t, arrays or {}, f"tuned.{name}")
                for name, t in enc["tuned"].items()
            }
        p.hour_columns_ = list(d["hour_columns"])
        p.features_ = [FeatureSpec(**f) for f in d["features"]]
        p.text_ = {
            name: TextHasher.from_arrays(arrays or {}, f"text.{name}", t["n_docs"])
            for name, t in d.get("text", {}).items()
        }
        if d.get("images"):
            from winnow.prep.image import ImageEmbedder

            p.images_ = {
                name: ImageEmbedder.from_state(e, arrays or {}, f"image.{name}")
                for name, e in d["images"].items()
            }
        return p
