"""``optimise_artifact``: a saved screener in, a faster one out, with what it cost on record.

Steps, always applied in this order (each on the result of the previous ones):

``prune``     narrower hidden layers for every deep member (:mod:`.prune`)
``onnx``      every deep member exported to ONNX, run with ONNX Runtime (:mod:`.export`)
``quantize``  the exported networks' weights in int8 (:mod:`.quantize`); implies ``onnx``
``trees``     every LightGBM member compiled to an ONNX tree ensemble (:mod:`.trees`)

Every change is measured on the user's sample against the *original* screener, member by
member: a change whose cumulative score change exceeds ``tolerance`` (largest absolute change of
the probability on any sample row) is refused, the member keeps its previous form and the
reason is recorded. Pruning picks the largest amount that stays within half the tolerance, so
the later steps have room. A tree compilation that is not faster than LightGBM is also refused.
The result is written with :meth:`Screener.save`; the ``optimisation`` section (settings, every
step's measured cost and speed, the machine) is then added to its manifest through
:func:`winnow.artifact.write_artifact`, so the checksums cover it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from winnow.errors import ArtifactError, ConfigError
from winnow.optimise import measure

STEPS = ("prune", "onnx", "quantize", "trees")
DEFAULT_STEPS = STEPS
DEFAULT_TOLERANCE = 0.01
#: shares of each hidden layer's units pruning tries, the most aggressive first
PRUNE_FRACTIONS = (0.75, 0.5, 0.25)
PRUNE_TOLERANCE_SHARE = 0.5


def _check_steps(steps: Any) -> list[str]:
    asked = [steps] if isinstance(steps, str) else list(steps)
    unknown = [s for s in asked if s not in STEPS]
    if unknown or not asked:
        raise ConfigError("--step", unknown or asked, f"one or more of {', '.join(STEPS)}")
    return [s for s in STEPS if s in asked]


def _with(screener: Any, learners: dict[str, Any]) -> Any:
    """A shallow copy of ``screener`` with some members replaced (the original is untouched)."""
    out = copy.copy(screener)
    out.learners_ = {**screener.learners_, **learners}
    return out


class _Run:
    """State of one optimisation: the original, the current result and the measurements."""

    def __init__(self, original: Any, sample: measure.Sample, tolerance: float, repeats: int) -> None:
        self.original = original
        self.current = _with(original, {})
        self.sample = sample
        self.tolerance = tolerance
        self.repeats = repeats
        self.base = original.score(sample.table)
        self.base_auc = measure.auc_pr(sample, self.base)
        self.x, _ = original.prepare(sample.table)
        self.weights = dict(zip(original.fusion_.names, original.fusion_.weights, strict=True))

    def members(self, kind: str) -> list[str]:
        """Members of ``kind`` the fusion weighs. A member with no weight is never scored (and a
        change to it could not be measured): it is left as it is."""
        return [
            n
            for n, m in self.current.learners_.items()
            if getattr(m, "name", "") == kind and self.weights.get(n, 0.0) > 0
        ]

    def cost(self, screener: Any) -> dict[str, Any]:
        return measure.score_change(
            self.original, self.sample, self.base, screener.score(self.sample.table), self.base_auc
        )

    def try_member(
        self, member: str, learner: Any, detail: dict[str, Any], limit: float, *, timed: bool = False
    ) -> dict[str, Any]:
        """Accept ``learner`` for ``member`` if the cumulative score change stays within ``limit``;
        with ``timed``, an accepted entry also gets the member's timings before and after."""
        old = self.current.learners_[member]
        cand = _with(self.current, {member: learner})
        cost = self.cost(cand)
        entry = {"member": member, **detail, "cost": cost}
        if cost["max_abs_score_change"] > limit:
            entry["accepted"] = False
            entry["reason"] = (
                f"largest score change {cost['max_abs_score_change']:.4g} exceeds the tolerance {limit:.4g}"
            )
        else:
            entry["accepted"] = True
            self.current = cand
            if timed:
                entry["member_time_before"] = measure.member_time(old, self.x, repeats=self.repeats)
                entry["member_time_after"] = measure.member_time(learner, self.x, repeats=self.repeats)
        return entry


def _step_prune(run: _Run, seed: int) -> list[dict[str, Any]]:
    from winnow.optimise.prune import prune_deep

    out = []
    limit = run.tolerance * PRUNE_TOLERANCE_SHARE
    for member in run.members("deep"):
        learner = run.current.learners_[member]
        tried = []
        for fraction in PRUNE_FRACTIONS:
            pruned, detail = prune_deep(learner, run.x, fraction)
            entry = run.try_member(member, pruned, detail, limit, timed=True)
            change = entry["cost"]["max_abs_score_change"]
            tried.append({"fraction": fraction, "max_abs_score_change": change})
            if entry["accepted"]:
                break
        entry["tried"] = tried
        if not entry["accepted"]:
            entry["reason"] = f"every pruning amount tried changes scores by more than {limit:.4g}"
        out.append(entry)
    return out


def _deep_to_onnx(learner: Any, x: Any, quantized: bool) -> Any:
    from winnow.models.onnx_model import OnnxLearner
    from winnow.optimise.export import export_net
    from winnow.optimise.quantize import quantize_int8

    model = export_net(learner.net_, x.dense, x.m.cat)
    if quantized:
        model = quantize_int8(model)
    config = {
        "inputs": "net",
        "source_kind": "deep",
        "precision": "int8" if quantized else "float32",
        "embedding_output": True,
        "hidden": [int(h) for h in learner.hidden],
        "k": int(getattr(learner, "k", 1) or 1),
        "best_rounds": learner.best_rounds_,
        "source_config": learner.state()[0],
    }
    out = OnnxLearner(config=config, model=model)
    out.threads = learner.threads
    return out


def _step_onnx(run: _Run, quantized: bool) -> list[dict[str, Any]]:
    out = []
    for member in run.members("deep"):
        learner = run.current.learners_[member]
        onnx_learner = _deep_to_onnx(learner, run.x, quantized)
        detail = {"precision": onnx_learner.config["precision"], "bytes": len(onnx_learner.model or b"")}
        out.append(run.try_member(member, onnx_learner, detail, run.tolerance, timed=True))
    return out


def _step_quantize(run: _Run) -> list[dict[str, Any]]:
    from winnow.models.onnx_model import OnnxLearner
    from winnow.optimise.quantize import quantize_int8

    out = []
    # networks still in torch (``onnx`` not asked, or refused): export and quantize in one go
    for entry in _step_onnx(run, quantized=True):
        out.append(entry)
    for member in run.members("onnx"):
        learner = run.current.learners_[member]
        if learner.config.get("source_kind") != "deep" or learner.config.get("precision") != "float32":
            continue
        assert learner.model is not None
        q = OnnxLearner(config={**learner.config, "precision": "int8"}, model=quantize_int8(learner.model))
        q.threads = learner.threads
        detail = {"precision": "int8", "bytes_before": len(learner.model), "bytes": len(q.model or b"")}
        out.append(run.try_member(member, q, detail, run.tolerance, timed=True))
    return out


def _step_trees(run: _Run) -> list[dict[str, Any]]:
    from winnow.models.onnx_model import OnnxLearner
    from winnow.optimise.trees import UnsupportedModel, booster_to_onnx

    out = []
    for member in run.members("lightgbm"):
        learner = run.current.learners_[member]
        text = learner.booster_.model_to_string()
        try:
            model = booster_to_onnx(text)
        except UnsupportedModel as e:
            out.append({"member": member, "accepted": False, "reason": f"cannot compile: {e}"})
            continue
        config = {
            "inputs": "tree",
            "source_kind": "lightgbm",
            "precision": "float64",
            "best_rounds": learner.best_rounds_,
            "source_config": learner.state()[0],
        }
        compiled = OnnxLearner(config=config, model=model)
        compiled.lightgbm_text = text.encode()
        compiled.threads = learner.threads
        before = measure.member_time(learner, run.x, repeats=run.repeats)
        after = measure.member_time(compiled, run.x, repeats=run.repeats)
        timing = {"member_time_before": before, "member_time_after": after, "bytes": len(model)}
        if after["batch_ms"] >= before["batch_ms"] and after["one_row_ms"] >= before["one_row_ms"]:
            out.append(
                {"member": member, **timing, "accepted": False, "reason": "not faster than LightGBM here"}
            )
            continue
        out.append(run.try_member(member, compiled, timing, run.tolerance))
    return out


def stage_count(steps: Any) -> int:
    """How many stages :func:`optimise_artifact` announces for ``steps``: reading the sample,
    measuring the original, one per step, writing and checking."""
    return 3 + len(_check_steps(steps))


def optimise_screener(
    original: Any,
    data: Any,
    *,
    steps: Any = DEFAULT_STEPS,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    threads: int = 1,
    repeats: int = 5,
    max_rows: int = 20_000,
    latency_records: int = 100,
    on_stage: Callable[[str], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """(optimised screener, report); ``original`` is not modified. ``on_stage`` hears each
    stage's name as it starts (the CLI's progress display)."""
    import torch

    stage = on_stage or (lambda _msg: None)

    chosen = _check_steps(steps)
    if not 0.0 < tolerance < 1.0:
        raise ConfigError("--tolerance", tolerance, "a largest score change between 0 and 1, e.g. 0.01")
    torch.manual_seed(seed)
    original.set_threads(threads)
    stage("reading the sample")
    sample = measure.load_sample(
        original, data, max_rows=max_rows, seed=seed, latency_records=latency_records
    )
    stage("measuring the artifact as it is")
    run = _Run(original, sample, tolerance, repeats)
    baseline_speed = measure.speed(original, sample, repeats=repeats)
    report: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "steps": chosen,
            "tolerance": tolerance,
            "tolerance_means": "largest absolute change of the score (probability) on any sample row",
            "prune_fractions": list(PRUNE_FRACTIONS),
            "prune_tolerance_share": PRUNE_TOLERANCE_SHARE,
            "seed": seed,
            "threads": threads,
            "repeats": repeats,
            "latency": "OnlineScorer.score_records([record], reasons=0), one record per call",
        },
        "sample": {"rows": sample.table.num_rows, "labelled": sample.y is not None},
        "machine_before": measure.machine(),
        "baseline": {"speed": baseline_speed, "auc_pr": run.base_auc},
        "steps": [],
    }
    speed_before = baseline_speed
    for i, step in enumerate(chosen, 1):
        stage(f"step {step} ({i} of {len(chosen)})")
        if step == "prune":
            members = _step_prune(run, seed)
        elif step == "onnx":
            members = _step_onnx(run, quantized=False)
        elif step == "quantize":
            members = _step_quantize(run)
        else:
            members = _step_trees(run)
        accepted = any(m.get("accepted") for m in members)
        entry: dict[str, Any] = {"step": step, "accepted": accepted, "members": members}
        if not members:
            entry["reason"] = "no member this step applies to"
        if accepted:
            after = measure.speed(run.current, sample, repeats=repeats)
            entry["speed_before"], entry["speed_after"] = speed_before, after
            entry["cost"] = run.cost(run.current)
            speed_before = after
        report["steps"].append(entry)
    final_cost = run.cost(run.current)
    report["final"] = {"cost": final_cost, "speed": speed_before}
    report["kinds"] = {n: getattr(m, "name", "") for n, m in run.current.learners_.items()}
    report["unweighted_members_left_as_they_are"] = [n for n, w in run.weights.items() if not w]
    report["machine_after"] = measure.machine()
    run.current.set_threads(threads)
    return run.current, report


def write_with_report(screener: Any, out: Path, report: dict[str, Any]) -> Path:
    """Save ``screener`` to ``out`` and add the ``optimisation`` manifest section (checksummed)."""
    from winnow.artifact import read_artifact, write_artifact

    screener.save(out)
    contents = read_artifact(out)
    written = ("format", "format_version", "files", "checksum")  # write_artifact sets these
    manifest = {k: v for k, v in contents.manifest.items() if k not in written}
    manifest["optimisation"] = report
    write_artifact(out, manifest, contents.files)
    return out


def optimise_artifact(
    src: Path | str,
    out: Path | str,
    data: Any,
    *,
    steps: Any = DEFAULT_STEPS,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    threads: int = 1,
    repeats: int = 5,
    max_rows: int = 20_000,
    latency_records: int = 100,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Optimise the artifact at ``src`` on the sample ``data`` (path or table) and write the
    result to ``out``; returns the report also stored in its manifest under ``optimisation``."""
    from winnow.artifact import read_artifact
    from winnow.screener import Screener

    src, out = Path(src), Path(out)
    if out.resolve() == src.resolve():
        raise ArtifactError(out, "is the artifact being optimised", "Write the result to another folder.")
    source_manifest = read_artifact(src).manifest
    if "optimisation" in source_manifest:
        raise ArtifactError(
            src, "is already optimised", "Optimise the artifact `winnow fit` wrote, not its optimised copy."
        )
    original = Screener.load(src)
    optimised, report = optimise_screener(
        original,
        data,
        steps=steps,
        tolerance=tolerance,
        seed=seed,
        threads=threads,
        repeats=repeats,
        max_rows=max_rows,
        latency_records=latency_records,
        on_stage=on_stage,
    )
    if on_stage is not None:
        on_stage("writing and checking the optimised artifact")
    report["source"] = {"path": str(src), "checksum": source_manifest["checksum"]}
    if isinstance(data, str | Path):
        report["sample"]["data"] = str(data)
    write_with_report(optimised, out, report)
    # the written artifact must score like the screener that was measured
    reloaded = Screener.load(out)
    reloaded.set_threads(threads)
    table = measure.load_sample(original, data, max_rows=max_rows, seed=seed, latency_records=1).table
    a, b = optimised.score(table), reloaded.score(table)
    if not np.allclose(a, b, rtol=0, atol=1e-9, equal_nan=True):
        raise ArtifactError(out, "scores differently after reloading; the optimisation is not usable")
    return report
