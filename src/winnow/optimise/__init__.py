"""``winnow optimise``: compress a fitted screener and compile it for a fast runtime.

Structured pruning of the deep networks, ONNX export (run with ONNX Runtime), int8 dynamic
quantization and LightGBM compiled to an ONNX tree ensemble; each change measured on the user's
sample and refused when it moves the scores beyond a tolerance. See :mod:`.command`.
"""

from winnow.optimise.command import (
    DEFAULT_STEPS,
    DEFAULT_TOLERANCE,
    STEPS,
    optimise_artifact,
    optimise_screener,
)

__all__ = ["DEFAULT_STEPS", "DEFAULT_TOLERANCE", "STEPS", "optimise_artifact", "optimise_screener"]
