"""The options every front end shares (``winnow``, its sub-commands, ``serve``, ``stream``),
declared once so they read and behave the same everywhere. Typer only: importing this module
loads nothing heavy (``winnow --help`` stays cheap)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ArtifactArg = Annotated[Path, typer.Argument(help="Artifact folder written by `winnow fit`.")]
DataArg = Annotated[str, typer.Argument(help="CSV, Parquet (file or folder) or JSON-lines data.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
ThreadsOpt = Annotated[int, typer.Option(help="Scoring threads (0 = all cores).")]
ReasonsOpt = Annotated[int, typer.Option(help="Reason codes per selected record.")]
MonitorWindowOpt = Annotated[
    int, typer.Option(help="Recent records the drift gauges compare with the training reference.")
]
AuditFractionOpt = Annotated[
    float, typer.Option(help="Share of not-selected records kept for audit (needs --audit-file).")
]
AuditFileOpt = Annotated[Path | None, typer.Option(help="JSON-lines file the audit sample is appended to.")]
VerifyKeyOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="WINNOW_VERIFY_KEY",
        help="Ed25519 public key (PEM): refuse an artifact that does not carry its signature.",
    ),
]
