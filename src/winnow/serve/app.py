"""The FastAPI application: thin routes over the registry, the batcher and the one scoring function.

Routes::

    POST /v1/screen        score, select (artifact threshold, or a threshold/budget per request), explain
    POST /v1/score         scores only (JSON, or an Arrow IPC stream in and out for bulk scoring)
    POST /v1/explain       every field's contribution to each record's log-odds, as objects
    GET  /v1/model         the serving model's manifest: version, schema, metrics, threshold
    POST /v1/admin/reload  load the artifact again (or another folder) and swap it in (admin key)
    GET  /healthz          the process is up
    GET  /readyz           a model is loaded and requests are taken
    GET  /metrics          Prometheus

Error statuses are decided in one place, :class:`winnow.serve.parsing.ClientError`: 400
malformed JSON, 401 API key, 403 a reload path outside the reload root, 404 no such route (or
no artifact at a reload path), 408 body too slow, 409 a reload refused (the artifact is broken),
413 body too large, 415 not JSON, 422 usable JSON that is not a scoring request (too many
records, or every record invalid), 503 overloaded or shutting down. A batch with some invalid
records is a 200 whose results carry per-record errors. A 500 means a bug in winnow, never bad
input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from winnow import __version__
from winnow.errors import ConfigError
from winnow.serve import review as review_routes
from winnow.serve.metrics import ServeMetrics
from winnow.serve.parsing import ClientError
from winnow.serve.registry import LoadedModel, ModelRegistry
from winnow.serve.responses import client_error_response, json_response
from winnow.serve.routes import admin, api, probes
from winnow.serve.schemas import ReloadRequest, body_schemas
from winnow.serve.scoring_lane import Handler, ScoringLane
from winnow.serve.security import ADMIN_HEADER, HEADER, ApiKeys
from winnow.serve.settings import ServeSettings
from winnow.serve.state import ServiceState

log = logging.getLogger("winnow.serve")

_KEY_HEADER = APIKeyHeader(
    name=HEADER, scheme_name="ApiKey", auto_error=False, description="The service's API key."
)
_ADMIN_HEADER = APIKeyHeader(
    name=ADMIN_HEADER,
    scheme_name="AdminKey",
    auto_error=False,
    description="An admin key (not a scoring key).",
)


async def _require_key(request: Request, key: str | None = Security(_KEY_HEADER)) -> None:
    request.app.state.winnow.keys.require(key)


async def _require_admin_key(request: Request, key: str | None = Security(_ADMIN_HEADER)) -> None:
    request.app.state.winnow.admin_keys.require(key, ADMIN_HEADER)


#: the POST routes the scoring lane serves without FastAPI's router
SCORING_PATHS = ("/v1/screen", "/v1/score")


class _Observe:
    """Pure ASGI middleware: request counts and latency by route template and status."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(route, scope["method"], status, time.perf_counter() - t0)


class _ServiceApp(FastAPI):
    """FastAPI with the service's own middleware outside FastAPI's: ``outer`` wraps the stack
    FastAPI builds (error handling, telemetry, body limit, routing), so the scoring lane's
    requests pass none of those layers (the lane answers its own errors)."""

    outer: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        return inner if self.outer is None else self.outer(inner)


def _lifespan(state: ServiceState) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.batcher.start()
        if state.review is not None:
            state.review.start()
        state.frozen.freeze()
        settings = state.settings
        watcher = (
            asyncio.create_task(state.registry.watch(settings.watch_interval_s), name="winnow-watch")
            if settings.watch
            else None
        )
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await state.batcher.close()
            if state.review is not None:
                await state.review.close()
            state.frozen.close()

    return lifespan


async def _client_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientError)
    return client_error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    err = ClientError(exc.status_code, code, str(exc.detail), "See /docs for the routes of this service.")
    return json_response(err.to_json(), exc.status_code, dict(exc.headers or {}) or None)


def create_app(
    settings: ServeSettings, *, api_keys: ApiKeys | None = None, admin_keys: ApiKeys | None = None
) -> FastAPI:
    """The service for ``settings``; loads the artifact now (a broken one raises ReloadRefused).

    ``api_keys`` defaults to the keys from ``WINNOW_API_KEY`` and ``settings.api_key_file``;
    ``admin_keys`` to those of ``settings.admin_key_file`` (none: the admin routes are absent).
    """
    metrics = ServeMetrics()
    keys = api_keys if api_keys is not None else ApiKeys.from_sources(settings.api_key_file)
    if admin_keys is None:
        admin_keys = ApiKeys.admin(settings.admin_key_file, keys)
    elif admin_keys.shares_a_key_with(keys):
        raise ConfigError("admin_keys", "(not shown)", "admin keys that are not also scoring keys")
    state = ServiceState(settings, keys, metrics, admin_keys)
    app = _ServiceApp(
        title="winnow screening service",
        version=__version__,
        description="Score and screen records with a fitted winnow screener.",
        lifespan=_lifespan(state),
    )
    app.state.winnow = state
    app.add_exception_handler(ClientError, _client_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # the key is asked for (and shown in the OpenAPI document) only when keys are configured
    app.include_router(api, dependencies=[Security(_require_key)] if keys.enabled else [])
    if admin_keys.enabled:  # no admin key, no admin routes: nobody can swap the model
        app.include_router(admin, dependencies=[Security(_require_admin_key)])
    app.include_router(probes)
    if state.review is not None:
        app.include_router(review_routes.page)
        app.include_router(review_routes.api, dependencies=[Security(_require_key)] if keys.enabled else [])
    # the scoring POSTs skip the router and FastAPI's own middleware; _Observe, outermost,
    # sees every request
    # (taken from the router itself: FastAPI >= 0.16x keeps an included router as one entry of
    # app.routes, so its APIRoutes are not listed there)
    lane: dict[str, tuple[object, Handler]] = {
        r.path: (r, r.endpoint)
        for r in api.routes
        if isinstance(r, APIRoute) and r.path in SCORING_PATHS and "POST" in (r.methods or ())
    }
    if set(lane) != set(SCORING_PATHS):
        raise RuntimeError(f"the scoring lane found {sorted(lane)}, not {SCORING_PATHS}")
    app.outer = lambda inner: _Observe(ScoringLane(inner, routes=lane, keys=keys), metrics=metrics)
    _install_openapi(app, state.registry, settings.max_records)
    return app


def _install_openapi(app: FastAPI, registry: ModelRegistry, max_records: int) -> None:
    """OpenAPI document whose request bodies come from the serving model's schema (rebuilt on swap)."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        model: LoadedModel = registry.current
        if cache.get("version") == model.version:
            return cache["doc"]  # type: ignore[no-any-return]
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=f"{app.description}\n\nServing model version {model.version}.",
            routes=app.routes,
        )
        screen_body, score_body, components = body_schemas(model, max_records)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(components)
        schemas["ReloadRequest"] = ReloadRequest.model_json_schema()
        for path, body in (
            ("/v1/screen", screen_body),
            ("/v1/score", score_body),
            ("/v1/explain", score_body),
        ):
            doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"] = body
        cache.update(version=model.version, doc=doc)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """Factory for uvicorn (``--factory``): settings from ``WINNOW_SERVE_SETTINGS``."""
    log_winnow = logging.getLogger("winnow")
    if not log_winnow.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        log_winnow.addHandler(handler)
        log_winnow.setLevel(logging.INFO)
        log_winnow.propagate = False
    return create_app(ServeSettings.from_env())
