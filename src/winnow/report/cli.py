"""``winnow report``: the command (registered by :mod:`winnow.cli`); imports only Typer at load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from winnow.cli_options import ArtifactArg
from winnow.errors import WinnowError


def report(
    artifact: ArtifactArg,
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Records to screen (CSV, Parquet, JSON lines): top rows with reasons."),
    ] = None,
    top: Annotated[int, typer.Option(help="Selected records listed with their reasons.")] = 20,
) -> None:
    """Write one self-contained HTML report: metrics, charts, budgets, importance, reasons."""
    from winnow.display import console, fail
    from winnow.report.build import write_report

    try:
        path = write_report(artifact, out, data=data, top=top)
    except WinnowError as e:
        fail(e)
    console.print(f"report written to [bold]{path}[/] ({path.stat().st_size:,} bytes)")
