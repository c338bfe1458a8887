"""Fitting a screener: split honestly, fit preprocessing and learners, fuse, pick a threshold.

On small data (fewer than ``config.small_data_rows`` training rows) the learners are
cross-fitted over k stratified folds: every training row gets an out-of-fold prediction, and
those drive early stopping, fusion weights and the threshold; each learner is then refitted on
all training rows with the rounds the folds chose. On larger data one stratified validation
part does the same job. A stratified test part is held out from everything and only used to
report metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.config import Role, ScreenConfig
from winnow.errors import DataError
from winnow.expressions import Expression
from winnow.io.readers import TableSource
from winnow.io.rejects import Reject
from winnow.metrics import screening_report
from winnow.models.base import FitContext, Inputs, Learner, make_learner
from winnow.models.fusion import Fusion, fit_fusion, prune_for_cost
from winnow.models.portfolio import member, plan_for
from winnow.monitor import Reference, build_reference
from winnow.prep.leakage import leakage_suspects
from winnow.prep.preprocessor import Preprocessor
from winnow.rules import RuleSet
from winnow.sampling import Sample, stratified_sample
from winnow.schema import ColumnSpec, coerce, infer_schema
from winnow.select import Threshold, threshold_for
from winnow.target import make_labels

log = logging.getLogger("winnow")

MIN_POSITIVES = 5
#: share of the time limit the hyper-parameter search may use (the rest fits the portfolio)
TUNE_SHARE = 0.5


@dataclass
class FitResult:
    """All a fitted screener holds, before it is wrapped in a :class:`winnow.Screener`."""

    config: ScreenConfig
    specs: list[ColumnSpec]
    prep: Preprocessor
    learners: dict[str, Learner]
    fusion: Fusion
    threshold: Threshold
    target_description: str
    target_cutoff: float | None
    metrics: dict[str, Any]
    importance: dict[str, float]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    #: held-out test rows: ``y`` (0/1), ``score`` (winnow), ``logistic_regression`` and ``rule``
    #: scores when present, for reports and plots (curves need the rows, not only the metrics)
    evaluation: dict[str, np.ndarray] = field(default_factory=dict)
    #: the reference profile drift monitoring compares live data with
    reference: Reference | None = None


def _threads(cfg: ScreenConfig) -> int:
    import os

    return cfg.threads or max(1, min(os.cpu_count() or 1, 8))


def _split(
    y: np.ndarray, cfg: ScreenConfig, split_values: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(train, test, valid or None) row positions."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if split_values is not None:
        lowered = np.char.lower(split_values.astype(str))
        test = idx[lowered == "test"]
        valid = idx[np.isin(lowered, ["valid", "validation", "val"])]
        train = idx[~np.isin(lowered, ["test", "valid", "validation", "val"])]
        if not len(test) or not len(train):
            raise DataError(
                "the split column needs rows marked 'test' and rows for training",
                column=cfg.split_column,
                hint="Mark held-out rows 'test', optional validation rows 'valid', others 'train'.",
            )
        return train, test, (valid if len(valid) else None)
    train, test = train_test_split(idx, test_size=cfg.test_fraction, stratify=y, random_state=cfg.seed)
    return np.sort(train), np.sort(test), None


class _Clock:
    """Shares the remaining time limit between the fits still to run, by their cost."""

    def __init__(self, limit: float | None, jobs: list[str], cost: Callable[[str], float]) -> None:
        self.end = None if limit is None else time.monotonic() + limit
        self.pending = list(jobs)
        self.cost = cost

    def deadline_for(self, job: str) -> float | None:
        share = self.cost(job) / sum(self.cost(j) for j in self.pending)
        self.pending.remove(job)
        if self.end is None:
            return None
        return time.monotonic() + max(self.end - time.monotonic(), 0.0) * share


def _rule_scores(expr: Expression, raw: pa.Table) -> np.ndarray:
    z = np.broadcast_to(np.asarray(expr.evaluate_table(raw), dtype=np.float64), (raw.num_rows,)).copy()
    # a rule cannot rank rows it has no value for: they go last
    finite = np.isfinite(z)
    low = (z[finite].min() - 1.0) if finite.any() else 0.0
    return np.where(finite, z, low)


def fit_pipeline(
    source: TableSource,
    cfg: ScreenConfig,
    on_stage: Callable[[str], None] | None = None,
) -> FitResult:
    """Read, prepare, fit, fuse and evaluate. See the module docstring for the protocol."""
    stage = on_stage or (lambda msg: log.info(msg))
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        log.warning(msg)

    t_start = time.monotonic()
    baseline_expr = Expression(cfg.baseline) if cfg.baseline else None
    stage("reading data")
    read_rejects: list[Reject] = []
    sample: Sample | None = None
    if cfg.sample_rows is not None:
        raw, sample = stratified_sample(
            source,
            target=cfg.target,
            positive=cfg.positive,
            top_fraction=cfg.top_fraction,
            rows=cfg.sample_rows,
            positives=cfg.sample_positives,
            seed=cfg.seed,
            rejects=read_rejects,
        )
        n_read = sample.rows_read + len(read_rejects)
    else:
        raw = source.read_all(rejects=read_rejects)
        n_read = raw.num_rows + len(read_rejects)
    if raw.num_rows == 0:
        raise DataError(f"{source.name!r} has no data rows", hint="Give a table with rows.")
    if cfg.split_column and cfg.split_column not in raw.column_names:
        raise DataError("split column not found", column=cfg.split_column)
    labels = make_labels(
        raw,
        cfg.target,
        positive=cfg.positive,
        top_fraction=cfg.top_fraction,
        cutoff=sample.cutoff if sample is not None else None,
    )
    if sample is not None:
        warn(
            f"fitted on a stratified sample: {sample.positives_kept:,} of {sample.positives_read:,} "
            f"high-value and {sample.negatives_kept:,} of {sample.negatives_read:,} other rows; "
            "probabilities and the threshold are corrected to the data's rates, the held-out "
            "metrics are the sample's (high-value rows over-represented)"
        )
    drop = list(cfg.drop) + ([cfg.split_column] if cfg.split_column else [])
    specs = infer_schema(
        raw, target=cfg.target, id_column=cfg.id, drop=drop, overrides=cfg.roles, image_root=cfg.image_root
    )
    if baseline_expr is not None:
        unknown = [n for n in baseline_expr.names if n not in raw.column_names]
        if unknown:
            raise DataError(
                f"--baseline names unknown columns: {', '.join(unknown)}",
                hint="Available: " + ", ".join(raw.column_names[:50]),
            )
    rule_cols = RuleSet(cfg.rules).columns
    unknown_rule_cols = [c for c in rule_cols if c not in raw.column_names]
    if unknown_rule_cols:
        raise DataError(
            f"rules name unknown columns: {', '.join(unknown_rule_cols)}",
            hint="Available: " + ", ".join(raw.column_names[:50]),
        )
    for s in specs:
        if s.role in (Role.ID, Role.IGNORE) and s.reason.startswith(("ID-like", "constant", "image paths")):
            warn(f"column {s.name!r} dropped: {s.reason}")
    if not any(s.used for s in specs):
        raise DataError("no usable feature columns remain", hint="Check --drop and the roles.")

    stage("typing and cleaning")
    typed = coerce(raw, specs)
    rejects = read_rejects + typed.rejects
    usable = typed.ok & labels.known
    n_missing_target = int((~labels.known).sum())
    if n_missing_target:
        warn(f"{n_missing_target} rows without a target value are left out of training")
    if typed.rejects:
        warn(f"{len(typed.rejects)} rows rejected for invalid values, e.g. {typed.rejects[0].describe()}")
    # exact duplicate records (every column equal, the id and the label included) would leak
    # between folds and overweight one record; distinct records with equal features are kept
    frame = raw.to_pandas()
    try:
        dup = frame.duplicated(keep="first").to_numpy() & usable
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        dup = frame.astype(str).duplicated(keep="first").to_numpy() & usable
    n_dup = int(dup.sum())
    if n_dup:
        warn(f"{n_dup} exact duplicate rows dropped from training")
    keep = np.flatnonzero(usable & ~dup)
    y = labels.y[keep].astype(np.int64)
    pos = int(y.sum())
    if len(keep) == 0:
        raise DataError("no rows are left to train on", hint="Check the target and the rejects.")
    if pos == 0 or pos == len(y):
        which = "high-value" if pos else "not high-value"
        raise DataError(
            f"every row is {which} ({labels.description}); a screener needs both classes",
            column=cfg.target,
            hint="Check --positive / --top-fraction.",
        )
    if min(pos, len(y) - pos) < MIN_POSITIVES * 2:
        raise DataError(
            f"only {min(pos, len(y) - pos)} rows of the rarer class; at least "
            f"{MIN_POSITIVES * 2} are needed for an honest split",
            column=cfg.target,
        )
    table = typed.table.take(pa.array(keep))
    raw_kept = raw.take(pa.array(keep))
    split_values = (
        np.asarray(raw_kept.column(cfg.split_column).to_pylist(), dtype=object) if cfg.split_column else None
    )
    tr, te, va = _split(y, cfg, split_values)

    threads = _threads(cfg)
    images = [s.name for s in specs if s.role == Role.IMAGE and s.used]
    if images:
        how = "with the given ResNet-18 weights" if cfg.image_weights else "a small CNN trained on the labels"
        stage(f"embedding image columns {', '.join(images)} ({how})")
    else:
        stage("fitting preprocessing")
    texts = [s.name for s in specs if s.role == Role.TEXT and s.used]
    if cfg.finetune_text and texts:
        stage(f"fine-tuning the sentence encoder on the labels of text columns {', '.join(texts)}")
    prep = Preprocessor(
        text=cfg.text,
        image_weights=cfg.image_weights,
        image_size=cfg.image_size,
        image_epochs=cfg.image_epochs,
        finetune_text=cfg.finetune_text,
        finetune_seconds=None if cfg.time_limit is None else FINETUNE_SHARE * cfg.time_limit,
    ).fit(table.take(pa.array(tr)), specs, y[tr], seed=cfg.seed, threads=threads)
    if cfg.finetune_text and not texts:
        warn("--finetune-text has no effect: no text column is used")
    if prep.encoded_:
        how = " (fine-tuned)" if prep.tuned_ else ""
        stage(f"embedding text columns {', '.join(prep.encoded_)} with the sentence encoder{how}")
    m = prep.transform(table, specs)
    x_all = Inputs(m=m, dense=prep.dense(m), y=y)
    x_train, x_test = x_all.take(tr), x_all.take(te)
    ctx_base: dict[str, Any] = dict(
        seed=cfg.seed, threads=threads, cat_cardinalities=tuple(prep.cardinalities())
    )
    label_issues: dict[str, Any] | None = None
    refit_rows = np.arange(len(y))
    if cfg.drop_label_issues:
        # checked on the training part only, so the held-out test labels stay the truth we report on
        from winnow.quality.label_issues import find_label_issues, out_of_fold

        stage("looking for mislabelled training rows (cross-validated confident learning)")
        cards = ctx_base["cat_cardinalities"]
        y_train = x_train.y
        assert y_train is not None  # x_all carries the labels
        p_oof_issues = out_of_fold(x_train, y_train, seed=cfg.seed, threads=threads, cat_cardinalities=cards)
        found = find_label_issues(y_train, p_oof_issues)
        flagged = tr[found.issue]
        label_issues = {
            **found.summary(),
            "rows_dropped": [int(keep[r]) for r in flagged],
            "given_label": [int(y[r]) for r in flagged],
            "p_high_value": [round(float(v), 4) for v in found.p[found.issue]],
        }
        warn(f"{len(flagged)} training rows with a probably wrong label dropped (--drop-label-issues)")
        tr = tr[~found.issue]
        x_train = x_train.take(np.flatnonzero(~found.issue))
        refit_rows = np.setdiff1d(refit_rows, flagged)

    plan = plan_for(cfg.preset, cfg.models, cfg.tune, cfg.folds, cfg.time_limit, cfg.tune_trials)
    t_limit_start = time.monotonic()
    pretrain_report: list[dict[str, Any]] = []
    if cfg.pretrain:
        pretrain_report = _pretrain(
            cfg, plan, prep, specs, typed, usable, x_train, ctx_base, t_limit_start, stage, warn
        )
    small = va is None and len(tr) < cfg.small_data_rows
    if small:
        from sklearn.model_selection import StratifiedKFold

        k = min(plan.folds, int(x_train.y.sum()), int(len(tr) - x_train.y.sum()))  # type: ignore[union-attr]
        k = max(k, 2)
        folds = list(StratifiedKFold(k, shuffle=True, random_state=cfg.seed).split(tr, x_train.y))
    else:
        if va is None:
            from sklearn.model_selection import train_test_split

            tr_pos = np.arange(len(tr))
            a, b = train_test_split(tr_pos, test_size=0.15, stratify=x_train.y, random_state=cfg.seed)
            folds = [(np.sort(a), np.sort(b))]
            x_fit = x_train
        else:
            # the user's validation rows are appended after the training rows
            x_fit = Inputs(
                m=type(m)(
                    np.vstack([x_train.m.num, x_all.m.num[va]]), np.vstack([x_train.m.cat, x_all.m.cat[va]])
                ),
                dense=np.vstack([x_train.dense, x_all.dense[va]]),
                y=np.concatenate([x_train.y, y[va]]),  # type: ignore[list-item]
            )
            folds = [(np.arange(len(tr)), np.arange(len(tr), len(tr) + len(va)))]
        x_train = x_fit

    # the search: one study per tuned kind on the first fold, the winners join the portfolio
    tuned: dict[str, dict[str, Any]] = {}
    tuning_report: list[dict[str, Any]] = []
    members = list(plan.members)
    if plan.tune:
        from winnow.tuning import tune

        a, b = folds[0]
        x_a, x_b = x_train.take(a), x_train.take(b)
        tune_cost = {k: member(k).cost for k in plan.tune}
        for kind in plan.tune:
            seconds = None
            if plan.time_limit is not None:
                left = plan.time_limit * TUNE_SHARE - (time.monotonic() - t_limit_start)
                seconds = (
                    max(left, 0.0) * tune_cost[kind] / sum(tune_cost[k] for k in plan.tune if k not in tuned)
                )
            stage(
                f"searching {kind} hyper-parameters" + (f" ({seconds:.0f}s)" if seconds is not None else "")
            )
            res = tune(kind, x_a, x_b, FitContext(**ctx_base), seconds=seconds, trials=plan.trials)
            tuned[kind] = res.params
            tuning_report.append(res.to_json())
            members.append(f"{kind}_tuned")
    remaining = None
    if plan.time_limit is not None:
        remaining = max(plan.time_limit - (time.monotonic() - t_limit_start), 1.0)
    jobs = [n for n in members for _ in range(len(folds) + (1 if small else 0))]
    clock = _Clock(remaining, jobs, lambda n: member(n, tuned).cost)

    oof_rows = np.concatenate([f[1] for f in folds])
    oof = {name: np.full(len(x_train), np.nan) for name in members}
    learners: dict[str, Learner] = {}
    fit_seconds: dict[str, float] = {}
    for name in members:
        spec = member(name, tuned)
        rounds = []
        for i, (a, b) in enumerate(folds):
            stage(
                f"fitting {name} ({'fold ' + str(i + 1) + '/' + str(len(folds)) if small else 'train/valid'})"
            )
            ctx = FitContext(deadline=clock.deadline_for(name), **ctx_base)
            t_fit = time.monotonic()
            learner = spec.make().fit(x_train.take(a), x_train.take(b), ctx)
            fit_seconds[name] = time.monotonic() - t_fit
            oof[name][b] = learner.predict_logit(x_train.take(b))
            rounds.append(learner.best_rounds_ or 1)
        if small:
            stage(f"refitting {name} on all training rows")
            ctx = FitContext(deadline=clock.deadline_for(name), **ctx_base)
            r = int(np.median(rounds)) if spec.kind != "linear" else int(np.bincount(rounds).argmax())
            t_fit = time.monotonic()
            learner = spec.make().fit(x_train, None, ctx, rounds=max(r, 1))
            fit_seconds[name] = time.monotonic() - t_fit
        learners[name] = learner

    stage("fusing models and choosing the threshold")
    y_oof = x_train.y[oof_rows]  # type: ignore[index]
    oof_logits = {n: oof[n][oof_rows] for n in members}
    fusion = full_fusion = fit_fusion(y_oof, oof_logits)
    pruning = None
    if cfg.live_model == "fast":
        costs = {n: learners[n].inference_cost() for n in members}
        fusion, pruning = prune_for_cost(y_oof, oof_logits, full_fusion, costs)
    weights = None
    if sample is not None:
        fusion.log_odds_shift = full_fusion.log_odds_shift = sample.log_odds_shift
        weights = sample.weights(y_oof)
    p_oof = fusion.probability(oof_logits)
    population = len(keep) if sample is None else sample.rows_read - sample.unlabelled_read
    threshold = threshold_for(cfg.budget, p_oof, y_oof, population=population, weights=weights)
    if threshold.note:
        warn(threshold.note)

    stage("checking for leaky columns")
    a, b = folds[0]
    for col, auc in leakage_suspects(prep, x_train.take(a), x_train.take(b)).items():
        warn(
            f"column {col!r} alone separates the classes (validation ROC-AUC {auc:.3f}): "
            "is it known before the outcome? If not, drop it (--drop / config drop)."
        )

    stage("evaluating on the held-out test rows")
    logits_test = {n: learners[n].predict_logit(x_test) for n in members}
    p_test = fusion.probability(logits_test)
    y_test = x_test.y
    assert y_test is not None  # x_all carries the labels
    budget_k = _budget_k(cfg, len(te), len(keep))
    metrics: dict[str, Any] = {
        "split": {
            "train": len(tr),
            "validation": len(va) if va is not None else 0,
            "test": len(te),
            "mode": f"{len(folds)}-fold cross-fitting" if small else "train/validation",
        },
        "winnow": screening_report(y_test, p_test, budget_k=budget_k),
        "oof": screening_report(y_oof, p_oof, budget_k=None),
        "models": {
            n: screening_report(y_test, 1 / (1 + np.exp(-logits_test[n])), budget_k=budget_k) for n in members
        },
        "portfolio": {
            "preset": cfg.preset,
            "members": {
                n: {"kind": member(n, tuned).kind, "params": _jsonable(member(n, tuned).params)}
                for n in members
            },
            "fit_seconds": {n: round(v, 2) for n, v in fit_seconds.items()},
            "folds": len(folds),
            "time_limit": plan.time_limit,
        },
    }
    metrics["live"] = {
        "model": cfg.live_model,
        "full": screening_report(y_test, full_fusion.probability(logits_test), budget_k=budget_k),
        "full_weights": dict(zip(full_fusion.names, full_fusion.weights, strict=True)),
        **(pruning.to_json() if pruning is not None else {}),
    }
    if tuning_report:
        metrics["tuning"] = tuning_report
    if prep.images_:
        metrics["images"] = {name: e.to_json() for name, e in prep.images_.items()}
    if sample is not None:
        metrics["sample"] = sample.to_json()
    if label_issues is not None:
        metrics["label_issues"] = label_issues
    if pretrain_report:
        metrics["pretrain"] = pretrain_report
    if prep.tuned_:
        metrics["text_finetune"] = {name: ft.history_ for name, ft in prep.tuned_.items()}
    if "linear" in learners:
        lin = learners["linear"]
    else:
        lin = make_learner("linear").fit(x_train, None, FitContext(**ctx_base), rounds=2)
    p_lin = 1 / (1 + np.exp(-lin.predict_logit(x_test)))
    metrics["logistic_regression"] = screening_report(y_test, p_lin, budget_k=budget_k)
    evaluation = {"y": np.asarray(y_test, np.int8), "score": p_test, "logistic_regression": p_lin}
    if baseline_expr is not None:
        rule = _rule_scores(baseline_expr, raw_kept.take(pa.array(te)))
        evaluation["rule"] = rule
        metrics["rule"] = {
            "expression": cfg.baseline,
            **screening_report(y_test, rule, budget_k=budget_k, probabilities=False),
        }
    # fair comparison point: the threshold applied to test rows, not a test-chosen top-k
    sel = p_test >= threshold.value
    metrics["threshold_on_test"] = {
        "selected": int(sel.sum()),
        "precision": float(y_test[sel].mean()) if sel.any() else 0.0,
        "recall": float(y_test[sel].sum() / max(y_test.sum(), 1)),
    }
    if cfg.refit_full:
        # the report above is honest (test rows unseen); the screener users deploy then learns
        # from every labelled row, with the rounds cross-fitting chose and the same fusion
        refitted = []
        x_refit = x_all if len(refit_rows) == len(x_all) else x_all.take(refit_rows)
        for name, w in zip(fusion.names, fusion.weights, strict=True):
            left = (
                float("inf")
                if plan.time_limit is None
                else plan.time_limit - (time.monotonic() - t_limit_start)
            )
            # under a time limit, refit only what fits in the time left (never a truncated model)
            if not w or left < 1.5 * fit_seconds.get(name, 0.0) * len(x_refit) / max(len(x_train), 1):
                continue
            stage(f"refitting {name} on all labelled rows")
            best = learners[name].best_rounds_ or 1
            learners[name] = (
                member(name, tuned).make().fit(x_refit, None, FitContext(**ctx_base), rounds=best)
            )
            refitted.append(name)
        metrics["refit_full"] = {"rows": len(x_refit), "models": refitted}
    importance = _importance(prep, learners, fusion)
    summary = {
        "rows_read": int(n_read),
        "rows_rejected": len(rejects),
        "rows_missing_target": n_missing_target,
        "duplicates_dropped": n_dup,
        "rows_used": len(keep),
        "positives": pos,
        "fit_seconds": round(time.monotonic() - t_start, 2),
        "threads": threads,
        "reject_examples": [r.describe() for r in rejects[:10]],
    }
    return FitResult(
        config=cfg,
        specs=specs,
        prep=prep,
        learners=learners,
        fusion=fusion,
        threshold=threshold,
        target_description=labels.description,
        target_cutoff=labels.cutoff,
        metrics=metrics,
        importance=importance,
        summary=summary,
        warnings=warnings,
        evaluation={k: np.ascontiguousarray(v) for k, v in evaluation.items()},
        reference=build_reference(prep, x_all.m, p_test, threshold.fraction),
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    return v


def _budget_k(cfg: ScreenConfig, n: int, population: int) -> int:
    b = cfg.budget
    if b.fraction is not None:
        return max(1, math.ceil(b.fraction * n))
    if b.count is not None:
        return max(1, math.ceil(n * b.count / max(population, 1)))
    return max(1, math.ceil(0.05 * n))


def _importance(prep: Preprocessor, learners: dict[str, Learner], fusion: Fusion) -> dict[str, float]:
    """Share of the model's attention per source column (LightGBM gain, else |linear| weight)."""
    feats = prep.num_features + prep.cat_features
    raw: dict[str, float] = {}
    gbdt = learners.get("lightgbm")
    if gbdt is not None:
        gains = gbdt.feature_importance()  # type: ignore[attr-defined]
        for f, g in zip(feats, gains, strict=True):
            raw[f.source] = raw.get(f.source, 0.0) + float(g)
    elif "linear" in learners:
        lin = learners["linear"]
        for (_, src), w in zip(prep.dense_names(), lin.coef_dense_, strict=True):  # type: ignore[attr-defined]
            raw[src] = raw.get(src, 0.0) + abs(float(w))
        for f, w in zip(prep.cat_features, lin.coef_cat_, strict=True):  # type: ignore[attr-defined]
            raw[f.source] = raw.get(f.source, 0.0) + float(np.std(w))
    total = sum(raw.values()) or 1.0
    return dict(sorted(((k, v / total) for k, v in raw.items()), key=lambda kv: -kv[1]))


FINETUNE_SHARE = 0.25  # of --time-limit, after which text fine-tuning starts no new epoch
PRETRAIN_SHARE = 0.25  # of --time-limit, at most, for self-supervised pretraining


def _pretrain(
    cfg: ScreenConfig,
    plan: Any,
    prep: Preprocessor,
    specs: list[Any],
    typed: Any,
    usable: np.ndarray,
    x_train: Inputs,
    ctx_base: dict[str, Any],
    t_start: float,
    stage: Callable[[str], None],
    warn: Callable[[str], None],
) -> list[dict[str, Any]]:
    """SCARF-pretrain one encoder per deep architecture in the plan on the training rows plus
    every valid row without a target (never the test rows); puts the weights in ``ctx_base``."""
    from winnow.models.deepnet import DeepLearner
    from winnow.models.pretrain import pretrain_encoder

    deep = [n for n in plan.members if member(n).kind == "deep"]
    if not deep:
        warn("--pretrain has no effect: the portfolio has no deep network (use --preset balanced)")
        return []
    unlabelled = np.flatnonzero(typed.ok & ~usable)
    x = x_train
    if len(unlabelled):
        m_u = prep.transform(typed.table.take(pa.array(unlabelled)), specs)
        x_u = Inputs(m=m_u, dense=prep.dense(m_u))
        x = Inputs(
            m=type(m_u)(np.vstack([x_train.m.num, m_u.num]), np.vstack([x_train.m.cat, m_u.cat])),
            dense=np.vstack([x_train.dense, x_u.dense]),
        )
    deadline = None if plan.time_limit is None else t_start + PRETRAIN_SHARE * plan.time_limit
    weights: dict[str, dict[str, Any]] = {}
    report: list[dict[str, Any]] = []
    for name in deep:
        defaults = DeepLearner()
        params = {
            **{"dim": defaults.dim, "hidden": defaults.hidden, "dropout": defaults.dropout},
            **member(name).params,
        }
        arch = (params["dim"], tuple(params["hidden"]))
        if any(r["architecture"] == [arch[0], list(arch[1])] for r in report):
            continue
        stage(f"pretraining the {name} encoder on {len(x):,} rows ({len(unlabelled):,} unlabelled), SCARF")
        key, state, rep = pretrain_encoder(
            x,
            FitContext(deadline=deadline, **ctx_base),
            dim=params["dim"],
            hidden=tuple(params["hidden"]),
            dropout=params["dropout"],
        )
        weights[key] = state
        report.append(
            {
                "member": name,
                "architecture": [arch[0], list(arch[1])],
                "unlabelled_rows": len(unlabelled),
                **rep,
            }
        )
    ctx_base["pretrained"] = weights
    return report
