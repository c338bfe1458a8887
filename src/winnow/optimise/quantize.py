"""int8 dynamic quantization of an ONNX network (ONNX Runtime's ``quantize_dynamic``).

Weights of the matrix products (and the embedding tables) are stored as int8 with a scale per
tensor; activations are quantized on the fly per batch, so no calibration data is needed. The
model shrinks about 3x and the matrix products run in integer arithmetic. The accuracy cost is
measured by the optimiser on the user's data, like every step's.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path


def quantize_int8(model: bytes) -> bytes:
    """The int8 dynamically quantized version of an ONNX model (bytes in, bytes out)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the quantizer logs advice about a pre-processing pass through the root logger; silence it
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="winnow-quantize-") as tmp:
            src, dst = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
            src.write_bytes(model)
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
            return dst.read_bytes()
    finally:
        root.setLevel(level)
