"""``Screener``: learn what high-value looks like, then score and screen any volume of data.

>>> from winnow import Screener
>>> s = Screener().fit("customers.parquet", target="future_spend", top_fraction=0.1)  # doctest: +SKIP
>>> s.screen("new_customers.parquet", out="top.parquet").summary  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa

from winnow.artifact import read_artifact, write_artifact
from winnow.config import Budget, ScreenConfig
from winnow.errors import ConfigError, DataError, NotFittedError
from winnow.fitted import Fitted, FittedPart
from winnow.io.readers import DEFAULT_BATCH_ROWS, open_source
from winnow.io.rejects import Reject
from winnow.metrics import screening_report
from winnow.models.base import Inputs, Learner
from winnow.models.fusion import Fusion
from winnow.monitor import Reference
from winnow.prep.preprocessor import Preprocessor
from winnow.reasons import reason_codes, reason_objects
from winnow.record_values import ARROW_TYPES, FieldInvalid, checked_record, typed_records
from winnow.rules import RuleSet
from winnow.schema import Coerced, ColumnSpec, check_columns, coerce
from winnow.select import Threshold
from winnow.target import Labels, make_labels

log = logging.getLogger("winnow")


@dataclass
class ScoredBatch:
    """A batch after scoring: ``scores`` is NaN where the record was rejected."""

    scores: np.ndarray
    inputs: Inputs
    ok: np.ndarray
    rejects: list[Reject]
    #: the batch typed to the schema (what reasons show)
    typed: Coerced


class Screener:
    """A fitted model of "high-value" plus everything needed to replay it on new data.

    Parameters
    ----------
    config : the task; or give its fields as keyword arguments to :meth:`fit`.
    """

    specs_ = FittedPart[list[ColumnSpec]]()
    prep_ = FittedPart[Preprocessor]()
    learners_ = FittedPart[dict[str, Learner]]()
    fusion_ = FittedPart[Fusion]()
    threshold_ = FittedPart[Threshold]()
    target_ = FittedPart[dict[str, Any]]()
    metrics_ = FittedPart[dict[str, Any]]()
    importance_ = FittedPart[dict[str, float]]()
    summary_ = FittedPart[dict[str, Any]]()
    warnings_ = FittedPart[list[str]]()
    evaluation_ = FittedPart[dict[str, np.ndarray]]()
    reference_ = FittedPart[Reference | None]()
    lineage_ = FittedPart[dict[str, Any] | None]()
    estimator_ = FittedPart[dict[str, Any] | None]()
    created_ = FittedPart[str]()
    version_ = FittedPart[str]()

    def __init__(self, config: ScreenConfig | None = None) -> None:
        #: the fitted state (what the artifact holds); the attributes ending in ``_`` are its fields
        self.fitted_: Fitted | None = None
        self._config = config
        #: the artifact folder this screener was loaded from or last saved to (None: fitted here)
        self.path_: Path | None = None

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        data: Any,
        config: ScreenConfig | None = None,
        *,
        on_stage: Callable[[str], None] | None = None,
        **options: Any,
    ) -> Screener:
        """Fit on labelled data (path, pandas/Polars DataFrame or Arrow table); returns self.

        ``options`` are :class:`~winnow.config.ScreenConfig` fields, e.g.
        ``target="churn", positive="yes", budget=0.05``.
        """
        from winnow.training import fit_pipeline

        cfg = config or self.config
        if cfg is None or options:
            base = cfg.model_dump() if cfg is not None else {}
            cfg = ScreenConfig.build(**{**base, **options})
        if cfg.events is not None:
            from winnow.events.build import fit_from_log

            self.fitted_ = fit_from_log(data, cfg, on_stage)
        else:
            self.fitted_ = fit_pipeline(open_source(data), cfg, on_stage=on_stage)
        self._config = cfg
        self.path_ = None
        return self

    @property
    def config(self) -> ScreenConfig | None:
        """The task: the fitted state's once fitted (what :meth:`save` writes), else the one
        given to the constructor."""
        return self.fitted_.config if self.fitted_ is not None else self._config

    @config.setter
    def config(self, value: ScreenConfig | None) -> None:
        if self.fitted_ is not None:
            if value is None:
                raise ConfigError("config", None, "a ScreenConfig (a fitted screener keeps its task)")
            self.fitted_.config = value
        self._config = value

    def _check(self) -> None:
        if self.fitted_ is None:
            raise NotFittedError()

    def __copy__(self) -> Screener:
        """A shallow copy whose fitted state is a copy too (replacing a member of the copy, as
        ``winnow optimise`` does, leaves the original as it was)."""
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        if self.fitted_ is not None:
            out.fitted_ = replace(self.fitted_)
        return out

    @property
    def id_column(self) -> str | None:
        self._check()
        return self.config.id  # type: ignore[union-attr]

    @property
    def input_columns(self) -> list[str]:
        """Columns a record must have to be scored."""
        self._check()
        return [s.name for s in self.specs_ if s.used]

    # ------------------------------------------------------------------ scoring core
    def prepare(
        self, batch: pa.Table | pa.RecordBatch | Coerced, first_row: int = 0
    ) -> tuple[Inputs, Coerced]:
        """Type and transform a batch into model inputs; returns (inputs, coerced batch).

        A batch already typed (a :class:`winnow.schema.Coerced`, e.g. from
        :func:`winnow.record_values.typed_records`) is transformed as it is."""
        self._check()
        if isinstance(batch, Coerced):
            typed = batch
        else:
            typed = coerce(batch, self.specs_, first_row=first_row)
        m = self.prep_.transform(typed, self.specs_)
        return Inputs(m=m, dense_of=self.prep_.dense), typed

    def score_batch(self, batch: pa.Table | pa.RecordBatch | Coerced, first_row: int = 0) -> ScoredBatch:
        """Score one batch: the single function behind batch, service and stream scoring."""
        x, typed = self.prepare(batch, first_row)
        # members the fusion gave no weight cost nothing at scoring time
        logits = {
            n: self.learners_[n].predict_logit(x) if w else np.zeros(len(x))
            for n, w in zip(self.fusion_.names, self.fusion_.weights, strict=True)
        }
        p = self.fusion_.probability(logits)
        p[~typed.ok] = np.nan
        return ScoredBatch(scores=p, inputs=x, ok=typed.ok, rejects=typed.rejects, typed=typed)

    def monitor(self, data: Any, *, window: int = 100_000, progress: Any = None) -> dict[str, Any]:
        """Drift of ``data`` against the training reference: per-feature PSI / Wasserstein /
        unseen share, score drift and selection rate (over the last ``window`` valid rows).
        ``progress(done, total, phase)`` is called after each batch (total None if unknown)."""
        self._check()
        from winnow.monitor import DriftMonitor

        if self.reference_ is None:
            raise NotFittedError("a monitoring reference (refit the artifact with this winnow version)")
        source = open_source(data)
        self.check_columns(source.column_names())
        mon = DriftMonitor(self.reference_, window=window)
        thr = self.threshold_.value
        rejected = 0
        total = source.num_rows()
        for row, batch in source.numbered_batches(DEFAULT_BATCH_ROWS):
            sb = self.score_batch(batch, first_row=row)
            if progress is not None:
                progress(row + batch.num_rows, total, "monitoring")
            ok = np.flatnonzero(sb.ok)
            rejected += batch.num_rows - ok.size
            scores = sb.scores[ok]
            mon.observe(sb.inputs.m.take(ok), scores, scores >= thr)
        return {**mon.report(), "rows_rejected": rejected}

    def reasons(
        self, x: Inputs, typed: pa.Table | Coerced, top: int = 3, rows: np.ndarray | None = None
    ) -> list[list[str]]:
        """Reason codes for prepared rows ``x`` and their typed values (both from
        :meth:`prepare`: the inputs, and the ``Coerced`` result or its table); with ``rows``,
        row i of ``x`` is row ``rows[i]`` of ``typed``."""
        roles = {s.name: s.role for s in self.specs_}
        return reason_codes(
            self.prep_, self.learners_, self.fusion_, x, typed, top=top, roles=roles, rows=rows
        )

    def reason_objects(
        self, x: Inputs, typed: pa.Table | Coerced, top: int = 3, rows: np.ndarray | None = None
    ) -> list[list[dict[str, object]]]:
        """:meth:`reasons` as ``{column, value, contribution}`` objects (contribution in
        log-odds; :func:`winnow.reasons.reason_text` gives the code)."""
        roles = {s.name: s.role for s in self.specs_}
        return reason_objects(
            self.prep_, self.learners_, self.fusion_, x, typed, top=top, roles=roles, rows=rows
        )

    def score(self, data: Any, *, output: str = "numpy", reasons: int = 0, progress: Any = None) -> Any:
        """Probability of being high-value for every row (NaN for rejected rows), in memory.

        ``output``: ``"numpy"`` (the probabilities, aligned with the input's rows); ``"pandas"``,
        ``"polars"`` or ``"arrow"``: a frame of ``row``, the id column, ``score``, ``rank`` (1 =
        the highest score) and ``selected`` (the artifact's threshold and rules) for every scored
        row, and with ``reasons`` its top ``reason_1..N`` (selected or not); ``"auto"``: the
        input's own frame type (pandas in, pandas out; Polars in, Polars out; anything else Arrow).
        ``progress(done, total, phase)`` is called after each batch of the numpy output.
        """
        self._check()
        if output != "numpy":
            from winnow.engines.local import score_table
            from winnow.io.frames import as_output, output_for

            if not 0 <= reasons <= 20:
                raise ConfigError("reasons", reasons, "a number of reasons from 0 to 20")
            table = score_table(self, data, reasons=reasons)
            return as_output(table, output_for(data) if output == "auto" else output)
        if reasons:
            raise ConfigError(
                "reasons", reasons, "0 with output='numpy' (reasons come in a frame: output='auto')"
            )
        from winnow.select import ScoreLog

        source = open_source(data)
        self.check_columns(source.column_names())
        scores, rejects = ScoreLog(), list[Reject]()
        total = source.num_rows() if progress is not None else None
        for row, batch in source.numbered_batches(DEFAULT_BATCH_ROWS, rejects=rejects):
            sb = self.score_batch(batch, first_row=row)
            rejects.extend(sb.rejects)
            scores.pad_to(row)
            scores.add(sb.scores)
            if progress is not None:
                progress(row + batch.num_rows, total, "scoring")
        if rejects:
            scores.pad_to(max(r.row for r in rejects) + 1)
            log.warning("%d records rejected, e.g. %s", len(rejects), rejects[0].describe())
        return scores.all()

    def score_one(self, record: Mapping[str, Any]) -> float:
        """Probability that one record is high-value: a mapping of field -> value, as a JSON
        object or a stream entry carries it (numbers may come as text; None or "" is missing).

        The path of the service's single records: no pandas, no Arrow table for well-formed
        records, the same scores as :meth:`score` on the same values. Raises
        :class:`winnow.errors.DataError` naming the field when a value is missing or refused.
        """
        self._check()
        fields = [(s.name, s.role) for s in self.specs_ if s.used]
        cols = typed_records([record], fields) if type(record) is dict else None  # type: ignore[list-item]
        if cols is not None:
            batch: pa.Table | Coerced = Coerced(None, ok=np.ones(1, dtype=bool), columns=cols)
        else:
            try:
                row = checked_record(record, fields)
            except FieldInvalid as e:
                raise DataError(e.problem, hint="Pass None for an unknown value.") from None
            batch = pa.table({n: pa.array([row[n]], ARROW_TYPES[role]) for n, role in fields})
        sb = self.score_batch(batch)
        if sb.rejects:
            r = sb.rejects[0]
            raise DataError(f"field {r.column!r}: {r.reason}", hint="Pass None for an unknown value.")
        return float(sb.scores[0])

    def check_columns(self, names: list[str]) -> None:
        """Refuse an input that lacks columns the screener needs, before reading any data."""
        self._check()
        check_columns(list(names), self.specs_)

    def embed(self, data: Any) -> np.ndarray:
        """The deep network's last hidden layer for each row: learned features, (n, h)."""
        self._check()
        deep_members = [n for n, m in self.learners_.items() if hasattr(m, "embed")]
        if not deep_members:
            raise NotFittedError("a deep network (fit with a portfolio including 'deep' or 'tabm')")
        # the network the fusion trusts most
        weight = dict(zip(self.fusion_.names, self.fusion_.weights, strict=True))
        deep = self.learners_[max(deep_members, key=lambda n: (weight.get(n, 0.0), n == "deep"))]
        source = open_source(data)
        self.check_columns(source.column_names())
        out = []
        for row, batch in source.numbered_batches(DEFAULT_BATCH_ROWS):
            sb = self.score_batch(batch, first_row=row)
            out.append(deep.embed(sb.inputs))  # type: ignore[attr-defined]
        width = int(getattr(deep, "hidden", (0,))[-1])
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)

    def explain(self, data: Any, *, output: str = "arrow") -> Any:
        """Why each row scored as it did: its fused log-odds (``logit``, Platt-calibrated), the
        ``base`` every row starts from, and ``contribution_<column>`` for every input column,
        from every member (trees' path contributions, the linear terms, the networks' integrated
        gradients) weighted as the fusion weighs them; they add up to ``logit`` but for
        ``residual`` (the networks' integration error). One row per scored record (``row``, the
        id column first); rejected records are left out and logged. ``output`` as in :meth:`score`.
        """
        self._check()
        from winnow.engines.local import explain_table
        from winnow.io.frames import as_output, output_for

        table = explain_table(self, data)
        return as_output(table, output_for(data) if output == "auto" else output)

    def similar(
        self,
        data: Any,
        examples: Any,
        *,
        top: int = 100,
        out: str | Path | None = None,
        rejects: str | Path | None = None,
        index: str | Path | None = None,
        index_kind: str = "auto",
        embedding: str = "auto",
        include_examples: bool = False,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        progress: Any = None,
    ) -> Any:
        """The ``top`` rows of ``data`` most like the known high-value ``examples``; see
        :func:`winnow.similarity.search.find_similar`."""
        from winnow.similarity.search import find_similar

        self._check()
        return find_similar(
            self,
            data,
            examples,
            top=top,
            out=out,
            rejects=rejects,
            index=index,
            index_kind=index_kind,
            embedding=embedding,
            include_examples=include_examples,
            batch_rows=batch_rows,
            progress=progress,
        )

    def entity_table(self, events: Any, as_of: date | str) -> pa.Table:
        """For a screener fitted on an event log: one row per entity with events before
        ``as_of``, its features built by the fit's definitions (what :meth:`screen` scores)."""
        from winnow.events.screen import event_model

        return event_model(self).entity_table(
            events, as_of, threads=self.config.threads if self.config else 0
        )

    def screen(
        self,
        data: Any,
        *,
        as_of: date | str | None = None,
        out: str | Path | None = None,
        budget: Budget | float | int | str | None = None,
        use_threshold: bool = False,
        rejects: str | Path | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        progress: Any = None,
        reasons: int = 3,
        workers: int = 1,
        diverse: bool = False,
        engine: str = "local",
        output: str = "arrow",
        **ray_options: Any,
    ) -> Any:
        """Select the high-value rows of ``data``: the ranked rows with score, rule and reasons.

        ``as_of``: for a screener fitted on an event log: ``data`` is the log, screened as its
        entities as of this date (:meth:`entity_table`); without it, ``data`` is a table of
        entity rows (what :meth:`entity_table` returns).

        ``output``: the type of ``result.selected`` and ``result.head``: ``"arrow"`` (tables),
        ``"pandas"``, ``"polars"``, or ``"auto"`` (the input's own frame type).

        ``engine="local"`` streams on this machine (:func:`winnow.engines.local.screen`);
        ``engine="ray"`` runs on a Ray cluster (:func:`winnow.engines.ray_engine.screen_ray`, a
        Parquet input, ``out`` or ``work_dir`` required) with the same selected rows, ranks,
        scores and reasons; ``ray_options`` are its ``address``, ``unit_rows``, ``work_dir`` and
        ``keep_parts``, and ``workers`` its actors (0: one per CPU of the cluster).
        """
        self._check()
        options: dict[str, Any] = dict(
            out=out, budget=budget, use_threshold=use_threshold, rejects=rejects, batch_rows=batch_rows,
            progress=progress, reasons=reasons, workers=workers, diverse=diverse, engine=engine,
            output=output, **ray_options,
        )  # fmt: skip
        if (self.fitted_ is not None and self.fitted_.events is not None) or as_of is not None:
            from winnow.events.screen import screen_log

            return screen_log(self, data, as_of, **options)
        return self._screen_rows(data, **options)

    def _screen_rows(  # the rows of a table (screen's work once an event log is turned into one)
        self,
        data: Any,
        *,
        out: str | Path | None,
        budget: Budget | float | int | str | None,
        use_threshold: bool,
        rejects: str | Path | None,
        batch_rows: int,
        progress: Any,
        reasons: int,
        workers: int,
        diverse: bool,
        engine: str,
        output: str,
        **ray_options: Any,
    ) -> Any:
        if budget is not None and not isinstance(budget, Budget):
            budget = Budget.parse(budget)
        common: dict[str, Any] = {
            "out": out,
            "budget": budget,
            "use_threshold": use_threshold,
            "rejects_path": rejects,
            "batch_rows": batch_rows,
            "progress": progress,
            "reasons": reasons,
        }
        from winnow.io.frames import as_output, output_for

        kind = output_for(data) if output == "auto" else output
        as_output(None, kind)  # an unknown output is refused before any work
        if engine == "ray":
            from winnow.engines.ray_engine import screen_saved_on_ray

            if diverse:
                raise ConfigError("--diverse", "with the Ray engine", "the local engine (--engine local)")
            result = screen_saved_on_ray(self, data, workers=workers or None, **common, **ray_options)
        elif engine != "local":
            raise ConfigError("engine", engine, "'local' or 'ray'")
        elif ray_options:
            raise ConfigError(", ".join(sorted(ray_options)), "with the local engine", "engine='ray'")
        else:
            from winnow.engines.local import screen

            result = screen(self, data, workers=max(workers, 1), diverse=diverse, **common)
        result.selected, result.head = as_output(result.selected, kind), as_output(result.head, kind)
        summary = result.summary
        if summary.rows_selected and summary.rows_scored:
            summary.expected = self.expected_at(summary.rows_selected / summary.rows_scored)
        return result

    def labels(self, table: pa.Table) -> Labels:
        """The fit's own label rule applied to ``table`` (its target column): ``positive``
        values, or the top-fraction cutoff the fit found (not the table's own top fraction)."""
        self._check()
        cfg = self.config
        assert cfg is not None
        return make_labels(
            table,
            cfg.target,
            positive=cfg.positive,
            top_fraction=cfg.top_fraction,
            cutoff=cast("float | None", self.target_["cutoff"]),
        )

    def expected_at(self, fraction: float) -> dict[str, Any] | None:
        """What selecting the top ``fraction`` of records should deliver, measured on the fit's
        held-out test rows: precision, lift over a random pick of that size and, when the fit
        had a ``baseline`` rule, lift over the rule's own top ``fraction``; each as
        ``{value, low, high}`` with a 90% bootstrap interval (seeded by the config's seed).

        None when the artifact keeps no held-out rows, or when it was fitted on a stratified
        sample (its held-out rows over-represent high-value records, so the rates would not
        be the data's)."""
        from winnow.metrics import expected_at_fraction

        self._check()
        ev = self.evaluation_
        cfg = self.config
        if "y" not in ev or "score" not in ev or (cfg is not None and cfg.sample_rows is not None):
            return None
        key = round(float(fraction), 6)
        cache: dict[float, dict[str, Any]] = self.__dict__.setdefault("_expected", {})
        if key not in cache:
            cache[key] = expected_at_fraction(
                ev["y"], ev["score"], key, rule=ev.get("rule"), seed=cfg.seed if cfg is not None else 0
            )
        return cache[key]

    def evaluate(self, data: Any, *, progress: Any = None) -> dict[str, Any]:
        """Screening metrics on labelled data (the target column must be present).
        ``progress(done, total, phase)`` is called while reading and after each scored batch."""
        self._check()
        cfg = self.config
        assert cfg is not None
        source = open_source(data)
        if progress is not None:
            progress(0, None, "reading")
        table = source.read_all()
        labels = self.labels(table)
        p = self.score(table, progress=progress)
        keep = labels.known & ~np.isnan(p)
        y, p = labels.y[keep], p[keep]
        if cfg.budget.fraction is not None:
            k = max(1, int(np.ceil(cfg.budget.fraction * len(y))))
        else:
            k = max(1, int(np.sum(p >= self.threshold_.value)))
        report = screening_report(y, p, budget_k=k)
        sel = p >= self.threshold_.value
        report["threshold"] = {
            "value": self.threshold_.value,
            "selected": int(sel.sum()),
            "precision": float(y[sel].mean()) if sel.any() else 0.0,
            "recall": float(y[sel].sum() / max(y.sum(), 1)),
        }
        report["rows_not_scored"] = int((~keep).sum())
        return report

    # ------------------------------------------------------------------ persistence
    def manifest(self) -> dict[str, Any]:
        """What the artifact records about this screener (without file hashes)."""
        self._check()
        assert self.fitted_ is not None
        return self.fitted_.manifest()

    def save(self, path: str | Path, *, sign_key: str | Path | None = None) -> Path:
        """Write the artifact folder (atomically); returns its path. ``sign_key``: an Ed25519
        PEM private key; the folder then carries its signature (``manifest.sig``)."""
        self._check()
        assert self.fitted_ is not None
        manifest, files = self.fitted_.to_artifact()
        write_artifact(Path(path), manifest, files, Path(sign_key) if sign_key is not None else None)
        self.path_ = Path(path)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, *, verify_key: str | Path | None = None) -> Screener:
        """Load and verify an artifact written by :meth:`save`. ``verify_key``: an Ed25519 PEM
        public key; the artifact must carry its signature (else :class:`ArtifactError`)."""
        contents = read_artifact(Path(path), Path(verify_key) if verify_key is not None else None)
        fitted = Fitted.from_artifact(Path(path), contents)
        obj = cls(fitted.config)
        obj.fitted_ = fitted
        obj.path_ = Path(path)
        obj.set_threads(fitted.config.threads)
        return obj

    def rule_set(self) -> RuleSet:
        """The artifact's named rules, type-checked against its schema (a ConfigError names a
        rule that cannot work)."""
        self._check()
        return RuleSet(self.config.rules, roles={s.name: s.role for s in self.specs_})  # type: ignore[union-attr]

    def set_threads(self, threads: int) -> None:
        """Threads used for scoring (0 = all cores of this machine)."""
        import os

        n = threads or max(1, min(os.cpu_count() or 1, 8))
        for learner in self.learners_.values():
            learner.threads = n
        self.prep_.set_threads(n)

    def __repr__(self) -> str:
        if self.fitted_ is None:
            return "Screener(unfitted)"
        return (
            f"Screener(target={self.target_['description']!r}, "
            f"models={self.fusion_.names}, threshold={self.threshold_.value:.4f})"
        )
