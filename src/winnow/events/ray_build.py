"""Entity tables of a Parquet event log on a Ray cluster: one task per part of the entities.

Each task reads the whole log (DuckDB pushes the columns and the ``hash(entity) % parts``
filter down to the Parquet scan) and builds the rows of its own entities with the artifact's
definitions and sequence encoder, bounded in memory like the local build; its rows go to
``part-<i>.parquet`` in the job folder, written atomically. The driver returns the folder, which
screens like any folder of Parquet files (on Ray too); the rows are the local build's, split by
entity (the sequence encoder's score up to float32 rounding: its matrix products see batches of
other shapes). Every node must see the log and the folder at the same paths.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from winnow.errors import ConfigError
from winnow.events.log import parquet_paths


def _build_part(
    files: dict[str, bytes], paths: list[str], cut: date, part: int, parts: int, folder: str
) -> int:
    import pyarrow as pa

    from winnow.engines.units import write_table_atomic
    from winnow.events.build import EventModel
    from winnow.events.log import EventLog
    from winnow.events.sequence import SCORE

    model = EventModel.from_files(files)
    f = model.features
    with EventLog(paths, f.entity, f.time, threads=1, partition=(part, parts)) as log:
        table = f.entity_table(log, cut)
        if model.encoder is not None:
            steps = model.encoder.steps(log, cut, table.column(f.entity))
            table = table.append_column(SCORE, pa.array(model.encoder.score(steps)))
    write_table_atomic(Path(folder) / f"part-{part:05d}.parquet", table)
    return int(table.num_rows)


def entity_table_ray(
    model: Any, data: Any, as_of: date, folder: Path, *, parts: int = 0, address: str | None = None
) -> Path:
    """Build the entity table of ``data`` (Parquet file, folder or glob) as of ``as_of`` on Ray
    into ``folder`` (``parts`` tasks; 0 = two per CPU of the cluster); returns the folder."""
    from winnow.engines.ray_engine import connect

    paths = parquet_paths(data)
    if paths is None:
        raise ConfigError(
            "--engine", "ray", "a Parquet event log (a file, a folder or a glob) for the Ray build",
            hint="Convert the log to Parquet, or build with the local engine.",
        )  # fmt: skip
    shutdown = connect(address, None)
    try:
        import ray

        parts = parts or max(2 * int(ray.cluster_resources().get("CPU", 1)), 1)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("part-*.parquet"):
            old.unlink()
        files = model.to_files()
        task = ray.remote(num_cpus=1)(_build_part)
        paths_abs = [str(Path(p).resolve()) for p in paths]
        ray.get([task.remote(files, paths_abs, as_of, i, parts, str(folder.resolve())) for i in range(parts)])
    finally:
        shutdown()
    return folder
