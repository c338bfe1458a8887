"""LightGBM boosters compiled to one ONNX ``TreeEnsemble`` node (``ai.onnx.ml`` opset 5).

Why a converter of our own rather than a generic one: the generic converters build a
*classifier* (probabilities, from which the log-odds come back imprecisely in float32), store
thresholds as float32 (a LightGBM threshold is a double; rounding it can flip a comparison) and
expand categorical splits into chains of equality nodes. Opset 5's ``TreeEnsemble`` has set
membership (``BRANCH_MEMBER``) and thresholds of the input's type, so with a float64 input the
graph makes exactly LightGBM's decisions:

* numerical split ``x <= t`` with LightGBM's missing-value rule: ``missing_type`` ``NaN`` sends
  NaN to the default side; ``None`` reads NaN as 0, so NaN goes where 0 goes;
* categorical split: left when the integer category is in the split's set; NaN and negative
  values go right (they are never in the set).

The output is the raw score (sum of the leaf values, which already include the shrinkage):
LightGBM's ``raw_score``, the member's logit. What this cannot express (``missing_type`` ``Zero``,
linear trees, random-forest averaging, several trees per iteration) raises
:class:`UnsupportedModel` and the optimiser keeps the original member.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ML_OPSET = 5
ONNX_OPSET = 21
IR_VERSION = 10
_LEQ, _MEMBER = 0, 6


class UnsupportedModel(ValueError):
    """The booster uses a feature the ONNX tree ensemble cannot reproduce exactly."""


class _Builder:
    def __init__(self) -> None:
        self.feature: list[int] = []
        self.mode: list[int] = []
        self.split: list[float] = []
        self.missing_true: list[int] = []
        self.true_id: list[int] = []
        self.true_leaf: list[int] = []
        self.false_id: list[int] = []
        self.false_leaf: list[int] = []
        #: categories of each BRANCH_MEMBER node, by node index (flattened in index order)
        self.members: dict[int, list[int]] = {}
        self.leaf_weights: list[float] = []
        self.roots: list[int] = []

    def _new_node(self) -> int:
        for lst in (self.feature, self.mode, self.split, self.missing_true):
            lst.append(0)
        for lst in (self.true_id, self.true_leaf, self.false_id, self.false_leaf):
            lst.append(0)
        return len(self.feature) - 1

    def _leaf(self, node: dict[str, Any]) -> int:
        if "leaf_coeff" in node or "leaf_features" in node:
            raise UnsupportedModel("linear trees (leaf models) cannot be compiled")
        self.leaf_weights.append(float(node["leaf_value"]))
        return len(self.leaf_weights) - 1

    def add_tree(self, root: dict[str, Any]) -> None:
        if "split_feature" not in root:
            # a single-leaf tree: one always-true test pointing at the leaf from both sides
            i = self._new_node()
            leaf = self._leaf(root)
            self.mode[i], self.split[i] = _LEQ, float("inf")
            self.true_id[i] = self.false_id[i] = leaf
            self.true_leaf[i] = self.false_leaf[i] = 1
            self.missing_true[i] = 1
            self.roots.append(i)
            return
        self.roots.append(len(self.feature))
        # iterative depth-first walk: (node dict, index reserved for it)
        stack = [(root, self._new_node())]
        while stack:
            node, i = stack.pop()
            self._split(node, i)
            for side, ids, leafs in (
                ("left_child", self.true_id, self.true_leaf),
                ("right_child", self.false_id, self.false_leaf),
            ):
                child = node[side]
                if "split_feature" in child:
                    j = self._new_node()
                    ids[i], leafs[i] = j, 0
                    stack.append((child, j))
                else:
                    ids[i], leafs[i] = self._leaf(child), 1

    def _split(self, node: dict[str, Any], i: int) -> None:
        self.feature[i] = int(node["split_feature"])
        kind = node["decision_type"]
        missing = node.get("missing_type", "None")
        if kind == "==":
            cats = [int(c) for c in str(node["threshold"]).split("||")]
            self.mode[i], self.split[i] = _MEMBER, float("nan")
            self.members[i] = cats
            self.missing_true[i] = 0  # NaN is never a member: right
        elif kind == "<=":
            t = float(node["threshold"])
            self.mode[i], self.split[i] = _LEQ, t
            if missing == "NaN":
                self.missing_true[i] = int(bool(node["default_left"]))
            elif missing == "None":
                self.missing_true[i] = int(0.0 <= t)  # NaN is read as 0
            else:
                raise UnsupportedModel(f"missing_type {missing!r} (zero_as_missing) cannot be compiled")
        else:
            raise UnsupportedModel(f"decision type {kind!r} cannot be compiled")


def booster_to_onnx(model_text: str) -> bytes:
    """ONNX bytes for a binary LightGBM text model: input ``X`` float64 (n, features), output
    ``logit`` float64 (n, 1) equal to LightGBM's ``raw_score``."""
    import lightgbm as lgb
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dump = lgb.Booster(model_str=model_text).dump_model()
    objective = str(dump.get("objective", ""))
    if not objective.startswith(("binary", "cross_entropy", "regression")):
        raise UnsupportedModel(f"objective {objective!r} is not a binary log-odds model")
    if int(dump.get("num_tree_per_iteration", 1)) != 1:
        raise UnsupportedModel("several trees per iteration (multiclass) cannot be compiled")
    if dump.get("average_output"):
        raise UnsupportedModel("random-forest boosting (averaged output) cannot be compiled")
    b = _Builder()
    for tree in dump["tree_info"]:
        b.add_tree(tree["tree_structure"])
    if not b.roots:
        raise UnsupportedModel("the booster has no trees")
    n_features = int(dump["max_feature_idx"]) + 1
    attrs: dict[str, Any] = {
        "aggregate_function": 1,  # SUM
        "post_transform": 0,  # NONE: the raw score
        "n_targets": 1,
        "tree_roots": b.roots,
        "nodes_featureids": b.feature,
        "nodes_modes": numpy_helper.from_array(np.asarray(b.mode, np.uint8), "nodes_modes"),
        "nodes_splits": numpy_helper.from_array(np.asarray(b.split, np.float64), "nodes_splits"),
        "nodes_missing_value_tracks_true": b.missing_true,
        "nodes_truenodeids": b.true_id,
        "nodes_trueleafs": b.true_leaf,
        "nodes_falsenodeids": b.false_id,
        "nodes_falseleafs": b.false_leaf,
        "leaf_targetids": [0] * len(b.leaf_weights),
        "leaf_weights": numpy_helper.from_array(np.asarray(b.leaf_weights, np.float64), "leaf_weights"),
    }
    if b.members:
        # the sets in the order their nodes appear, each closed by a NaN
        flat = [v for i in sorted(b.members) for v in [*map(float, b.members[i]), float("nan")]]
        values = np.asarray(flat, np.float64)
        attrs["membership_values"] = numpy_helper.from_array(values, "membership_values")
    node = helper.make_node("TreeEnsemble", ["X"], ["logit"], domain="ai.onnx.ml", name="lightgbm", **attrs)
    graph = helper.make_graph(
        [node],
        "lightgbm",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, ["n", n_features])],
        [helper.make_tensor_value_info("logit", TensorProto.DOUBLE, ["n", 1])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="winnow",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()
