"""Build the one-file HTML report of a fitted screener.

Everything in the report comes from the artifact: its manifest (task, data profile, metrics,
model weights, importance) and the held-out test rows it keeps (``evaluation.safetensors``:
labels and the scores of winnow, logistic regression and the user's rule), from which the
charts and the budget table are computed. With data, the data is screened and the top
selected rows are shown with their reason codes. The page has no external resources and the
same artifact (and data) always gives the same bytes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from winnow.errors import ConfigError
from winnow.report import curves, svg
from winnow.report.template import COLORS, NEGATIVE, POSITIVE, esc, facts, figure, kpi, page, section, table
from winnow.select import with_rule

if TYPE_CHECKING:
    import pyarrow as pa

    from winnow.screener import Screener

#: (id, title) of every section, in page order
SECTIONS = (
    ("overview", "Overview"),
    ("data", "Data profile"),
    ("metrics", "Held-out metrics"),
    ("charts", "Charts"),
    ("budgets", "Budget trade-offs"),
    ("importance", "What drives the score"),
    ("screening", "Screened records"),
)
TITLES = dict(SECTIONS)
#: budgets of the trade-off table (the configured budget is added when it is not one of them)
TABLE_FRACTIONS = (0.01, 0.05, 0.1, 0.2)
#: metric rows of the comparison table: key, label, format, higher is better, what it means
METRIC_ROWS = (
    ("rows", "held-out rows", "{:,}", None, "Rows kept aside during fitting and scored only once, here."),
    ("positives", "high-value among them", "{:,}", None, "How many of those rows are truly high-value."),
    (
        "auc_pr",
        "AUC-PR",
        "{:.3f}",
        True,
        "Average precision over the whole ranking (1 = perfect; a random order scores the positive rate).",
    ),
    (
        "roc_auc",
        "ROC-AUC",
        "{:.3f}",
        True,
        "Chance that a random high-value row is ranked above a random other one (0.5 = coin flip).",
    ),
    (
        "precision_at_k",
        "precision@k (k = #high-value)",
        "{:.3f}",
        True,
        "Share of high-value rows in a top list as long as the number of high-value rows.",
    ),
    (
        "budget.precision",
        "precision in budget",
        "{:.3f}",
        True,
        "Of the rows the budget selects, the share that are high-value.",
    ),
    (
        "budget.recall",
        "recall in budget",
        "{:.3f}",
        True,
        "Of all high-value rows, the share the budget selects.",
    ),
    (
        "budget.lift",
        "lift in budget",
        "{:.2f}x",
        True,
        "How many times richer in high-value rows the selection is than a random pick.",
    ),
    (
        "log_loss",
        "log-loss",
        "{:.4f}",
        False,
        "Penalty for confident wrong probabilities (lower is better; only for probabilities).",
    ),
    (
        "ece",
        "calibration error (ECE)",
        "{:.4f}",
        False,
        "Average gap between predicted probability and observed rate (lower is better).",
    ),
)


@dataclass
class Scorer:
    """One ranking compared in the report."""

    key: str  # "winnow", "logistic_regression", "rule"
    label: str
    color: str
    scores: np.ndarray | None
    metrics: dict[str, Any]
    probability: bool


def _get(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _swatch(color: str, width: float | None = None) -> str:
    w = f";width:{width:.0f}px" if width is not None else ""
    return f'<span class="swatch" style="background:{color}{w}"></span>'


def _pct(v: float, digits: int = 1) -> str:
    return f"{v * 100:.{digits}f}%"


def _budget_text(b: dict[str, Any]) -> str:
    if b.get("fraction") is not None:
        return f"top {svg.pct(b['fraction'])}"
    if b.get("count") is not None:
        return f"top {b['count']:,}"
    return f"as many as keep precision >= {svg.pct(b['min_precision'])}"


def _scorers(s: Screener) -> list[Scorer]:
    m, ev = s.metrics_, getattr(s, "evaluation_", None) or {}
    out = [
        Scorer("winnow", "winnow", COLORS["winnow"], ev.get("score"), m["winnow"], True),
        Scorer(
            "logistic_regression",
            "logistic regression",
            COLORS["logistic regression"],
            ev.get("logistic_regression"),
            m.get("logistic_regression", {}),
            True,
        ),
    ]
    if "rule" in m:
        out.append(
            Scorer(
                "rule", f"rule: {m['rule']['expression']}", COLORS["rule"], ev.get("rule"), m["rule"], False
            )
        )
    return out


# ---------------------------------------------------------------------------------------- hero
def _hero(man: dict[str, Any], scorers: list[Scorer], artifact: str) -> str:
    w = scorers[0].metrics
    budget = _budget_text(man["config"]["budget"])
    if "budget" in w:
        parts = [
            f"Acting on the <strong>{esc(budget)}</strong> of held-out records, winnow finds "
            f"<strong>{_pct(w['budget']['recall'])}</strong> of the high-value ones, with "
            f"{_pct(w['budget']['precision'])} of its picks correct"
        ]
        others = [
            f"{esc(sc.label)} finds {_pct(sc.metrics['budget']['recall'])}"
            for sc in scorers[1:]
            if "budget" in sc.metrics
        ]
        headline = parts[0] + ("; " + "; ".join(others) if others else "") + "."
    else:
        headline = esc(w.get("note", "The held-out rows hold a single class: no metrics."))
    where = f"artifact <code>{esc(artifact)}</code> · " if artifact else ""
    return (
        '<div class="kicker">winnow screening report</div>'
        f"<h1>High-value = {esc(man['target']['description'])}</h1>"
        f'<p class="headline">{headline}</p>'
        f'<p class="meta">{where}created {esc(man["created"])} · winnow {esc(man["winnow_version"])}</p>'
    )


def _kpis(scorers: list[Scorer]) -> str:
    w = scorers[0].metrics
    cards = []
    for key, label, fmt in (
        ("auc_pr", "AUC-PR", "{:.3f}"),
        ("budget.recall", "recall in budget", "pct"),
        ("budget.precision", "precision in budget", "pct"),
        ("budget.lift", "lift in budget", "{:.2f}x"),
    ):
        v = _get(w, key)
        if v is None:
            continue

        def f(x: float, fmt: str = fmt) -> str:
            return _pct(x) if fmt == "pct" else fmt.format(x)

        sub = "<br>".join(
            f"{_swatch(sc.color)}{esc(sc.label)} {f(_get(sc.metrics, key))}"
            for sc in scorers[1:]
            if _get(sc.metrics, key) is not None
        )
        cards.append(kpi(label, f(v), sub))
    return f'<div class="kpis">{"".join(cards)}</div>' if cards else ""


# ------------------------------------------------------------------------------------ overview
def _overview(man: dict[str, Any]) -> str:
    m, cfg, thr, fusion = man["metrics"], man["config"], man["threshold"], man["fusion"]
    split = m.get("split", {})
    port = m.get("portfolio", {})
    refit = m.get("refit_full")
    items = [
        ("high-value", esc(man["target"]["description"])),
        ("budget", esc(_budget_text(cfg["budget"]))),
        (
            "score threshold",
            f"{thr['value']:.4f}",
        ),
        (
            "expected at the threshold",
            f"{_pct(thr['fraction'])} selected, precision {_pct(thr['expected_precision'])}, "
            f"recall {_pct(thr['expected_recall'])}",
        ),
        ("preset", esc(port.get("preset") or cfg.get("preset") or "-")),
        ("calibration", esc(fusion.get("calibration", "platt"))),
        ("split", esc(split.get("mode", "-"))),
        (
            "rows: train / validation / test",
            f"{split.get('train', 0):,} / {split.get('validation', 0):,} / {split.get('test', 0):,}",
        ),
        ("id column", esc(cfg.get("id") or "none")),
        ("seed", esc(cfg.get("seed"))),
        ("created", esc(man["created"])),
        ("winnow version", esc(man["winnow_version"])),
    ]
    if refit:
        items.append(("refitted on all rows", esc(", ".join(refit.get("models", [])) or "none")))
    body = facts(items)
    if thr.get("note"):
        body += f'<div class="warn">{esc(thr["note"])}</div>'
    body += (
        '<p class="note">The threshold was chosen on validation rows (out-of-fold on small data), '
        "never on the held-out rows the metrics below are measured on.</p>"
    )
    # model weights
    members = port.get("members", {})
    secs = port.get("fit_seconds", {})
    rows = []
    for name, wgt in zip(fusion["names"], fusion["weights"], strict=True):
        mem = members.get(name, {})
        params = mem.get("params") or {}
        bar = _swatch(COLORS["winnow"], width=max(wgt * 120, 1))
        rows.append(
            [
                f"<strong>{esc(name)}</strong>",
                esc(mem.get("kind", name)),
                f'<td class="num">{bar}{_pct(wgt, 0)}</td>',
                f"{secs[name]:.2f}s" if name in secs else "-",
                f"<code>{esc(_params_text(params))}</code>"
                if params
                else '<span class="muted">defaults</span>',
            ]
        )
    body += "<h3>Models and their weights in the fused score</h3>"
    body += table(
        ["member", "kind", "weight", "fit time", "settings"], rows, numeric=[False, False, True, True, False]
    )
    tuning = m.get("tuning") or []
    if tuning:
        trows = [
            [
                esc(t["kind"]),
                f"{t['best_valid_auc_pr']:.4f}",
                f"{t['default_valid_auc_pr']:.4f}",
                f"{t['trials']:,}",
                f"{t['pruned']:,}",
                f"{t['seconds']:.0f}s",
                f"<code>{esc(_params_text(t.get('params') or {}))}</code>",
            ]
            for t in tuning
        ]
        body += "<h3>Hyper-parameter search</h3>"
        body += table(
            ["model", "best AUC-PR (validation)", "defaults", "trials", "pruned", "time", "best settings"],
            trows,
            numeric=[False, True, True, True, True, True, False],
        )
    else:
        body += '<p class="muted">No hyper-parameter search was run (preset defaults).</p>'
    return section("overview", TITLES["overview"], body)


def _params_text(params: dict[str, Any]) -> str:
    flat: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, dict):
            flat.update(v)
        else:
            flat[k] = v
    return ", ".join(f"{k}={_short(v)}" for k, v in flat.items())


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)


# ---------------------------------------------------------------------------------------- data
def _data_profile(man: dict[str, Any]) -> str:
    s = man["summary"]
    used = s.get("rows_used", 0)
    pos = s.get("positives", 0)
    items = [
        ("rows read", f"{s.get('rows_read', 0):,}"),
        ("rows used", f"{used:,}"),
        ("rows rejected", f"{s.get('rows_rejected', 0):,}"),
        ("rows missing the target", f"{s.get('rows_missing_target', 0):,}"),
        ("duplicates dropped", f"{s.get('duplicates_dropped', 0):,}"),
        ("high-value rows", f"{pos:,} ({_pct(pos / used) if used else '-'})"),
    ]
    body = facts(items)
    schema = man["schema"]
    features = [c for c in schema if c["role"] not in ("ignore", "id")]
    dropped = [c for c in schema if c["role"] in ("ignore", "id")]
    body += f"<h3>Columns used as features ({len(features)})</h3>"
    body += table(
        ["column", "role", "why this role"],
        [[f"<strong>{esc(c['name'])}</strong>", _role(c["role"]), esc(c["reason"])] for c in features],
    )
    body += f"<h3>Columns not used as features ({len(dropped)})</h3>"
    if dropped:
        body += table(
            ["column", "role", "why"],
            [[esc(c["name"]), _role(c["role"]), esc(c["reason"])] for c in dropped],
        )
    else:
        body += '<p class="muted">Every column was used.</p>'
    warnings = man.get("warnings") or []
    body += f"<h3>Warnings ({len(warnings)})</h3>"
    body += "".join(f'<div class="warn">{esc(w)}</div>' for w in warnings) or '<p class="muted">None.</p>'
    examples = s.get("reject_examples") or []
    if examples:
        body += "<h3>Examples of rejected rows</h3>" + "".join(
            f'<div class="warn">{esc(e)}</div>' for e in examples
        )
    lead = "What the screener was fitted on, and what it made of each column."
    return section("data", TITLES["data"], body, lead)


def _role(role: str) -> str:
    return f'<span class="role role-{esc(role)}">{esc(role)}</span>'


# ------------------------------------------------------------------------------------- metrics
def _metrics(scorers: list[Scorer]) -> str:
    headers = ["metric"] + [sc.label for sc in scorers] + ["what it means"]
    rows = []
    for key, label, fmt, higher, meaning in METRIC_ROWS:
        vals = [_get(sc.metrics, key) for sc in scorers]
        if all(v is None for v in vals):
            continue
        finite = [v for v in vals if isinstance(v, int | float)]
        best = None
        if higher is not None and len(finite) > 1:
            best = max(finite) if higher else min(finite)
        cells = [esc(label)]
        for sc, v in zip(scorers, vals, strict=True):
            if not isinstance(v, int | float):
                cells.append('<td class="num muted">-</td>')
                continue
            cls = "num best" if best is not None and v == best else "num"
            data = f'data-scorer="{sc.key}" data-metric="{esc(key)}" data-value="{v!r}"'
            cells.append(f'<td class="{cls}" {data}>{esc(fmt.format(v))}</td>')
        cells.append(f'<span class="muted">{esc(meaning)}</span>')
        rows.append(cells)
    numeric = [False] + [True] * len(scorers) + [False]
    body = table(headers, rows, numeric=numeric, table_id="metrics-table")
    k, n = _get(scorers[0].metrics, "budget.k"), scorers[0].metrics.get("rows", 0)
    budget_txt = f"The budget is the top {k:,} of {n:,} held-out rows. " if k is not None else ""
    body += (
        f'<p class="note">{budget_txt}Best value per row in green. The rule is a ranking, not a '
        "probability, so log-loss and calibration do not apply to it. Logistic regression is the "
        "simple model a statistician would fit first: winnow should beat it to be worth its "
        "complexity.</p>"
    )
    lead = "winnow against a logistic regression and your current rule, on rows no model saw."
    return section("metrics", TITLES["metrics"], body, lead)


# -------------------------------------------------------------------------------------- charts
def _charts(man: dict[str, Any], scorers: list[Scorer], y: np.ndarray | None) -> str:
    ranked = [sc for sc in scorers if sc.scores is not None]
    if y is None or not ranked or int(y.sum()) in (0, len(y)):
        msg = (
            "This artifact keeps no held-out rows with both classes (it was fitted by an older "
            "winnow, or the test rows hold one class), so the charts cannot be drawn. Refit to see them."
        )
        return section("charts", TITLES["charts"], f'<p class="warn">{esc(msg)}</p>')
    n, pos = len(y), int(y.sum())
    base = pos / n
    rankings = {sc.key: curves.Ranking.of(y, sc.scores) for sc in ranked}  # type: ignore[arg-type]
    w = scorers[0]
    k_budget = int(_get(w.metrics, "budget.k") or max(1, round(man["threshold"]["fraction"] * n)))
    f_budget = k_budget / n
    budget_label = f"budget: {_budget_text(man['config']['budget'])}"
    figs = []

    # precision-recall
    series = []
    for sc in ranked:
        r, p = curves.pr_curve(rankings[sc.key])
        series.append(svg.Series(sc.label, r, p, sc.color))
    wb = w.metrics.get("budget") or curves.budget_row(y, w.scores, f_budget, k_budget).__dict__  # type: ignore[arg-type]
    figs.append(
        figure(
            svg.line_chart(
                series,
                label="Precision-recall curve",
                x_label="recall: share of all high-value rows found",
                y_label="precision: share of picks that are high-value",
                x_fmt=svg.pct,
                y_fmt=svg.pct,
                guides=[svg.Guide("y", base, f"random pick: {_pct(base)}")],
                dots=[svg.Dot(wb["recall"], wb["precision"], budget_label, w.color)],
            ),
            "<strong>Precision-recall.</strong> Walk down the ranking from the top: each point says how "
            "many of the high-value rows you have found so far (right) and how many of your picks were "
            "right (up). Higher and further right is better; the dot is where your budget stops. The "
            "dashed line is what picking at random gives.",
            "chart-pr",
        )
    )

    # cumulative gain
    series = []
    for sc in ranked:
        gx, gy = curves.gain_curve(rankings[sc.key])
        series.append(svg.Series(sc.label, gx, gy, sc.color))
    series.append(svg.Series("random", [0, 1], [0, 1], svg.AXIS, width=1.5, dash="5 5"))
    series.append(svg.Series("perfect", [0, base, 1], [0, 1, 1], svg.INK, width=1.2, dash="2 3"))
    gain_at = float(rankings["winnow"].hits[k_budget - 1] / pos)
    figs.append(
        figure(
            svg.line_chart(
                series,
                label="Cumulative gain chart",
                x_label="share of rows screened, best scores first",
                y_label="share of high-value rows found",
                x_fmt=svg.pct,
                y_fmt=svg.pct,
                guides=[svg.Guide("x", f_budget, budget_label, color=w.color)],
                dots=[svg.Dot(f_budget, gain_at, f"{_pct(gain_at)} found", w.color)],
            ),
            "<strong>Cumulative gain.</strong> If you work through the records in the order each method "
            "ranks them, how much of all the value have you reached after screening a given share? "
            "The diagonal is random order; the dotted line is a perfect ranking. The vertical line marks "
            "your budget.",
            "chart-gain",
        )
    )

    # lift
    series = []
    top_lift = 1.0
    for sc in ranked:
        lx, ly = curves.lift_curve(rankings[sc.key])
        top_lift = max(top_lift, max(ly, default=1.0))
        series.append(svg.Series(sc.label, lx, ly, sc.color))
    lift_at = float(rankings["winnow"].hits[k_budget - 1] / k_budget / base)
    figs.append(
        figure(
            svg.line_chart(
                series,
                label="Lift chart",
                x_label="share of rows screened, best scores first",
                y_label="lift: times better than random",
                x_fmt=svg.pct,
                y_fmt=lambda v: f"{v:g}x",
                y_range=(0.0, svg.nice_upper(top_lift * 1.05)),
                guides=[
                    svg.Guide("y", 1.0, "random = 1x"),
                    svg.Guide("x", f_budget, budget_label, color=w.color),
                ],
                dots=[svg.Dot(f_budget, lift_at, f"{lift_at:.1f}x", w.color)],
            ),
            "<strong>Lift.</strong> How many times more high-value records the top of the list holds "
            "than a random sample of the same size. A lift of 3x at 10% means the top tenth of the "
            "ranking is three times as rich as average. Lift always falls to 1x when everything is "
            "selected; the curve starts at 1% because the first few rows are too few to judge.",
            "chart-lift",
        )
    )

    # calibration
    series = []
    hi = 0.0
    for sc in ranked:
        if not sc.probability:
            continue
        bins = curves.calibration_bins(y, sc.scores)  # type: ignore[arg-type]
        xs, ys = [b.mean_predicted for b in bins], [b.observed for b in bins]
        hi = max(hi, *xs, *ys)
        series.append(svg.Series(sc.label, xs, ys, sc.color, points=True))
    top = min(1.0, svg.nice_upper(hi * 1.05))
    series.append(svg.Series("perfectly calibrated", [0, top], [0, top], svg.AXIS, width=1.5, dash="5 5"))
    figs.append(
        figure(
            svg.line_chart(
                series,
                label="Calibration plot (reliability diagram)",
                x_label="predicted probability (mean of the bin)",
                y_label="observed share of high-value",
                x_range=(0.0, top),
                y_range=(0.0, top),
                x_fmt=svg.pct,
                y_fmt=svg.pct,
            ),
            "<strong>Calibration.</strong> Can the score be read as a probability? Rows are grouped into "
            "ten equal-sized bins by predicted probability; each point compares the average prediction "
            "with how often the rows really were high-value. On the dashed diagonal, a score of 30% "
            "means 3 in 10. The rule is left out: it ranks but does not predict probabilities.",
            "chart-calibration",
        )
    )

    # score distributions by class
    ws = np.asarray(w.scores, dtype=np.float64)
    upper = min(1.0, svg.nice_upper(float(ws.max()) * 1.02))
    edges, neg, posh = curves.class_histograms(y, ws, hi=upper)
    nx, ny = curves.step_xy(edges, neg)
    px, py = curves.step_xy(edges, posh)
    thr = float(man["threshold"]["value"])
    figs.append(
        figure(
            svg.line_chart(
                [
                    svg.Series(f"not high-value ({n - pos:,})", nx, ny, NEGATIVE, width=1.8, fill=True),
                    svg.Series(f"high-value ({pos:,})", px, py, POSITIVE, width=1.8, fill=True),
                ],
                label="winnow score distributions by class",
                x_label="winnow score (predicted probability)",
                y_label="share of the class",
                x_range=(0.0, upper),
                y_range=(0.0, svg.nice_upper(max(max(neg), max(posh)) * 1.05)),
                x_fmt=svg.pct,
                y_fmt=svg.pct,
                guides=[svg.Guide("x", thr, f"threshold {thr:.3f}", color=w.color)],
            ),
            "<strong>Score distributions.</strong> The winnow scores of held-out rows that turned out "
            "high-value (blue) and of the others (grey), each as a share of its own group so both are "
            "visible. The less the two hills overlap, the cleaner the separation. Rows right of the "
            "threshold line are the ones selected.",
            "chart-scores",
        )
    )
    lead = (
        f"Computed from the {n:,} held-out rows kept in the artifact ({pos:,} high-value, "
        f"{_pct(base)}). Every curve ranks the rows the same way as the metrics table."
    )
    return section("charts", TITLES["charts"], f'<div class="charts">{"".join(figs)}</div>', lead)


# ------------------------------------------------------------------------------------- budgets
def _budgets(man: dict[str, Any], scorers: list[Scorer], y: np.ndarray | None) -> str:
    w = scorers[0]
    if y is None or w.scores is None or int(y.sum()) in (0, len(y)):
        return section(
            "budgets",
            TITLES["budgets"],
            '<p class="warn">No held-out rows with both classes are kept in this artifact.</p>',
        )
    n = len(y)
    population = int(man["summary"].get("rows_used", 0)) or n
    rows_spec: list[tuple[float, int | None, bool]] = [(f, None, False) for f in TABLE_FRACTIONS]
    k_cfg = _get(w.metrics, "budget.k")
    if k_cfg is not None:
        # the configured budget's own row, with the manifest's k (a fraction budget rounds up)
        frac = man["config"]["budget"].get("fraction")
        match = [i for i, (f, _, _) in enumerate(rows_spec) if frac is not None and math.isclose(f, frac)]
        if match:
            rows_spec[match[0]] = (rows_spec[match[0]][0], int(k_cfg), True)
        else:
            rows_spec.append((int(k_cfg) / n, int(k_cfg), True))
            rows_spec.sort(key=lambda r: r[0])
    others = [sc for sc in scorers[1:] if sc.scores is not None]
    short = {"logistic_regression": "recall (logistic regression)", "rule": "recall (rule)"}
    headers = [
        "budget",
        "held-out rows",
        "threshold",
        "precision",
        "recall",
        "lift",
        *[short[sc.key] for sc in others],
        f"selected of {population:,}",
        "of which high-value",
    ]
    rows, classes = [], []
    for f, k, configured in rows_spec:
        b = curves.budget_row(y, w.scores, f, k)
        scaled = max(1, math.ceil(f * population))
        cells = [
            f"top {svg.pct(f)}" + (" <strong>(configured)</strong>" if configured else ""),
            f"{b.k:,}",
            f"{b.threshold:.4f}",
            _pct(b.precision),
            _pct(b.recall),
            f"{b.lift:.2f}x",
            *[_pct(curves.budget_row(y, sc.scores, f, b.k).recall) for sc in others],  # type: ignore[arg-type]
            f"{scaled:,}",
            f"{round(b.precision * scaled):,}",
        ]
        rows.append(cells)
        classes.append("highlight" if configured else "")
    body = table(
        headers,
        rows,
        numeric=[False] + [True] * (len(headers) - 1),
        row_classes=classes,
        table_id="budget-table",
    )
    body += (
        '<p class="note">Read a row as: "if I act on the top share of records, the cut-off score is '
        "this, this share of my picks will be high-value (precision), and I will reach this share of "
        'all high-value records (recall)". Measured on the held-out rows; the last two columns scale '
        f"the selection to the {population:,} records the screener was fitted on, assuming new data "
        "looks like them. Small budgets on few held-out rows are noisy.</p>"
    )
    lead = "What each budget buys: a bigger budget finds more of the value but with more misses."
    return section("budgets", TITLES["budgets"], body, lead)


# ---------------------------------------------------------------------------------- importance
def _importance(man: dict[str, Any], top: int = 15) -> str:
    imp = sorted(man.get("importance", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    if not imp:
        return section("importance", TITLES["importance"], '<p class="muted">No importance recorded.</p>')
    shown = imp[:top]
    chart = svg.bar_chart(
        [k for k, _ in shown],
        [v for _, v in shown],
        label="Global feature importance",
        color=COLORS["winnow"],
        fmt=lambda v: _pct(v),
    )
    rest = imp[top:]
    more = f" {len(rest)} more columns share the remaining {_pct(sum(v for _, v in rest))}." if rest else ""
    body = figure(
        chart,
        "<strong>Feature importance.</strong> How much each input column contributes to the fused score "
        "across all rows, as a share of the total. A high share means the screener leans on that "
        "column a lot; it does not say in which direction, and correlated columns share the credit."
        + esc(more),
        "chart-importance",
    )
    return section("importance", TITLES["importance"], body)


# ----------------------------------------------------------------------------------- screening
def _screening(s: Screener, data: Any, top: int, imp: dict[str, float]) -> str:
    if data is None:
        body = (
            '<p class="note">Give data to see reason codes: <code>winnow report ARTIFACT --data '
            "new_records.parquet --out report.html</code> screens the records with the artifact's "
            "budget and lists the top selected ones, each with the three reasons that pushed its score "
            "up most.</p>"
        )
        return section("screening", TITLES["screening"], body)
    result = s.screen(data, reasons=0)
    summ = result.summary
    name = str(data) if isinstance(data, str | os.PathLike) else f"an in-memory {type(data).__name__}"
    items = [
        ("data", f"<code>{esc(name)}</code>"),
        ("rows read", f"{summ.rows_read:,}"),
        ("rows scored", f"{summ.rows_scored:,}"),
        ("rows selected", f"{summ.rows_selected:,}"),
        ("rows rejected", f"{summ.rows_rejected:,}"),
        ("selection", esc(summ.selection)),
    ]
    if summ.threshold is not None:
        items.append(("lowest selected score", f"{summ.threshold:.4f}"))
    body = facts(items)
    body += "".join(f'<div class="warn">rejected: {esc(e)}</div>' for e in summ.reject_examples)
    sel = result.selected if result.selected is not None else result.head
    if sel is None or sel.num_rows == 0 or top == 0:
        body += '<p class="muted">No rows selected.</p>'
        return section("screening", TITLES["screening"], body)
    head = sel.slice(0, top)
    reasons = _top_reasons(s, head)
    id_col = s.id_column if s.id_column in head.column_names else None
    shown = [c for c, _ in sorted(imp.items(), key=lambda kv: (-kv[1], kv[0])) if c in head.column_names][:3]
    recs = head.select(["rank", "score", *([id_col] if id_col else []), *shown]).to_pylist()
    headers = ["rank", *([id_col] if id_col else []), "score", *shown, "top reasons"]
    rows = []
    for rec, rs in zip(recs, reasons, strict=True):
        chips = "".join(f'<span class="chip">{esc(r)}</span>' for r in rs) or '<span class="muted">-</span>'
        rows.append(
            [
                f"{rec['rank']:,}",
                *([esc(_value(rec[id_col]))] if id_col else []),
                f"{rec['score']:.4f}",
                *[esc(_value(rec[c])) for c in shown],
                chips,
            ]
        )
    numeric = [True, *([False] if id_col else []), True, *[True] * len(shown), False]
    body += f"<h3>Top {len(rows)} selected records</h3>"
    body += table(headers, rows, numeric=numeric, table_id="top-table")
    body += (
        '<p class="note">Each reason names an input value and how much it raised the score (in log-odds '
        'of the fused model, e.g. "+1.20"); the three largest are shown. A reason starting with '
        "<code>rule:</code> means a configured rule selected the record. The middle columns are the "
        "three most important inputs overall.</p>"
    )
    return section("screening", TITLES["screening"], body, "The records winnow would have you act on first.")


def _top_reasons(s: Screener, head: pa.Table) -> list[list[str]]:
    """Reason codes for the first selected rows only (not for the whole selection, which can be large);
    the same codes ``winnow screen`` writes in reason_1..3."""
    raw = head.select([c for c in s.input_columns if c in head.column_names])
    x, typed = s.prepare(raw)
    codes = s.reasons(x, typed.table, top=3)
    rules = head.column("rule").to_pylist() if "rule" in head.column_names else [None] * head.num_rows
    return [with_rule(r, c, 3) for r, c in zip(rules, codes, strict=True)]


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


# ------------------------------------------------------------------------------------ public
def render_report(screener: Screener, data: Any = None, *, top: int = 20, artifact: str = "") -> str:
    """The report as an HTML string; see :func:`write_report`."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ConfigError("--top", top, "an integer >= 0")
    s = screener
    s._check()
    man = s.manifest()
    scorers = _scorers(s)
    ev = getattr(s, "evaluation_", None) or {}
    y = np.asarray(ev["y"], dtype=np.int64) if "y" in ev else None
    body = "".join(
        [
            _kpis(scorers),
            _overview(man),
            _data_profile(man),
            _metrics(scorers),
            _charts(man, scorers, y),
            _budgets(man, scorers, y),
            _importance(man),
            _screening(s, data, top, man.get("importance", {})),
        ]
    )
    footer = (
        f"Report of a screener created {esc(man['created'])} with winnow {esc(man['winnow_version'])}. "
        "This file is self-contained: it loads nothing from the network."
    )
    return page(
        f"winnow report: {man['target']['description']}",
        _hero(man, scorers, artifact),
        SECTIONS,
        body,
        footer,
    )


def write_report(
    screener_or_dir: Screener | str | Path, out: str | Path, data: Any = None, *, top: int = 20
) -> Path:
    """Write a self-contained HTML report of a fitted screener; returns ``out``.

    Parameters
    ----------
    screener_or_dir : a fitted :class:`~winnow.Screener` or the artifact folder of one.
    out : the HTML file to write (its folder is created).
    data : optional records to screen (path, DataFrame or Arrow table, as for
        :meth:`~winnow.Screener.screen`): the top selected rows are shown with reason codes.
    top : how many selected rows to list.

    Raises
    ------
    ArtifactError : the folder is not a valid artifact.
    DataError, SchemaError : ``data`` cannot be screened.
    ConfigError : ``top`` is negative or ``out`` cannot be written.
    """
    from winnow.screener import Screener

    if isinstance(screener_or_dir, Screener):
        s, artifact = screener_or_dir, ""
    else:
        s, artifact = Screener.load(screener_or_dir), str(screener_or_dir)
    html = render_report(s, data, top=top, artifact=artifact)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # write then rename: a reader never sees half a report
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as e:
        raise ConfigError("--out", str(out), "a file path that can be written", hint=f"({e})") from e
    return out
