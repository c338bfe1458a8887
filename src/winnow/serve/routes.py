"""The service's routes, as functions on three FastAPI routers.

``api`` holds the routes behind the API key (the app includes it with the key dependency when keys
are configured); ``admin`` the routes behind the admin key (included only when admin keys are
configured); ``probes`` the liveness, readiness and metrics routes, which are always open. Every
route finds what it shares with the others in ``request.app.state.winnow`` (a
:class:`winnow.serve.state.ServiceState`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from winnow.serve.arrow_body import ARROW_STREAM, decode_arrow_stream, is_arrow_stream
from winnow.serve.batcher import BatcherClosed
from winnow.serve.parsing import ClientError, check_content_type, decode_json, parse_request
from winnow.serve.registry import ReloadRefused
from winnow.serve.responses import ERRORS, RELOAD_ERRORS, finite, json_response, results_json
from winnow.serve.schemas import (
    ExplainResponse,
    ModelDescription,
    ReloadResponse,
    ScoreResponse,
    ScreenResponse,
)
from winnow.serve.security import read_body, reload_target
from winnow.serve.state import ServiceState

api = APIRouter()
admin = APIRouter()
probes = APIRouter()

# bodies larger than this are parsed in a thread so other requests are not held up
_THREAD_PARSE_BYTES = 256 * 1024


def _state(request: Request) -> ServiceState:
    return request.app.state.winnow  # type: ignore[no-any-return]


def _overloaded(seconds: float) -> ClientError:
    return ClientError(
        503,
        "timeout",
        f"the request was not answered within {seconds:g} s (overloaded)",
        "Retry later, or send fewer records per request.",
        headers={"Retry-After": "1"},
    )


def _shutting_down() -> ClientError:
    return ClientError(
        503,
        "shutting_down",
        "the service is shutting down",
        "Retry on another instance.",
        headers={"Retry-After": "1"},
    )


async def _scored(
    state: ServiceState, request: Request, selection: bool, explain: bool = False
) -> tuple[Any, Any, Any]:
    """Read, parse and score one JSON request: returns (parsed request, model, results).
    ``explain``: the records' explanations instead, computed on a worker thread."""
    settings = state.settings
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
                doc, max_records=settings.max_records, default_reasons=settings.reasons, selection=selection
            )
            model = state.registry.current  # this request finishes on this model, even after a swap
            if explain:
                return parsed, model, await asyncio.to_thread(model.scorer.explain_records, parsed.records)
            results = await state.batcher.submit(
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
        raise _overloaded(settings.request_timeout_s) from None
    except BatcherClosed:
        raise _shutting_down() from None
    return parsed, model, results


def _none_scored(results: list[dict[str, Any]]) -> ClientError:
    """The 422 of a request none of whose records could be scored, with every record's error."""
    first = results[0]["error"]["message"]
    n = len(results)
    return ClientError(
        422,
        "invalid_records",
        first if n == 1 else f"none of the {n} records could be scored (first: {first})",
        "Fix the fields named in each record's error; send null for an unknown value. "
        "GET /v1/model lists the fields.",
        extra={"results": results},
    )


async def run_scoring(request: Request, route: str, selection: bool) -> Response:
    """The JSON scoring routes: score (and select and explain) the records of one request."""
    state = _state(request)
    parsed, model, results = await _scored(state, request, selection)
    out, scored, selected, rejected = results_json(parsed, results, selection)
    state.metrics.observe_results(route, scored, selected if selection else None, rejected)
    if selection and state.review is not None:
        state.review.offer(model.version, parsed.records, out)
    if scored == 0:
        raise _none_scored(out)
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
    return json_response(payload)


async def run_arrow_scoring(request: Request) -> Response:
    """``POST /v1/score`` with an Arrow IPC stream body: scores column-wise, answers in Arrow.

    The body is read zero-copy into a table here; the micro-batcher scores it on the scoring
    thread, together with the other Arrow bodies of the same schema that wait."""
    state = _state(request)
    settings = state.settings
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            body = await read_body(request, settings.max_body_bytes)
            table = decode_arrow_stream(body, settings.max_records)
            model = state.registry.current
            answer = await state.batcher.submit_table(model, table)
    except TimeoutError:
        raise _overloaded(settings.request_timeout_s) from None
    except BatcherClosed:
        raise _shutting_down() from None
    state.metrics.observe_results("/v1/score", answer.scored, None, answer.rejected)
    return Response(
        answer.body,
        media_type=ARROW_STREAM,
        headers={
            "X-Model-Version": model.version,
            "X-Scored": str(answer.scored),
            "X-Rejected": str(answer.rejected),
        },
    )


@api.post(
    "/v1/screen",
    response_model=None,
    responses={200: {"model": ScreenResponse}, **ERRORS},
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


@api.post(
    "/v1/score",
    response_model=None,
    responses={
        200: {
            "model": ScoreResponse,
            "content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
            "description": "JSON results, or for an Arrow body an Arrow IPC stream with one row "
            "per record: the id column (when the artifact has one), score (null when rejected) "
            "and error (null when scored).",
        },
        **ERRORS,
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


@api.post(
    "/v1/explain",
    response_model=None,
    responses={200: {"model": ExplainResponse}, **ERRORS},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
    summary="Explain records: every field's contribution",
)
async def explain(request: Request) -> Response:
    """One record, a list, or ``{"records": [...]}``: each record's score, the fused log-odds it
    comes from, and every field's contribution to them, from every member of the model (trees,
    linear terms, networks), as ``{column, value, contribution}`` objects, selected or not."""
    state = _state(request)
    _, model, results = await _scored(state, request, selection=False, explain=True)
    scored = sum("error" not in r for r in results)
    state.metrics.observe_results("/v1/explain", scored, None, len(results) - scored)
    if scored == 0:
        raise _none_scored(results)
    rejected = len(results) - scored
    return json_response(
        finite({"model_version": model.version, "scored": scored, "rejected": rejected, "results": results})
    )


@api.get(
    "/v1/model",
    response_model=None,
    responses={200: {"model": ModelDescription}, 401: ERRORS[401]},
    summary="The serving model",
)
async def model_info(request: Request) -> Response:
    """Version, fields to send, schema, metrics and threshold of the serving model."""
    state = _state(request)
    model = state.registry.current
    described = state.described
    if described.get("version") != model.version:
        described.clear()
        described.update(version=model.version, body=finite(model.describe()))
    return json_response(described["body"])


def is_artifact_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding a manifest (whether it verifies is the load's business)."""
    try:
        return (path / "manifest.json").is_file()
    except (OSError, ValueError):
        return False


def _reload_path(state: ServiceState, body: bytes) -> Path | None:
    """The folder a reload request names (None: the service's own), or a ClientError."""
    if not body.strip():
        return None
    doc = decode_json(body)
    if not isinstance(doc, dict) or set(doc) - {"path"}:
        raise ClientError(422, "invalid_body", 'expected {"path": "<artifact folder>"} or no body')
    raw = doc.get("path")
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
        raise ClientError(422, "invalid_option", "'path' must be a folder path (a string)")
    return reload_target(raw, state.settings.artifact, state.settings.reload_root)


@admin.post(
    "/v1/admin/reload",
    response_model=None,
    responses={200: {"model": ReloadResponse}, **RELOAD_ERRORS},
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReloadRequest"}}},
        }
    },
    summary="Load a new model version",
)
async def reload(request: Request) -> Response:
    """Reload the artifact folder (or ``{"path": "other/folder"}`` under the reload root) and
    swap it in atomically. Wants the admin key (``X-Admin-Key``).

    Requests already admitted finish on the old model. A path with no artifact is 404; a broken
    artifact is refused (409) and the old model keeps serving.
    """
    state = _state(request)
    check_content_type(request.headers.get("content-type"))
    path = _reload_path(state, await read_body(request, 64 * 1024))
    previous = state.registry.current
    target = path if path is not None else state.registry.path
    if not await asyncio.to_thread(is_artifact_folder, target):
        raise ClientError(
            404,
            "artifact_not_found",
            f"no artifact folder at {str(target)!r} (a folder with a manifest.json)",
            "Name the folder written by `winnow fit --out`.",
        )
    try:
        new = await state.registry.areload(path)
    except ReloadRefused as e:
        raise ClientError(
            409,
            "artifact_refused",
            str(e),
            "Fix or replace the artifact folder (`winnow fit --out`), then reload again.",
        ) from None
    return json_response(
        {
            "reloaded": True,
            "changed": new.version != previous.version,
            "previous_version": previous.version,
            "version": new.version,
            "path": str(new.path),
        }
    )


@api.get(
    "/v1/monitor",
    response_model=None,
    responses={401: ERRORS[401]},
    summary="Drift of the live records against the training reference",
)
async def monitor(request: Request) -> Response:
    """Per-feature PSI / Wasserstein / unseen share, score drift and selection rate of the
    most recent records, against the serving model's training reference."""
    model = _state(request).registry.current
    mon = model.scorer.monitor
    if mon is None:
        raise ClientError(
            404,
            "no_reference",
            "the serving artifact has no monitoring reference",
            "Refit it with this winnow version.",
        )
    return json_response(finite({"model_version": model.version, **mon.report()}))


@probes.get("/healthz", summary="Liveness")
async def healthz(request: Request) -> dict[str, Any]:
    return {"status": "ok", "uptime_s": round(time.time() - _state(request).started, 3)}


@probes.get("/readyz", summary="Readiness", response_model=None)
async def readyz(request: Request) -> Response:
    state = _state(request)
    model = state.registry.current
    if state.ready and state.batcher.running:
        return json_response({"status": "ready", "model_version": model.version})
    return json_response({"status": "not ready", "model_version": model.version}, 503)


@probes.get(
    "/metrics",
    summary="Prometheus metrics",
    response_model=None,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."}},
)
async def prometheus(request: Request) -> Response:
    state = _state(request)
    mon = state.registry.current.scorer.monitor
    if mon is not None:
        state.metrics.observe_drift(mon.report())
    return Response(state.metrics.render(), media_type=state.metrics.content_type)
