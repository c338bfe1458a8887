"""CDNOW: which customers will be the big spenders of the next 39 weeks?

The purchase log itself is the data: :data:`EVENTS` says how winnow turns it into one row per
customer as of a date (winnow.events: spend, counts, trends and gaps over the last 4, 13, 26
and 39 weeks; the label is the spend of the 39 weeks after the cut). Fitted as of 1997-10-01
(the first 39 weeks -> the next 39), screened as of 1998-07-01 (the last 39 weeks, future
unknown). :func:`build_tables` writes the same two entity tables as Parquet, for the examples
that start from a table.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

TRAIN_AS_OF, SCREEN_AS_OF = date(1997, 10, 1), date(1998, 7, 1)
#: the event-log options of ``winnow fit`` for the demo (``--entity customer_id --time date ...``)
EVENTS: dict[str, Any] = {
    "entity": "customer_id",
    "time": "date",
    "target": "sum(amount)",
    "label_window": "39w",
    "windows": ["4w", "13w", "26w"],
    "history": "39w",
}
#: the rule a marketer uses today: rank by the last 39 weeks' spend
BASELINE = "amount_sum_39w"
#: the label column the event-log fit builds
LABEL = "future_amount_sum"


def transactions_path() -> Path:
    return Path(str(resources.files("winnow.datasets") / "cdnow_transactions.parquet"))


def load_transactions() -> pd.DataFrame:
    tx = pd.read_parquet(transactions_path())
    tx["date"] = pd.to_datetime(tx["date"])
    return tx


def build_tables(out_dir: Path) -> tuple[Path, Path]:
    """Write ``customers_1997.parquet`` (features as of 1997-10-01 with ``future_amount_sum``)
    and ``customers_1998.parquet`` (features as of 1998-07-01), built from the log by
    winnow.events with the demo's definitions."""
    import pyarrow.parquet as pq

    from winnow.config import ScreenConfig
    from winnow.events.features import EventFeatures
    from winnow.events.log import EventLog

    cfg = ScreenConfig.build(**EVENTS, as_of=[TRAIN_AS_OF], top_fraction=0.1).events
    assert cfg is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    p_train, p_screen = out_dir / "customers_1997.parquet", out_dir / "customers_1998.parquet"
    with EventLog(transactions_path(), cfg.entity, cfg.time) as log:
        features = EventFeatures.learn(log, cfg)
        pq.write_table(features.entity_table(log, TRAIN_AS_OF, with_label=True), p_train)
        pq.write_table(features.entity_table(log, SCREEN_AS_OF), p_screen)
    return p_train, p_screen
