"""Path contributions for CatBoost's oblivious trees, the same decomposition as LightGBM's.

At each level of a tree the expected output (the training-weight-weighted mean of the leaves
still reachable) changes; the change is credited to the feature split on at that level, so a
row's contributions add up exactly to its raw score minus the model's expected value (Saabas'
decomposition, as :class:`winnow.models.gbdt.PathTable` does for LightGBM). A split on a
categorical code's target statistic (CatBoost's CTR) is credited to its categorical feature;
a CTR of a combination (categories, and numbers cut at a border) is shared equally among its columns.

CatBoost's exact SHAP values (``get_feature_importance(type="ShapValues")``) cost 3.9 ms for
one row and 155 µs a row on 2,000 (53 ms on a first call; the résumé task's 190-tree model,
``bench/explanations.py``); this costs one leaf lookup per tree (``calc_leaf_indexes``) and one
sparse product, 0.23 ms and 7.7 µs, from a table built once from the model's JSON export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from winnow.models.catboost_apply import model_spec


@dataclass
class ObliviousPaths:
    """Per tree and leaf, the contribution of every feature (numbers first, then categories)."""

    table: np.ndarray  # (total leaves, features)
    offsets: np.ndarray  # first row of each tree in ``table``
    expected: float  # the raw score's part no feature explains (scale x sum of E_0, + bias)
    scale: float

    @classmethod
    def of(cls, model: Any, n_num: int, n_cat: int, spec: dict[str, Any] | None = None) -> ObliviousPaths:
        """The table of ``model``, read from its JSON export (``spec``, when it is at hand)."""
        spec = model_spec(model) if spec is None else spec
        owners = _split_owners(spec["features_info"], n_num)
        rows: list[np.ndarray] = []
        offsets: list[int] = []
        e0_total = 0.0
        for tree in spec["oblivious_trees"]:
            offsets.append(sum(r.shape[0] for r in rows))
            table, e0 = _tree_table(tree, owners, n_num + n_cat)
            rows.append(table)
            e0_total += e0
        scale, bias = spec.get("scale_and_bias", [1.0, [0.0]])
        bias = float(bias[0]) if isinstance(bias, list) else float(bias)
        return cls(np.concatenate(rows), np.asarray(offsets, dtype=np.int64), scale * e0_total + bias, scale)

    def contributions(self, leaves: np.ndarray) -> np.ndarray:
        """(n, features) for the rows whose leaf in each tree is ``leaves`` (n, trees)."""
        import scipy.sparse as sp

        n, t = leaves.shape
        if n == 0:
            return np.zeros((0, self.table.shape[1]))
        cols = (leaves.astype(np.int64) + self.offsets[None, :t]).ravel()
        rows = np.arange(0, n * t + 1, t)
        hits = sp.csr_matrix((np.ones(n * t), cols, rows), shape=(n, self.table.shape[0]))
        return np.asarray(hits @ self.table) * self.scale


def _split_owners(info: dict[str, Any], n_num: int) -> dict[int, list[int]]:
    """Feature positions (numbers, then n_num + categorical index) each split index belongs to."""
    owners: dict[int, list[int]] = {}
    i = 0
    for f in info.get("float_features", []):
        for _ in f.get("borders") or []:
            owners[i] = [int(f["feature_index"])]
            i += 1
    for c in info.get("categorical_features", []):
        for _ in c.get("values") or []:
            owners[i] = [n_num + int(c["feature_index"])]
            i += 1
    for ctr in info.get("ctrs", []):
        cats = sorted({_element_owner(e, n_num) for e in ctr.get("elements", [])})
        for _ in ctr.get("borders") or []:
            owners[i] = cats
            i += 1
    return owners


def _element_owner(element: dict[str, Any], n_num: int) -> int:
    """The feature a CTR's combination element reads: a category, or a number's border."""
    if element.get("combination_element") == "float_feature":
        return int(element["float_feature_index"])
    return n_num + int(element["cat_feature_index"])


def _tree_table(tree: dict[str, Any], owners: dict[int, list[int]], width: int) -> tuple[np.ndarray, float]:
    """(leaves, features) contributions of one tree and its expected value E_0.

    Leaf index bit k is the outcome of split k, so after k splits the reachable leaves are those
    whose low k bits equal the row's; E_k is their weighted mean."""
    values = np.asarray(tree["leaf_values"], dtype=np.float64)
    weights = np.asarray(tree.get("leaf_weights") or np.ones(len(values)), dtype=np.float64)
    splits = tree.get("splits") or []
    leaves = np.arange(len(values))
    table = np.zeros((len(values), width))
    means = [_prefix_means(values, weights, leaves, k) for k in range(len(splits) + 1)]
    for k, split in enumerate(splits):
        delta = means[k + 1] - means[k]
        who = owners.get(int(split["split_index"]), [])
        for f in who:
            table[:, f] += delta / len(who)
    return table, float(means[0][0]) if len(values) else 0.0


def _prefix_means(values: np.ndarray, weights: np.ndarray, leaves: np.ndarray, k: int) -> np.ndarray:
    """For each leaf, the weighted mean of the leaves sharing its low ``k`` bits."""
    group = leaves & ((1 << k) - 1)
    total = np.bincount(group, weights=weights * values, minlength=1 << k)
    mass = np.bincount(group, weights=weights, minlength=1 << k)
    count = np.maximum(np.bincount(group, minlength=1 << k), 1)
    plain = np.bincount(group, weights=values, minlength=1 << k) / count
    mean = np.where(mass > 0, total / np.where(mass > 0, mass, 1.0), plain)  # unvisited: plain mean
    return mean[group]
