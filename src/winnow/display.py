"""Rich terminal output: metric tables, summaries and progress for the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from winnow.errors import WinnowError

console = Console(stderr=False)
err_console = Console(stderr=True)


def fail(e: WinnowError) -> NoReturn:
    """Every front end's answer to a :class:`winnow.errors.WinnowError`: ``error: ...`` (with
    its hint) on stderr, and the exit code of its class (``winnow.errors``: 2 configuration,
    3 data, 4 artifact, 1 other); stdout stays for the command's own output."""
    import typer
    from rich.markup import escape

    # escaped: an error's own text (``winnow[sql]``, a value like ``[1, 2]``) is not Rich markup
    err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
    raise typer.Exit(e.exit_code) from None


_ROWS = [
    ("auc_pr", "AUC-PR", "{:.3f}"),
    ("roc_auc", "ROC-AUC", "{:.3f}"),
    ("precision_at_k", "precision@k (k=#positives)", "{:.3f}"),
    ("budget.precision", "precision in budget", "{:.3f}"),
    ("budget.recall", "recall in budget", "{:.3f}"),
    ("budget.lift", "lift in budget", "{:.2f}x"),
    ("log_loss", "log-loss", "{:.4f}"),
    ("ece", "calibration error (ECE)", "{:.4f}"),
]


def _get(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def metrics_table(columns: dict[str, dict[str, Any]], title: str) -> Table:
    """One column per scorer (winnow, logistic regression, the user's rule), one row per metric."""
    t = Table(title=title, title_justify="left")
    t.add_column("metric")
    for name in columns:
        t.add_column(name, justify="right")
    for key, label, fmt in _ROWS:
        vals = [_get(c, key) for c in columns.values()]
        if all(v is None for v in vals):
            continue
        t.add_row(label, *[fmt.format(v) if isinstance(v, int | float) else "-" for v in vals])
    first = next(iter(columns.values()))
    k = _get(first, "budget.k")
    if k is not None:
        t.caption = f"budget = top {k:,} of {first.get('rows', 0):,} held-out rows"
    return t


def lift_table(columns: dict[str, dict[str, Any]]) -> Table:
    """Recall and lift at every budget, for each scorer."""
    t = Table(title="Recall (lift) by budget, held-out rows", title_justify="left")
    t.add_column("top")
    for name in columns:
        t.add_column(name, justify="right")
    first = next(iter(columns.values()))
    for frac in first.get("lift_curve") or {}:
        cells = []
        for c in columns.values():
            p = _get(c, f"lift_curve.{frac}")
            if p is None:
                p = (c.get("lift_curve") or {}).get(frac)
            cells.append(f"{p['recall']:.1%} ({p['lift']:.1f}x)" if p else "-")
        t.add_row(f"{float(frac):.0%}", *cells)
    return t


def _budget_text(b: dict[str, Any]) -> str:
    from winnow.config import Budget

    return Budget(**b).describe()


def fit_report(manifest: dict[str, Any]) -> list[Any]:
    """Renderables describing a fitted screener: metrics vs baselines, lift, threshold, reasons."""
    m = manifest["metrics"]
    cols = {"winnow": m["winnow"], "logistic regression": m["logistic_regression"]}
    if "rule" in m:
        cols[f"rule: {m['rule']['expression']}"] = m["rule"]
    out: list[Any] = [metrics_table(cols, "Held-out test metrics"), lift_table(cols)]
    thr = manifest["threshold"]
    out.append(
        f"threshold [bold]{thr['value']:.4f}[/] selects {thr['fraction']:.1%} of validation rows "
        f"with precision {thr['expected_precision']:.1%} and recall {thr['expected_recall']:.1%}"
        f" (budget: {_budget_text(manifest['config']['budget'])})"
    )
    fusion = manifest["fusion"]
    weights = ", ".join(f"{n} {w:.0%}" for n, w in zip(fusion["names"], fusion["weights"], strict=True) if w)
    port = m.get("portfolio", {})
    preset = f"preset {port['preset']}; " if port.get("preset") else ""
    calib = fusion.get("calibration", "platt")
    out.append(f"{preset}model weights: {weights}; calibration: {calib}; split: {m['split']['mode']}")
    live = m.get("live")
    if live and live.get("model") == "fast" and "cost_us_per_row" in live:
        dropped = ", ".join(live["dropped"]) or "none"
        out.append(
            f"live model fast: dropped {dropped}; estimated scoring cost "
            f"{live['cost_us_per_row']:.1f} µs/row (full selection {live['cost_us_per_row_full']:.1f}); "
            f"test AUC-PR {m['winnow']['auc_pr']:.4f} (full {live['full']['auc_pr']:.4f})"
        )
    for t in m.get("tuning", []):
        out.append(
            f"search {t['kind']}: validation AUC-PR {t['best_valid_auc_pr']:.4f} "
            f"(defaults {t['default_valid_auc_pr']:.4f}), {t['trials']} trials, {t['pruned']} pruned, "
            f"{t['seconds']:.0f}s"
        )
    top = list(manifest["importance"].items())[:8]
    if top:
        out.append("most important columns: " + ", ".join(f"{k} ({v:.0%})" for k, v in top))
    return out


class _LimitLeft(ProgressColumn):
    """Time left of a fit's time limit, the fit's ETA (it ends within about the limit)."""

    def render(self, task: Any) -> Text:
        limit = task.fields.get("limit")
        if not limit or task.elapsed is None:
            return Text("")
        return Text(f"~{max(limit - task.elapsed, 0):.0f}s left of {limit:.0f}s", style="progress.remaining")


@contextmanager
def stage_spinner(enabled: bool = True, limit: float | None = None) -> Iterator[Callable[[str], None]]:
    """A spinner showing the current fitting stage (with ``limit``, the time left of the fit's
    time limit); yields the ``on_stage`` callback."""
    if not enabled:
        yield lambda msg: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        _LimitLeft(),
        console=err_console,
        transient=True,
    ) as prog:
        task = prog.add_task("starting", total=None, limit=limit)

        def on_stage(msg: str) -> None:
            prog.update(task, description=msg)
            err_console.print(f"[dim]· {msg}[/]")

        yield on_stage


@contextmanager
def rows_progress(enabled: bool = True) -> Iterator[Callable[[int, int | None, str], None]]:
    """A progress bar over rows; yields the ``progress(done, total, phase)`` callback."""
    if not enabled:
        yield lambda done, total, phase: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as prog:
        task = prog.add_task("reading", total=None)

        def progress(done: int, total: int | None, phase: str) -> None:
            prog.update(task, completed=done, total=total, description=phase)

        yield progress


@contextmanager
def stages_progress(total: int, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """:func:`rows_progress` over a command's ``total`` stages (the current one named, the time
    remaining at the pace of the stages done); yields the ``on_stage`` callback, called as each
    stage starts."""
    with rows_progress(enabled) as progress:
        started = 0

        def on_stage(msg: str) -> None:
            nonlocal started
            progress(min(started, total), total, msg)
            started += 1

        yield on_stage


_STATUS_STYLE = {"stable": "green", "moderate": "yellow", "major": "bold red", "n/a": "dim"}


def drift_report(report: dict[str, Any], top: int = 15) -> list[Any]:
    """Renderables for a drift report: the most drifted features, the score, the selection rate."""
    out: list[Any] = []
    n = report["window_records"]
    if not n:
        return [f"no valid rows to compare ({report.get('rows_rejected', 0)} rejected)"]
    t = Table(
        title=f"Drift of {n:,} rows against {report['reference_rows']:,} training rows", title_justify="left"
    )
    for c in ("feature", "column", "PSI", "noise", "status", "Wasserstein/IQR", "missing", "unseen/rare"):
        t.add_column(c, justify="left" if c in ("feature", "column", "status") else "right")

    def pct(v: float | None) -> str:
        return "" if v is None else f"{v:.1%}"

    for r in report["features"][:top]:
        w = r.get("wasserstein")
        unseen = (
            ""
            if "unseen_or_rare" not in r
            else f"{pct(r['unseen_or_rare'])} ({pct(r['unseen_or_rare_reference'])})"
        )
        t.add_row(
            r["feature"],
            r["column"],
            f"{r['psi']:.3f}",
            f"{r['psi_noise']:.3f}",
            f"[{_STATUS_STYLE[r['status']]}]{r['status']}[/]",
            "" if w is None else f"{w:.2f}",
            f"{pct(r['missing'])} ({pct(r['missing_reference'])})",
            unseen,
        )
    out.append(t)
    s, sel = report["score"], report["selection"]
    out.append(
        f"score PSI {s['psi']:.3f} (noise {s['psi_noise']:.3f}): "
        f"[{_STATUS_STYLE[s['status']]}]{s['status']}[/]; selection rate {sel['rate']:.2%} "
        f"vs {sel['expected_rate']:.2%} expected"
    )
    summ = report["summary"]
    out.append(
        f"{summ['features_major']} features with a major shift (PSI net of noise > 0.25), "
        f"{summ['features_moderate']} moderate (0.1-0.25); {report.get('rows_rejected', 0):,} rows rejected"
    )
    return out
