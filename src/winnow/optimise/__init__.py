"""``winnow optimise``: compress a fitted screener and compile it for a fast runtime.

Structured pruning of the deep networks, ONNX export (run with ONNX Runtime), int8 dynamic
quantization and LightGBM compiled to an ONNX tree ensemble; each change measured on the user's
sample and refused when it moves the scores beyond a tolerance. See :mod:`.command`.

The names below are loaded on first use, so that the CLI (which registers
:mod:`winnow.optimise.cli` through this package) does not import numpy for ``--help``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_STEPS", "DEFAULT_TOLERANCE", "STEPS", "optimise_artifact", "optimise_screener"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from winnow.optimise import command

        return getattr(command, name)
    raise AttributeError(f"module 'winnow.optimise' has no attribute {name!r}")
