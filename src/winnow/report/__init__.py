"""``winnow report``: one self-contained HTML file describing a fitted screener.

>>> from winnow.report import write_report
>>> write_report("screener/", "report.html", data="new_customers.parquet")  # doctest: +SKIP
PosixPath('report.html')

Submodules load on first use, so registering the command (:mod:`winnow.report.cli`) costs
only Typer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from winnow.report.build import render_report, write_report

__all__ = ["render_report", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from winnow.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'winnow.report' has no attribute {name!r}")
