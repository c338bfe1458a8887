"""``winnow stream``: the command-line front of :func:`winnow.stream.worker.run`.

Registered in :mod:`winnow.cli` with ``app.command("stream")(stream)``; also runnable alone as
``python -m winnow.stream``. Importing this module loads only Typer.

Exit codes: 0 after a clean stop (SIGTERM / SIGINT), 2 bad option, 4 artifact error. On exit
the worker prints one JSON line to stdout with its accounting.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from winnow.cli_options import (
    ArtifactArg,
    AuditFileOpt,
    AuditFractionOpt,
    MonitorWindowOpt,
    ReasonsOpt,
    ReviewOpt,
    ReviewSampleOpt,
    ThreadsOpt,
    VerifyKeyOpt,
)


def _logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in ("winnow.stream", "winnow"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(logging.WARNING if quiet else logging.INFO)
        log.propagate = False


def stream(
    artifact: ArtifactArg,
    stream: Annotated[str, typer.Option("--stream", help="Redis stream key to read.")],
    source: Annotated[
        str, typer.Option(help="Redis server of the stream: redis://host:port/db.")
    ] = "redis://127.0.0.1:6379/0",
    group: Annotated[
        str, typer.Option(help="Consumer group; workers in one group share the stream.")
    ] = "winnow",
    consumer: Annotated[
        str | None,
        typer.Option(help="This worker's name in the group (default: host name); keep it across restarts."),
    ] = None,
    sink: Annotated[
        str,
        typer.Option(
            help="Where selected records go: duckdb:PATH, postgresql://user@host:port/db, "
            "redis://host:port/db (a stream) or parquet:DIR."
        ),
    ] = "duckdb:winnow-stream.duckdb",
    table: Annotated[
        str | None,
        typer.Option(help="Table (Redis: stream key) in the sink [default: selected / winnow:selected]."),
    ] = None,
    audit: Annotated[
        bool, typer.Option(help="Also write every scored record, selected or not, to <table>_scored.")
    ] = False,
    dead_letter: Annotated[
        str | None, typer.Option(help="Dead-letter stream key [default: <stream>:dead].")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Entries per micro-batch (at most; a live stream gives what has arrived).")
    ] = 2000,
    block_ms: Annotated[int, typer.Option(help="How long one read waits for new entries (ms).")] = 1000,
    max_retries: Annotated[
        int, typer.Option(help="An entry that failed this many times is dead-lettered on its next delivery.")
    ] = 5,
    claim_idle_ms: Annotated[
        int, typer.Option(help="Claim entries other consumers left pending this long (ms).")
    ] = 60_000,
    threshold: Annotated[
        float | None, typer.Option(help="Select scores at or above this [default: the artifact's threshold].")
    ] = None,
    reasons: ReasonsOpt = 3,
    json_field: Annotated[
        str | None, typer.Option(help="Read each record as a JSON object from this field.")
    ] = None,
    threads: ThreadsOpt = 1,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
    metrics_host: Annotated[str, typer.Option(help="Address the metrics server binds.")] = "127.0.0.1",
    max_backoff: Annotated[float, typer.Option(help="Longest wait between reconnect attempts (s).")] = 10.0,
    monitor_window: MonitorWindowOpt = 10_000,
    audit_fraction: AuditFractionOpt = 0.0,
    audit_file: AuditFileOpt = None,
    verify_key: VerifyKeyOpt = None,
    review: ReviewOpt = None,
    review_sample: ReviewSampleOpt = 0.05,
    digest_every: Annotated[
        str | None, typer.Option(help="Write the digest of each period (1d, 1w, 6h) of what was screened.")
    ] = None,
    digest_out: Annotated[Path | None, typer.Option(help="Folder the periodic digests go to.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False,
) -> None:
    """Score a Redis stream as records arrive; write the high-value ones to SINK.

    Acknowledges entries only after the sink commit; re-processes its own pending entries on
    start, claims entries idle too long, dead-letters records that cannot be scored, and stops
    cleanly on SIGTERM after the current batch.
    """
    from winnow.display import fail
    from winnow.errors import WinnowError
    from winnow.stream.worker import run

    _logging(quiet)
    try:
        summary = run(
            artifact,
            source=source,
            stream=stream,
            group=group,
            consumer=consumer,
            sink=sink,
            table=table,
            audit=audit,
            dead_letter=dead_letter,
            batch_size=batch_size,
            block_ms=block_ms,
            max_retries=max_retries,
            claim_idle_ms=claim_idle_ms,
            threshold=threshold,
            reasons=reasons,
            json_field=json_field,
            threads=threads,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            max_backoff=max_backoff,
            monitor_window=monitor_window,
            audit_fraction=audit_fraction,
            audit_file=audit_file,
            verify_key=verify_key,
            review=review,
            review_sample=review_sample,
            digest_every=digest_every,
            digest_out=digest_out,
        )
    except WinnowError as e:
        fail(e)
    print(json.dumps(summary.to_json()), flush=True)
