"""Screening an event log: its entity rows as of a date, built by the fit's definitions, then
screened like any table (:meth:`winnow.Screener.screen` with ``as_of``).

Locally DuckDB writes the rows to a temporary Parquet file that the local engine screens
(bounded memory for any number of entities; ``--diverse`` gets the rows as one table); on Ray
they are built by Ray tasks into a folder of Parquet parts that the Ray engine then screens.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from winnow.errors import ConfigError
from winnow.events.spec import as_date

if TYPE_CHECKING:
    from winnow.events.build import EventModel
    from winnow.screener import Screener


def event_model(screener: Screener) -> EventModel:
    """The screener's event-log definitions; a ConfigError for a screener fitted on a table."""
    model = screener.fitted_.events if screener.fitted_ is not None else None
    if model is None:
        raise ConfigError("--as-of", "given", "a screener fitted on an event log (winnow fit --entity ...)")
    return model


def screen_log(screener: Screener, data: Any, as_of: date | str | None, **options: Any) -> Any:
    """:meth:`winnow.Screener.screen` for a screener fitted on an event log: ``data`` is the log,
    screened as of ``as_of``, or (``as_of`` None) a table of its entity rows."""
    model = event_model(screener)
    if as_of is None:
        _refuse_a_log(model, data)
        return screener._screen_rows(data, **options)
    if options.get("engine") == "ray":
        return _screen_on_ray(screener, data, as_of, **options)
    threads = screener.config.threads if screener.config is not None else 0
    if options.get("diverse"):
        return screener._screen_rows(model.entity_table(data, as_of, threads), **options)
    with model.entity_file(data, as_of, threads) as path:
        return screener._screen_rows(path, **options)


def _refuse_a_log(model: EventModel, data: Any) -> None:
    """Without ``as_of`` the data must be entity rows: an input that looks like the event log
    (its time column, none of the features) gets the flag to add rather than a missing-column
    error."""
    from winnow.errors import WinnowError
    from winnow.io.readers import open_source

    try:
        names = set(open_source(data).column_names())
    except WinnowError:  # an input the screen itself will refuse, with its own message
        return
    f = model.features
    if f.time in names and not names & set(f.names):
        raise ConfigError(
            "--as-of", None, f"the date to screen the event log as of (it has {f.time!r}, no entity features)"
        )


def _screen_on_ray(screener: Screener, data: Any, as_of: date | str, **options: Any) -> Any:
    """An event log on Ray: the entity rows built by Ray tasks into a folder of Parquet parts
    (``<out>.entities``, or ``entities`` in the work folder), then screened there on Ray."""
    import shutil

    from winnow.engines.ray_engine import connect
    from winnow.events.ray_build import entity_table_ray

    model = event_model(screener)
    where = options.get("work_dir") or options.get("out")
    if where is None:
        raise ConfigError("out", None, "an output file (or a work_dir) for the Ray engine")
    folder = Path(f"{where}.entities") if not options.get("work_dir") else Path(where) / "entities"
    cut = as_date(as_of)
    shutdown = connect(options.get("address"), options.get("workers") or None)
    try:
        entity_table_ray(model, data, cut, folder, address=options.get("address"))
        return screener._screen_rows(folder, **options)
    finally:
        shutdown()
        if not options.get("keep_parts"):
            shutil.rmtree(folder, ignore_errors=True)
