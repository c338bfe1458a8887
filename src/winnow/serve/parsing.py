"""Request bodies into records and options, and every whole-request refusal (4xx) in one place.

A body is one of::

    {"field": value, ...}                                  one record
    [{...}, {...}]                                         several records
    {"records": [{...}, ...], "threshold": 0.3}            records and options
    {"records": [...], "budget": 0.1, "reasons": 2}        budget: 0.1 = top 10%, 25 = top 25

Records themselves are not checked here: :meth:`winnow.online.OnlineScorer.validate` does that
per record, so one bad record does not refuse the others. Only what makes the whole request
unusable raises :class:`ClientError`, whose ``status`` is the HTTP status (400, 401, 408, 413,
415, 422, 503) and whose ``message``/``hint`` tell the client how to fix it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from winnow.config import Budget

OPTIONS = ("threshold", "budget", "reasons")
_SHAPE_HINT = (
    'Send one record as a JSON object, or {"records": [{...}, ...]} with optional "threshold" '
    '(0..1), "budget" (0.1 = top 10%, 25 = top 25) and "reasons" (0..20).'
)


class ClientError(Exception):
    """A request refused as a whole; becomes an HTTP error response.

    Parameters
    ----------
    status : HTTP status code.
    code : a stable machine-readable name (``malformed_json``, ``too_many_records``, ...).
    message : what was wrong.
    hint : how to fix it.
    extra : more JSON fields for the response (e.g. per-record ``results``).
    headers : HTTP headers for the response (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        hint: str = "",
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.code, self.message, self.hint = status, code, message, hint
        self.extra = extra or {}
        self.headers = headers or {}
        super().__init__(f"{status} {code}: {message}" + (f" {hint}" if hint else ""))

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.hint:
            err["hint"] = self.hint
        return {"error": err, **self.extra}


@dataclass
class ParsedRequest:
    """What a scoring request asks for."""

    records: list[Any]
    single: bool = False
    threshold: float | None = None
    budget: Budget | None = None
    reasons: int = 3
    options: dict[str, Any] = field(default_factory=dict)


def check_content_type(content_type: str | None) -> None:
    """Refuse bodies declared as something other than JSON (415); a missing type is read as JSON."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise ClientError(
        415,
        "unsupported_media_type",
        f"the body is declared as {media!r}, this endpoint reads JSON",
        "Send the header Content-Type: application/json.",
    )


_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def decode_json(body: bytes) -> Any:
    """Parse a JSON body; NaN and Infinity literals are kept (records with them are rejected later)."""
    if not body.strip():
        raise ClientError(400, "empty_body", "the request body is empty", _SHAPE_HINT)
    # orjson reads an integer beyond 64 bits as a float (a 30-digit id would lose digits, an
    # integer beyond float64 would become the largest float): a long run of digits anywhere
    # takes the exact standard parser
    if _LONG_DIGITS.search(body) is None:
        try:
            return orjson.loads(body)  # fast path; strict JSON only
        except orjson.JSONDecodeError:
            pass  # NaN/Infinity literals, or truly malformed: the standard parser says which and where
    try:
        return json.loads(body)
    except UnicodeDecodeError as e:
        raise ClientError(
            400, "malformed_json", f"the body is not UTF-8 text ({e.reason})", "Encode the JSON as UTF-8."
        ) from None
    except json.JSONDecodeError as e:
        raise ClientError(
            400,
            "malformed_json",
            f"the body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
            _SHAPE_HINT,
        ) from None
    except RecursionError:
        raise ClientError(
            400, "malformed_json", "the JSON is nested too deeply", "Records are flat objects."
        ) from None
    except ValueError as e:  # e.g. an integer longer than Python's digit limit
        raise ClientError(400, "malformed_json", f"the body is not usable JSON: {e}", _SHAPE_HINT) from None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _option_error(name: str, expected: str, received: Any) -> ClientError:
    shown = repr(received)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ClientError(
        422,
        "invalid_option",
        f"{name!r}: expected {expected}, received {type(received).__name__} {shown}",
        _SHAPE_HINT,
    )


def parse_threshold(value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or not 0 <= value <= 1:
        raise _option_error("threshold", "a number between 0 and 1", value)
    return float(value)


def parse_budget(value: Any) -> Budget | None:
    if value is None:
        return None
    expected = "a fraction in (0, 1) such as 0.1, or a whole count >= 1 such as 25"
    if not _is_number(value) or not math.isfinite(value):
        raise _option_error("budget", expected, value)
    if 0 < value < 1:
        return Budget(fraction=float(value))
    if value >= 1 and float(value).is_integer() and value <= 2**53:
        return Budget(count=int(value))
    raise _option_error("budget", expected, value)


def parse_reasons(value: Any, default: int) -> int:
    if value is None:
        return default
    # 3.0 is an integer too (as JSON Schema says)
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if not whole or isinstance(value, bool) or not 0 <= value <= 20:
        raise _option_error("reasons", "an integer from 0 to 20", value)
    return int(value)


def parse_request(doc: Any, *, max_records: int, default_reasons: int, selection: bool) -> ParsedRequest:
    """Split a decoded body into records and options; ``selection`` is False for score-only."""
    options: dict[str, Any] = {}
    single = False
    if isinstance(doc, list):
        records = doc
    elif isinstance(doc, dict) and "records" in doc:
        records = doc["records"]
        options = {k: v for k, v in doc.items() if k != "records"}
        allowed = OPTIONS if selection else ()
        unknown = sorted(k for k in options if k not in allowed)
        if unknown:
            where = "allowed: " + ", ".join(allowed) if allowed else "/v1/score takes no options"
            raise ClientError(
                422,
                "unknown_option",
                f"unknown request option(s) {unknown} beside 'records' ({where})",
                "Put record fields inside the objects of 'records'; check the option spelling.",
            )
        if not isinstance(records, list):
            raise ClientError(
                422,
                "invalid_records",
                f"'records' must be a list of JSON objects, received {type(records).__name__}",
                _SHAPE_HINT,
            )
    elif isinstance(doc, dict):
        records, single = [doc], True
    else:
        raise ClientError(
            422,
            "invalid_body",
            f"expected a JSON object or a list of objects, received {type(doc).__name__}",
            _SHAPE_HINT,
        )
    if not records:
        raise ClientError(422, "no_records", "the request has no records", _SHAPE_HINT)
    if len(records) > max_records:
        raise ClientError(
            422,
            "too_many_records",
            f"the request has {len(records):,} records, this service takes at most {max_records:,}",
            f"Split the batch into requests of at most {max_records:,} records.",
        )
    threshold = parse_threshold(options.get("threshold"))
    budget = parse_budget(options.get("budget"))
    if threshold is not None and budget is not None:
        raise ClientError(
            422,
            "invalid_option",
            "'threshold' and 'budget' were both given",
            "Give one: a score threshold, or a budget of how many records to select.",
        )
    reasons = parse_reasons(options.get("reasons"), default_reasons) if selection else 0
    return ParsedRequest(
        records=records, single=single, threshold=threshold, budget=budget, reasons=reasons, options=options
    )
