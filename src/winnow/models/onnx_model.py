"""A member compiled to ONNX and run with ONNX Runtime: the fast stand-in ``winnow optimise`` writes.

An :class:`OnnxLearner` replaces a fitted member (a LightGBM booster or a deep network) under the
same member name, so the fusion weights still apply. It only predicts: ``fit`` refuses. Its
state is a JSON config plus the ONNX model bytes (a format that cannot run code), and for a tree
stand-in the LightGBM text model too, kept only for reason codes (TreeSHAP); the booster is
loaded the first time reasons are asked, so scoring never pays for it.

Two input layouts, chosen by ``config["inputs"]``:

* ``"tree"``: one input ``X``, float64 (n, p + q): numeric features then categorical codes, as
  :func:`winnow.models.gbdt.tree_matrix` gives them (widened to float64 so the thresholds are
  LightGBM's own doubles and the comparisons are exactly LightGBM's).
* ``"net"``: ``x_num`` float32 (n, p) (``Inputs.dense``) and ``x_cat`` int64 (n, c)
  (``Inputs.m.cat``), as the deep network reads them.

The output ``logit`` is the member's log-odds. A network stand-in also has an ``embedding``
output (the last hidden layer), so :meth:`winnow.Screener.embed` keeps working.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from winnow.errors import ArtifactError, NotFittedError
from winnow.models.base import FitContext, Inputs, Learner

INPUT_LAYOUTS = ("tree", "net")


class OnnxLearner(Learner):
    """Predicts a member's logits with an ONNX Runtime session created on first use."""

    name = "onnx"

    def __init__(self, *, config: dict[str, Any] | None = None, model: bytes | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.model: bytes | None = model
        self.lightgbm_text: bytes | None = None
        self.threads = 1
        self._session: Any = None
        self._session_threads = 0
        self._booster: Any = None
        self._paths: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what it stands in for
    @property
    def inputs(self) -> str:
        return str(self.config.get("inputs", "net"))

    @property
    def source_kind(self) -> str:
        """The kind of the member this replaced (``lightgbm`` or ``deep``)."""
        return str(self.config.get("source_kind", ""))

    @property
    def explains_as(self) -> str:  # read by winnow.models.base.explains_as
        """A tree stand-in explains like LightGBM (it keeps the text model for TreeSHAP)."""
        return "lightgbm" if self.lightgbm_text is not None else self.name

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden widths of the network stood in for (``Screener.embed`` reads the last)."""
        return tuple(int(h) for h in self.config.get("hidden", ()))

    def __getattr__(self, attr: str) -> Any:
        # ``embed`` exists only when the model has an embedding output: Screener.embed picks the
        # members that have one, and a tree stand-in must not look like a network.
        if attr == "embed" and self.__dict__.get("config", {}).get("embedding_output"):
            return self._embed
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    # ------------------------------------------------------------------ runtime
    def session(self) -> Any:
        """The ONNX Runtime session, created lazily and recreated when ``threads`` changed."""
        if self.model is None:
            raise NotFittedError(type(self).__name__)
        with self._lock:
            if self._session is None or self._session_threads != self.threads:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = max(int(self.threads), 1)
                opts.inter_op_num_threads = 1
                opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                self._session = ort.InferenceSession(
                    self.model, sess_options=opts, providers=["CPUExecutionProvider"]
                )
                self._session_threads = self.threads
            return self._session

    def feeds(self, x: Inputs) -> dict[str, np.ndarray]:
        """The session inputs for rows ``x``."""
        if self.inputs == "tree":
            from winnow.models.gbdt import tree_matrix

            return {"X": np.ascontiguousarray(tree_matrix(x), dtype=np.float64)}
        return {
            "x_num": np.ascontiguousarray(x.dense, dtype=np.float32),
            "x_cat": np.ascontiguousarray(x.m.cat, dtype=np.int64),
        }

    def predict_logit(self, x: Inputs) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0, np.float64)
        out = self.session().run(["logit"], self.feeds(x))[0]
        return np.asarray(out, dtype=np.float64).reshape(len(x))

    def _embed(self, x: Inputs) -> np.ndarray:
        """The network's last hidden layer, float32 (n, h)."""
        if len(x) == 0:
            return np.zeros((0, self.hidden[-1] if self.hidden else 0), np.float32)
        return np.asarray(self.session().run(["embedding"], self.feeds(x))[0], dtype=np.float32)

    def contributions(self, x: Inputs) -> np.ndarray:
        """Path contributions of the original LightGBM model (loaded on the first call), (n, p + q),
        as :meth:`winnow.models.gbdt.LightGBMLearner.contributions`."""
        if self.lightgbm_text is None:
            raise NotFittedError(f"reason codes of ONNX member ({self.source_kind or 'unknown'} source)")
        from winnow.models.gbdt import PathTable, tree_matrix

        if self._booster is None:
            import lightgbm as lgb

            self._booster = lgb.Booster(model_str=self.lightgbm_text.decode())
            self._paths = PathTable.of(self._booster)
        return self._paths.contributions(self._booster, tree_matrix(x), self.threads)

    # ------------------------------------------------------------------ learner protocol
    def fit(
        self, train: Inputs, valid: Inputs | None, ctx: FitContext, rounds: int | None = None
    ) -> OnnxLearner:
        raise NotImplementedError(
            "an ONNX member is compiled from a fitted one by `winnow optimise`; it cannot be fitted"
        )

    def state(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        if self.model is None:
            raise NotFittedError(type(self).__name__)
        files = {"onnx": self.model}
        if self.lightgbm_text is not None:
            files["lightgbm.txt"] = self.lightgbm_text
        return dict(self.config), files

    @classmethod
    def from_state(cls, config: dict[str, Any], files: dict[str, bytes]) -> OnnxLearner:
        if "onnx" not in files:
            raise ArtifactError("<artifact>", "an ONNX member has no model file", "Re-run `winnow optimise`.")
        if config.get("inputs") not in INPUT_LAYOUTS:
            raise ArtifactError(
                "<artifact>",
                f"an ONNX member has input layout {config.get('inputs')!r}, expected one of {INPUT_LAYOUTS}",
                "Re-run `winnow optimise` with this version of winnow.",
            )
        obj = cls(config=config, model=files["onnx"])
        obj.lightgbm_text = files.get("lightgbm.txt")
        obj.best_rounds_ = config.get("best_rounds")
        return obj
