"""The HTTP screening service: ``winnow serve ARTIFACT``.

Modules, one job each::

    settings.py   ServeSettings: limits, timeouts, batching, key file (no secrets)
    parsing.py    request bodies to records and options; ClientError -> 4xx in one place
    registry.py   the serving model: load, verify, atomic swap, watched folder
    batcher.py    concurrent requests coalesced into micro-batches, scored in a worker thread
    schemas.py    pydantic models (built from the artifact's schema) for the OpenAPI document
    metrics.py    Prometheus metrics
    security.py   API keys (constant-time), body size limit
    state.py      ServiceState: what the routes share (settings, keys, registry, batcher, metrics)
    responses.py  JSON answers: results per record, the error table of the OpenAPI document
    routes.py     the routes, module-level functions on two APIRouters (keyed API, open probes)
    arrow_body.py Arrow IPC stream bodies for bulk scoring
    scoring_lane.py the scoring POSTs straight to their route functions, past FastAPI's router
    app.py        create_app: the FastAPI application (middleware, error handlers, OpenAPI)
    cli.py        the Typer command that runs uvicorn

``import winnow.serve`` stays cheap (no FastAPI) so ``winnow --help`` does not load it; import
:func:`winnow.serve.app.create_app` for the application.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from winnow.serve.app import create_app
    from winnow.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]

_LAZY = {"create_app": "winnow.serve.app", "ServeSettings": "winnow.serve.settings"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        from winnow.extras import require

        require("fastapi")  # the 'serve' extra
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'winnow.serve' has no attribute {name!r}")
