"""Pydantic models of requests and responses, for the OpenAPI document.

The record model is built from the serving artifact's schema (one field per used column, typed
by its role), so ``/openapi.json`` and ``/docs`` show exactly what a record must carry; it is
rebuilt when a new model version is loaded. Requests are not validated with these models: a
batch with some bad records must still score the good ones, so records are checked one by one
by :meth:`winnow.online.OnlineScorer.validate`. Responses are built directly as JSON on the
hot path; the response models below describe them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema, create_model

from winnow.config import Role
from winnow.record_values import BOOLEAN_TEXT, NUMBER_LIMIT, NUMBER_TEXT
from winnow.serve.registry import LoadedModel

# What each role takes, exactly as :func:`winnow.record_values.convert` takes it: the schema
# is the contract that generated requests are checked against (tests/serve/test_contract.py).
# Numbers are bounded where a larger one could not be converted (float64, epoch seconds).
# One "type" list per role where possible rather than anyOf: JSON Schema applies ``pattern``
# only to strings and ``minimum``/``maximum`` only to numbers, so one object says it exactly.
_ROLE_SCHEMAS: dict[str, tuple[dict[str, Any], str]] = {
    Role.NUMERIC.value: (
        {
            "type": ["number", "boolean", "string", "null"],
            "minimum": -NUMBER_LIMIT,
            "maximum": NUMBER_LIMIT,
            "pattern": NUMBER_TEXT,
        },
        "A finite number (or number text; true/false count as 1/0); null or blank if unknown.",
    ),
    Role.BOOLEAN.value: (
        {
            "type": ["boolean", "integer", "string", "null"],
            "minimum": 0,
            "maximum": 1,
            "pattern": BOOLEAN_TEXT,
        },
        "true/false, 0/1, or the words true/false, t/f, yes/no, y/n in any case; null or blank if unknown.",
    ),
    Role.DATETIME.value: (
        {
            "anyOf": [
                # years 1000-9899, so that no time-zone offset takes it outside years 1-9999
                {"type": "string", "format": "date-time", "pattern": r"^[ \t]*(1[0-9]|[2-8][0-9]|9[0-8])"},
                {"type": "string", "format": "date"},
                {"type": "string", "pattern": r"^[ \t]*$"},
                {"type": ["number", "null"], "minimum": -62135596800, "maximum": 253402300799},
            ]
        },
        "An ISO 8601 / RFC 3339 date or date-time string, or epoch seconds; null or blank if unknown.",
    ),
    Role.CATEGORICAL.value: (
        {"type": ["string", "number", "boolean", "null"]},
        "A category: a string, number or true/false (taken as its text); null or blank if unknown.",
    ),
    Role.TEXT.value: (
        {"type": ["string", "number", "boolean", "null"]},
        "Free text (numbers and true/false are taken as their text); null or blank if unknown.",
    ),
    Role.IMAGE.value: (
        {"type": ["string", "null"]},
        "Path of an image file the service can read (relative: to the screener's image_root, else "
        "the service's working directory); null if unknown.",
    ),
}


class RecordErrorModel(BaseModel):
    """Why one record was not scored."""

    index: int = Field(description="Position of the record in the request.")
    field: str | None = Field(description="The field at fault (null: the record as a whole).")
    expected: str
    received: str
    message: str


class Contribution(BaseModel):
    """One field's share of a record's fused log-odds."""

    column: str
    value: str | None = Field(description="The value as the model read it (null: not a field).")
    contribution: float = Field(description="Log-odds this field adds (negative: takes away).")


class ScreenResult(BaseModel):
    """The outcome for one record of ``/v1/screen``."""

    index: int
    id: Any = Field(None, description="The record's id (the id column, or its `id` field).")
    score: float | None = Field(None, description="Probability of being high-value.")
    selected: bool | None = None
    reasons: list[str] = Field(default_factory=list, description="Top reasons; `rule:<name>` first.")
    reason_details: list[Contribution] = Field(
        default_factory=list,
        description="The column reasons of `reasons` as objects, in the same order (the rule is "
        "in `rule`); every field's contribution comes from `/v1/explain`.",
    )
    rule: str | None = Field(None, description="The rule that forced selection or exclusion.")
    rank: int | None = Field(
        None, description="1 = the best selected record of the request (null: not selected)."
    )
    error: RecordErrorModel | None = None


class ExplainResult(BaseModel):
    """Why one record of ``/v1/explain`` scores as it does."""

    index: int
    id: Any = None
    score: float | None = Field(None, description="Probability of being high-value.")
    logit: float | None = Field(None, description="The fused log-odds the score comes from.")
    base: float | None = Field(None, description="The log-odds every record starts at.")
    residual: float | None = Field(
        None, description="What the contributions leave: the networks' integration error."
    )
    contributions: list[Contribution] = Field(
        default_factory=list,
        description="Every field, largest effect first; base + these + residual = logit.",
    )
    error: RecordErrorModel | None = None


class ExplainResponse(BaseModel):
    model_version: str
    scored: int
    rejected: int
    results: list[ExplainResult]


class ScoreResult(BaseModel):
    """The outcome for one record of ``/v1/score``."""

    index: int
    id: Any = None
    score: float | None = None
    error: RecordErrorModel | None = None


class ScreenResponse(BaseModel):
    model_version: str
    threshold: float | None = Field(description="The threshold used (null when a budget was used).")
    budget: float | int | None = None
    scored: int
    selected: int
    rejected: int
    results: list[ScreenResult]


class ScoreResponse(BaseModel):
    model_version: str
    scored: int
    rejected: int
    results: list[ScoreResult]


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    hint: str | None = None


class ErrorResponse(BaseModel):
    """A request refused as a whole; ``results`` lists per-record errors when every record failed."""

    error: ErrorDetail
    results: list[ScreenResult] | None = None


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        None,
        min_length=1,
        pattern=r"^[^\x00]+$",
        description="Another artifact folder, under the service's --reload-root (default: reload the "
        "current one).",
    )


class ReloadResponse(BaseModel):
    reloaded: bool
    changed: bool = Field(description="Whether the new version differs from the previous one.")
    previous_version: str
    version: str
    path: str


class ModelDescription(BaseModel):
    """The serving model's manifest (``GET /v1/model``)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    version: str
    path: str
    loaded_at: str
    winnow_version: str
    created: str
    threshold: dict[str, Any]
    fields: list[dict[str, str]]
    schema_: list[dict[str, Any]] = Field(alias="schema")
    metrics: dict[str, Any]
    expected: dict[str, Any] | None = Field(
        None,
        description="What selecting at the model's threshold should deliver, from the fit's "
        "held-out rows: `precision`, `lift_over_random` and, with a baseline rule, "
        "`lift_over_rule`, each `{value, low, high}` (a `level` bootstrap interval); null when "
        "the artifact keeps no held-out rows or was fitted on a stratified sample.",
    )


def record_model(model: LoadedModel) -> type[BaseModel]:
    """A pydantic model of one record of ``model``'s schema (extra fields allowed: ids, rule fields)."""
    definitions: dict[str, Any] = {}
    for i, (name, role) in enumerate(model.fields):
        schema, doc = _ROLE_SCHEMAS[role]
        tp = Annotated[Any, WithJsonSchema(schema)]
        definitions[f"f{i}"] = (tp, Field(..., alias=name, description=f"{role}: {doc}"))
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Record",
        # a body object with "records" is a request, never a record
        __config__=ConfigDict(
            extra="allow", populate_by_name=False, json_schema_extra={"not": {"required": ["records"]}}
        ),
        __doc__="One record. Every field is required; send null for an unknown value.",
        **definitions,
    )


_BUDGET = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        {"type": "integer", "minimum": 1, "maximum": 2**53},
        {"type": "null"},
    ]
}
_BOTH_THRESHOLD_AND_BUDGET: dict[str, Any] = {
    "required": ["threshold", "budget"],
    "properties": {"threshold": {"type": "number"}, "budget": {"type": "number"}},
}


def request_models(model: LoadedModel, max_records: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """(ScreenRequest, ScoreRequest) models around the record model."""
    record = record_model(model)
    screen = create_model(
        "ScreenRequest",
        # a threshold and a budget are one too many
        __config__=ConfigDict(extra="forbid", json_schema_extra={"not": _BOTH_THRESHOLD_AND_BUDGET}),
        __doc__="Several records and how to select among them (a threshold or a budget, not both).",
        records=(list[record], Field(..., min_length=1, max_length=max_records)),  # type: ignore[valid-type]
        threshold=(float | None, Field(None, ge=0, le=1, description="Select score >= threshold.")),
        budget=(
            Annotated[float | None, WithJsonSchema(_BUDGET)],
            Field(None, description="0.1 = the top 10% of these records; 25 = the top 25."),
        ),
        reasons=(int | None, Field(None, ge=0, le=20, description="Reasons per selected record.")),
    )
    score = create_model(
        "ScoreRequest",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Several records to score.",
        records=(list[record], Field(..., min_length=1, max_length=max_records)),  # type: ignore[valid-type]
    )
    return screen, score


def body_schemas(
    model: LoadedModel, max_records: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """JSON schemas of the two request bodies and the component schemas they refer to."""
    screen, score = request_models(model, max_records)
    record = screen.model_fields["records"].annotation.__args__[0]  # type: ignore[union-attr]
    template = "#/components/schemas/{model}"
    components: dict[str, Any] = {}

    def body(req: type[BaseModel]) -> dict[str, Any]:
        many = Annotated[list[record], Field(min_length=1, max_length=max_records)]  # type: ignore[valid-type]
        schema = TypeAdapter(record | req | many).json_schema(ref_template=template)  # type: ignore[operator]
        components.update(schema.pop("$defs", {}))
        return schema

    return body(screen), body(score), components
