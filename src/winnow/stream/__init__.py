"""Score a Redis stream as it arrives and write the high-value records to a sink.

>>> from winnow.stream import run  # doctest: +SKIP
>>> run("screener/", source="redis://127.0.0.1:6379/0", stream="leads",
...     sink="duckdb:leads.duckdb")  # doctest: +SKIP

Modules: :mod:`~winnow.stream.worker` (the loop and its guarantees),
:mod:`~winnow.stream.source` (Redis consumer group), :mod:`~winnow.io.sinks` (DuckDB,
PostgreSQL, Redis stream, Parquet), :mod:`~winnow.stream.records` (entries, rows, dead
letters), :mod:`~winnow.stream.metrics` (Prometheus) and :mod:`~winnow.stream.cli`
(``winnow stream``). Importing this package loads none of redis, duckdb or psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from winnow.io.sinks import open_sink
    from winnow.stream.worker import StreamSummary, StreamWorker, run

_LAZY = {
    "run": "winnow.stream.worker",
    "StreamWorker": "winnow.stream.worker",
    "StreamSummary": "winnow.stream.worker",
    "open_sink": "winnow.io.sinks",
}

__all__ = ["StreamSummary", "StreamWorker", "open_sink", "run"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        from winnow.extras import require

        require("redis")  # the 'stream' extra
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'winnow.stream' has no attribute {name!r}")
