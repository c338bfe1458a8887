"""One typed configuration for a screening task.

CLI flags and TOML files map onto :class:`ScreenConfig`; the fitted artifact stores it.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from winnow.errors import ConfigError
from winnow.events.spec import AS_OF, SPLIT, EventsConfig
from winnow.rules import Rule

MODEL_NAMES = ("lightgbm", "lightgbm_xt", "lightgbm_rf", "linear", "deep", "tabm", "catboost")
PRESET_NAMES = ("fast", "balanced", "best")
TUNABLE = ("lightgbm", "deep")


class Role(StrEnum):
    """What a column is to winnow."""

    ID = "id"
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"
    IMAGE = "image"
    IGNORE = "ignore"


class Budget(BaseModel):
    """How many records the user can act on.

    Exactly one of ``fraction`` (0 < f < 1), ``count`` (>= 1) or ``min_precision`` is set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction: float | None = Field(default=None, gt=0, lt=1)
    count: int | None = Field(default=None, ge=1)
    min_precision: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Budget:
        n = sum(v is not None for v in (self.fraction, self.count, self.min_precision))
        if n != 1:
            raise ValueError("set exactly one of fraction, count, min_precision")
        return self

    @classmethod
    def parse(cls, value: str | float | int | None, min_precision: float | None = None) -> Budget:
        """Read ``--budget`` (``0.05`` is a fraction, ``1000`` a count) or ``--min-precision``."""
        if value is not None and min_precision is not None:
            raise ConfigError("--budget/--min-precision", (value, min_precision), "only one of the two")
        if min_precision is not None:
            if not 0 < float(min_precision) <= 1:
                raise ConfigError("--min-precision", min_precision, "a number in (0, 1]")
            return cls(min_precision=float(min_precision))
        if value is None:
            return cls(fraction=0.05)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError("--budget", value, "a fraction like 0.05 or a count like 1000") from None
        if 0 < number < 1:
            return cls(fraction=number)
        if number >= 1 and number == int(number):
            return cls(count=int(number))
        raise ConfigError("--budget", value, "a fraction in (0, 1) or a whole count >= 1")

    def describe(self) -> str:
        if self.fraction is not None:
            return f"top {self.fraction:.2%}"
        if self.count is not None:
            return f"top {self.count:,}"
        return f"precision >= {self.min_precision:.0%}"


#: the CLI's event-log flags (``--entity``, ``--time``, ...) -> EventsConfig fields
EVENT_FLAGS = ("entity", "time", "as_of", "label_window", "windows", "history", "sequence", "sequence_length")
#: flags named differently from their EventsConfig field
EVENT_FLAG_FIELDS = {"event_columns": "columns"}


def _events_from_flags(data: dict[str, Any]) -> dict[str, Any]:
    """``--entity E --time T --as-of D --target 'sum(x)'`` -> the ``events`` table (the target
    flag is the label's aggregate)."""
    events = dict(data.get("events") or {})
    for key in (*EVENT_FLAGS, *EVENT_FLAG_FIELDS):
        if key in data:
            events[EVENT_FLAG_FIELDS.get(key, key)] = data.pop(key)
    if "target" in data and "(" in str(data["target"]):
        events["label"] = data.pop("target")
    data.setdefault("target", "")
    return events


class ScreenConfig(BaseModel):
    """Everything that defines a screening task and how winnow fits it."""

    model_config = ConfigDict(extra="forbid")

    target: str
    positive: list[str] | None = None
    top_fraction: float | None = Field(default=None, gt=0, lt=1)
    id: str | None = None
    budget: Budget = Field(default_factory=lambda: Budget(fraction=0.05))
    baseline: str | None = None
    split_column: str | None = None
    drop: list[str] = Field(default_factory=list)
    roles: dict[str, Role] = Field(default_factory=dict)
    #: fast (seconds), balanced (minutes), best (search + the widest portfolio, the time limit's worth)
    preset: str = "balanced"
    #: portfolio members; None = the preset's
    models: list[str] | None = None
    #: kinds whose hyper-parameters are searched (lightgbm, deep); None = the preset's
    tune: list[str] | None = None
    #: trials per searched kind (exact and reproducible); None = as many as the time allows
    tune_trials: int | None = Field(default=None, ge=1)
    time_limit: float | None = Field(default=None, gt=0)
    seed: int = 0
    #: text columns reach the linear model as hashed TF-IDF n-grams, sentence-encoder embeddings,
    #: or both (TF-IDF by default: on the fine-food reviews it beat the frozen encoder and the mix,
    #: and came within 0.003 AUC-PR of the fine-tuned mix in seconds instead of minutes;
    #: bench/text_encoder.py)
    text: str = "tfidf"
    #: fine-tune the sentence encoder's top layers on the training labels before embedding
    #: (text = "encoder" or "both"; winnow.prep.finetune; bench/text_encoder.py measures it)
    finetune_text: bool = False
    #: image columns: a local safetensors file of ResNet-18 weights (torchvision's parameter names)
    #: used as a frozen feature extractor; None = train a small CNN on the labelled images
    image_weights: str | None = None
    #: side in pixels images are resized to; None = 32 for the small CNN, 224 for the ResNet
    image_size: int | None = Field(default=None, ge=8, le=1024)
    #: folder relative image paths resolve against (fitting and screening alike); None = the
    #: current working directory
    image_root: str | None = None
    #: most epochs the small CNN trains for (early-stopped on a held-out part of the training rows)
    image_epochs: int = Field(default=30, ge=1, le=500)
    #: cross-fitting folds on small data; None = the preset's
    folds: int | None = Field(default=None, ge=2, le=20)
    small_data_rows: int = Field(default=50_000, ge=0)
    test_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    #: after the test report, refit the weighted models on every labelled row
    refit_full: bool = True
    #: the model that scores: "fast" drops the members whose fusion weight does not pay for
    #: their inference cost (winnow.models.fusion.prune_for_cost), "full" keeps every member
    #: the greedy selection weighted
    live_model: str = "fast"
    threads: int = Field(default=0, ge=0)
    #: fit on a stratified reservoir sample of at most this many rows, read in one bounded pass
    #: (data larger than memory); None = read every row
    sample_rows: int | None = Field(default=None, ge=100)
    #: positives the sample keeps at most (default: half of sample_rows); the rest are negatives
    sample_positives: int | None = Field(default=None, ge=1)
    rules: list[Rule] = Field(default_factory=list)
    #: before fitting, drop training rows whose label cross-validated confident learning finds
    #: probably wrong (winnow.quality.label_issues); the test rows are never dropped
    drop_label_issues: bool = False
    #: pretrain the deep members' encoder self-supervised (SCARF) on every training row and every
    #: row without a target, then fit them on the labelled rows (winnow.models.pretrain)
    pretrain: bool = False
    #: the data is an event log: fit on one row per entity built as of each cut date
    #: (winnow.events); ``target`` is then the label column it builds (``future_amount_sum``)
    events: EventsConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> ScreenConfig:
        if self.events is not None:
            self.target = self.events.label_column
            self.id = self.id or self.events.entity
            if AS_OF not in self.drop:
                self.drop = [*self.drop, AS_OF]
            if len(self.events.as_of) > 1 and self.split_column is None:
                self.split_column = SPLIT
        if (self.positive is None) == (self.top_fraction is None):
            raise ValueError(
                "high-value needs exactly one of `positive` (a label value) or `top_fraction` "
                "(the top share of a numeric target)"
            )
        if self.text not in ("tfidf", "encoder", "both"):
            raise ValueError("text must be one of ['tfidf', 'encoder', 'both']")
        if self.finetune_text and self.text == "tfidf":
            raise ValueError(
                "finetune_text fine-tunes the sentence encoder: set text = 'encoder' or 'both' "
                "(--text both) as well"
            )
        if self.live_model not in ("fast", "full"):
            raise ValueError("live_model must be one of ['fast', 'full']")
        if self.preset not in PRESET_NAMES:
            raise ValueError(f"preset must be one of {list(PRESET_NAMES)}")
        if self.models is not None:
            unknown = [m for m in self.models if m not in MODEL_NAMES]
            if unknown or not self.models or len(set(self.models)) != len(self.models):
                raise ValueError(f"models must be a non-empty subset of {list(MODEL_NAMES)}, each once")
        if self.tune is not None and any(t not in TUNABLE for t in self.tune):
            raise ValueError(f"tune must be a subset of {list(TUNABLE)}")
        if self.target in self.drop:
            raise ValueError("the target column cannot also be dropped")
        return self

    @classmethod
    def build(cls, file: Path | None = None, **overrides: Any) -> ScreenConfig:
        """Merge a TOML file (optional) with CLI overrides; ``None`` overrides are ignored."""
        data: dict[str, Any] = {}
        if file is not None:
            try:
                with open(file, "rb") as fh:
                    raw = tomllib.load(fh)
            except FileNotFoundError:
                raise ConfigError("--config", str(file), "an existing TOML file") from None
            except tomllib.TOMLDecodeError as e:
                raise ConfigError("--config", str(file), "valid TOML", str(e)) from e
            data.update(raw.get("winnow", raw))
        data.update({k: v for k, v in overrides.items() if v is not None})
        if data.get("entity") is not None or data.get("events") is not None:
            data["events"] = _events_from_flags(data)
        if isinstance(data.get("positive"), str | int | float | bool):
            data["positive"] = [data["positive"]]
        if "positive" in data and data["positive"] is not None:
            data["positive"] = [str(v) for v in data["positive"]]
        if isinstance(data.get("budget"), str | int | float):
            data["budget"] = Budget.parse(data["budget"])
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "config"
            raise ConfigError(loc, first.get("input"), first["msg"]) from e
