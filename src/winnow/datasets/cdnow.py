"""CDNOW: which customers will be the big spenders of the next 39 weeks?

Per-customer features are built from a window of purchases before a cutoff date (recency,
frequency, monetary value, trends, inter-purchase times); the label table adds the spend of the
39 weeks after the cutoff. Two cutoffs give a training table (1997-10-01: first 39 weeks ->
next 39 weeks) and a table to screen (1998-07-01: the last 39 weeks, future unknown).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW = pd.Timedelta(weeks=39)
TRAIN_CUTOFF = pd.Timestamp("1997-10-01")
SCREEN_CUTOFF = pd.Timestamp("1998-07-01")


def transactions_path() -> Path:
    return Path(str(resources.files("winnow.datasets") / "cdnow_transactions.parquet"))


def load_transactions() -> pd.DataFrame:
    tx = pd.read_parquet(transactions_path())
    tx["date"] = pd.to_datetime(tx["date"])
    return tx


def customer_features(tx: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """One row per customer seen before ``cutoff``, from the 39 weeks before it."""
    hist = tx[tx["date"] < cutoff]
    win = hist[hist["date"] >= cutoff - WINDOW]
    first_ever = hist.groupby("customer_id")["date"].min()
    customers = pd.DataFrame(index=first_ever.index)
    days = win.groupby(["customer_id", "date"], as_index=False).agg(
        amount=("amount", "sum"), quantity=("quantity", "sum")
    )
    g = days.groupby("customer_id")
    recent = days[days["date"] >= cutoff - pd.Timedelta(weeks=13)].groupby("customer_id")["amount"].sum()
    early = days[days["date"] < cutoff - pd.Timedelta(weeks=26)].groupby("customer_id")["amount"].sum()
    gaps = days.sort_values("date").groupby("customer_id")["date"].diff().dt.days
    days = days.assign(gap=gaps)
    out = pd.DataFrame(
        {
            "past_spend": g["amount"].sum(),
            "purchase_days": g["amount"].size(),
            "avg_basket": g["amount"].mean(),
            "max_basket": g["amount"].max(),
            "items": g["quantity"].sum(),
            "recency_days": (cutoff - g["date"].max()).dt.days,
            "spend_last_13w": recent,
            "spend_first_13w": early,
            "mean_gap_days": days.groupby("customer_id")["gap"].mean(),
        }
    )
    out = customers.join(out)
    fill0 = ["past_spend", "purchase_days", "items", "spend_last_13w", "spend_first_13w"]
    out[fill0] = out[fill0].fillna(0.0)
    out["tenure_days"] = (cutoff - first_ever).dt.days
    out["first_purchase_month"] = first_ever.dt.strftime("%Y-%m")
    out["recency_days"] = out["recency_days"].fillna(WINDOW.days + 1)
    out["trend"] = np.where(
        out["past_spend"] > 0, out["spend_last_13w"] / out["past_spend"].where(out["past_spend"] > 0), 0.0
    )
    out = out.reset_index().rename(columns={"index": "customer_id"})
    out["purchase_days"] = out["purchase_days"].astype("int64")
    out["items"] = out["items"].astype("int64")
    return out


def build_tables(out_dir: Path) -> tuple[Path, Path]:
    """Write ``customers_1997.parquet`` (with ``future_spend``) and ``customers_1998.parquet``."""
    tx = load_transactions()
    train = customer_features(tx, TRAIN_CUTOFF)
    future = tx[(tx["date"] >= TRAIN_CUTOFF) & (tx["date"] < TRAIN_CUTOFF + WINDOW)]
    spend = future.groupby("customer_id")["amount"].sum()
    train["future_spend"] = train["customer_id"].map(spend).fillna(0.0)
    screen = customer_features(tx, SCREEN_CUTOFF)
    out_dir.mkdir(parents=True, exist_ok=True)
    p_train, p_screen = out_dir / "customers_1997.parquet", out_dir / "customers_1998.parquet"
    train.to_parquet(p_train, index=False)
    screen.to_parquet(p_screen, index=False)
    return p_train, p_screen
