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


def digest(
    artifact: ArtifactArg,
    source: Annotated[
        str,
        typer.Argument(
            help="Screening output: the stream worker's audit table (duckdb:FILE?table=selected_scored, "
            "postgresql://...?table=..., its Parquet folder) or any table with score and selected."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the digest as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write it as Markdown.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Start of the period (ISO date/time, UTC; default: the first record).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End of the period, excluded (default: after the last record).")
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            help="A scheduled digest: the last span (1d, 1w, 6h) before --until (default: the last record)."
        ),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option(help="Step of the volume table: 15m, 6h, 1d (default: by the period's length)."),
    ] = None,
    top: Annotated[int, typer.Option(help="Selected records listed with their reasons.")] = 20,
    reviews: Annotated[
        str | None, typer.Option(help="Review store whose verdicts give the realised precision.")
    ] = None,
) -> None:
    """Digest a period of screening: volumes, top records, themes, what is new, precision."""
    import json
    from datetime import UTC, datetime

    from winnow.display import console, fail
    from winnow.errors import ConfigError
    from winnow.io.readers import open_source
    from winnow.report.digest import build_digest, parse_span
    from winnow.report.digest_page import digest_html, digest_markdown
    from winnow.screener import Screener

    def when(option: str, text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            t = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                option, text, "an ISO date or date-time, e.g. 2026-12-01 or 2026-12-01T06:00"
            ) from None
        return t.replace(tzinfo=None) if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)

    try:
        screener = Screener.load(artifact)
        table = open_source(source).read_all()
        d = build_digest(
            table,
            screener,
            since=when("--since", since),
            until=when("--until", until),
            every=parse_span(every) if every else None,
            interval=parse_span(interval, "--interval") if interval else None,
            top=top,
            reviews=reviews,
        )
    except WinnowError as e:
        fail(e)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(digest_html(d), encoding="utf-8")
    if json_out is not None:
        json_out.write_text(json.dumps(d, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    if markdown is not None:
        markdown.write_text(digest_markdown(d), encoding="utf-8")
    console.print(
        f"digest of {d['scored']:,} records ({d['selected']:,} selected, {len(d['themes'])} themes) "
        f"written to [bold]{out}[/]"
    )
