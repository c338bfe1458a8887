"""``winnow retrain``: a challenger from new labels (a file, a table or a review store),
promoted only if it beats the served artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from winnow.cli_options import ArtifactArg, JsonOpt, QuietOpt, rich_logging
from winnow.display import fail
from winnow.errors import WinnowError


def retrain(
    artifact: ArtifactArg,
    data: Annotated[Path, typer.Option(help="The labelled data the artifact was trained on.")],
    labels: Annotated[
        str,
        typer.Option(
            help="Newly labelled records (same columns and target): a file or table, or a review "
            "store (duckdb:reviews.duckdb, postgresql://...) whose verdicts become the labels."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for the challenger, written if it is promoted.")],
    holdout: Annotated[
        float, typer.Option(help="Share of the new labels held out to compare champion and challenger.")
    ] = 0.3,
    force: Annotated[bool, typer.Option(help="Write the challenger even if it does not win.")] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit a challenger with newly labelled records; promote it only if it beats the artifact."""
    from winnow.display import console, metrics_table, stage_spinner
    from winnow.retrain import retrain as run_retrain
    from winnow.screener import Screener

    rich_logging(quiet or json_out)
    try:
        champion = Screener.load(artifact)
        limit = champion.config.time_limit if champion.config is not None else None
        with stage_spinner(not (quiet or json_out), limit) as on_stage:
            result = run_retrain(champion, data, labels, holdout=holdout, on_stage=on_stage)
        if result.promoted or force:
            result.challenger.save(out)
    except WinnowError as e:
        fail(e)
    cols = {"champion": result.champion_metrics, "challenger": result.challenger_metrics}
    if json_out:
        written = str(out) if result.promoted or force else None
        print(json.dumps({"promoted": result.promoted, "reason": result.reason, "written": written, **cols}))
        return
    console.print(metrics_table(cols, f"On {result.lineage['held_out']['rows']:,} held-out new labels"))
    console.print(result.reason)
    if result.promoted or force:
        console.print(f"challenger written to [bold]{out}[/]" + ("" if result.promoted else " (--force)"))
    else:
        console.print(f"nothing written; keep serving {artifact}")
