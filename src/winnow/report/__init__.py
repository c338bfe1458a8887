"""``winnow report``: one self-contained HTML file describing a fitted screener.

>>> from winnow.report import write_report
>>> write_report("screener/", "report.html", data="new_customers.parquet")  # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

from winnow.report.build import render_report, write_report

__all__ = ["render_report", "write_report"]
