"""Screening on a Ray cluster with Ray Data: the same result as the local engine, row for row.

The input (Parquet) is cut into units of whole row groups (:mod:`winnow.engines.units`). A Ray
Data pipeline maps the units over a fixed pool of actors (``ActorPoolStrategy``); each actor
loads the artifact once and runs whole units, reading its row groups straight from the shared
path and writing its output next to the job:

* **budget** (top-k): pass 1 writes each unit's scores (``row``, ``score``, ``rule``; 8-20
  bytes a row); the driver reads them and picks the exact global top-k with the very function
  the local engine uses (:func:`winnow.select.choose_rows`); pass 2 runs only the units that hold
  selected rows and writes those rows with their rank and reasons;
* **threshold**: one pass; each unit writes its rows at or above the artifact's threshold.

Every unit's files are written atomically and then marked done; a job that is killed and
started again with the same artifact, input and options skips the units already done, so it
neither redoes nor duplicates them. The driver writes the final file only after the last unit,
then removes the job's folder (``keep_parts`` keeps it).

Every node must see the artifact, the input and the job folder at the same paths (a shared
file system, or one machine), and have winnow installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from winnow.config import Budget
from winnow.engines.output import (
    N_REASONS,
    SPILL_ROWS,
    Progress,
    RankedOutput,
    ScreenResult,
    ScreenSummary,
    close_summary,
    finish_selected,
    rank_selected,
    selected_table,
    threshold_selected,
    threshold_selection,
)
from winnow.engines.units import DEFAULT_UNIT_ROWS, Plan, Unit, plan_units, unit_batches, write_atomic
from winnow.engines.units import write_table_atomic as _write_table
from winnow.errors import ArtifactError, ConfigError
from winnow.io.readers import DEFAULT_BATCH_ROWS
from winnow.io.rejects import Reject, RejectsWriter
from winnow.select import TopK, budget_candidates, choose_rows, top_capacity

if TYPE_CHECKING:
    from winnow.screener import Screener

log = logging.getLogger(__name__)

SCORES, THRESHOLD, SELECT = "scores", "threshold", "select"


class UnitRunner:
    """A Ray Data actor: loads the artifact once, then runs one pass over whole units."""

    def __init__(self, artifact: str, folder: str, phase: str, schema: bytes, batch_rows: int, reasons: int):
        from winnow.screener import Screener

        self.screener = Screener.load(artifact)
        self.screener.set_threads(1)  # one actor per CPU Ray gives it
        self.rules = self.screener.rule_set()
        self.folder = Path(folder)
        self.phase = phase
        self.schema = pa.ipc.read_schema(pa.py_buffer(schema))
        self.batch_rows = batch_rows
        self.reasons = reasons
        if phase == SELECT:
            sel = pq.read_table(self.folder / "selection.parquet")
            self.rows = sel.column("row").to_numpy()
            self.ranks = sel.column("rank").to_numpy()
            self.scores = sel.column("score").to_numpy()
            self.rule_names = sel.column("rule").to_pylist()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names, rows = [], []
        for text in batch["unit"]:
            unit = Unit.from_json(str(text))
            t0 = time.monotonic()
            done = {SCORES: self._scores, THRESHOLD: self._threshold, SELECT: self._select}[self.phase](unit)
            done.update(seconds=round(time.monotonic() - t0, 3), host=socket.gethostname(), pid=os.getpid())
            done["node"] = _node_id()
            # the marker is written last: a unit without one is redone from scratch
            write_atomic(self.folder / f"{unit.name}.done.json", json.dumps(done).encode())
            names.append(unit.name)
            rows.append(unit.rows)
        return {"unit": np.array(names), "rows": np.array(rows, dtype=np.int64)}

    def _rejects(self, unit: Unit, rejects: list[Reject]) -> None:
        text = "".join(json.dumps(asdict(r), default=str) + "\n" for r in rejects)
        write_atomic(self.folder / f"{unit.name}.rejects.jsonl", text.encode())

    def _scores(self, unit: Unit) -> dict[str, Any]:
        rows, scores, rules, rejects = [], [], [], []
        scored = 0
        for row, batch in unit_batches(unit, self.schema, self.batch_rows):
            sb = self.screener.score_batch(batch, first_row=row)
            forced: dict[int, str] = {}
            rows.append(np.arange(row, row + batch.num_rows, dtype=np.int64))
            hits = self.rules.evaluate(pa.Table.from_batches([batch])) if self.rules else None
            scores.append(budget_candidates(sb.scores, sb.ok, hits, row, forced))
            rules.append([forced.get(r) for r in range(row, row + batch.num_rows)] if forced else None)
            rejects += sb.rejects
            scored += int(sb.ok.sum())
        rule_col = pa.array(
            [v for part, r in zip(rules, rows, strict=True) for v in (part or [None] * len(r))], pa.string()
        )
        table = pa.table(
            {
                "row": pa.array(np.concatenate(rows) if rows else np.zeros(0, np.int64)),
                "score": pa.array(np.concatenate(scores) if scores else np.zeros(0)),
                "rule": rule_col,
            }
        )
        _write_table(self.folder / f"{unit.name}.scores.parquet", table)
        self._rejects(unit, rejects)
        return {"rows_scored": scored, "rows_rejected": len(rejects)}

    def _threshold(self, unit: Unit) -> dict[str, Any]:
        parts, rejects = [], []
        scored = 0
        for row, batch in unit_batches(unit, self.schema, self.batch_rows):
            sb = self.screener.score_batch(batch, first_row=row)
            rejects += sb.rejects
            scored += int(sb.ok.sum())
            part = threshold_selected(self.screener, self.rules, batch, row, sb, self.reasons)
            if part is not None:
                parts.append(part)
        if parts:
            _write_table(self.folder / f"{unit.name}.selected.parquet", pa.concat_tables(parts))
        self._rejects(unit, rejects)
        selected = sum(len(p) for p in parts)
        return {"rows_scored": scored, "rows_rejected": len(rejects), "rows_selected": selected}

    def _select(self, unit: Unit) -> dict[str, Any]:
        parts = []
        for row, batch in unit_batches(unit, self.schema, self.batch_rows):
            lo, hi = np.searchsorted(self.rows, [row, row + batch.num_rows])
            if hi > lo:
                glob = self.rows[lo:hi]
                raw = pa.Table.from_batches([batch])
                names = self.rule_names[lo:hi]
                ranks, scores = self.ranks[lo:hi], self.scores[lo:hi]
                parts.append(
                    selected_table(self.screener, raw, row, glob - row, ranks, scores, self.reasons, names)
                )
        if parts:
            _write_table(self.folder / f"{unit.name}.selected.parquet", pa.concat_tables(parts))
        return {"rows_selected": sum(len(p) for p in parts)}


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray (a unit run in-process)
        return None


def _done(folder: Path, unit: Unit) -> dict[str, Any] | None:
    path = folder / f"{unit.name}.done.json"
    return json.loads(path.read_text()) if path.exists() else None


class RayJob:
    """One ``screen`` on Ray: the job folder, the Ray connection and the passes."""

    def __init__(
        self,
        artifact: str | Path,
        plan: Plan,
        folder: Path,
        *,
        identity: dict[str, Any],
        batch_rows: int,
        reasons: int,
        workers: int | None,
        progress: Progress | None,
    ) -> None:
        self.artifact, self.plan, self.folder = str(Path(artifact).resolve()), plan, folder
        self.batch_rows, self.reasons, self.workers = batch_rows, reasons, workers
        self.progress = progress or (lambda done, total, phase: None)
        self.resumed = 0
        self._prepare_folder(identity)

    def _prepare_folder(self, identity: dict[str, Any]) -> None:
        job = self.folder / "job.json"
        if job.exists():
            if json.loads(job.read_text()) == identity:
                return
            # the folder holds another job's parts (other artifact, input or options): start over
            log.warning("job folder %s belongs to another job; starting over", self.folder)
            shutil.rmtree(self.folder)
        elif self.folder.exists() and any(self.folder.iterdir()):
            raise ConfigError(
                "--work-dir",
                str(self.folder),
                "an empty or new folder (or one a previous run of this job left)",
                hint="winnow keeps a job's parts there; give a folder of its own.",
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(job, json.dumps(identity, indent=1).encode())

    def run_pass(self, phase: str, units: list[Unit], folder: Path, label: str) -> dict[str, dict[str, Any]]:
        """Run ``phase`` over the units not yet done; return every unit's done marker."""
        import ray
        import ray.data

        folder.mkdir(parents=True, exist_ok=True)
        todo = [u for u in units if _done(folder, u) is None]
        self.resumed += len(units) - len(todo)
        total = sum(u.rows for u in units)
        finished = total - sum(u.rows for u in todo)
        self.progress(finished, total, label)
        if todo:
            pool = min(self._pool_size(ray), len(todo))
            ds: ray.data.Dataset = ray.data.from_items(
                [{"unit": u.to_json()} for u in todo], override_num_blocks=len(todo)
            )
            ds = ds.map_batches(
                UnitRunner,
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=pool),
                num_cpus=1,
                fn_constructor_kwargs={
                    "artifact": self.artifact,
                    "folder": str(folder.resolve()),
                    "phase": phase,
                    "schema": self.plan.schema.serialize().to_pybytes(),
                    "batch_rows": self.batch_rows,
                    "reasons": self.reasons,
                },
            )
            for rec in ds.iter_rows():
                finished += int(rec["rows"])
                self.progress(finished, total, label)
        markers = {u.name: _done(folder, u) for u in units}
        missing = [n for n, m in markers.items() if m is None]
        if missing:
            raise RuntimeError(f"Ray finished without these units: {', '.join(missing[:5])}")
        return markers  # type: ignore[return-value]

    def _pool_size(self, ray: Any) -> int:
        if self.workers:
            return self.workers
        return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _identity(artifact: Path, plan: Plan, **options: Any) -> dict[str, Any]:
    try:
        checksum = json.loads((artifact / "manifest.json").read_text())["checksum"]
    except (OSError, KeyError, ValueError) as e:
        raise ArtifactError(
            artifact, f"cannot read its manifest ({e})", "Point at a folder written by `winnow fit`."
        ) from e
    return {"artifact": checksum, "input": plan.fingerprint, "units": len(plan.units), **options}


def _aligned(unit: Unit, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """A unit's scores by position (its rows are consecutive from ``first_row``)."""
    out = np.full(unit.rows, np.nan)
    out[rows - unit.first_row] = scores
    return out


def _merge_rejects(folder: Path, units: list[Unit], rw: RejectsWriter) -> None:
    for u in units:
        path = folder / f"{u.name}.rejects.jsonl"
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                rw.add([Reject(**json.loads(line)) for line in fh if line.strip()])


def _read_parts(folder: Path, units: list[Unit], suffix: str) -> list[pa.Table]:
    return [pq.read_table(p) for u in units if (p := folder / f"{u.name}.{suffix}.parquet").exists()]


def connect(address: str | None, workers: int | None) -> Callable[[], None]:
    """Connect to the cluster at ``address`` or start a local Ray; returns the clean-up to call."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ConfigError(
            "--engine", "ray", "Ray Data installed", hint="pip install 'winnow[ray]' (ray[data] >= 2.40)."
        ) from e

    if ray.is_initialized():
        return lambda: None
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(
                "--address",
                address,
                "the address of a running Ray cluster (host:port of its head, or 'auto')",
                hint=f"Ray said: {e}",
            ) from e
    else:
        ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    return ray.shutdown


def screen_ray(
    artifact: str | Path,
    data: Any,
    *,
    out: str | Path | None,
    budget: Budget | float | int | None = None,
    use_threshold: bool = False,
    rejects_path: str | Path | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    reasons: int = N_REASONS,
    address: str | None = None,
    workers: int | None = None,
    unit_rows: int = DEFAULT_UNIT_ROWS,
    work_dir: str | Path | None = None,
    keep_parts: bool = False,
    progress: Progress | None = None,
) -> ScreenResult:
    """:func:`winnow.engines.local.screen` on Ray: same selected rows, ranks, scores and reasons."""
    from winnow.screener import Screener

    t0 = time.monotonic()
    if out is None and work_dir is None:
        raise ConfigError("--out", None, "an output file (or a --work-dir) for the Ray engine")
    screener = Screener.load(artifact)
    plan = plan_units(data, unit_rows)
    screener.check_columns(plan.schema.names)
    if budget is not None and not isinstance(budget, Budget):
        budget = Budget.parse(budget)
    budget = budget or screener.config.budget  # type: ignore[union-attr]
    threshold_mode = use_threshold or budget.min_precision is not None
    if work_dir is None and str(out).startswith(("duckdb:", "postgres")):
        raise ConfigError("--work-dir", None, "a folder for the Ray job's parts when --out is a table")
    folder = Path(work_dir) if work_dir is not None else Path(f"{out}.parts")
    identity = _identity(
        Path(artifact),
        plan,
        mode=THRESHOLD if threshold_mode else SCORES,
        budget=budget.model_dump(),
        reasons=reasons,
        batch_rows=batch_rows,
    )
    job = RayJob(
        artifact,
        plan,
        folder,
        identity=identity,
        batch_rows=batch_rows,
        reasons=reasons,
        workers=workers,
        progress=progress,
    )
    summary = ScreenSummary(out=str(out) if out else None)
    selected = RankedOutput(SPILL_ROWS if out is not None else None)
    shutdown = connect(address, workers)
    try:
        with RejectsWriter(Path(rejects_path) if rejects_path else None) as rw:
            pass1 = folder / "pass1"
            if threshold_mode:
                thr = screener.threshold_.value
                summary.selection, summary.threshold = threshold_selection(thr), thr
                markers = job.run_pass(THRESHOLD, plan.units, pass1, "screening on Ray")
                ranked = rank_selected(_read_parts(pass1, plan.units, "selected"))
                if ranked is not None:
                    selected.add(ranked)
            else:
                markers = job.run_pass(SCORES, plan.units, pass1, "scoring on Ray (pass 1 of 2)")
                # the driver keeps only the budget's candidates, unit by unit: O(k) memory
                top = TopK(top_capacity(budget, plan.rows))
                forced: dict[int, str] = {}
                for u in plan.units:
                    part = pq.read_table(pass1 / f"{u.name}.scores.parquet")
                    rows = part.column("row").to_numpy()
                    scores = part.column("score").to_numpy(zero_copy_only=False)
                    top.add(u.first_row, _aligned(u, rows, scores))
                    rule = part.column("rule")
                    if rule.null_count < len(rule):
                        named = np.flatnonzero(rule.is_valid().to_numpy(zero_copy_only=False))
                        names = rule.take(pa.array(named)).to_pylist()
                        forced.update(zip(rows[named].tolist(), names, strict=True))
                        top.pin(rows[named], scores[named])
                rows_scored = sum(m["rows_scored"] for m in markers.values())
                choice = choose_rows(top, forced, budget, rows_scored)
                summary.selection, summary.threshold = choice.description, choice.threshold
                rows_sorted, ranks_sorted, scores_sorted = choice.by_row()
                digest = hashlib.sha256(rows_sorted.tobytes() + ranks_sorted.tobytes()).hexdigest()[:12]
                pass2 = folder / f"pass2-{digest}"
                pass2.mkdir(parents=True, exist_ok=True)
                sel_path = pass2 / "selection.parquet"
                if not sel_path.exists():
                    _write_table(
                        sel_path,
                        pa.table(
                            {
                                "row": rows_sorted,
                                "rank": ranks_sorted,
                                "score": scores_sorted,
                                "rule": pa.array([forced.get(int(r)) for r in rows_sorted], pa.string()),
                            }
                        ),
                    )
                starts = np.array([u.first_row for u in plan.units])
                hit = np.unique(np.searchsorted(starts, rows_sorted, side="right") - 1)
                units2 = [plan.units[i] for i in hit]
                job.run_pass(SELECT, units2, pass2, "writing selected rows on Ray (pass 2 of 2)")
                for u in units2:  # one unit's part at a time: the driver's memory stays bounded
                    path = pass2 / f"{u.name}.selected.parquet"
                    if path.exists():
                        selected.add(pq.read_table(path))
            summary.rows_scored = sum(m["rows_scored"] for m in markers.values())
            summary.rows_selected = selected.rows
            table, head = finish_selected(selected, out, key=screener.id_column)
            _merge_rejects(pass1, plan.units, rw)
    finally:
        shutdown()
    close_summary(summary, rw, rejects_path, t0)
    if not keep_parts:
        shutil.rmtree(folder, ignore_errors=True)
    log.info("Ray screen: %d units, %d resumed", len(plan.units), job.resumed)
    return ScreenResult(summary=summary, selected=table, head=head)


def screen_saved_on_ray(screener: Screener, data: Any, **options: Any) -> Any:
    """:func:`screen_ray` for a screener: Ray's actors load the artifact from a path, the folder
    it was loaded from or (fitted in this process) a copy saved beside the output for the job."""
    import tempfile

    if screener.path_ is not None:
        return screen_ray(screener.path_, data, **options)
    where = options.get("work_dir") or options.get("out")
    if where is None:
        raise ConfigError("out", None, "an output file (or a work_dir) for the Ray engine")
    folder = Path(tempfile.mkdtemp(prefix=".winnow-artifact-", dir=Path(where).resolve().parent))
    try:
        return screen_ray(screener.save(folder / "screener"), data, **options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
