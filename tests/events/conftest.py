"""A small synthetic event log: purchases of 400 customers over 1997-1998, where customers
who bought more and more recently spend more later (so there is something to learn)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest

CUT = date(1998, 1, 1)


def make_log(customers: int = 400, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"customer": [], "at": [], "amount": [], "channel": [], "store": []}
    start = date(1997, 1, 1)
    for c in range(customers):
        rate = rng.gamma(1.5, 1.0)  # purchases per month: the hidden trait
        n = rng.poisson(rate * 24) + 1
        days = np.sort(rng.integers(0, 730, n))
        for d in days:
            rows["customer"].append(f"c{c:04d}")
            rows["at"].append(start + timedelta(days=int(d)))
            rows["amount"].append(round(float(rng.gamma(2.0, 10.0 + 5 * rate)), 2))
            rows["channel"].append(str(rng.choice(["web", "store", "phone"], p=[0.6, 0.3, 0.1])))
            rows["store"].append(f"s{int(rng.integers(0, 80))}")
    return pa.table(rows)


@pytest.fixture(scope="session")
def event_log() -> pa.Table:
    return make_log()


@pytest.fixture(scope="session")
def event_log_file(event_log: pa.Table, tmp_path_factory: pytest.TempPathFactory):
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("events") / "purchases.parquet"
    pq.write_table(event_log, path)
    return path


#: fit options of the event screeners in these tests
OPTIONS = dict(entity="customer", time="at", target="sum(amount)", label_window="90d", top_fraction=0.1,
               budget=0.1, preset="fast", seed=0)  # fmt: skip


@pytest.fixture(scope="session")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, object]:
    import pyarrow.parquet as pq

    log = make_log(customers=1500, seed=1)
    path = tmp_path_factory.mktemp("events") / "purchases.parquet"
    pq.write_table(log, path)
    return log, path


@pytest.fixture(scope="session")
def event_screener(big_log, tmp_path_factory: pytest.TempPathFactory):
    """A fast screener fitted on 1,500 customers' log as of 1998-01-01, with the sequence encoder; saved."""
    from winnow import Screener

    _, path = big_log
    s = Screener().fit(path, as_of=[CUT], sequence=True, sequence_length=16, **OPTIONS)
    return s, s.save(tmp_path_factory.mktemp("art") / "screener")
