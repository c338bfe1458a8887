"""The stages of a fit, in order, each a function of the :class:`FitState` it reads and fills.

1. :func:`read_and_label`: read (or sample) the rows, make the labels, infer the schema, check
   the options that name columns;
2. :func:`clean`: type the rows (rejects kept), drop exact duplicates and unlabelled rows, split
   train / test (/ validation) honestly;
3. :func:`prepare_features`: fit the preprocessing on the training part, transform every kept
   row, optionally drop probably mislabelled training rows;
4. :func:`plan_folds`: the portfolio's plan, self-supervised pretraining, cross-fitting folds on
   small data or one validation part;
5. :func:`search`: one hyper-parameter study per tuned kind, whose winners join the portfolio;
6. :func:`fit_members`: every member on every fold (out-of-fold logits), refitted on all
   training rows on small data;
7. :func:`fuse`: greedy ensemble selection, the fast live model, calibration, the threshold;
8. :func:`check_leakage`, :func:`evaluate` (held-out test metrics), :func:`refit_full`.

:func:`winnow.training.fit_pipeline` runs them and wraps the state in a :class:`winnow.fitted.Fitted`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.config import Role, ScreenConfig
from winnow.errors import DataError
from winnow.expressions import Expression
from winnow.fit_helpers import Clock, budget_rows, fit_threads, jsonable, rule_scores, split_rows
from winnow.io.readers import TableSource
from winnow.io.rejects import Reject
from winnow.metrics import screening_report
from winnow.models.base import FitContext, Inputs, Learner, make_learner
from winnow.models.fusion import Fusion, Pruning, fit_fusion, prune_for_cost
from winnow.models.portfolio import Plan, member, plan_for
from winnow.prep.leakage import leakage_suspects
from winnow.prep.preprocessor import Preprocessor
from winnow.rules import RuleSet
from winnow.sampling import Sample, stratified_sample
from winnow.schema import Coerced, ColumnSpec, coerce, infer_schema
from winnow.select import Threshold, threshold_for
from winnow.target import Labels, make_labels

log = logging.getLogger("winnow")

MIN_POSITIVES = 5
#: share of the time limit the hyper-parameter search may use (the rest fits the portfolio)
TUNE_SHARE = 0.5
FINETUNE_SHARE = 0.25  # of --time-limit, after which text fine-tuning starts no new epoch
PRETRAIN_SHARE = 0.25  # of --time-limit, at most, for self-supervised pretraining


@dataclass
class FitState:
    """What the stages hand each other; each stage fills the fields under its name."""

    cfg: ScreenConfig
    stage: Callable[[str], None]
    t_start: float
    warnings: list[str] = field(default_factory=list)
    # read_and_label
    baseline_expr: Expression | None = None
    sample: Sample | None = None
    read_rejects: list[Reject] = field(default_factory=list)
    raw: pa.Table = field(init=False)
    #: each row of ``raw``'s position in the input (None when fitted on a sample)
    positions: np.ndarray | None = None
    n_read: int = field(init=False)
    labels: Labels = field(init=False)
    specs: list[ColumnSpec] = field(init=False)
    # type_rows
    typed: Coerced = field(init=False)
    rejects: list[Reject] = field(init=False)
    usable: np.ndarray = field(init=False)
    n_missing_target: int = field(init=False)
    # clean
    n_dup: int = field(init=False)
    keep: np.ndarray = field(init=False)
    y: np.ndarray = field(init=False)
    pos: int = field(init=False)
    table: pa.Table = field(init=False)
    raw_kept: pa.Table = field(init=False)
    tr: np.ndarray = field(init=False)
    te: np.ndarray = field(init=False)
    va: np.ndarray | None = field(init=False)
    # prepare_features
    threads: int = field(init=False)
    prep: Preprocessor = field(init=False)
    x_all: Inputs = field(init=False)
    x_train: Inputs = field(init=False)
    x_test: Inputs = field(init=False)
    ctx_base: dict[str, Any] = field(init=False)
    label_issues: dict[str, Any] | None = None
    refit_rows: np.ndarray = field(init=False)
    # plan_folds
    plan: Plan = field(init=False)
    t_limit_start: float = field(init=False)
    pretrain_report: list[dict[str, Any]] = field(default_factory=list)
    small: bool = field(init=False)
    folds: list[tuple[np.ndarray, np.ndarray]] = field(init=False)
    # search
    tuned: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuning_report: list[dict[str, Any]] = field(default_factory=list)
    members: list[str] = field(init=False)
    # fit_members
    oof_rows: np.ndarray = field(init=False)
    oof: dict[str, np.ndarray] = field(init=False)
    learners: dict[str, Learner] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    # fuse
    y_oof: np.ndarray = field(init=False)
    oof_logits: dict[str, np.ndarray] = field(init=False)
    fusion: Fusion = field(init=False)
    full_fusion: Fusion = field(init=False)
    pruning: Pruning | None = None
    p_oof: np.ndarray = field(init=False)
    threshold: Threshold = field(init=False)
    # evaluate
    p_test: np.ndarray = field(init=False)
    metrics: dict[str, Any] = field(init=False)
    evaluation: dict[str, np.ndarray] = field(init=False)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        log.warning(msg)


def read_and_label(s: FitState, source: TableSource) -> None:
    cfg = s.cfg
    s.baseline_expr = Expression(cfg.baseline) if cfg.baseline else None
    s.stage("reading data")
    if cfg.sample_rows is not None:
        s.raw, s.sample = stratified_sample(
            source,
            target=cfg.target,
            positive=cfg.positive,
            top_fraction=cfg.top_fraction,
            rows=cfg.sample_rows,
            positives=cfg.sample_positives,
            seed=cfg.seed,
            rejects=s.read_rejects,
        )
        s.n_read = s.sample.rows_read + len(s.read_rejects)
    else:
        s.raw, s.positions = source.read_numbered(rejects=s.read_rejects)
        s.n_read = s.raw.num_rows + len(s.read_rejects)
    raw, sample = s.raw, s.sample
    if raw.num_rows == 0:
        raise DataError(f"{source.name!r} has no data rows", hint="Give a table with rows.")
    if cfg.split_column and cfg.split_column not in raw.column_names:
        raise DataError("split column not found", column=cfg.split_column)
    s.labels = make_labels(
        raw,
        cfg.target,
        positive=cfg.positive,
        top_fraction=cfg.top_fraction,
        cutoff=sample.cutoff if sample is not None else None,
    )
    if sample is not None:
        s.warn(
            f"fitted on a stratified sample: {sample.positives_kept:,} of {sample.positives_read:,} "
            f"high-value and {sample.negatives_kept:,} of {sample.negatives_read:,} other rows; "
            "probabilities and the threshold are corrected to the data's rates, the held-out "
            "metrics are the sample's (high-value rows over-represented)"
        )
    drop = list(cfg.drop) + ([cfg.split_column] if cfg.split_column else [])
    s.specs = infer_schema(
        raw, target=cfg.target, id_column=cfg.id, drop=drop, overrides=cfg.roles, image_root=cfg.image_root
    )
    _check_named_columns(s)


def _check_named_columns(s: FitState) -> None:
    raw = s.raw
    if s.baseline_expr is not None:
        unknown = [n for n in s.baseline_expr.names if n not in raw.column_names]
        if unknown:
            raise DataError(
                f"--baseline names unknown columns: {', '.join(unknown)}",
                hint="Available: " + ", ".join(raw.column_names[:50]),
            )
    rule_cols = RuleSet(s.cfg.rules, roles={spec.name: spec.role for spec in s.specs}).columns
    unknown_rule_cols = [c for c in rule_cols if c not in raw.column_names]
    if unknown_rule_cols:
        raise DataError(
            f"rules name unknown columns: {', '.join(unknown_rule_cols)}",
            hint="Available: " + ", ".join(raw.column_names[:50]),
        )
    for spec in s.specs:
        if spec.role in (Role.ID, Role.IGNORE) and spec.reason.startswith(
            ("ID-like", "constant", "image paths")
        ):
            s.warn(f"column {spec.name!r} dropped: {spec.reason}")
    if not any(spec.used for spec in s.specs):
        raise DataError("no usable feature columns remain", hint="Check --drop and the roles.")


def type_rows(s: FitState) -> None:
    """Type every row to the schema; ``usable``: the rows with valid values and a label."""
    labels = s.labels
    s.stage("typing and cleaning")
    typed = s.typed = coerce(s.raw, s.specs)
    s.rejects = s.read_rejects + typed.rejects
    s.usable = typed.ok & labels.known
    s.n_missing_target = int((~labels.known).sum())
    if s.n_missing_target:
        s.warn(f"{s.n_missing_target} rows without a target value are left out of training")
    if typed.rejects:
        s.warn(f"{len(typed.rejects)} rows rejected for invalid values, e.g. {typed.rejects[0].describe()}")


def clean(s: FitState) -> None:
    """Drop exact duplicates, check the classes, split honestly."""
    cfg, raw, labels, usable = s.cfg, s.raw, s.labels, s.usable
    # exact duplicate records (every column equal, the id and the label included) would leak
    # between folds and overweight one record; distinct records with equal features are kept
    frame = raw.to_pandas()
    try:
        dup = frame.duplicated(keep="first").to_numpy() & usable
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        dup = frame.astype(str).duplicated(keep="first").to_numpy() & usable
    s.n_dup = int(dup.sum())
    if s.n_dup:
        s.warn(f"{s.n_dup} exact duplicate rows dropped from training")
    keep = s.keep = np.flatnonzero(usable & ~dup)
    y = s.y = labels.y[keep].astype(np.int64)
    pos = s.pos = int(y.sum())
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
    s.table = s.typed.table.take(pa.array(keep))
    s.raw_kept = raw.take(pa.array(keep))
    split_values = (
        np.asarray(s.raw_kept.column(cfg.split_column).to_pylist(), dtype=object)
        if cfg.split_column
        else None
    )
    s.tr, s.te, s.va = split_rows(y, cfg, split_values)


def prepare_features(s: FitState) -> None:
    cfg, specs = s.cfg, s.specs
    threads = s.threads = fit_threads(cfg)
    images = [c.name for c in specs if c.role == Role.IMAGE and c.used]
    if images:
        how = "with the given ResNet-18 weights" if cfg.image_weights else "a small CNN trained on the labels"
        s.stage(f"embedding image columns {', '.join(images)} ({how})")
    else:
        s.stage("fitting preprocessing")
    texts = [c.name for c in specs if c.role == Role.TEXT and c.used]
    if cfg.finetune_text and texts:
        s.stage(f"fine-tuning the sentence encoder on the labels of text columns {', '.join(texts)}")
    prep = s.prep = Preprocessor(
        text=cfg.text,
        image_weights=cfg.image_weights,
        image_size=cfg.image_size,
        image_epochs=cfg.image_epochs,
        finetune_text=cfg.finetune_text,
        finetune_seconds=None if cfg.time_limit is None else FINETUNE_SHARE * cfg.time_limit,
    ).fit(s.table.take(pa.array(s.tr)), specs, s.y[s.tr], seed=cfg.seed, threads=threads)
    if cfg.finetune_text and not texts:
        s.warn("--finetune-text has no effect: no text column is used")
    if prep.encoded_:
        how = " (fine-tuned)" if prep.tuned_ else ""
        s.stage(f"embedding text columns {', '.join(prep.encoded_)} with the sentence encoder{how}")
    m = prep.transform(s.table, specs)
    s.x_all = Inputs(m=m, dense=prep.dense(m), y=s.y)
    s.x_train, s.x_test = s.x_all.take(s.tr), s.x_all.take(s.te)
    s.ctx_base = dict(seed=cfg.seed, threads=threads, cat_cardinalities=tuple(prep.cardinalities()))
    s.refit_rows = np.arange(len(s.y))
    if cfg.drop_label_issues:
        _drop_label_issues(s)


def _drop_label_issues(s: FitState) -> None:
    # checked on the training part only, so the held-out test labels stay the truth we report on
    from winnow.quality.label_issues import find_label_issues, out_of_fold

    s.stage("looking for mislabelled training rows (cross-validated confident learning)")
    cards = s.ctx_base["cat_cardinalities"]
    y_train = s.x_train.y
    assert y_train is not None  # x_all carries the labels
    p_oof_issues = out_of_fold(
        s.x_train, y_train, seed=s.cfg.seed, threads=s.threads, cat_cardinalities=cards
    )
    found = find_label_issues(y_train, p_oof_issues)
    flagged = s.tr[found.issue]
    s.label_issues = {
        **found.summary(),
        "rows_dropped": [int(s.keep[r]) for r in flagged],
        "given_label": [int(s.y[r]) for r in flagged],
        "p_high_value": [round(float(v), 4) for v in found.p[found.issue]],
    }
    s.warn(f"{len(flagged)} training rows with a probably wrong label dropped (--drop-label-issues)")
    s.tr = s.tr[~found.issue]
    s.x_train = s.x_train.take(np.flatnonzero(~found.issue))
    s.refit_rows = np.setdiff1d(s.refit_rows, flagged)


def plan_folds(s: FitState) -> None:
    cfg, tr, va = s.cfg, s.tr, s.va
    plan = s.plan = plan_for(cfg.preset, cfg.models, cfg.tune, cfg.folds, cfg.time_limit, cfg.tune_trials)
    s.t_limit_start = time.monotonic()
    if cfg.pretrain:
        s.pretrain_report = pretrain(s)
    x_train = s.x_train
    s.small = va is None and len(tr) < cfg.small_data_rows
    if s.small:
        from sklearn.model_selection import StratifiedKFold

        k = min(plan.folds, int(x_train.y.sum()), int(len(tr) - x_train.y.sum()))  # type: ignore[union-attr]
        k = max(k, 2)
        s.folds = list(StratifiedKFold(k, shuffle=True, random_state=cfg.seed).split(tr, x_train.y))
        return
    if va is None:
        from sklearn.model_selection import train_test_split

        tr_pos = np.arange(len(tr))
        a, b = train_test_split(tr_pos, test_size=0.15, stratify=x_train.y, random_state=cfg.seed)
        s.folds = [(np.sort(a), np.sort(b))]
        return
    # the user's validation rows are appended after the training rows
    x_all = s.x_all
    s.x_train = Inputs(
        m=type(x_all.m)(
            np.vstack([x_train.m.num, x_all.m.num[va]]), np.vstack([x_train.m.cat, x_all.m.cat[va]])
        ),
        dense=np.vstack([x_train.dense, x_all.dense[va]]),
        y=np.concatenate([x_train.y, s.y[va]]),  # type: ignore[list-item]
    )
    s.folds = [(np.arange(len(tr)), np.arange(len(tr), len(tr) + len(va)))]


def search(s: FitState) -> None:
    """The search: one study per tuned kind on the first fold; the winners join the portfolio."""
    plan = s.plan
    s.members = list(plan.members)
    if not plan.tune:
        return
    from winnow.tuning import tune

    a, b = s.folds[0]
    x_a, x_b = s.x_train.take(a), s.x_train.take(b)
    tune_cost = {k: member(k).cost for k in plan.tune}
    for kind in plan.tune:
        seconds = None
        if plan.time_limit is not None:
            left = plan.time_limit * TUNE_SHARE - (time.monotonic() - s.t_limit_start)
            seconds = (
                max(left, 0.0) * tune_cost[kind] / sum(tune_cost[k] for k in plan.tune if k not in s.tuned)
            )
        s.stage(f"searching {kind} hyper-parameters" + (f" ({seconds:.0f}s)" if seconds is not None else ""))
        res = tune(kind, x_a, x_b, FitContext(**s.ctx_base), seconds=seconds, trials=plan.trials)
        s.tuned[kind] = res.params
        s.tuning_report.append(res.to_json())
        s.members.append(f"{kind}_tuned")


def fit_members(s: FitState) -> None:
    plan, folds, small, x_train = s.plan, s.folds, s.small, s.x_train
    remaining = None
    if plan.time_limit is not None:
        remaining = max(plan.time_limit - (time.monotonic() - s.t_limit_start), 1.0)
    jobs = [n for n in s.members for _ in range(len(folds) + (1 if small else 0))]
    clock = Clock(remaining, jobs, lambda n: member(n, s.tuned).cost)
    s.oof_rows = np.concatenate([f[1] for f in folds])
    s.oof = {name: np.full(len(x_train), np.nan) for name in s.members}
    for k, name in enumerate(s.members):
        spec = member(name, s.tuned)
        rounds = []
        for i, (a, b) in enumerate(folds):
            part = f"fold {i + 1}/{len(folds)}" if small else "train/valid"
            s.stage(f"fitting {name} (member {k + 1} of {len(s.members)}, {part})")
            ctx = FitContext(deadline=clock.deadline_for(name), **s.ctx_base)
            t_fit = time.monotonic()
            learner = spec.make().fit(x_train.take(a), x_train.take(b), ctx)
            s.fit_seconds[name] = time.monotonic() - t_fit
            s.oof[name][b] = learner.predict_logit(x_train.take(b))
            rounds.append(learner.best_rounds_ or 1)
        if small:
            s.stage(f"refitting {name} on all training rows")
            ctx = FitContext(deadline=clock.deadline_for(name), **s.ctx_base)
            r = int(np.median(rounds)) if spec.kind != "linear" else int(np.bincount(rounds).argmax())
            t_fit = time.monotonic()
            learner = spec.make().fit(x_train, None, ctx, rounds=max(r, 1))
            s.fit_seconds[name] = time.monotonic() - t_fit
        s.learners[name] = learner


def fuse(s: FitState) -> None:
    cfg, sample = s.cfg, s.sample
    s.stage("fusing models and choosing the threshold")
    y_oof = s.y_oof = s.x_train.y[s.oof_rows]  # type: ignore[index]
    oof_logits = s.oof_logits = {n: s.oof[n][s.oof_rows] for n in s.members}
    s.fusion = s.full_fusion = fit_fusion(y_oof, oof_logits)
    if cfg.live_model == "fast":
        costs = {n: s.learners[n].inference_cost() for n in s.members}
        s.fusion, s.pruning = prune_for_cost(y_oof, oof_logits, s.full_fusion, costs)
    weights = None
    if sample is not None:
        s.fusion.log_odds_shift = s.full_fusion.log_odds_shift = sample.log_odds_shift
        weights = sample.weights(y_oof)
    s.p_oof = s.fusion.probability(oof_logits)
    population = len(s.keep) if sample is None else sample.rows_read - sample.unlabelled_read
    s.threshold = threshold_for(cfg.budget, s.p_oof, y_oof, population=population, weights=weights)
    if s.threshold.note:
        s.warn(s.threshold.note)


def check_leakage(s: FitState) -> None:
    s.stage("checking for leaky columns")
    a, b = s.folds[0]
    for col, auc in leakage_suspects(s.prep, s.x_train.take(a), s.x_train.take(b)).items():
        s.warn(
            f"column {col!r} alone separates the classes (validation ROC-AUC {auc:.3f}): "
            "is it known before the outcome? If not, drop it (--drop / config drop)."
        )


def evaluate(s: FitState) -> None:
    """Held-out test metrics of the fused screener, each member, the full selection, a logistic
    regression and the user's baseline rule; ``s.evaluation`` keeps the rows for the report."""
    cfg, x_test, te = s.cfg, s.x_test, s.te
    s.stage("evaluating on the held-out test rows")
    logits_test = {n: s.learners[n].predict_logit(x_test) for n in s.members}
    p_test = s.p_test = s.fusion.probability(logits_test)
    y_test = x_test.y
    assert y_test is not None  # x_all carries the labels
    budget_k = budget_rows(cfg, len(te), len(s.keep))
    metrics: dict[str, Any] = {
        "split": {
            "train": len(s.tr),
            "validation": len(s.va) if s.va is not None else 0,
            "test": len(te),
            "mode": f"{len(s.folds)}-fold cross-fitting" if s.small else "train/validation",
        },
        "winnow": screening_report(y_test, p_test, budget_k=budget_k),
        "oof": screening_report(s.y_oof, s.p_oof, budget_k=None),
        "models": {
            n: screening_report(y_test, 1 / (1 + np.exp(-logits_test[n])), budget_k=budget_k)
            for n in s.members
        },
        "portfolio": {
            "preset": cfg.preset,
            "members": {
                n: {"kind": member(n, s.tuned).kind, "params": jsonable(member(n, s.tuned).params)}
                for n in s.members
            },
            "fit_seconds": {n: round(v, 2) for n, v in s.fit_seconds.items()},
            "folds": len(s.folds),
            "time_limit": s.plan.time_limit,
        },
    }
    metrics["live"] = {
        "model": cfg.live_model,
        "full": screening_report(y_test, s.full_fusion.probability(logits_test), budget_k=budget_k),
        "full_weights": dict(zip(s.full_fusion.names, s.full_fusion.weights, strict=True)),
        **(s.pruning.to_json() if s.pruning is not None else {}),
    }
    _add_optional_reports(s, metrics)
    s.metrics = metrics
    _compare_with_baselines(s, y_test, budget_k)


def _add_optional_reports(s: FitState, metrics: dict[str, Any]) -> None:
    if s.tuning_report:
        metrics["tuning"] = s.tuning_report
    if s.prep.images_:
        metrics["images"] = {name: e.to_json() for name, e in s.prep.images_.items()}
    if s.sample is not None:
        metrics["sample"] = s.sample.to_json()
    if s.label_issues is not None:
        metrics["label_issues"] = s.label_issues
    if s.pretrain_report:
        metrics["pretrain"] = s.pretrain_report
    if s.prep.tuned_:
        metrics["text_finetune"] = {name: ft.history_ for name, ft in s.prep.tuned_.items()}


def _compare_with_baselines(s: FitState, y_test: np.ndarray, budget_k: int) -> None:
    cfg, metrics, p_test = s.cfg, s.metrics, s.p_test
    if "linear" in s.learners:
        lin = s.learners["linear"]
    else:
        lin = make_learner("linear").fit(s.x_train, None, FitContext(**s.ctx_base), rounds=2)
    p_lin = 1 / (1 + np.exp(-lin.predict_logit(s.x_test)))
    metrics["logistic_regression"] = screening_report(y_test, p_lin, budget_k=budget_k)
    s.evaluation = {"y": np.asarray(y_test, np.int8), "score": p_test, "logistic_regression": p_lin}
    if s.baseline_expr is not None:
        rule = rule_scores(s.baseline_expr, s.raw_kept.take(pa.array(s.te)))
        s.evaluation["rule"] = rule
        metrics["rule"] = {
            "expression": cfg.baseline,
            **screening_report(y_test, rule, budget_k=budget_k, probabilities=False),
        }
    # fair comparison point: the threshold applied to test rows, not a test-chosen top-k
    sel = p_test >= s.threshold.value
    metrics["threshold_on_test"] = {
        "selected": int(sel.sum()),
        "precision": float(y_test[sel].mean()) if sel.any() else 0.0,
        "recall": float(y_test[sel].sum() / max(y_test.sum(), 1)),
    }


def refit_full(s: FitState) -> None:
    """The report above is honest (test rows unseen); the screener users deploy then learns
    from every labelled row, with the rounds cross-fitting chose and the same fusion."""
    if not s.cfg.refit_full:
        return
    plan, x_all = s.plan, s.x_all
    refitted = []
    x_refit = x_all if len(s.refit_rows) == len(x_all) else x_all.take(s.refit_rows)
    for name, w in zip(s.fusion.names, s.fusion.weights, strict=True):
        left = (
            float("inf")
            if plan.time_limit is None
            else plan.time_limit - (time.monotonic() - s.t_limit_start)
        )
        # under a time limit, refit only what fits in the time left (never a truncated model)
        if not w or left < 1.5 * s.fit_seconds.get(name, 0.0) * len(x_refit) / max(len(s.x_train), 1):
            continue
        s.stage(f"refitting {name} on all labelled rows")
        best = s.learners[name].best_rounds_ or 1
        s.learners[name] = (
            member(name, s.tuned).make().fit(x_refit, None, FitContext(**s.ctx_base), rounds=best)
        )
        refitted.append(name)
    s.metrics["refit_full"] = {"rows": len(x_refit), "models": refitted}


def pretrain(s: FitState) -> list[dict[str, Any]]:
    """SCARF-pretrain one encoder per deep architecture in the plan on the training rows plus
    every valid row without a target (never the test rows); puts the weights in ``ctx_base``."""
    from winnow.models.deepnet import DeepLearner
    from winnow.models.pretrain import pretrain_encoder

    plan, prep, typed, x_train = s.plan, s.prep, s.typed, s.x_train
    deep = [n for n in plan.members if member(n).kind == "deep"]
    if not deep:
        s.warn("--pretrain has no effect: the portfolio has no deep network (use --preset balanced)")
        return []
    unlabelled = np.flatnonzero(typed.ok & ~s.usable)
    x = x_train
    if len(unlabelled):
        m_u = prep.transform(typed.table.take(pa.array(unlabelled)), s.specs)
        x_u = Inputs(m=m_u, dense=prep.dense(m_u))
        x = Inputs(
            m=type(m_u)(np.vstack([x_train.m.num, m_u.num]), np.vstack([x_train.m.cat, m_u.cat])),
            dense=np.vstack([x_train.dense, x_u.dense]),
        )
    deadline = None if plan.time_limit is None else s.t_limit_start + PRETRAIN_SHARE * plan.time_limit
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
        s.stage(f"pretraining the {name} encoder on {len(x):,} rows ({len(unlabelled):,} unlabelled), SCARF")
        key, state, rep = pretrain_encoder(
            x,
            FitContext(deadline=deadline, **s.ctx_base),
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
    s.ctx_base["pretrained"] = weights
    return report
