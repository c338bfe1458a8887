"""The FastAPI application: thin routes over the registry, the batcher and the one scoring function.

Routes::

    POST /v1/screen        score, select (artifact threshold, or a threshold/budget per request), explain
    POST /v1/score         scores only (JSON, or an Arrow IPC stream in and out for bulk scoring)
    GET  /v1/model         the serving model's manifest: version, schema, metrics, threshold
    POST /v1/admin/reload  load the artifact again (or another folder) and swap it in
    GET  /healthz          the process is up
    GET  /readyz           a model is loaded and requests are taken
    GET  /metrics          Prometheus

Error statuses are decided in one place, :class:`winnow.serve.parsing.ClientError`: 400
malformed JSON, 401 API key, 408 body too slow, 413 body or batch too large, 415 not JSON, 422
usable JSON that is not a scoring request (or whose every record is invalid), 503 overloaded or
shutting down. A batch with some invalid records is a 200 whose results carry per-record
errors. A 500 means a bug in winnow, never bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request, Security
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from winnow import __version__
from winnow.monitor import DriftMonitor
from winnow.online import RecordResult
from winnow.serve.arrow_body import ARROW_STREAM, decode_arrow_stream, is_arrow_stream, score_arrow
from winnow.serve.batcher import BatcherClosed, MicroBatcher
from winnow.serve.metrics import ServeMetrics
from winnow.serve.parsing import ClientError, ParsedRequest, check_content_type, decode_json, parse_request
from winnow.serve.registry import LoadedModel, ModelRegistry, ReloadRefused
from winnow.serve.schemas import (
    ErrorResponse,
    ModelDescription,
    ReloadRequest,
    ReloadResponse,
    ScoreResponse,
    ScreenResponse,
    body_schemas,
)
from winnow.serve.security import HEADER, ApiKeys, read_body
from winnow.serve.settings import ServeSettings

log = logging.getLogger("winnow.serve")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Malformed JSON.",
        401: "Missing or invalid API key.",
        408: "The body did not arrive in time.",
        413: "Body or batch too large.",
        415: "The body is not JSON.",
        422: "Not a scoring request, or no record could be scored (see results).",
        503: "Overloaded or shutting down; retry.",
    }.items()
}
# bodies larger than this are parsed in a thread so other requests are not held up
_THREAD_PARSE_BYTES = 256 * 1024


class ServiceState:
    """What the routes share: settings, keys, registry, batcher, metrics."""

    def __init__(self, settings: ServeSettings, keys: ApiKeys, metrics: ServeMetrics) -> None:
        self.settings, self.keys, self.metrics = settings, keys, metrics
        self.registry = ModelRegistry(
            settings.artifact,
            threads=settings.threads,
            on_swap=metrics.model_swapped,
            on_refused=metrics.reload_refused,
            monitor=self._monitor_for,
        )
        self.batcher = MicroBatcher(
            max_wait_s=settings.batch_wait_ms / 1000,
            max_records=settings.max_batch_records,
            on_batch=metrics.observe_batch,
        )
        self.ready = False
        self.started = time.time()

    def _monitor_for(self, screener: Any) -> DriftMonitor | None:
        """A drift monitor per model version (None for artifacts without a reference)."""
        if screener.reference_ is None:
            return None
        st = self.settings
        return DriftMonitor(
            screener.reference_,
            window=st.monitor_window,
            audit_fraction=st.audit_fraction,
            audit_path=st.audit_file,
        )


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


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:  # e.g. an echoed id beyond 64 bits: the standard encoder copes
        body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _finite(obj: Any) -> Any:
    """JSON-safe copy: NaN and infinities (possible in stored metrics) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _echo_id(result: RecordResult, record: Any) -> Any:
    if result.id is not None:
        return result.id
    if isinstance(record, dict):
        v = record.get("id")
        if isinstance(v, str):
            return v[:200]
        if isinstance(v, bool | int) or (isinstance(v, float) and math.isfinite(v)):
            return v
    return None


def _results_json(
    parsed: ParsedRequest, results: list[RecordResult], selection: bool
) -> tuple[list[dict[str, Any]], int, int, int]:
    out: list[dict[str, Any]] = []
    scored = selected = rejected = 0
    for record, r in zip(parsed.records, results, strict=True):
        d: dict[str, Any] = {"index": r.index, "id": _echo_id(r, record)}
        error = asdict(r.error) if r.error is not None else None
        if error is None and (r.score is None or not math.isfinite(r.score)):
            error = {
                "index": r.index,
                "field": None,
                "expected": "a record the model can score",
                "received": "no score",
                "message": f"record {r.index}: the model gave no score; check the record's values",
            }
        if error is not None:
            rejected += 1
            d["score"] = None
            if selection:
                d.update(selected=None, reasons=[], rule=None, rank=None)
            d["error"] = error
        else:
            scored += 1
            d["score"] = r.score
            if selection:
                selected += bool(r.selected)
                d.update(selected=r.selected, reasons=r.reasons, rule=r.rule, rank=r.rank)
        out.append(d)
    return out, scored, selected, rejected


def create_app(settings: ServeSettings, *, api_keys: ApiKeys | None = None) -> FastAPI:
    """The service for ``settings``; loads the artifact now (a broken one raises ReloadRefused).

    ``api_keys`` defaults to the keys from ``WINNOW_API_KEY`` and ``settings.api_key_file``.
    """
    metrics = ServeMetrics()
    keys = api_keys if api_keys is not None else ApiKeys.from_sources(settings.api_key_file)
    state = ServiceState(settings, keys, metrics)
    registry, batcher = state.registry, state.batcher

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        watcher = (
            asyncio.create_task(registry.watch(settings.watch_interval_s), name="winnow-watch")
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
            await batcher.close()

    app = FastAPI(
        title="winnow screening service",
        version=__version__,
        description="Score and screen records with a fitted winnow screener.",
        lifespan=lifespan,
    )
    app.state.winnow = state
    app.add_middleware(_Observe, metrics=metrics)

    key_header = APIKeyHeader(name=HEADER, auto_error=False, description="The service's API key.")

    async def require_key(key: str | None = Security(key_header)) -> None:
        keys.require(key)

    guarded = [Security(require_key)] if keys.enabled else []

    @app.exception_handler(ClientError)
    async def _client_error(_request: Request, exc: ClientError) -> Response:
        return _json(exc.to_json(), exc.status, exc.headers or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        err = ClientError(exc.status_code, code, str(exc.detail), "See /docs for the routes of this service.")
        return _json(err.to_json(), exc.status_code, dict(exc.headers or {}) or None)

    async def run_scoring(request: Request, route: str, selection: bool) -> Response:
        phase = "body"
        try:
            async with asyncio.timeout(settings.request_timeout_s):
                check_content_type(request.headers.get("content-type"))
                body = await read_body(request, settings.max_body_bytes)
                phase = "scoring"
                if len(body) > _THREAD_PARSE_BYTES:
                    doc = await asyncio.to_thread(decode_json, body)
                else:
                    doc = decode_json(body)
                parsed = parse_request(
                    doc,
                    max_records=settings.max_records,
                    default_reasons=settings.reasons,
                    selection=selection,
                )
                model = registry.current  # this request finishes on this model, even after a swap
                results = await batcher.submit(
                    model,
                    parsed.records,
                    threshold=parsed.threshold,
                    budget=parsed.budget,
                    reasons=parsed.reasons,
                )
        except TimeoutError:
            if phase == "body":
                raise ClientError(
                    408,
                    "request_timeout",
                    f"the request body did not arrive within {settings.request_timeout_s:g} s",
                    "Send the whole body at once, or smaller bodies.",
                ) from None
            raise ClientError(
                503,
                "timeout",
                f"the request was not answered within {settings.request_timeout_s:g} s (overloaded)",
                "Retry later, or send fewer records per request.",
                headers={"Retry-After": "1"},
            ) from None
        except BatcherClosed:
            raise ClientError(
                503,
                "shutting_down",
                "the service is shutting down",
                "Retry on another instance.",
                headers={"Retry-After": "1"},
            ) from None
        out, scored, selected, rejected = _results_json(parsed, results, selection)
        metrics.observe_results(route, scored, selected if selection else None, rejected)
        if scored == 0:
            first = out[0]["error"]["message"]
            n = len(out)
            raise ClientError(
                422,
                "invalid_records",
                first if n == 1 else f"none of the {n} records could be scored (first: {first})",
                "Fix the fields named in each record's error; send null for an unknown value. "
                "GET /v1/model lists the fields.",
                extra={"results": out},
            )
        payload: dict[str, Any] = {"model_version": model.version}
        if selection:
            payload["threshold"] = (
                None
                if parsed.budget is not None
                else (parsed.threshold if parsed.threshold is not None else model.screener.threshold_.value)
            )
            payload["budget"] = parsed.options.get("budget")
            payload.update(scored=scored, selected=selected, rejected=rejected)
        else:
            payload.update(scored=scored, rejected=rejected)
        payload["results"] = out
        return _json(payload)

    @app.post(
        "/v1/screen",
        dependencies=guarded,
        response_model=None,
        responses={200: {"model": ScreenResponse}, **_ERRORS},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
        summary="Score, select and explain records",
    )
    async def screen(request: Request) -> Response:
        """One record, a list, or ``{"records": [...], "threshold"|"budget"?, "reasons"?}``.

        Selected: score >= the artifact's threshold (or the ``threshold`` given), or the top of
        these records by ``budget``; named rules force or exclude records (reason ``rule:<name>``).
        Invalid records get an ``error`` and the others are scored.
        """
        return await run_scoring(request, "/v1/screen", selection=True)

    async def run_arrow_scoring(request: Request) -> Response:
        try:
            async with asyncio.timeout(settings.request_timeout_s):
                body = await read_body(request, settings.max_body_bytes)
                model = registry.current
                out, scored, rejected = await asyncio.to_thread(
                    lambda: score_arrow(model.scorer, decode_arrow_stream(body, settings.max_records))
                )
        except TimeoutError:
            raise ClientError(
                503,
                "timeout",
                f"the request was not answered within {settings.request_timeout_s:g} s",
                "Retry later, or send fewer records per request.",
                headers={"Retry-After": "1"},
            ) from None
        metrics.observe_results("/v1/score", scored, None, rejected)
        return Response(
            out,
            media_type=ARROW_STREAM,
            headers={"X-Model-Version": model.version, "X-Scored": str(scored), "X-Rejected": str(rejected)},
        )

    @app.post(
        "/v1/score",
        dependencies=guarded,
        response_model=None,
        responses={
            200: {
                "model": ScoreResponse,
                "content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
                "description": "JSON results, or for an Arrow body an Arrow IPC stream with one row "
                "per record: the id column (when the artifact has one), score (null when rejected) "
                "and error (null when scored).",
            },
            **_ERRORS,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {}},
                    ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
        summary="Score records",
    )
    async def score(request: Request) -> Response:
        """One record, a list, or ``{"records": [...]}``: the probability of each being high-value.

        Bulk scoring: a body of type ``application/vnd.apache.arrow.stream`` (an Arrow IPC stream
        of record batches, columns named like the fields) is scored column-wise, without JSON, and
        answered with an Arrow IPC stream of ``id`` (if any), ``score`` and ``error``.
        """
        if is_arrow_stream(request.headers.get("content-type")):
            return await run_arrow_scoring(request)
        return await run_scoring(request, "/v1/score", selection=False)

    described: dict[str, Any] = {}

    @app.get(
        "/v1/model",
        dependencies=guarded,
        response_model=None,
        responses={200: {"model": ModelDescription}, 401: _ERRORS[401]},
        summary="The serving model",
    )
    async def model_info() -> Response:
        """Version, fields to send, schema, metrics and threshold of the serving model."""
        model = registry.current
        if described.get("version") != model.version:
            described.clear()
            described.update(version=model.version, body=_finite(model.describe()))
        return _json(described["body"])

    @app.post(
        "/v1/admin/reload",
        dependencies=guarded,
        response_model=None,
        responses={200: {"model": ReloadResponse}, **_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReloadRequest"}}},
            }
        },
        summary="Load a new model version",
    )
    async def reload(request: Request) -> Response:
        """Reload the artifact folder (or ``{"path": "other/folder"}``) and swap it in atomically.

        Requests already admitted finish on the old model. A broken artifact is refused (422)
        and the old model keeps serving.
        """
        check_content_type(request.headers.get("content-type"))
        body = await read_body(request, 64 * 1024)
        path: Path | None = None
        if body.strip():
            doc = decode_json(body)
            if not isinstance(doc, dict) or set(doc) - {"path"}:
                raise ClientError(422, "invalid_body", 'expected {"path": "<artifact folder>"} or no body')
            raw = doc.get("path")
            if raw is not None:
                if not isinstance(raw, str) or not raw.strip():
                    raise ClientError(422, "invalid_option", "'path' must be a folder path (a string)")
                if not settings.allow_reload_path:
                    raise ClientError(
                        403,
                        "forbidden",
                        "this service reloads only its own artifact folder",
                        "Replace the folder's contents and reload without a path.",
                    )
                path = Path(raw)
        previous = registry.current
        try:
            new = await registry.areload(path)
        except ReloadRefused as e:
            raise ClientError(
                422,
                "artifact_refused",
                str(e),
                "Fix or replace the artifact folder (`winnow fit --out`), then reload again.",
            ) from None
        return _json(
            {
                "reloaded": True,
                "changed": new.version != previous.version,
                "previous_version": previous.version,
                "version": new.version,
                "path": str(new.path),
            }
        )

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - state.started, 3)}

    @app.get("/readyz", summary="Readiness", response_model=None)
    async def readyz() -> Response:
        model = registry.current
        if state.ready and batcher.running:
            return _json({"status": "ready", "model_version": model.version})
        return _json({"status": "not ready", "model_version": model.version}, 503)

    @app.get(
        "/v1/monitor",
        dependencies=guarded,
        response_model=None,
        responses={401: _ERRORS[401]},
        summary="Drift of the live records against the training reference",
    )
    async def monitor() -> Response:
        """Per-feature PSI / Wasserstein / unseen share, score drift and selection rate of the
        most recent records, against the serving model's training reference."""
        model = registry.current
        mon = model.scorer.monitor
        if mon is None:
            raise ClientError(
                404,
                "no_reference",
                "the serving artifact has no monitoring reference",
                "Refit it with this winnow version.",
            )
        return _json(_finite({"model_version": model.version, **mon.report()}))

    @app.get("/metrics", summary="Prometheus metrics", response_model=None)
    async def prometheus() -> Response:
        mon = registry.current.scorer.monitor
        if mon is not None:
            metrics.observe_drift(mon.report())
        return Response(metrics.render(), media_type=metrics.content_type)

    _install_openapi(app, registry, settings.max_records)
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
        for path, body in (("/v1/screen", screen_body), ("/v1/score", score_body)):
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
