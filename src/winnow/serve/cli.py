"""``winnow serve ARTIFACT``: run the screening service with uvicorn.

Registered by :mod:`winnow.cli` as ``app.command("serve")(serve)``. Importing this module loads
neither FastAPI nor uvicorn (``winnow --help`` stays fast); they load when the command runs.
The function can be called from Python as well: ``serve(Path("screener"), port=8080)``.

Exit codes as the rest of the CLI: 2 bad option (also: a non-loopback ``--host`` with no API key
and no ``--insecure-no-auth``), 4 artifact missing or broken.
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import ExitStack
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
from winnow.display import fail
from winnow.errors import WinnowError
from winnow.serve.settings import DEFAULT_MAX_BODY_BYTES, ENV_API_KEY, ENV_SETTINGS, ServeSettings

FACTORY = "winnow.serve.app:app_from_env"


def serve(
    artifact: ArtifactArg,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 for all interfaces).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model).")] = 1,
    api_key_file: Annotated[
        Path | None,
        typer.Option(help=f"File of accepted API keys, one per line (also: ${ENV_API_KEY})."),
    ] = None,
    watch: Annotated[bool, typer.Option(help="Reload when the artifact folder changes.")] = False,
    watch_interval: Annotated[float, typer.Option(help="Seconds between looks at the folder.")] = 1.0,
    max_records: Annotated[int, typer.Option(help="Most records per request.")] = 1000,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body (bytes).")
    ] = DEFAULT_MAX_BODY_BYTES,
    timeout: Annotated[float, typer.Option(help="Seconds before a request is answered 408/503.")] = 30.0,
    batch_wait_ms: Annotated[
        float,
        typer.Option(
            help="Wait for more requests before scoring a micro-batch (ms; 0: what is queued, "
            "and what arrives while a batch is scored forms the next)."
        ),
    ] = 0.0,
    max_batch_records: Annotated[int, typer.Option(help="Most records per micro-batch.")] = 4096,
    inline_records: Annotated[
        int,
        typer.Option(
            help="Score micro-batches of up to this many JSON records on the event loop, larger "
            "ones and Arrow bodies on the scoring thread (0: always the thread)."
        ),
    ] = 256,
    threads: ThreadsOpt = 1,
    reasons: ReasonsOpt = 3,
    max_concurrency: Annotated[
        int | None, typer.Option(help="Answer 503 above this many open connections/requests.")
    ] = None,
    admin_key_file: Annotated[
        Path | None,
        typer.Option(
            help="File of admin keys, one per line, none of them a scoring key; without it there "
            "are no admin routes (POST /v1/admin/reload)."
        ),
    ] = None,
    reload_root: Annotated[
        Path | None,
        typer.Option(help="Let POST /v1/admin/reload load other artifact folders under this one."),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(help="Serve a non-loopback --host with no API key (anyone who reaches it may score)."),
    ] = False,
    monitor_window: MonitorWindowOpt = 10_000,
    audit_fraction: AuditFractionOpt = 0.0,
    audit_file: AuditFileOpt = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log one line per request.")] = True,
    verify_key: VerifyKeyOpt = None,
    review: ReviewOpt = None,
    review_sample: ReviewSampleOpt = 0.05,
) -> None:
    """Serve ARTIFACT over HTTP: POST /v1/screen, /v1/score, /v1/explain; GET /v1/model,
    /v1/monitor, /healthz, /readyz, /metrics."""
    from winnow.artifact import read_artifact
    from winnow.serve.security import ApiKeys, check_exposure

    try:
        settings = ServeSettings(
            artifact=artifact,
            max_records=max_records,
            max_body_bytes=max_body_bytes,
            request_timeout_s=timeout,
            api_key_file=api_key_file,
            watch=watch,
            watch_interval_s=watch_interval,
            batch_wait_ms=batch_wait_ms,
            max_batch_records=max_batch_records,
            inline_records=inline_records,
            threads=threads,
            reasons=reasons,
            admin_key_file=admin_key_file,
            reload_root=reload_root,
            monitor_window=monitor_window,
            audit_fraction=audit_fraction,
            audit_file=audit_file,
            verify_key=verify_key,
            review=review,
            review_sample=review_sample,
        )
        if workers < 1:
            from winnow.errors import ConfigError

            raise ConfigError("--workers", workers, "an integer >= 1")
        if review is not None:
            from winnow.review.store import ReviewStore

            if workers > 1 and ReviewStore(review).engine == "duckdb":
                from winnow.errors import ConfigError

                raise ConfigError(
                    "--review",
                    review,
                    "a PostgreSQL store with several --workers (DuckDB allows one process per file)",
                )
        read_artifact(
            settings.artifact, settings.verify_key
        )  # fail now, with exit code 4, rather than in each worker
        keys = ApiKeys.from_sources(settings.api_key_file)
        ApiKeys.admin(settings.admin_key_file, keys)  # readable, and no key shared with scoring
        check_exposure(host, keys, insecure_no_auth)
    except WinnowError as e:
        fail(e)
    import uvicorn

    log = logging.getLogger("winnow.serve")
    if workers > 1 and not watch and settings.admin_key_file is not None:
        log.warning("with %d workers POST /v1/admin/reload reaches one worker; use --watch", workers)
    with ExitStack() as stack:
        os.environ[ENV_SETTINGS] = settings.to_env()
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # every worker writes its metrics here; each scrape adds them up
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="winnow-metrics-")
            )
        uvicorn.run(
            FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            limit_concurrency=max_concurrency,
            timeout_graceful_shutdown=int(max(timeout, 1)),
            server_header=False,
        )
