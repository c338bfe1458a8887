"""What a fit produces and an artifact holds: one object, written and read by itself.

:func:`winnow.training.fit_pipeline` returns a :class:`Fitted`; :class:`winnow.Screener` wraps
it (its ``specs_``, ``prep_``, ... attributes are this object's fields) and saves it with
:meth:`Fitted.to_artifact`; :meth:`Fitted.from_artifact` reads it back from a verified folder.
Each part serialises its own state (the preprocessor and the fusion to JSON, the members to
their own formats, the arrays to safetensors); this module only says where each part goes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import numpy as np

from winnow import __version__
from winnow.artifact import ArtifactContents, dumps
from winnow.config import ScreenConfig
from winnow.errors import ArtifactError, NotFittedError
from winnow.models.base import Learner, learner_class
from winnow.models.fusion import Fusion
from winnow.monitor import Reference
from winnow.prep.preprocessor import Preprocessor
from winnow.schema import ColumnSpec
from winnow.select import Threshold

if TYPE_CHECKING:
    from winnow.events.build import EventModel
    from winnow.screener import Screener

T = TypeVar("T")

#: the artifact's files besides the manifest and the members' files
PREPROCESS, PREPROCESS_ARRAYS = "preprocess.json", "preprocess.safetensors"
EVALUATION, MONITOR = "evaluation.safetensors", "monitor.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Fitted:
    """All a fitted screener holds: its task, schema, preprocessing, members, fusion, threshold
    and what the fit measured."""

    config: ScreenConfig
    specs: list[ColumnSpec]
    prep: Preprocessor
    learners: dict[str, Learner]
    fusion: Fusion
    threshold: Threshold
    #: ``{"description": ..., "cutoff": ...}``: what "high-value" meant for this fit
    target: dict[str, Any]
    metrics: dict[str, Any]
    importance: dict[str, float]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    #: held-out test rows: ``y`` (0/1), ``score`` (winnow), ``logistic_regression`` and ``rule``
    #: scores when present, for reports and plots (curves need the rows, not only the metrics)
    evaluation: dict[str, np.ndarray] = field(default_factory=dict)
    #: the reference profile drift monitoring compares live data with
    reference: Reference | None = None
    #: set by :func:`winnow.retrain.retrain`: parent version, data added, metrics of both
    lineage: dict[str, Any] | None = None
    #: set by :class:`winnow.estimator.WinnowClassifier`: its parameters, classes, features
    estimator: dict[str, Any] | None = None
    #: an event-log fit (winnow.events): the entity-table definitions and the sequence encoder
    events: EventModel | None = None
    created: str = field(default_factory=_now)
    version: str = __version__

    def manifest(self) -> dict[str, Any]:
        """What the artifact's manifest records (without the members' files and the hashes)."""
        return {
            "winnow_version": self.version,
            "created": self.created,
            # without an event log the config is written as before it had one (older versions load it)
            "config": self.config.model_dump(
                mode="json", exclude={"events"} if self.config.events is None else None
            ),
            "target": self.target,
            "schema": [s.to_json() for s in self.specs],
            "fusion": self.fusion.to_json(),
            "threshold": self.threshold.to_json(),
            "metrics": self.metrics,
            "importance": self.importance,
            "summary": self.summary,
            "warnings": self.warnings,
            **({"lineage": self.lineage} if self.lineage else {}),
            **({"estimator": self.estimator} if self.estimator else {}),
        }

    def to_artifact(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The manifest (with its ``models`` entry) and the files, for :func:`write_artifact`."""
        from safetensors.numpy import save

        manifest = self.manifest()
        files = {PREPROCESS: dumps(self.prep.to_json()).encode()}
        arrays = self.prep.arrays()
        if arrays:
            files[PREPROCESS_ARRAYS] = save(arrays)
        if self.evaluation:
            files[EVALUATION] = save(self.evaluation)
        if self.reference is not None:
            files[MONITOR] = dumps(self.reference.to_json()).encode()
        models = {}
        for name, learner in self.learners.items():
            cfg, payloads = learner.state()
            refs = {}
            for suffix, data in payloads.items():
                rel = f"models/{name}.{suffix}"
                files[rel] = data
                refs[suffix] = rel
            models[name] = {"kind": learner.name, "config": cfg, "files": refs}
        manifest["models"] = models
        if self.events is not None:
            files.update(self.events.to_files())
        return manifest, files

    @classmethod
    def from_artifact(cls, path: Path, contents: ArtifactContents) -> Fitted:
        """Rebuild from a verified artifact (:func:`winnow.artifact.read_artifact`); an
        :class:`ArtifactError` names what is incomplete or which model file its library refused."""
        man, files = contents.manifest, contents.files
        try:
            from safetensors.numpy import load

            arrays = load(files[PREPROCESS_ARRAYS]) if PREPROCESS_ARRAYS in files else None
            learners = {}
            for name, entry in man["models"].items():
                payloads = {suffix: files[rel] for suffix, rel in entry["files"].items()}
                kind = entry.get("kind", name)  # format 1 before kinds: the member name is the kind
                learners[name] = learner_class(kind).from_state(entry["config"], payloads)
            return cls(
                config=ScreenConfig.model_validate(man["config"]),
                specs=[ColumnSpec.from_json(s) for s in man["schema"]],
                prep=Preprocessor.from_json(json.loads(files[PREPROCESS]), arrays),
                learners=learners,
                fusion=Fusion.from_json(man["fusion"]),
                threshold=Threshold(**man["threshold"]),
                target=man["target"],
                metrics=man["metrics"],
                importance=man["importance"],
                summary=man["summary"],
                warnings=man["warnings"],
                evaluation=dict(load(files[EVALUATION])) if EVALUATION in files else {},
                reference=Reference.from_json(json.loads(files[MONITOR])) if MONITOR in files else None,
                lineage=man.get("lineage"),
                estimator=man.get("estimator"),
                events=_events(files),
                created=man["created"],
                version=man["winnow_version"],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ArtifactError(path, f"manifest content is incomplete or invalid ({e!r})") from e
        except Exception as e:  # a model library refusing its own file: report it as such
            raise ArtifactError(path, f"a model file cannot be loaded ({type(e).__name__}: {e})") from e


def _events(files: dict[str, bytes]) -> EventModel | None:
    from winnow.events.build import EVENTS_JSON, EventModel

    return EventModel.from_files(files) if EVENTS_JSON in files else None


class FittedPart(Generic[T]):
    """A :class:`winnow.Screener` attribute that is a field of its :class:`Fitted`
    (``screener.specs_`` is ``screener.fitted_.specs``); reading it before the fit raises
    :class:`~winnow.errors.NotFittedError`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = name.removesuffix("_")

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> FittedPart[T]: ...
    @overload
    def __get__(self, obj: Screener, objtype: type | None = None) -> T: ...
    def __get__(self, obj: Screener | None, objtype: type | None = None) -> T | FittedPart[T]:
        if obj is None:
            return self
        return getattr(_state(obj), self.field)  # type: ignore[no-any-return]

    def __set__(self, obj: Screener, value: T) -> None:
        setattr(_state(obj), self.field, value)


def _state(screener: Screener) -> Fitted:
    if screener.fitted_ is None:
        raise NotFittedError()
    return screener.fitted_
