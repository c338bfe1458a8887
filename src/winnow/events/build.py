"""Event log -> entity table: for fitting (features + label at each cut, stacked) and for
screening (features as of one date), with the same definitions.

:func:`training_table` learns the definitions (:class:`~winnow.events.features.EventFeatures`)
and, when asked, trains the sequence encoder out of fold; :class:`EventModel` is what the
artifact keeps of both, and :meth:`EventModel.entity_table` replays them for a screening date.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from winnow.config import ScreenConfig
from winnow.errors import ConfigError
from winnow.events.features import EventFeatures
from winnow.events.log import EventLog
from winnow.events.sequence import SCORE, SequenceEncoder, Steps
from winnow.events.spec import SPLIT, as_date

if TYPE_CHECKING:
    from winnow.fitted import Fitted

#: the artifact's files for an event screener
EVENTS_JSON, EVENTS_WEIGHTS = "events.json", "events.safetensors"
#: share of entities held out as test rows when several cuts are stacked
TEST_SHARE = 0.2


@dataclass
class EventModel:
    """The entity-table definitions and the sequence encoder (None when not asked for)."""

    features: EventFeatures
    encoder: SequenceEncoder | None = None
    #: what the fit's event log held and did not use
    log_summary: dict[str, Any] = field(default_factory=dict)

    def entity_table(self, data: Any, as_of: date | str, threads: int = 0) -> pa.Table:
        """The features of every entity with events before ``as_of`` (no label)."""
        cut = as_date(as_of)
        f = self.features
        with EventLog(data, f.entity, f.time, threads) as log:
            table = f.entity_table(log, cut)
            if self.encoder is not None:
                steps = self.encoder.steps(log, cut, table.column(f.entity))
                table = table.append_column(SCORE, pa.array(self.encoder.score(steps)))
        return table

    @contextmanager
    def entity_file(self, data: Any, as_of: date | str, threads: int = 0) -> Iterator[Path]:
        """:meth:`entity_table` written to a temporary Parquet file (removed after the ``with``
        block): DuckDB writes it straight from the sorted result, spilling beyond its memory
        limit, so any number of entities screens with bounded memory. With the sequence encoder
        the rows are built whole first (its steps come from one query over every entity)."""
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory(prefix="winnow-entities-") as tmp:
            path = Path(tmp) / "entities.parquet"
            if self.encoder is not None:
                pq.write_table(self.entity_table(data, as_of, threads), path, row_group_size=65_536)
            else:
                cut = as_date(as_of)
                f = self.features
                with EventLog(data, f.entity, f.time, threads) as log:
                    target = str(path).replace("'", "''")
                    log.con.execute(
                        f"COPY ({f.entity_query(log, cut, False)}) TO '{target}' "
                        "(FORMAT parquet, ROW_GROUP_SIZE 65536)"
                    )
            yield path

    def to_files(self) -> dict[str, bytes]:
        doc: dict[str, Any] = {"features": self.features.to_json(), "log": self.log_summary}
        files = {}
        if self.encoder is not None:
            meta, weights = self.encoder.to_files()
            doc["sequence"] = meta
            files[EVENTS_WEIGHTS] = weights
        files[EVENTS_JSON] = json.dumps(doc, sort_keys=True, indent=1).encode()
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> EventModel:
        doc = json.loads(files[EVENTS_JSON])
        features = EventFeatures.from_json(doc["features"])
        encoder = None
        if "sequence" in doc:
            encoder = SequenceEncoder.from_files(features, doc["sequence"], files[EVENTS_WEIGHTS])
        return cls(features, encoder, doc.get("log", {}))


def fit_from_log(data: Any, cfg: ScreenConfig, on_stage: Callable[[str], None] | None = None) -> Fitted:
    """:meth:`winnow.Screener.fit` for an event log: the entity table of each cut, then the
    usual fit on it; the result keeps the definitions (and the encoder) for screening."""
    from winnow.fit_helpers import fit_threads
    from winnow.io.readers import open_source
    from winnow.training import fit_pipeline

    t0 = time.monotonic()
    table, events = training_table(data, cfg, on_stage, threads=fit_threads(cfg))
    run = cfg
    if cfg.time_limit is not None:  # the time limit covers the whole fit: the tables and encoder too
        left = max(cfg.time_limit - (time.monotonic() - t0), 0.1 * cfg.time_limit)
        run = cfg.model_copy(update={"time_limit": left})
    fitted = fit_pipeline(open_source(table), run, on_stage=on_stage)
    fitted.config, fitted.events = cfg, events
    note = events.log_summary.get("not_used") or {}
    unused = note.get("missing_entity", 0) + note.get("unreadable_time", 0)
    if unused:
        fitted.warnings.append(
            f"{unused:,} events not used ({note['missing_entity']:,} without an entity, "
            f"{note['unreadable_time']:,} without a readable time); e.g. {'; '.join(note['examples'][:3])}"
        )
    return fitted


def _entity_split(entities: pa.Array, seed: int) -> np.ndarray:
    """'test' for a seeded fifth of the entities (every cut of one entity on the same side)."""
    out = np.empty(len(entities), dtype=object)
    for i, e in enumerate(entities.to_pylist()):
        h = hashlib.blake2b(f"{seed}:{e}".encode(), digest_size=8).digest()
        out[i] = "test" if int.from_bytes(h, "big") / 2**64 < TEST_SHARE else "train"
    return out


def training_table(
    data: Any, cfg: ScreenConfig, on_stage: Callable[[str], None] | None = None, threads: int = 0
) -> tuple[pa.Table, EventModel]:
    """The labelled entity table of every cut in ``cfg.events`` (stacked), and the model that
    rebuilds its features for another date."""
    from winnow.target import make_labels

    ev = cfg.events
    if ev is None:
        raise ConfigError("events", None, "an events definition (--entity, --time, --as-of)")
    stage = on_stage or (lambda msg: None)
    with EventLog(data, ev.entity, ev.time, threads) as log:
        stage(f"building entity tables from {log.rows:,} events as of {', '.join(map(str, ev.as_of))}")
        features = EventFeatures.learn(log, ev)
        parts = []
        for cut in ev.as_of:
            features.check_label_window(log, cut)
            parts.append(features.entity_table(log, cut, with_label=True))
        table = pa.concat_tables(parts)
        model = EventModel(features, log_summary={"events": log.rows, "not_used": log.rejected})
        entities = table.column(ev.entity).combine_chunks()
        if len(ev.as_of) > 1:
            table = table.append_column(SPLIT, pa.array(_entity_split(entities, cfg.seed), pa.string()))
        if ev.sequence:
            stage(f"training the sequence encoder on each entity's last {ev.sequence_length} events")
            encoder = SequenceEncoder(features, ev.sequence_length, cfg.seed, threads)
            steps = Steps.concat(
                [
                    encoder.steps(log, cut, part.column(ev.entity))
                    for cut, part in zip(ev.as_of, parts, strict=True)
                ]
            )
            labels = make_labels(table, cfg.target, positive=cfg.positive, top_fraction=cfg.top_fraction)
            known = labels.known
            scores = np.full(table.num_rows, np.nan)
            groups = np.asarray(pa.array(entities).cast(pa.string()).to_pylist(), dtype=object)
            rows = np.flatnonzero(known)
            scores[rows] = encoder.fit_out_of_fold(steps.take(rows), labels.y[rows], groups[rows])
            if (~known).any():
                scores[~known] = encoder.score(steps.take(np.flatnonzero(~known)))
            table = table.append_column(SCORE, pa.array(scores))
            model.encoder = encoder
    return table, model
