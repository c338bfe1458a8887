"""winnow: screen high-value records out of massive data.

``import winnow`` is cheap: the heavy parts (LightGBM, PyTorch) load on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# OpenMP threads (LightGBM, PyTorch) that spin while waiting make a busy machine up to 10x
# slower; passive waiting costs little on an idle one. Set before those libraries load; a
# value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from winnow.config import Budget, ScreenConfig
    from winnow.errors import (
        ArtifactError,
        ConfigError,
        DataError,
        NotFittedError,
        SchemaError,
        WinnowError,
    )
    from winnow.estimator import WinnowClassifier
    from winnow.screener import Screener

_LAZY = {
    "Screener": "winnow.screener",
    "WinnowClassifier": "winnow.estimator",
    "ScreenConfig": "winnow.config",
    "Budget": "winnow.config",
    "WinnowError": "winnow.errors",
    "ConfigError": "winnow.errors",
    "DataError": "winnow.errors",
    "SchemaError": "winnow.errors",
    "ArtifactError": "winnow.errors",
    "NotFittedError": "winnow.errors",
}

__all__ = [
    "ArtifactError",
    "Budget",
    "ConfigError",
    "DataError",
    "NotFittedError",
    "SchemaError",
    "ScreenConfig",
    "Screener",
    "WinnowClassifier",
    "WinnowError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'winnow' has no attribute {name!r}")
