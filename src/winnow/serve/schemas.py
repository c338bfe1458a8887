"""Pydantic models of requests and responses, for the OpenAPI document.

The record model is built from the serving artifact's schema (one field per used column, typed
by its role), so ``/openapi.json`` and ``/docs`` show exactly what a record must carry; it is
rebuilt when a new model version is loaded. Requests are not validated with these models: a
batch with some bad records must still score the good ones, so records are checked one by one
by :meth:`winnow.online.OnlineScorer.validate`. Responses are built directly as JSON on the
hot path; the response models below describe them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from winnow.config import Role
from winnow.serve.registry import LoadedModel

_ROLE_TYPES: dict[str, tuple[Any, str]] = {
    Role.NUMERIC.value: (float | None, "A finite number (numeric strings accepted); null if unknown."),
    Role.BOOLEAN.value: (bool | int | str | None, "true/false, 0/1 or yes/no; null if unknown."),
    Role.DATETIME.value: (
        datetime | float | None,
        "An ISO 8601 date/time string or epoch seconds; null if unknown.",
    ),
    Role.CATEGORICAL.value: (str | int | float | None, "A category (string or number); null if unknown."),
    Role.TEXT.value: (str | None, "Free text; null if unknown."),
    Role.IMAGE.value: (
        str | None,
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


class ScreenResult(BaseModel):
    """The outcome for one record of ``/v1/screen``."""

    index: int
    id: Any = Field(None, description="The record's id (the id column, or its `id` field).")
    score: float | None = Field(None, description="Probability of being high-value.")
    selected: bool | None = None
    reasons: list[str] = Field(default_factory=list, description="Top reasons; `rule:<name>` first.")
    rule: str | None = Field(None, description="The rule that forced selection or exclusion.")
    rank: int | None = Field(
        None, description="1 = the best selected record of the request (null: not selected)."
    )
    error: RecordErrorModel | None = None


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

    path: str | None = Field(None, description="Another artifact folder (default: reload the current one).")


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


def record_model(model: LoadedModel) -> type[BaseModel]:
    """A pydantic model of one record of ``model``'s schema (extra fields allowed: ids, rule fields)."""
    definitions: dict[str, Any] = {}
    for i, (name, role) in enumerate(model.fields):
        tp, doc = _ROLE_TYPES[role]
        definitions[f"f{i}"] = (tp, Field(..., alias=name, description=f"{role}: {doc}"))
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Record",
        __config__=ConfigDict(extra="allow", populate_by_name=False),
        __doc__="One record. Every field is required; send null for an unknown value.",
        **definitions,
    )


def request_models(model: LoadedModel, max_records: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """(ScreenRequest, ScoreRequest) models around the record model."""
    record = record_model(model)
    screen = create_model(
        "ScreenRequest",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Several records and how to select among them.",
        records=(list[record], Field(..., min_length=1, max_length=max_records)),  # type: ignore[valid-type]
        threshold=(float | None, Field(None, ge=0, le=1, description="Select score >= threshold.")),
        budget=(
            float | None,
            Field(None, gt=0, description="0.1 = the top 10% of these records; 25 = the top 25."),
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
        schema = TypeAdapter(record | req | list[record]).json_schema(ref_template=template)  # type: ignore[valid-type,operator]
        components.update(schema.pop("$defs", {}))
        return schema

    return body(screen), body(score), components
