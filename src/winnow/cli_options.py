"""The options every front end shares (``winnow``, its sub-commands, ``serve``, ``stream``),
declared once so they read and behave the same everywhere. Typer only: importing this module
loads nothing heavy (``winnow --help`` stays cheap)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

ArtifactArg = Annotated[Path, typer.Argument(help="Artifact folder written by `winnow fit`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object (for scripts).")]
DataArg = Annotated[
    str,
    typer.Argument(
        help="CSV, Parquet (file or folder) or JSON-lines data, or a table or query: "
        "duckdb:FILE?table=NAME, duckdb:FILE?query=SELECT ..., postgresql://HOST/DB?table=NAME."
    ),
]
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
ReviewOpt = Annotated[
    str | None,
    typer.Option(
        help="Offer the selected records and a sample of the others for review in this store "
        "(duckdb:reviews.duckdb or postgresql://...)."
    ),
]
ReviewSampleOpt = Annotated[float, typer.Option(help="Share of the not-selected records offered for review.")]
VerifyKeyOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="WINNOW_VERIFY_KEY",
        help="Ed25519 public key (PEM): refuse an artifact that does not carry its signature.",
    ),
]

#: an event log as the data (winnow.events): one row per entity as of each --as-of date
EntityOpt = Annotated[
    str | None,
    typer.Option(
        rich_help_panel="Event logs",
        help="DATA is an event log: the column naming whose event it is (customer, card, aircraft). "
        "--target is then the label's aggregate over the window after each cut: count(), sum(col), "
        "max(col) or mean(col).",
    ),
]
EventTimeOpt = Annotated[
    str | None,
    typer.Option(
        "--time", rich_help_panel="Event logs", help="Event log: the column with each event's time."
    ),
]
AsOfOpt = Annotated[
    list[str] | None,
    typer.Option(
        rich_help_panel="Event logs",
        help="Event log: cut date (repeatable; several stack into one training table, whole entities "
        "held out). Features see only events before it.",
    ),
]
LabelWindowOpt = Annotated[
    str | None,
    typer.Option(
        rich_help_panel="Event logs", help="Event log: how long after the cut the label looks (30d, 39w, 1y)."
    ),
]
WindowsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--window",
        rich_help_panel="Event logs",
        help="Event log: feature window before the cut (repeatable; default: 7d, 30d, 90d, 365d "
        "within the history).",
    ),
]
HistoryOpt = Annotated[
    str | None,
    typer.Option(
        rich_help_panel="Event logs",
        help="Event log: how far back features look (default: from the first event to the first cut).",
    ),
]
EventColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--event-column",
        rich_help_panel="Event logs",
        help="Event log: a column to build features from (repeatable; default: all but entity and time).",
    ),
]
SequenceOpt = Annotated[
    bool | None,
    typer.Option(
        rich_help_panel="Event logs",
        help="Event log: also train a GRU over each entity's last events; its out-of-fold score "
        "is a feature.",
    ),
]
ScreenAsOfOpt = Annotated[
    str | None,
    typer.Option(
        help="For a screener fitted on an event log (DATA is the log): screen its entities as of this date."
    ),
]

OUT_HELP = (
    "Output file (.parquet, .csv, .jsonl) or table (duckdb:FILE?table=NAME, "
    "postgresql://HOST/DB?table=NAME: upserted by id, all or nothing)."
)


def default_rejects(out: str | Path) -> Path:
    """``<out>.rejects.jsonl`` beside a file; ``<table>.rejects.jsonl`` (or ``<name>.rejects.jsonl``
    for an object-store URI) in the current folder."""
    if isinstance(out, str) and out.startswith(("duckdb:", "postgres")):
        table = out.partition("table=")[2].partition("&")[0] or "query"
        return Path(f"{table}.rejects.jsonl")
    if isinstance(out, str) and "://" in out:  # an object store: the rejects stay here
        return Path(out.split("?")[0].rstrip("/").rsplit("/", 1)[-1].split(".")[0] + ".rejects.jsonl")
    out = Path(out)
    return out.with_name(out.name.split(".")[0] + ".rejects.jsonl")


def print_summary(summary: dict[str, Any], json_out: bool = False) -> None:
    """A batch job's summary: one JSON object with ``--json``, else lines for a person."""
    if json_out:
        print(json.dumps(summary, default=str))
        return
    from winnow.display import console

    console.print(
        f"read {summary['rows_read']:,}, scored {summary['rows_scored']:,}, selected "
        f"{summary['rows_selected']:,}, rejected {summary['rows_rejected']:,} "
        f"({summary['selection']}) in {summary['seconds']:.1f}s"
    )
    if summary["rows_rejected"]:
        console.print(f"rejected records with reasons: {summary['rejects']}")
        for ex in summary["reject_examples"][:3]:
            console.print(f"  [yellow]{ex}[/]")
    expected = summary.get("expected")
    if expected:
        console.print(f"expected from the fit's held-out rows: {describe_expected(expected)}")
    if summary.get("out"):
        console.print(f"results written to [bold]{summary['out']}[/]")


def describe_expected(e: dict[str, Any]) -> str:
    """``precision 62% (55-69%), 6.2x random (5.5-6.9), 1.8x the rule (1.4-2.2)``"""

    def span(d: dict[str, float], fmt: str) -> str:
        return f"{fmt.format(d['value'])} ({fmt.format(d['low'])}-{fmt.format(d['high'])})"

    parts = [
        f"precision {span(e['precision'], '{:.0%}')}",
        f"{span(e['lift_over_random'], '{:.1f}x')} random",
    ]
    if "lift_over_rule" in e:
        parts.append(f"{span(e['lift_over_rule'], '{:.1f}x')} the baseline rule")
    return ", ".join(parts) + f" ({e['level']:.0%} intervals, {e['rows']:,} rows)"


def report_path(artifact: Path) -> Path:
    """Where ``fit`` and the demo put the HTML report: ``<artifact>.report.html`` beside the folder."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".report.html")


def rich_logging(quiet: bool) -> None:
    """winnow's log lines on stderr through Rich; warnings only when ``quiet``."""
    import logging

    from rich.logging import RichHandler

    from winnow.display import err_console

    log = logging.getLogger("winnow")
    log.handlers[:] = [RichHandler(console=err_console, show_time=False, show_path=False)]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
