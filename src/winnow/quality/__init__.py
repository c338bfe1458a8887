"""Data quality and curation: profile, near-duplicates, clean, label errors, suggest, value.

>>> from winnow.quality import profile, clean, suggest, record_values  # doctest: +SKIP
>>> profile("loans.csv", target="loan_status", positive=["Charged Off"]).warnings  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "profile": "winnow.quality.profiling",
    "Profile": "winnow.quality.profiling",
    "near_duplicates": "winnow.quality.neardup",
    "NearDuplicates": "winnow.quality.neardup",
    "clean": "winnow.quality.cleaning",
    "Policy": "winnow.quality.cleaning",
    "find_label_issues": "winnow.quality.label_issues",
    "out_of_fold": "winnow.quality.label_issues",
    "suggest": "winnow.quality.active",
    "record_values": "winnow.quality.value",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'winnow.quality' has no attribute {name!r}")
