"""The learner protocol every model follows.

A learner is fitted on :class:`Inputs` (the preprocessor's matrices plus the dense view),
optionally early-stopped on a validation part, and predicts logits. Its state is a small JSON
config plus named binary/text payloads written by the artifact (never pickle).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from winnow.prep.preprocessor import Matrices


class Inputs:
    """Everything a learner may use for a set of rows.

    ``dense`` (the scaled view the linear and deep members read) is given, or made on first
    use by ``dense_of(m)``: tree-only screeners never pay for it at scoring time.
    """

    __slots__ = ("_dense", "_dense_of", "m", "y")

    def __init__(
        self,
        m: Matrices,
        dense: np.ndarray | None = None,
        y: np.ndarray | None = None,
        *,
        dense_of: Callable[[Matrices], np.ndarray] | None = None,
    ) -> None:
        if dense is None and dense_of is None:
            raise TypeError("Inputs needs dense or dense_of")
        self.m, self.y = m, y
        self._dense, self._dense_of = dense, dense_of

    @property
    def dense(self) -> np.ndarray:
        if self._dense is None:
            assert self._dense_of is not None
            self._dense = self._dense_of(self.m)
        return self._dense

    def __len__(self) -> int:
        return len(self.m)

    def take(self, idx: np.ndarray) -> Inputs:
        y = None if self.y is None else self.y[idx]
        if self._dense is None:
            return Inputs(self.m.take(idx), None, y, dense_of=self._dense_of)
        return Inputs(self.m.take(idx), self._dense[idx], y)


@dataclass
class FitContext:
    """Shared settings for one fit: seed, threads and the wall-clock deadline."""

    seed: int = 0
    threads: int = 1
    deadline: float | None = None
    cat_cardinalities: tuple[int, ...] = ()
    #: called as ``report(step, validation AUC-PR)`` while early-stopped fits train (the search
    #: uses it to prune hopeless trials; it may raise to stop the fit)
    report: Callable[[int, float], None] | None = None
    #: self-supervised encoder weights by architecture (:mod:`winnow.models.pretrain`); a deep
    #: network whose architecture matches starts from them
    pretrained: dict[str, dict[str, Any]] | None = None

    def seconds_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()


class Learner(ABC):
    """A binary scorer: ``fit`` returns self, ``predict_logit`` gives log-odds.

    ``name`` is the learner's kind (``lightgbm``, ``deep``, ...). A screener holds several
    *members*, each a learner under its own member name (``lightgbm``, ``lightgbm_2``, ``tabm``);
    the manifest records each member's kind.
    """

    name: str = ""

    #: rounds/epochs chosen by early stopping, reused when refitting on all training rows
    best_rounds_: int | None = None
    #: threads used when predicting
    threads: int = 1

    @abstractmethod
    def fit(
        self,
        train: Inputs,
        valid: Inputs | None,
        ctx: FitContext,
        rounds: int | None = None,
    ) -> Learner:
        """Fit on ``train``; early-stop on ``valid`` or run exactly ``rounds``."""

    @abstractmethod
    def predict_logit(self, x: Inputs) -> np.ndarray:
        """Log-odds of being high-value, float64 (n,)."""

    def inference_cost(self) -> float:
        """Estimated scoring cost in microseconds per row on one core of the reference machine.

        Computed from the fitted model's structure (trees and their depth, network parameters),
        never timed, so that a seed fixes every choice made from it
        (:func:`winnow.models.fusion.prune_for_cost`). The constants were fitted to per-member
        timings on the résumé task; bench/profile_stages.py times every member on every task.
        """
        return 1.0

    @abstractmethod
    def state(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """(JSON-serialisable config, {file suffix: payload}) for the artifact."""

    @classmethod
    @abstractmethod
    def from_state(cls, config: dict[str, Any], files: dict[str, bytes]) -> Learner:
        """Rebuild from what :meth:`state` returned."""


#: every learner kind an artifact may hold, and the class that implements it (imported when used)
LEARNER_KINDS: dict[str, str] = {
    "lightgbm": "winnow.models.gbdt:LightGBMLearner",
    "linear": "winnow.models.linear:LinearLearner",
    "deep": "winnow.models.deepnet:DeepLearner",
    "catboost": "winnow.models.catboost_model:CatBoostLearner",
    "onnx": "winnow.models.onnx_model:OnnxLearner",
}


def learner_class(name: str) -> type[Learner]:
    """The class of learner kind ``name`` (one of :data:`LEARNER_KINDS`)."""
    if name not in LEARNER_KINDS:
        raise ValueError(f"unknown model {name!r}")
    import importlib

    module, cls = LEARNER_KINDS[name].split(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def make_learner(name: str, **kwargs: Any) -> Learner:
    """A new learner of kind ``name`` (``lightgbm``, ``linear``, ``deep``, ``catboost``, ``onnx``)."""
    return learner_class(name)(**kwargs)


def explains_as(learner: Learner) -> str:
    """Which reason-code path applies: ``lightgbm`` (TreeSHAP ``contributions``), ``linear``, or
    another kind (not attributed). A compiled stand-in for a model sets ``explains_as``."""
    return str(getattr(learner, "explains_as", learner.name))
