"""The CDNOW demo data: the packaged purchase log and the entity tables built from it."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from winnow.datasets.cdnow import BASELINE, LABEL, SCREEN_AS_OF, TRAIN_AS_OF, build_tables, load_transactions


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, screen = build_tables(tmp_path_factory.mktemp("cdnow"))
    return pd.read_parquet(train), pd.read_parquet(screen)


def test_packaged_transactions():
    tx = load_transactions()
    assert list(tx.columns[:1]) == ["customer_id"]
    assert {"customer_id", "date", "quantity", "amount"} <= set(tx.columns)
    assert pd.api.types.is_datetime64_any_dtype(tx["date"])
    assert tx["customer_id"].nunique() == 23_570


def test_the_demo_tables_match_the_log_computed_by_hand(tables):
    train, screen = tables
    tx = load_transactions()
    cut, later = pd.Timestamp(TRAIN_AS_OF), pd.Timestamp(SCREEN_AS_OF)
    window = pd.Timedelta(weeks=39)
    assert len(train) == tx.loc[tx["date"] < cut, "customer_id"].nunique() == 23_570
    assert len(screen) == 23_570 and LABEL not in screen.columns
    train, screen = train.set_index("customer_id"), screen.set_index("customer_id")
    past = tx[(tx["date"] < cut) & (tx["date"] >= cut - window)].groupby("customer_id")["amount"].sum()
    future = tx[(tx["date"] >= cut) & (tx["date"] < cut + window)].groupby("customer_id")["amount"].sum()
    pd.testing.assert_series_equal(
        train[BASELINE], past.reindex(train.index).fillna(0.0), check_names=False, rtol=1e-12
    )
    pd.testing.assert_series_equal(
        train[LABEL], future.reindex(train.index).fillna(0.0), check_names=False, rtol=1e-12
    )
    # as of mid-1998, the last 39 weeks only; customers silent for longer have zeros and the
    # recency cap (the history + 1 day), as when fitting
    recent = tx[(tx["date"] < later) & (tx["date"] >= later - window)].groupby("customer_id")["amount"].sum()
    pd.testing.assert_series_equal(
        screen[BASELINE], recent.reindex(screen.index).fillna(0.0), check_names=False, rtol=1e-12
    )
    silent = screen.index.difference(recent.index)
    assert len(silent) > 1000
    assert (screen.loc[silent, "recency_days"] == 274).all()
    assert (screen.loc[silent, "events_count_39w"] == 0).all()
    last = tx[tx["date"] < cut].groupby("customer_id")["date"].max()
    assert (train["recency_days"] == (cut - last.reindex(train.index)) / timedelta(days=1)).all()
