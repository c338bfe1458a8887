"""The ``winnow`` command line: thin over :class:`winnow.Screener`.

Exit codes: 0 ok, 2 usage/configuration, 3 data or schema error, 4 artifact error.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from winnow import __version__
from winnow.cli_options import (
    OUT_HELP,
    ArtifactArg,
    AsOfOpt,
    DataArg,
    EntityOpt,
    EventColumnOpt,
    EventTimeOpt,
    HistoryOpt,
    JsonOpt,
    LabelWindowOpt,
    QuietOpt,
    ScreenAsOfOpt,
    SequenceOpt,
    VerifyKeyOpt,
    WindowsOpt,
    default_rejects,
    print_summary,
    report_path,
    rich_logging,
)
from winnow.display import fail
from winnow.errors import ConfigError, WinnowError

app = typer.Typer(
    name="winnow",
    help="Screen high-value records out of massive data.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


class Engine(enum.StrEnum):
    local = "local"
    ray = "ray"


WorkersOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="Local engine: scoring threads, each with cores/workers model threads (0 = 1: the "
        "model already uses every core). Ray engine: actors (0 = one per CPU of the cluster).",
    ),
]


@app.command()
def fit(
    data: DataArg,
    target: Annotated[str | None, typer.Option(help="Column that defines high-value.")] = None,
    positive: Annotated[
        list[str] | None, typer.Option(help="Value(s) of the target that mean high-value.")
    ] = None,
    top_fraction: Annotated[
        float | None, typer.Option(help="High-value = this top share of a numeric target.")
    ] = None,
    id: Annotated[str | None, typer.Option("--id", help="Record id column (kept in outputs).")] = None,
    budget: Annotated[str | None, typer.Option(help="0.05 = top 5%; 1000 = top 1,000 records.")] = None,
    min_precision: Annotated[
        float | None, typer.Option(help="Select as many as keep this precision.")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Your current rule to compare with: a column or expression.")
    ] = None,
    drop: Annotated[list[str] | None, typer.Option(help="Columns not to use (repeatable).")] = None,
    split_column: Annotated[
        str | None, typer.Option(help="Column marking rows train / valid / test.")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="fast (seconds), balanced (default, minutes), best (search, the time limit's worth)."
        ),
    ] = None,
    live_model: Annotated[
        str | None,
        typer.Option(
            help="fast (default): drop members whose fusion weight does not pay for their scoring "
            "cost; full: keep every member the selection weighted."
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Portfolio member (repeatable): lightgbm, lightgbm_xt, lightgbm_rf, linear, deep, tabm, "
            "catboost.",
        ),
    ] = None,
    tune: Annotated[
        list[str] | None, typer.Option(help="Search the hyper-parameters of: lightgbm, deep (repeatable).")
    ] = None,
    tune_trials: Annotated[
        int | None,
        typer.Option(help="Trials per searched model (reproducible; default: until the time limit)."),
    ] = None,
    time_limit: Annotated[float | None, typer.Option(help="Seconds for model fitting.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same model).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (0 = all cores).")] = None,
    sample_rows: Annotated[
        int | None,
        typer.Option(
            help="Fit on a stratified sample of at most N rows read in one pass (data larger than "
            "memory): every high-value row up to --sample-positives, the rest a uniform sample."
        ),
    ] = None,
    sample_positives: Annotated[
        int | None, typer.Option(help="High-value rows the sample keeps at most (default: half).")
    ] = None,
    drop_label_issues: Annotated[
        bool | None,
        typer.Option(
            "--drop-label-issues",
            help="Train without the rows whose label is probably wrong (cross-validated confident "
            "learning); they are listed in OUT.label-issues.csv.",
        ),
    ] = None,
    pretrain: Annotated[
        bool | None,
        typer.Option(
            "--pretrain",
            help="Pretrain the deep networks self-supervised (SCARF) on every row, rows without a "
            "target included, before fitting them on the labelled rows.",
        ),
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            help="Text columns reach the linear model as: tfidf (hashed n-grams, default), encoder "
            "(sentence embeddings) or both."
        ),
    ] = None,
    finetune_text: Annotated[
        bool | None,
        typer.Option(
            "--finetune-text",
            help="Fine-tune the sentence encoder's top layers on the labels first (with --text "
            "encoder or both; minutes per thousand texts on a CPU).",
        ),
    ] = None,
    image_weights: Annotated[
        Path | None,
        typer.Option(
            help="Image columns: a local safetensors file of ResNet-18 weights (torchvision's names), "
            "used frozen; default: a small CNN trained on the labels."
        ),
    ] = None,
    image_root: Annotated[
        Path | None,
        typer.Option(help="Image columns: folder relative image paths resolve against (default: cwd)."),
    ] = None,
    entity: EntityOpt = None,
    event_time: EventTimeOpt = None,
    as_of: AsOfOpt = None,
    label_window: LabelWindowOpt = None,
    windows: WindowsOpt = None,
    history: HistoryOpt = None,
    event_columns: EventColumnOpt = None,
    sequence: SequenceOpt = None,
    config: Annotated[Path | None, typer.Option(help="TOML file with these options.")] = None,
    out: Annotated[Path, typer.Option(help="Artifact folder to write.")] = Path("screener"),
    sign_key: Annotated[
        Path | None,
        typer.Option(
            help="Ed25519 private key (PEM): sign the artifact (manifest.sig).", envvar="WINNOW_SIGN_KEY"
        ),
    ] = None,
    report: Annotated[
        bool, typer.Option(help="Also write OUT.report.html, the HTML report, next to the artifact.")
    ] = True,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Learn what high-value looks like from labelled DATA and write an artifact folder."""
    from winnow.config import Budget, ScreenConfig
    from winnow.display import console, fit_report, stage_spinner
    from winnow.screener import Screener

    rich_logging(quiet or json_out)
    try:
        b = Budget.parse(budget, min_precision) if (budget or min_precision) else None
        cfg = ScreenConfig.build(
            config,
            target=target,
            positive=positive,
            top_fraction=top_fraction,
            id=id,
            budget=b,
            baseline=baseline,
            drop=drop or None,
            split_column=split_column,
            preset=preset,
            live_model=live_model,
            models=models or None,
            tune=tune or None,
            tune_trials=tune_trials,
            time_limit=time_limit,
            seed=seed,
            threads=threads,
            sample_rows=sample_rows,
            sample_positives=sample_positives,
            drop_label_issues=drop_label_issues,
            pretrain=pretrain,
            text=text,
            finetune_text=finetune_text,
            image_weights=str(image_weights) if image_weights else None,
            image_root=str(image_root) if image_root else None,
            entity=entity,
            time=event_time,
            as_of=as_of or None,
            label_window=label_window,
            windows=windows or None,
            history=history,
            event_columns=event_columns or None,
            sequence=sequence,
        )
        with stage_spinner(not (quiet or json_out), cfg.time_limit) as on_stage:
            screener = Screener(cfg).fit(data, on_stage=on_stage)
        screener.save(out, sign_key=sign_key)
        if report:
            from winnow.report import write_report

            html = write_report(screener, report_path(out))
    except WinnowError as e:
        fail(e)
    if json_out:
        m = screener.manifest()
        keep = ("summary", "metrics", "threshold", "warnings", "fusion")
        print(
            json.dumps(
                {"artifact": str(out), "report": str(html) if report else None, **{k: m[k] for k in keep}}
            )
        )
        return
    for item in fit_report(screener.manifest()):
        console.print(item)
    s = screener.summary_
    console.print(
        f"rows read {s['rows_read']:,}, used {s['rows_used']:,} ({s['positives']:,} high-value), "
        f"duplicates dropped {s['duplicates_dropped']:,}, rejected {s['rows_rejected']:,}, "
        f"missing target {s['rows_missing_target']:,}; fit in {s['fit_seconds']:.0f}s"
    )
    console.print(f"artifact written to [bold]{out}[/]" + (f", report to [bold]{html}[/]" if report else ""))
    issues = screener.metrics_.get("label_issues")
    if issues is not None:
        log_path = out.with_name(out.name + ".label-issues.csv")
        lines = ["row,given_label,p_high_value,reason"]
        cols = (issues["rows_dropped"], issues["given_label"], issues["p_high_value"])
        for r, g, p in zip(*cols, strict=True):
            lines.append(f"{r},{g},{p},label probably wrong: dropped from training")
        log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        console.print(
            f"{len(issues['rows_dropped']):,} training rows with a probably wrong label dropped, "
            f"listed in [bold]{log_path}[/]"
        )


@app.command()
def evaluate(
    artifact: ArtifactArg,
    data: DataArg,
    json_out: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
) -> None:
    """Screening metrics of a fitted screener on labelled DATA."""
    from winnow.display import console, lift_table, metrics_table, rows_progress
    from winnow.screener import Screener

    try:
        with rows_progress(not json_out) as progress:
            report = Screener.load(artifact).evaluate(data, progress=progress)
    except WinnowError as e:
        fail(e)
    if json_out:
        console.print_json(json.dumps(report))
        return
    console.print(metrics_table({"winnow": report}, f"Metrics on {data}"))
    if "lift_curve" in report:
        console.print(lift_table({"winnow": report}))
    t = report["threshold"]
    console.print(
        f"artifact threshold {t['value']:.4f}: {t['selected']:,} selected, precision "
        f"{t['precision']:.1%}, recall {t['recall']:.1%}"
    )


@app.command()
def monitor(
    artifact: ArtifactArg,
    data: DataArg,
    window: Annotated[int, typer.Option(help="Compare the last N valid rows of DATA.")] = 100_000,
    top: Annotated[int, typer.Option(help="Features shown, most drifted first.")] = 15,
    json_out: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
) -> None:
    """Drift of DATA against the screener's training data: features, score and selection rate."""
    from winnow.display import console, drift_report, rows_progress
    from winnow.screener import Screener

    try:
        if window < 1:
            raise ConfigError("--window", window, "an integer >= 1")
        with rows_progress(not json_out) as progress:
            report = Screener.load(artifact).monitor(data, window=window, progress=progress)
    except WinnowError as e:
        fail(e)
    if json_out:
        console.print_json(json.dumps(report))
        return
    for item in drift_report(report, top=top):
        console.print(item)


@app.command()
def score(
    artifact: ArtifactArg,
    data: DataArg,
    out: Annotated[str, typer.Option(help=OUT_HELP)],
    rejects: Annotated[Path | None, typer.Option(help="Where rejected records go (JSONL).")] = None,
    batch_rows: Annotated[int, typer.Option(help="Rows per batch (memory bound).")] = 65536,
    workers: WorkersOpt = 0,
    reasons: Annotated[int, typer.Option(min=0, help="Reason columns for every row (0 = none).")] = 0,
    explain: Annotated[bool, typer.Option(help="Write each row's logit, base, contribution_<col>.")] = False,
    verify_key: VerifyKeyOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score every row of DATA: row, id, score, selected (and its top reasons with --reasons)."""
    from winnow.display import rows_progress
    from winnow.engines.local import score_file
    from winnow.screener import Screener

    try:
        s = Screener.load(artifact, verify_key=verify_key)
        with rows_progress(not (quiet or json_out)) as progress:
            summary = score_file(
                s,
                data,
                out,
                rejects_path=rejects or default_rejects(out),
                batch_rows=batch_rows,
                progress=progress,
                workers=max(workers, 1),
                reasons=reasons,
                explain=explain,
            )
    except WinnowError as e:
        fail(e)
    print_summary(summary.to_json(), json_out)


@app.command()
def screen(
    artifact: ArtifactArg,
    data: DataArg,
    out: Annotated[str, typer.Option(help=OUT_HELP)],
    budget: Annotated[
        str | None, typer.Option(help="Override the budget: 0.05 = top 5%, 1000 = top 1,000.")
    ] = None,
    as_of: ScreenAsOfOpt = None,
    use_threshold: Annotated[
        bool, typer.Option(help="Select by the artifact's score threshold in one pass.")
    ] = False,
    rejects: Annotated[Path | None, typer.Option(help="Where rejected records go (JSONL).")] = None,
    batch_rows: Annotated[int, typer.Option(help="Rows per batch (memory bound).")] = 65536,
    reasons: Annotated[int, typer.Option(help="Reason columns per selected row (0 = none).")] = 3,
    engine: Annotated[
        Engine, typer.Option(help="local: stream on this machine; ray: Ray Data over a cluster (Parquet).")
    ] = Engine.local,
    address: Annotated[
        str | None,
        typer.Option(help="Ray engine: the cluster's head (host:port, or 'auto'); none = start a local Ray."),
    ] = None,
    workers: WorkersOpt = 0,
    unit_rows: Annotated[
        int, typer.Option(min=1, help="Ray engine: rows per unit of work (whole Parquet row groups).")
    ] = 500_000,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Ray engine: folder for the job's parts (default OUT.parts); a rerun resumes it."),
    ] = None,
    keep_parts: Annotated[bool, typer.Option(help="Ray engine: keep the job's parts after success.")] = False,
    diverse: Annotated[
        bool,
        typer.Option(help="No near-duplicates among the selected rows: each cluster's best-ranked row only."),
    ] = False,
    verify_key: VerifyKeyOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write only the high-value rows of DATA, ranked, with score and top reasons."""
    from winnow.display import console, rows_progress
    from winnow.screener import Screener

    try:
        s = Screener.load(artifact, verify_key=verify_key)
        with rows_progress(not (quiet or json_out)) as progress:
            options: dict[str, Any] = (
                {"address": address, "unit_rows": unit_rows, "work_dir": work_dir, "keep_parts": keep_parts}
                if engine is Engine.ray
                else {}
            )
            result = s.screen(
                data,
                as_of=as_of,
                out=out,
                budget=budget,
                use_threshold=use_threshold,
                rejects=rejects or default_rejects(out),
                batch_rows=batch_rows,
                progress=progress,
                reasons=reasons,
                workers=workers,
                diverse=diverse,
                engine=engine.value,
                **options,
            )
    except WinnowError as e:
        fail(e)
    print_summary(result.summary.to_json(), json_out)
    if result.head is not None and not (quiet or json_out):
        from rich.table import Table

        t = Table(title="Top selected", title_justify="left")
        cols = ["rank", "score"] + ([s.id_column] if s.id_column else [])
        cols += [c for c in ("reason_1", "reason_2") if c in result.head.column_names]
        for c in cols:
            t.add_column(c)
        for rec in result.head.slice(0, 5).select(cols).to_pylist():
            t.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in rec.values()])
        console.print(t)


@app.command()
def inspect(
    artifact: ArtifactArg,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    verify_key: VerifyKeyOpt = None,
) -> None:
    """Show what an artifact holds: task, schema, models, threshold, metrics, checksums."""
    from winnow.artifact import read_artifact
    from winnow.display import console, fit_report
    from winnow.signing import SIGNATURE_FILE

    try:
        contents = read_artifact(artifact, verify_key)
    except WinnowError as e:
        fail(e)
    man = contents.manifest
    if json_out:
        console.print_json(json.dumps(man))
        return
    from rich.table import Table

    cfg = man["config"]
    console.print(
        f"[bold]{artifact}[/]: winnow {man['winnow_version']}, format "
        f"{man['format_version']}, created {man['created']}"
    )
    console.print(f"high-value: {man['target']['description']}; id column: {cfg['id']}")
    if ev := cfg.get("events"):
        console.print(
            f"event log: entity {ev['entity']}, time {ev['time']}, fitted as of {', '.join(ev['as_of'])}; "
            f"label {ev['label']} over {ev['label_window']} after the cut; sequence encoder: {ev['sequence']}"
        )
    t = Table(title="Columns", title_justify="left")
    for c in ("column", "role", "why"):
        t.add_column(c)
    for s in man["schema"]:
        t.add_row(s["name"], s["role"], s["reason"])
    console.print(t)
    for item in fit_report(man):
        console.print(item)
    for w in man.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"files verified: {', '.join(man['files'])}")
    signed = (artifact / SIGNATURE_FILE).is_file()
    if verify_key is not None:
        console.print(f"signature: verified with {verify_key}")
    else:
        console.print(f"signature: {'present (not checked: pass --verify-key)' if signed else 'none'}")


@app.command()
def sign(
    artifact: ArtifactArg,
    key: Annotated[Path, typer.Option(help="Ed25519 private key (PEM).", envvar="WINNOW_SIGN_KEY")],
) -> None:
    """Sign ARTIFACT (after checking its checksums): writes ARTIFACT/manifest.sig."""
    from winnow.artifact import sign_artifact
    from winnow.display import console

    try:
        written = sign_artifact(artifact, key)
    except WinnowError as e:
        fail(e)
    console.print(f"signed [bold]{artifact}[/] ({written})")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data, artifact and results.")] = Path(
        "winnow-demo"
    ),
    quiet: QuietOpt = False,
) -> None:
    """Run the whole path on the CDNOW purchase log: who will be next period's top spenders?"""
    from winnow.demo import run_demo

    rich_logging(quiet)
    try:
        run_demo(out, quiet=quiet)
    except WinnowError as e:
        fail(e)


def _register_services() -> None:
    """The service and the stream worker live in their own packages; their modules import only
    Typer at load time, so `winnow --help` stays fast."""
    from winnow.optimise.cli import optimise as optimise_command
    from winnow.quality.cli import clean as clean_command
    from winnow.quality.cli import profile as profile_command
    from winnow.quality.cli import suggest as suggest_command
    from winnow.quality.cli import value as value_command
    from winnow.report.cli import digest as digest_command
    from winnow.report.cli import report as report_command
    from winnow.retrain_cli import retrain as retrain_command
    from winnow.serve.cli import serve as serve_command
    from winnow.similarity.cli import similar as similar_command
    from winnow.stream.cli import stream as stream_command

    app.command("serve")(serve_command)
    app.command("stream")(stream_command)
    app.command("optimise")(optimise_command)
    app.command("report")(report_command)
    app.command("profile")(profile_command)
    app.command("clean")(clean_command)
    app.command("suggest")(suggest_command)
    app.command("value")(value_command)
    app.command("similar")(similar_command)
    app.command("retrain")(retrain_command)
    app.command("digest")(digest_command)


def _version(value: bool) -> None:
    if value:
        print(f"winnow {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Screen high-value records out of massive data."""


_register_services()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ModuleNotFoundError as e:  # an optional feature whose extra is not installed
        from winnow.extras import missing_extra

        missing = missing_extra(e)
        if missing is None:
            raise
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(missing.exit_code)


if __name__ == "__main__":
    main()
