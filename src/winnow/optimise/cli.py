"""``winnow optimise``: the command (registered by :mod:`winnow.cli`); imports only Typer at load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from winnow.cli_options import ArtifactArg
from winnow.errors import WinnowError


def optimise(
    artifact: ArtifactArg,
    out: Annotated[Path, typer.Option(help="Folder for the optimised artifact.")],
    data: Annotated[
        Path,
        typer.Option(help="Sample of records to measure on (CSV, Parquet, JSON lines); labels optional."),
    ],
    tolerance: Annotated[
        float, typer.Option(help="Largest score change allowed on any sample row (probability).")
    ] = 0.01,
    step: Annotated[
        list[str] | None,
        typer.Option(help="Step (repeatable): prune, onnx, quantize, trees. Default: all."),
    ] = None,
    threads: Annotated[int, typer.Option(help="Threads for scoring while measuring.")] = 1,
    repeats: Annotated[int, typer.Option(help="Timing repetitions (medians are reported).")] = 5,
    max_rows: Annotated[int, typer.Option(help="Rows of DATA used at most (a seeded sample).")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed for the sample.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Prune, quantize and compile a fitted screener; measure what each step costs and gains."""
    from winnow.display import console, fail, stages_progress
    from winnow.optimise.command import DEFAULT_STEPS, optimise_artifact, stage_count

    try:
        with stages_progress(stage_count(step or DEFAULT_STEPS), not json_out) as on_stage:
            report = optimise_artifact(
                artifact,
                out,
                data,
                steps=step or DEFAULT_STEPS,
                tolerance=tolerance,
                seed=seed,
                threads=threads,
                repeats=repeats,
                max_rows=max_rows,
                on_stage=on_stage,
            )
    except WinnowError as e:
        fail(e)
    if json_out:
        console.print_json(json.dumps(report))
        return
    console.print(steps_table(report))
    for s in report["steps"]:
        for m in s["members"]:
            if not m.get("accepted") and m.get("reason"):
                console.print(f"[yellow]{s['step']}[/] {m['member']}: kept as it was ({m['reason']})")
    if report["machine_after"]["busy"] or report["machine_before"]["busy"]:
        console.print("[yellow]note:[/] the machine was busy while timing; speeds are noisy")
    console.print(f"optimised artifact written to [bold]{out}[/] (manifest section `optimisation`)")


def _pct(v: float) -> str:
    return f"{v:.1%}"


def steps_table(report: dict[str, Any]) -> Any:
    """Rich table: one row per step with its cumulative cost and its speed before -> after."""
    from rich.table import Table

    t = Table(title=f"Optimisation (tolerance {report['settings']['tolerance']:g})", title_justify="left")
    for c in ("step", "members", "max |Δscore|", "selected kept", "Δ AUC-PR", "rows/s", "latency p50 ms"):
        t.add_column(c)
    for s in report["steps"]:
        accepted = [m["member"] for m in s["members"] if m.get("accepted")]
        if not s["accepted"]:
            t.add_row(s["step"], "none" if s["members"] else "n/a", "-", "-", "-", "-", "-")
            continue
        cost, b, a = s["cost"], s["speed_before"], s["speed_after"]
        auc = f"{cost['auc_pr_change']:+.4f}" if "auc_pr_change" in cost else "-"
        t.add_row(
            s["step"],
            ", ".join(accepted),
            f"{cost['max_abs_score_change']:.2g}",
            _pct(cost["selected_kept"]),
            auc,
            f"{b['rows_per_s']:,.0f} → {a['rows_per_s']:,.0f}",
            f"{b['latency_ms_p50']:.2f} → {a['latency_ms_p50']:.2f}",
        )
    base, final = report["baseline"]["speed"], report["final"]["speed"]
    cost = report["final"]["cost"]
    t.add_row(
        "[bold]total[/]",
        "",
        f"{cost['max_abs_score_change']:.2g}",
        _pct(cost["selected_kept"]),
        f"{cost['auc_pr_change']:+.4f}" if "auc_pr_change" in cost else "-",
        f"{base['rows_per_s']:,.0f} → {final['rows_per_s']:,.0f}",
        f"{base['latency_ms_p50']:.2f} → {final['latency_ms_p50']:.2f}",
    )
    return t
