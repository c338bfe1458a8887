"""The data-quality commands (registered by :mod:`winnow.cli`); they import only Typer at load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from winnow.cli_options import ArtifactArg, DataArg, JsonOpt, QuietOpt
from winnow.display import fail
from winnow.errors import WinnowError

TargetOpt = Annotated[str | None, typer.Option(help="Column that defines high-value.")]
PositiveOpt = Annotated[list[str] | None, typer.Option(help="Value(s) of the target that mean high-value.")]
TopFractionOpt = Annotated[
    float | None, typer.Option(help="High-value = this top share of a numeric target.")
]
SeedOpt = Annotated[int, typer.Option(help="Random seed (same seed, same result).")]


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    return str(v)


def profile_report(p: dict[str, Any]) -> list[Any]:
    """Renderables for a profile: the overview, one line per column, then the warnings."""
    from rich.table import Table

    out: list[Any] = []
    head = f"[bold]{p['source']}[/]: {p['rows']:,} rows, {len(p['columns'])} columns"
    if p["sample_rows"] < p["rows"]:
        head += f" (sample of {p['sample_rows']:,} for distributions)"
    out.append(head)
    nd = p["near_duplicates"]
    out.append(
        f"exact duplicate rows: {p['exact_duplicates']:,}; near-duplicates: {nd['rows']:,} rows in "
        f"{nd['clusters']:,} clusters ({nd['redundant_rows']:,} redundant)"
    )
    if p["target"]:
        t = p["target"]
        out.append(
            f"high-value ({t['rule']}): {t['high_value']:,} of {t['labelled']:,} labelled rows "
            f"({t['rate']:.2%})"
        )
    table = Table(title="columns", show_lines=False)
    for c in ("column", "role", "missing", "distinct", "summary", "outliers"):
        right = c in ("missing", "distinct", "outliers")
        table.add_column(c, justify="right" if right else "left", no_wrap=True, overflow="ellipsis")
    for c in p["columns"]:
        s = c["summary"] or {}
        if "median" in s:
            summ = f"{_fmt(s.get('min'))} .. {_fmt(s['median'])} .. {_fmt(s.get('max'))}"
        elif "top" in s:
            summ = ", ".join(f"{v} ({n:,})" for v, n in s["top"][:3])
        elif "length_median" in s:
            summ = f"length median {s['length_median']:.0f}, max {s['length_max']:.0f}"
        elif "true_share" in s and s["true_share"] is not None:
            summ = f"true {s['true_share']:.1%}"
        else:
            summ = ""
        distinct = f"{c['distinct']:,}" + ("" if c["distinct_exact"] else "+")
        outl = "" if c["outlier_rate"] is None else f"{c['outlier_rate']:.1%}"
        table.add_row(c["name"], c["role"], f"{c['missing_rate']:.1%}", distinct, summ[:60], outl)
    out.append(table)
    if p["leakage"]:
        top = ", ".join(f"{d['column']} {d['auc']:.3f}" for d in p["leakage"][:5])
        out.append(f"single-column ROC-AUC (leakage check): {top}")
    if p["drift"]:
        moved = [d for d in p["drift"]["columns"] if d["status"] != "stable"]
        out.append(
            f"drift ({p['drift']['by']}): "
            + (", ".join(f"{d['column']} PSI {d['psi']:.2f}" for d in moved[:8]) or "every column stable")
        )
    for w in p["warnings"]:
        out.append(f"[yellow]![/] {w}")
    return out


def profile(
    data: DataArg,
    target: TargetOpt = None,
    positive: PositiveOpt = None,
    top_fraction: TopFractionOpt = None,
    id: Annotated[str | None, typer.Option("--id", help="Record id column.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the profile as JSON here.")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the profile as an HTML page here.")
    ] = None,
    sample_rows: Annotated[
        int, typer.Option(min=100, help="Distributions, near-duplicates and leakage use this many rows.")
    ] = 1_000_000,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Profile a table: columns, missing values, outliers, duplicates, class balance, leakage, drift."""
    from winnow.display import console, rows_progress
    from winnow.quality.profiling import profile as run_profile

    try:
        with rows_progress(not quiet) as progress:
            p = run_profile(
                data,
                target=target,
                positive=positive,
                top_fraction=top_fraction,
                id_column=id,
                sample_rows=sample_rows,
                seed=seed,
                progress=progress,
            )
    except WinnowError as e:
        fail(e)
    j = p.to_json()
    if json_out is not None:
        _write_json(json_out, j)
    if html is not None:
        from winnow.report.profile_page import profile_html

        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(profile_html(j), encoding="utf-8")
    for r in profile_report(j):
        console.print(r)
    for path in (json_out, html):
        if path is not None:
            console.print(f"profile written to [bold]{path}[/]")


def clean(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", help="Cleaned data to write (.parquet, .csv, .jsonl).")],
    policy: Annotated[Path | None, typer.Option(help="TOML cleaning policy (see the README).")] = None,
    log: Annotated[
        Path | None,
        typer.Option(help="Log of every removed or changed row (default: beside OUT, NAME.log.csv)."),
    ] = None,
    id: Annotated[str | None, typer.Option("--id", help="Record id column (not compared).")] = None,
    target: Annotated[str | None, typer.Option(help="Label column: never changed, not compared.")] = None,
    outliers: Annotated[str | None, typer.Option(help="cap (default), drop or keep.")] = None,
    invalid: Annotated[str | None, typer.Option(help="drop (default), null or keep.")] = None,
    near_duplicates: Annotated[str | None, typer.Option(help="keep_first (default) or keep.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Clean DATA by a policy: invalid values, outliers, exact and near-duplicates; log every change."""
    from winnow.display import console, stages_progress
    from winnow.quality.cleaning import STAGES, Policy
    from winnow.quality.cleaning import clean as run_clean

    try:
        pol = Policy.load(policy, outliers=outliers, invalid=invalid, near_duplicates=near_duplicates)
        with stages_progress(len(STAGES), not json_out) as on_stage:
            res = run_clean(data, out, policy=pol, log=log, id_column=id, target=target, on_stage=on_stage)
    except WinnowError as e:
        fail(e)
    if json_out:
        keep = {
            "rows_in": res.rows_in,
            "rows_out": res.rows_out,
            "dropped": res.dropped,
            "changed": res.changed,
        }
        print(json.dumps({**keep, "out": str(res.out), "log": str(res.log)}))
        return
    parts = [f"{k.replace('_', ' ')} {v:,}" for k, v in res.dropped.items()]
    console.print(f"{res.rows_in:,} rows in, {res.rows_out:,} written to [bold]{res.out}[/]")
    console.print("dropped: " + (", ".join(parts) or "none"))
    changed = [f"{k.replace('_', ' ')} {v:,}" for k, v in res.changed.items()]
    console.print("values changed: " + (", ".join(changed) or "none"))
    console.print(f"every removed row and changed value is in [bold]{res.log}[/]")


def suggest(
    artifact: ArtifactArg,
    data: Annotated[str, typer.Argument(help="Unlabelled records (CSV, Parquet, JSON lines).")],
    budget: Annotated[int, typer.Option(min=1, help="How many rows to suggest for labelling.")],
    out: Annotated[Path, typer.Option("--out", help="Suggested rows to write (.parquet, .csv, .jsonl).")],
    strategy: Annotated[
        str, typer.Option(help="diverse (informative and different), uncertainty, or random.")
    ] = "diverse",
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pick the unlabelled rows whose labels would help the screener most."""
    from winnow.display import console, rows_progress
    from winnow.io.writers import TableWriter
    from winnow.quality.active import suggest as run_suggest
    from winnow.screener import Screener

    try:
        s = Screener.load(artifact)
        with rows_progress(not (quiet or json_out)) as progress:
            res = run_suggest(s, data, budget, strategy=strategy, seed=seed, progress=progress)
        with TableWriter(out) as w:
            w.write(res.table)
    except WinnowError as e:
        fail(e)
    if json_out:
        counts = {
            "suggested": res.table.num_rows,
            "rows_scored": res.rows_scored,
            "rows_rejected": res.rows_rejected,
        }
        print(json.dumps({**counts, "strategy": res.strategy, "out": str(out)}))
        return
    console.print(
        f"{res.table.num_rows:,} of {res.rows_scored:,} rows suggested for labelling ({res.strategy}); "
        f"{res.rows_rejected:,} rows could not be scored; written to [bold]{out}[/]"
    )


def value(
    data: DataArg,
    target: Annotated[str, typer.Option(help="Column that defines high-value.")],
    out: Annotated[Path, typer.Option("--out", help="Records with their value (.parquet, .csv, .jsonl).")],
    positive: PositiveOpt = None,
    top_fraction: TopFractionOpt = None,
    id: Annotated[str | None, typer.Option("--id", help="Record id column.")] = None,
    drop: Annotated[list[str] | None, typer.Option(help="Columns not to use (repeatable).")] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option(
            help="Part weight as NAME=W (uncertainty, rarity, label_noise, redundancy); repeatable."
        ),
    ] = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Score every labelled record's value for training: hard and rare up, noisy and redundant down."""
    from winnow.display import console, stages_progress
    from winnow.errors import ConfigError
    from winnow.io.writers import TableWriter
    from winnow.quality.value import DEFAULT_WEIGHTS, STAGES, record_values

    try:
        weights: dict[str, float] = {}
        for item in weight or []:
            name, _, w = item.partition("=")
            if name not in DEFAULT_WEIGHTS:
                raise ConfigError("--weight", item, "NAME=W with NAME one of " + ", ".join(DEFAULT_WEIGHTS))
            try:
                weights[name] = float(w)
            except ValueError:
                raise ConfigError("--weight", item, "NAME=W with W a number") from None
        with stages_progress(len(STAGES), not json_out) as on_stage:
            table = record_values(
                data,
                target=target,
                positive=positive,
                top_fraction=top_fraction,
                id_column=id,
                drop=drop,
                weights=weights,
                seed=seed,
                on_stage=on_stage,
            )
        with TableWriter(out) as writer:
            writer.write(table)
    except WinnowError as e:
        fail(e)
    noise = sum(table.column("label_noise").to_pylist())
    dup = sum(table.column("redundancy").to_pylist())
    top = table.slice(0, 3).select(["rank", "row", "value", "why"]).to_pylist()
    if json_out:
        counts = {"records": table.num_rows, "label_noise": noise, "redundant": dup}
        print(json.dumps({**counts, "out": str(out), "top": top}, default=str))
        return
    console.print(
        f"{table.num_rows:,} records valued: {noise:,} with a probably wrong label, {dup:,} near-duplicates "
        f"of an earlier record; written to [bold]{out}[/] (highest value first)"
    )
    for rec in top:
        console.print(f"  #{rec['rank']} row {rec['row']}: value {rec['value']:.2f}, {rec['why']}")
