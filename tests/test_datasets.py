"""The CDNOW demo data: per-customer features before a cutoff, future spend after it."""

from __future__ import annotations

import pandas as pd
import pytest

from winnow.datasets.cdnow import TRAIN_CUTOFF, WINDOW, customer_features, load_transactions


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 3],
            "date": pd.to_datetime(["1997-01-10", "1997-01-10", "1997-09-01", "1997-02-01", "1997-10-05"]),
            "quantity": [1, 2, 3, 1, 9],
            "amount": [10.0, 5.0, 30.0, 7.0, 99.0],
        }
    )


def test_features_by_hand(tx):
    f = customer_features(tx, TRAIN_CUTOFF).set_index("customer_id")
    assert list(f.index) == [1, 2]  # customer 3 first bought after the cutoff
    c1 = f.loc[1]
    assert c1["past_spend"] == 45.0
    assert c1["purchase_days"] == 2  # two purchases on one day count as one purchase day
    assert c1["avg_basket"] == pytest.approx(22.5)
    assert c1["max_basket"] == 30.0
    assert c1["items"] == 6
    assert c1["recency_days"] == (TRAIN_CUTOFF - pd.Timestamp("1997-09-01")).days
    assert c1["spend_last_13w"] == 30.0
    assert c1["spend_first_13w"] == 15.0
    assert c1["mean_gap_days"] == (pd.Timestamp("1997-09-01") - pd.Timestamp("1997-01-10")).days
    assert c1["tenure_days"] == (TRAIN_CUTOFF - pd.Timestamp("1997-01-10")).days
    assert c1["first_purchase_month"] == "1997-01"
    assert c1["trend"] == pytest.approx(30.0 / 45.0)
    c2 = f.loc[2]
    assert c2["purchase_days"] == 1 and pd.isna(c2["mean_gap_days"])


def test_customer_without_purchases_in_the_window(tx):
    later = TRAIN_CUTOFF + WINDOW + pd.Timedelta(days=30)
    f = customer_features(tx, later).set_index("customer_id")
    # customer 2 bought only long before the window: zeros, and recency past the window
    assert f.loc[2, "past_spend"] == 0.0 and f.loc[2, "purchase_days"] == 0
    assert f.loc[2, "recency_days"] == WINDOW.days + 1
    assert f.loc[2, "trend"] == 0.0


def test_packaged_transactions():
    tx = load_transactions()
    assert list(tx.columns[:1]) == ["customer_id"]
    assert {"customer_id", "date", "quantity", "amount"} <= set(tx.columns)
    assert pd.api.types.is_datetime64_any_dtype(tx["date"])
    assert tx["customer_id"].nunique() == 23_570
