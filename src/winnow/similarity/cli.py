"""``winnow similar``: the command (registered by :mod:`winnow.cli`); imports only Typer at load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from winnow.cli_options import ArtifactArg, DataArg, JsonOpt, QuietOpt
from winnow.errors import WinnowError


def similar(
    artifact: ArtifactArg,
    data: DataArg,
    examples: Annotated[
        str, typer.Option("--examples", help="Known high-value records (same columns as DATA).")
    ],
    out: Annotated[Path, typer.Option(help="Output file (.parquet, .csv, .jsonl).")],
    top: Annotated[int, typer.Option(min=1, help="Rows to return, most similar first.")] = 100,
    index: Annotated[
        Path | None,
        typer.Option(
            help="Folder of a vector index of DATA's embeddings: built on the first run, reused by "
            "later runs (other examples, same DATA) so they skip embedding the data."
        ),
    ] = None,
    index_kind: Annotated[
        str,
        typer.Option(
            help="A new index's kind: exact (stored embeddings), hnsw (approximate graph, for many "
            "millions of rows or many examples) or auto (exact up to 5M rows)."
        ),
    ] = "auto",
    embedding: Annotated[
        str,
        typer.Option(
            help="auto (deep if the screener has a deep member, else inputs), deep (the network's "
            "last hidden layer) or inputs (standardized model inputs)."
        ),
    ] = "auto",
    include_examples: Annotated[
        bool, typer.Option(help="Keep rows whose id equals an example's id.")
    ] = False,
    rejects: Annotated[Path | None, typer.Option(help="Where rejected records go (JSONL).")] = None,
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows per batch (memory bound).")] = 65536,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rank DATA by similarity to known high-value --examples and write the --top most similar."""
    from winnow.cli_options import default_rejects
    from winnow.display import console, fail, rows_progress
    from winnow.screener import Screener

    try:
        s = Screener.load(artifact)
        with rows_progress(not (quiet or json_out)) as progress:
            result = s.similar(
                data,
                examples,
                top=top,
                out=out,
                rejects=rejects or default_rejects(out),
                index=index,
                index_kind=index_kind,
                embedding=embedding,
                include_examples=include_examples,
                batch_rows=batch_rows,
                progress=progress,
            )
    except WinnowError as e:
        fail(e)
    sm = result.summary
    if json_out:
        print(json.dumps({**dataclasses.asdict(sm), "out": str(out)}, default=str))
        return
    console.print(
        f"read {sm.rows_read:,}, ranked {sm.rows_ranked:,}, written {sm.rows_selected:,}, rejected "
        f"{sm.rows_rejected:,}, examples' own rows left out {sm.rows_excluded:,} "
        f"({sm.examples} examples; {sm.method}) in {sm.seconds:.1f}s"
    )
    console.print(f"embedding: {sm.embedding}")
    if sm.rejects:
        console.print(f"rejected records with reasons: {sm.rejects}")
        for ex in sm.reject_examples[:3]:
            console.print(f"  [yellow]{ex}[/]")
    console.print(f"results written to [bold]{out}[/]")
    if result.head is not None and result.head.num_rows and not quiet:
        from rich.table import Table

        t = Table(title="Most similar", title_justify="left")
        cols = ["rank", "row", "similarity", "example"]
        if s.id_column and s.id_column in result.head.column_names:
            cols += [s.id_column, f"example_{s.id_column}"]
        cols = [c for c in cols if c in result.head.column_names]
        for c in cols:
            t.add_column(c)
        for rec in result.head.slice(0, 5).select(cols).to_pylist():
            t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in rec.values()])
        console.print(t)
