"""JSON bodies of the service's answers: results per record, errors, JSON-safe values."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from fastapi.responses import Response

from winnow.io.rejects import Reject
from winnow.online import RecordResult
from winnow.serve.parsing import ClientError, ParsedRequest
from winnow.serve.schemas import ErrorResponse


def _documented(texts: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": text} for status, text in texts.items()}


#: the error statuses every scoring route may answer, for the OpenAPI document
ERRORS = _documented(
    {
        400: "Malformed JSON.",
        401: "Missing or invalid API key.",
        408: "The body did not arrive in time.",
        413: "Body too large.",
        415: "The body is not JSON.",
        422: "Not a scoring request, too many records, or no record could be scored (see results).",
        503: "Overloaded or shutting down; retry.",
    }
)

#: the error statuses of the admin reload route
RELOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **{s: ERRORS[s] for s in (400, 401, 413, 415, 422)},
    **_documented(
        {
            403: "The path is outside the reload root (or not the served folder).",
            404: "No artifact folder at the path.",
            409: "The artifact was refused (it fails verification); the old model keeps serving.",
        }
    ),
}


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:  # e.g. an echoed id beyond 64 bits: the standard encoder copes
        body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def client_error_response(exc: ClientError) -> Response:
    """The JSON answer to a :class:`~winnow.serve.parsing.ClientError`, with its status and headers."""
    return json_response(exc.to_json(), exc.status, exc.headers or None)


def finite(obj: Any) -> Any:
    """JSON-safe copy: NaN and infinities (possible in stored metrics) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def echo_id(result: RecordResult, record: Any) -> Any:
    if result.id is not None:
        return result.id
    if isinstance(record, dict):
        v = record.get("id")
        if isinstance(v, str):
            return v[:200]
        if isinstance(v, bool | int) or (isinstance(v, float) and math.isfinite(v)):
            return v
    return None


def results_json(
    parsed: ParsedRequest, results: list[RecordResult], selection: bool
) -> tuple[list[dict[str, Any]], int, int, int]:
    out: list[dict[str, Any]] = []
    scored = selected = rejected = 0
    for record, r in zip(parsed.records, results, strict=True):
        d: dict[str, Any] = {"index": r.index, "id": echo_id(r, record)}
        err = r.error
        if err is None and (r.score is None or not math.isfinite(r.score)):
            err = Reject(r.index, "the model gave no score; check the record's values", value="no score")
        error = err.record_json() if err is not None else None
        if error is not None:
            rejected += 1
            d["score"] = None
            if selection:
                d.update(selected=None, reasons=[], reason_details=[], rule=None, rank=None)
            d["error"] = error
        else:
            scored += 1
            d["score"] = r.score
            if selection:
                selected += bool(r.selected)
                d.update(
                    selected=r.selected,
                    reasons=r.reasons,
                    reason_details=r.reason_details,
                    rule=r.rule,
                    rank=r.rank,
                )
        out.append(d)
    return out, scored, selected, rejected
