"""The deep tabular network exported to ONNX: outputs ``logit`` and ``embedding``.

torch 2.13 has two exporters. The default one (``dynamo=True``, built on ``torch.export``) needs
the separate ``onnxscript`` package; the TorchScript-based one (``dynamo=False``) ships with
torch, still handles ``dynamic_axes`` and traces this network (embeddings, einsum, MLP) without
help, so it is used here and no dependency is added. It warns that it is deprecated; the warning
is silenced. If a later torch drops it, :func:`export_net` falls back to the default exporter.

The export runs on a deep copy of the network put in eval mode: exporting restores the modules'
training flags afterwards, and a wrapper in training mode would otherwise leave the member's
dropout switched on.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any

import numpy as np

OPSET = 17


def _wrapper(net: Any) -> Any:
    from torch import nn

    class LogitAndEmbedding(nn.Module):
        """forward(x_num, x_cat) -> (logit (n,), embedding (n, width))."""

        def __init__(self, inner: Any) -> None:  # a TabularNet: called, and its embed()
            super().__init__()
            self.inner = inner

        def forward(self, x_num: Any, x_cat: Any) -> tuple[Any, Any]:
            # the tracer records the shared layers once per call; ONNX Runtime's common
            # subexpression elimination merges the two paths when the session is built
            return self.inner(x_num, x_cat), self.inner.embed(x_num, x_cat)

    return LogitAndEmbedding(inner=net).eval()


def export_net(net: Any, x_num: np.ndarray, x_cat: np.ndarray) -> bytes:
    """ONNX bytes of ``net`` (a :class:`~winnow.models.deepnet.TabularNet`) with a dynamic batch
    axis; ``x_num``/``x_cat`` are a few example rows (float32 / int64)."""
    import torch

    module = _wrapper(copy.deepcopy(net).eval())
    args = (
        torch.from_numpy(np.ascontiguousarray(x_num[:2], dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(x_cat[:2], dtype=np.int64)),
    )
    names: dict[str, Any] = {"input_names": ["x_num", "x_cat"], "output_names": ["logit", "embedding"]}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                args,
                buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to file objects too
                dynamo=False,
                opset_version=OPSET,
                dynamic_axes={n: {0: "n"} for n in ("x_num", "x_cat", "logit", "embedding")},
                **names,
            )
        except (ImportError, NotImplementedError, TypeError):
            # no TorchScript exporter in this torch: the torch.export-based one (needs onnxscript)
            buf = io.BytesIO()
            batch = torch.export.Dim("n", min=1)
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                opset_version=max(OPSET, 18),
                dynamic_shapes=({0: batch}, {0: batch}),
                **names,
            )
            assert program is not None  # dynamo=True without a path returns the program
            program.save(buf)  # type: ignore[arg-type]  # onnx.save underneath takes a file object
    return buf.getvalue()
