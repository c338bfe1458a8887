"""CatBoost's oblivious trees applied in numpy, for the few-row calls of the live paths.

CatBoost's own applier costs about 0.2 ms a call however few the rows (it builds a ``Pool``
and binarises the features in its C++ library), which decides a one-record service's capacity
where CatBoost is the live model. Here the same model, read from CatBoost's JSON export, is
evaluated with a few array operations: each split's bit, each tree's leaf from its bits, and
the leaf values summed in tree order. A split is a float border, a one-hot category, or a
border on a categorical target statistic (CatBoost's CTR). The splits that read one category
alone (one-hot values, CTRs of one categorical column) are looked up per category code in a
table built once; CTRs of combinations hash the combination per row as CatBoost does.

The arithmetic is CatBoost's: float32 borders and CTR formulas, CityHash 1.0 of a category's
text, the same 64-bit hash mixing for combinations, so raw scores and leaves agree with
CatBoost's to the last bit (tests/models/test_catboost_apply.py, on models with every split
and CTR kind; ``bench/catboost_apply.py`` on the fitted task artifacts).

A model this cannot read (several outputs, an unknown CTR type, text or embedding features,
trees deeper than 8) raises :class:`UnsupportedModel`; the learner then keeps CatBoost's applier.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

_MASK = (1 << 64) - 1
_EMPTY = (1 << 64) - 1  # an empty slot of a CTR hash table
_K2 = 0x9AE16A3B2F90404F
_K3 = 0xC949D7C7509E6557
_KMUL = 0x9DDFEA08EB382D69
_MAGIC64 = np.uint64(0x4906BA494954CB65)  # CatBoost's CalcHash multiplier
_GATHER_BITS = np.uint64(0x0102040810204080)
_MAX_DEPTH = 8


class UnsupportedModel(ValueError):
    """The model uses something the numpy applier does not evaluate."""


def model_spec(model: Any) -> dict[str, Any]:
    """The fitted CatBoost model as its JSON export (trees, borders, CTR tables)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        model.save_model(path, format="json")
        with open(path, encoding="utf-8") as f:
            spec: dict[str, Any] = json.load(f)
    finally:
        os.unlink(path)
    return spec


def _hash16(u: int, v: int) -> int:
    a = ((u ^ v) * _KMUL) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * _KMUL) & _MASK
    b ^= b >> 47
    return (b * _KMUL) & _MASK


def _city64_short(s: bytes) -> int:
    """CityHash64 version 1.0 (CatBoost's, not today's mainline) of at most 16 bytes."""
    n = len(s)
    if n > 8:
        a, b = int.from_bytes(s[:8], "little"), int.from_bytes(s[-8:], "little")
        v = (b + n) & _MASK
        return _hash16(a, ((v >> n) | (v << (64 - n))) & _MASK) ^ b
    if n >= 4:
        a = int.from_bytes(s[:4], "little")
        return _hash16((n + (a << 3)) & _MASK, int.from_bytes(s[-4:], "little"))
    if n > 0:
        y, z = s[0] + (s[n >> 1] << 8), n + (s[n - 1] << 2)
        v = ((y * _K2) ^ (z * _K3)) & _MASK
        return ((v ^ (v >> 47)) * _K2) & _MASK
    return _K2


def category_hash(text: str) -> int:
    """CatBoost's hash of a category's text: the low 32 bits of CityHash64, as a signed int."""
    raw = text.encode()
    if len(raw) > 16:
        raise UnsupportedModel("category text longer than 16 bytes")
    h = _city64_short(raw) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _code_hashes(size: int) -> np.ndarray:
    """CatBoost's hashes of the category codes 0 .. size - 1 (their decimal text)."""
    return np.asarray([category_hash(str(i)) for i in range(size)], dtype=np.int64)


def _float_bits(x: np.ndarray, border: np.ndarray, nan_true: np.ndarray) -> np.ndarray:
    """x > border, in float32; a missing value is true where the model sends NaN right."""
    bits = x > border
    if nan_true.any():
        bits |= np.isnan(x) & nan_true
    return bits


class _CtrSet:
    """Some of a model's CTRs: their tables, and each border's value for a batch of rows."""

    def __init__(self, ctrs: list[dict[str, Any]], data: dict[str, Any], nan_as_true: set[int]) -> None:
        self._elements: dict[tuple[Any, ...], int] = {}
        tables: dict[str, int] = {}
        table_elements: list[list[int]] = []
        keys: list[np.ndarray] = []
        stats: list[np.ndarray] = []
        b_table, b_good, b_both, consts = [], [], [], []
        for ctr in ctrs:
            kind = ctr["ctr_type"]
            if kind not in ("Borders", "Buckets", "Counter", "FeatureFreq"):
                raise UnsupportedModel(f"CTR type {kind!r}")
            ident = ctr["identifier"]
            if ident not in data:
                raise UnsupportedModel("a CTR without its table")
            if ident not in tables:
                tables[ident] = len(tables)
                table_elements.append([self._element(e) for e in ctr["elements"]])
                k, counts = _ctr_table(data[ident], kind)
                keys.append(k)
                stats.append(counts)
            counter = kind in ("Counter", "FeatureFreq")
            target = int(ctr.get("target_border_idx", 0))
            if not counter and target > 1:
                raise UnsupportedModel("a CTR of a multiclass target")
            for border in ctr.get("borders") or []:
                b_table.append(tables[ident])
                # counts are (class 0, class 1) or (count, denominator): the formula's
                # numerator is one of them, its total both classes or the denominator
                b_good.append(0 if counter else (1 if kind == "Borders" else target))
                b_both.append(0.0 if counter else 1.0)
                c = ctr["prior_numerator"], ctr["prior_denomerator"], ctr["shift"], ctr["scale"], border
                consts.append([float(v) for v in c])
        self.size = len(b_table)
        self._table = np.asarray(b_table, dtype=np.int64)
        self._good = np.asarray(b_good, dtype=np.int64)
        self._at = np.arange(self.size)
        self._both = np.asarray(b_both, dtype=np.float32)
        c_arr = np.asarray(consts, dtype=np.float32).reshape(self.size, 5).T.copy()
        self._prior_num, self._prior_den, self._shift, self._scale, self.borders = c_arr
        # each table's elements, padded on the left with a column of zeros: CalcHash(0, 0) == 0
        zero = len(self._elements)
        depth = max((len(e) for e in table_elements), default=0)
        self._table_elements = np.asarray(
            [[zero] * (depth - len(e)) + e for e in table_elements], dtype=np.int64
        ).reshape(len(table_elements), depth)
        self._table_ids = np.arange(1, len(table_elements) + 1, dtype=np.uint64)
        self._keys, self._stats = _one_lookup(keys, stats)
        els = [k for k, _ in sorted(self._elements.items(), key=lambda kv: kv[1])]
        pick = lambda kind, i: [k[i] for k in els if k[0] == kind]  # noqa: E731
        where = lambda kind: np.asarray([j for j, k in enumerate(els) if k[0] == kind], dtype=np.int64)  # noqa: E731
        self._cat, self._cat_of = where("cat"), np.asarray(pick("cat", 1), dtype=np.int64)
        self._float, self._float_of = where("float"), np.asarray(pick("float", 1), dtype=np.int64)
        self._float_border = np.asarray(pick("float", 2), dtype=np.float32)
        self._float_nan = np.asarray([f in nan_as_true for f in pick("float", 1)], dtype=bool)
        self._exact, self._exact_of = where("exact"), np.asarray(pick("exact", 1), dtype=np.int64)
        self._exact_value = np.asarray(pick("exact", 2), dtype=np.int64)

    def _element(self, e: dict[str, Any]) -> int:
        """Column of one combination element in the per-batch element matrix."""
        kind = e["combination_element"]
        if kind == "cat_feature_value":
            key: tuple[Any, ...] = ("cat", int(e["cat_feature_index"]))
        elif kind == "float_feature":
            key = ("float", int(e["float_feature_index"]), float(np.float32(e["border"])))
        elif kind == "cat_feature_exact_value":
            key = ("exact", int(e["cat_feature_index"]), int(e["value"]))
        else:
            raise UnsupportedModel(f"combination element {kind!r}")
        return self._elements.setdefault(key, len(self._elements))

    def values(self, num: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """(n, borders) float32 CTR values, CatBoost's formula in float32."""
        n = num.shape[0]
        cols = np.zeros((n, len(self._elements) + 1), dtype=np.uint64)  # the last: zeros
        cols[:, self._cat] = hashes[:, self._cat_of].view(np.uint64)
        if len(self._float):
            cols[:, self._float] = _float_bits(num[:, self._float_of], self._float_border, self._float_nan)
        if len(self._exact):
            cols[:, self._exact] = hashes[:, self._exact_of] == self._exact_value
        with np.errstate(over="ignore"):
            h = np.zeros((n, len(self._table_ids)), dtype=np.uint64)
            for d in range(self._table_elements.shape[1]):
                v = cols[:, self._table_elements[:, d]]
                v *= _MAGIC64
                h += v
                h *= _MAGIC64  # h = CalcHash(h, v) = MAGIC * (h + MAGIC * v), modulo 2^64
            key = _MAGIC64 * (self._table_ids + _MAGIC64 * h)  # (n, tables)
        size = len(self._keys)
        at = np.minimum(np.searchsorted(self._keys, key), max(size - 1, 0))
        at = np.where(self._keys[at] == key, at, size) if size else np.zeros(key.shape, dtype=np.int64)
        counts = self._stats[at][:, self._table]  # (n, borders, 2); zeros where not found
        good = counts[:, self._at, self._good]
        total = counts[..., 0] * self._both + counts[..., 1]
        ctr = (good + self._prior_num) / (total + self._prior_den)
        return (ctr + self._shift) * self._scale


def _ctr_table(entry: dict[str, Any], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, two counts per hash) of one CTR table, empty slots left out: the classes'
    counts, or a counter's count and the table's denominator."""
    stride = int(entry["hash_stride"])
    counter = kind in ("Counter", "FeatureFreq")
    if stride != (2 if counter else 3):
        raise UnsupportedModel(f"{kind} CTR table of stride {stride}")
    flat = entry["hash_map"]
    hashes = np.asarray([int(h) for h in flat[::stride]], dtype=np.uint64)
    counts = np.asarray([flat[i + 1 : i + stride] for i in range(0, len(flat), stride)], dtype=np.float32)
    counts = counts.reshape(len(hashes), stride - 1)
    if counter:
        counts = np.hstack([counts, np.full_like(counts, float(entry.get("counter_denominator", 0)))])
    keep = hashes != np.uint64(_EMPTY)
    return hashes[keep], counts[keep]


def _one_lookup(keys: list[np.ndarray], stats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One sorted key array for every table: a key is a table's hash mixed with the table's
    number (CatBoost's own mixing), checked to be unique over all stored keys; the counts end
    with a row of zeros, for the hashes no table holds."""
    if not keys:
        return np.zeros(0, dtype=np.uint64), np.zeros((1, 2), dtype=np.float32)
    with np.errstate(over="ignore"):
        mixed = [_MAGIC64 * (np.uint64(i + 1) + _MAGIC64 * k) for i, k in enumerate(keys)]
    all_keys = np.concatenate(mixed)
    order = np.argsort(all_keys, kind="stable")
    sorted_keys = all_keys[order]
    if len(np.unique(sorted_keys)) != len(sorted_keys):
        raise UnsupportedModel("CTR keys collide once mixed with their table")
    return sorted_keys, np.vstack([np.concatenate(stats)[order], np.zeros((1, 2), dtype=np.float32)])


class ObliviousApplier:
    """Raw scores and leaf indexes of a CatBoost model of oblivious trees, in numpy.

    ``num`` are the float features in CatBoost's float-feature order, ``cat`` the categorical
    codes (non-negative integers, given to CatBoost as their decimal text when it was fitted).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        info = spec.get("features_info", {})
        if info.get("text_features") or info.get("embedding_features"):
            raise UnsupportedModel("text or embedding features")
        scale, bias = spec.get("scale_and_bias", [1.0, [0.0]])
        if isinstance(bias, list):
            if len(bias) != 1:
                raise UnsupportedModel("more than one output")
            bias = bias[0]
        self.scale, self.bias = float(scale), float(bias)
        floats = info.get("float_features", [])
        nan_as_true = {int(f["feature_index"]) for f in floats if f.get("nan_value_treatment") == "AsTrue"}
        # split indexes count float borders, then one-hot values, then CTR borders
        f_feat = [int(f["feature_index"]) for f in floats for _ in f.get("borders") or []]
        self._f_feat = np.asarray(f_feat, dtype=np.int64)
        self._f_border = np.asarray([b for f in floats for b in f.get("borders") or []], dtype=np.float32)
        self._f_nan = np.asarray([f in nan_as_true for f in f_feat], dtype=bool)
        one_hot = [
            (int(c["feature_index"]), int(v))
            for c in info.get("categorical_features", [])
            for v in c.get("values") or []
        ]
        start = len(f_feat) + len(one_hot)
        ctrs = info.get("ctrs", [])
        data = spec.get("ctr_data", {})
        # splits that read one category alone, per categorical feature: its one-hot splits
        # (split index, value), and its own CTRs with their split indexes
        one_hots: dict[int, list[tuple[int, int]]] = {}
        for i, (feature, value) in enumerate(one_hot):
            one_hots.setdefault(feature, []).append((len(f_feat) + i, value))
        own: dict[int, tuple[list[dict[str, Any]], list[int]]] = {}
        general, general_cols = [], []
        at = start
        for ctr in ctrs:
            cols = list(range(at, at + len(ctr.get("borders") or [])))
            at += len(cols)
            elements = ctr.get("elements", [])
            if len(elements) == 1 and elements[0]["combination_element"] == "cat_feature_value":
                mine = own.setdefault(int(elements[0]["cat_feature_index"]), ([], []))
                mine[0].append(ctr)
                mine[1].extend(cols)
            else:
                general.append(ctr)
                general_cols += cols
        self._n_splits = at
        self._general = _CtrSet(general, data, nan_as_true)
        self._general_cols = np.asarray(general_cols, dtype=np.int64)
        self._code_features = np.asarray(sorted(set(one_hots) | set(own)), dtype=np.int64)
        # per feature: its one-hot values, its CTRs, and the split indexes of both, in order
        self._by_code = [
            (
                np.asarray([v for _, v in one_hots.get(f, [])], dtype=np.int64),
                _CtrSet(own[f][0], data, nan_as_true) if f in own else None,
                [c for c, _ in one_hots.get(f, [])] + (own[f][1] if f in own else []),
            )
            for f in map(int, self._code_features)
        ]
        self._code_cols = np.asarray([c for _, _, cols in self._by_code for c in cols], dtype=np.int64)
        self._code_size = 0
        self._code_table = np.zeros((0, len(self._code_cols)), dtype=bool)
        self._hash_of = np.zeros(0, dtype=np.int64)
        self._read_trees(spec["oblivious_trees"])

    def _read_trees(self, trees: list[dict[str, Any]]) -> None:
        pad = self._n_splits  # a bit that is always 0
        splits = np.full((len(trees), _MAX_DEPTH), pad, dtype=np.int64)
        values: list[np.ndarray] = []
        offsets: list[int] = []
        for i, tree in enumerate(trees):
            s = tree.get("splits") or []
            if len(s) > _MAX_DEPTH:
                raise UnsupportedModel(f"trees deeper than {_MAX_DEPTH}")
            for d, split in enumerate(s):
                splits[i, d] = int(split["split_index"])
            if int(splits[i, : len(s)].max(initial=-1)) >= self._n_splits:
                raise UnsupportedModel("a split index past the model's borders")
            offsets.append(sum(len(v) for v in values))
            leaf_values = tree["leaf_values"]
            if len(leaf_values) != 1 << len(s):
                raise UnsupportedModel("a tree with more than one value per leaf")
            values.append(np.asarray(leaf_values, dtype=np.float64))
        self._splits = splits
        self._offsets = np.asarray(offsets, dtype=np.uint64)
        self._values = np.concatenate(values) if values else np.zeros(0)

    def _hashes(self, cat: np.ndarray) -> np.ndarray:
        top = int(cat.max()) + 1 if cat.size else 0
        if top > len(self._hash_of):
            self._hash_of = _code_hashes(max(top, 2 * len(self._hash_of), 256))
        return self._hash_of[cat]

    def _code_bits(self, cat: np.ndarray) -> np.ndarray:
        """(n, splits reading one category) bits, from a table of every code's bits, built for
        codes 0 .. size - 1 once and again when a larger code arrives."""
        codes = cat[:, self._code_features]
        top = int(codes.max()) + 1 if codes.size else 0
        if top > self._code_size:
            self._build_code_table(max(top, 2 * self._code_size, 256))
        # row code * features + feature of the table holds that feature's bits for that code
        rows = codes * len(self._code_features) + np.arange(len(self._code_features))
        return np.asarray(self._code_table[rows].any(axis=1))

    def _build_code_table(self, size: int) -> None:
        k = len(self._code_features)
        table = np.zeros((size * k, len(self._code_cols)), dtype=bool)
        hashes = _code_hashes(size)
        col = 0
        for j, (feature, (values, ctrs, cols)) in enumerate(
            zip(self._code_features, self._by_code, strict=True)
        ):
            rows = (np.arange(size) * k + j)[:, None]
            width = len(values)
            table[rows, col + np.arange(width)] = hashes[:, None] == values
            if ctrs is not None:
                hashed = np.zeros((size, int(feature) + 1), dtype=np.int64)
                hashed[:, feature] = hashes
                bits = ctrs.values(np.zeros((size, 0), dtype=np.float32), hashed) > ctrs.borders
                table[rows, col + width + np.arange(ctrs.size)] = bits
            col += len(cols)
        self._code_table, self._code_size = table, size

    def _bits(self, num: np.ndarray, cat: np.ndarray) -> np.ndarray:
        n = num.shape[0]
        bits = np.zeros((n, self._n_splits + 1), dtype=bool)  # the last: always 0
        bits[:, : len(self._f_feat)] = _float_bits(num[:, self._f_feat], self._f_border, self._f_nan)
        if len(self._code_cols):
            bits[:, self._code_cols] = self._code_bits(cat)
        if self._general.size:
            values = self._general.values(num, self._hashes(cat))
            bits[:, self._general_cols] = values > self._general.borders
        return bits

    def leaves(self, num: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """(n, trees) leaf index (uint64) of every row in every tree."""
        bits = self._bits(np.asarray(num, dtype=np.float32), np.asarray(cat, dtype=np.int64))
        # a tree's 8 split bits as the bytes of one uint64; the multiply gathers byte d's low
        # bit into bit 56 + d (no two partial products meet, so nothing carries)
        packed = np.ascontiguousarray(bits[:, self._splits]).view(np.uint64)[..., 0]
        with np.errstate(over="ignore"):
            return (packed * _GATHER_BITS) >> np.uint64(56)

    def raw(self, num: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """(n,) raw formula values: the leaf values summed in tree order, scaled, plus bias."""
        values = self._values[self.leaves(num, cat) + self._offsets]
        total = np.cumsum(values, axis=1)[:, -1] if values.shape[1] else np.zeros(len(values))
        return total * self.scale + self.bias
