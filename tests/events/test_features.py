"""Entity tables from an event log: leakage made impossible, the same features from any input,
the learned definitions, clear errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.events.conftest import CUT
from winnow.errors import ConfigError, DataError
from winnow.events.features import EventFeatures
from winnow.events.log import EventLog
from winnow.events.spec import EventsConfig, as_date, parse_duration, parse_label


def _cfg(**kw) -> EventsConfig:
    base = dict(entity="customer", time="at", as_of=[CUT], label="sum(amount)", label_window="90d")
    return EventsConfig(**{**base, **kw})


def _table(data, cfg: EventsConfig, cut: date = CUT, label: bool = True) -> pa.Table:
    with EventLog(data, cfg.entity, cfg.time) as log:
        f = EventFeatures.learn(log, cfg)
        return f.entity_table(log, cut, with_label=label)


def _plant(log: pa.Table, when: date, amount: float, channel: str = "planted") -> pa.Table:
    """One extreme event for every customer at ``when``."""
    customers = pc.unique(log.column("customer")).to_pylist()
    extra = pa.table(
        {
            "customer": customers,
            "at": [when] * len(customers),
            "amount": [amount] * len(customers),
            "channel": [channel] * len(customers),
            "store": ["s-planted"] * len(customers),
        },
        schema=log.schema,
    )
    return pa.concat_tables([log, extra])


def test_events_after_the_cut_change_neither_the_features_nor_the_label_outside_its_window(event_log):
    cfg = _cfg()
    clean = _table(event_log, cfg)
    window_end = CUT + timedelta(days=90)
    # after the label window (and exactly at its end): invisible to features and label
    late = _plant(_plant(event_log, window_end, 1e9), date(1999, 6, 1), 1e9)
    assert _table(late, cfg).equals(clean)
    # inside the label window, the first day included: the label sees them, the features do not
    for when in (CUT, window_end - timedelta(days=1)):
        planted = _table(_plant(event_log, when, 1e9), cfg)
        label = "future_amount_sum"
        assert planted.drop([label]).equals(clean.drop([label]))
        np.testing.assert_allclose(planted.column(label).to_numpy() - clean.column(label).to_numpy(), 1e9)


def test_features_see_only_their_own_history_window(event_log):
    cfg = _cfg(history="180d", windows=["30d"])
    clean = _table(event_log, cfg)
    # an event before the history still makes the customer a known entity but adds to no window
    old = _table(_plant(event_log, CUT - timedelta(days=400), 1e9), cfg)
    assert old.num_rows > clean.num_rows  # customers whose first purchase was after the cut
    old = old.filter(pc.is_in(old.column("customer"), clean.column("customer")))
    assert old.column("amount_sum_180d").equals(clean.column("amount_sum_180d"))
    assert old.column("recency_days").equals(clean.column("recency_days"))
    # the day before the cut is inside every window
    recent = _table(_plant(event_log, CUT - timedelta(days=1), 1e6), cfg)
    recent = recent.filter(pc.is_in(recent.column("customer"), clean.column("customer")))
    np.testing.assert_allclose(
        recent.column("amount_sum_30d").to_numpy() - clean.column("amount_sum_30d").to_numpy(), 1e6
    )
    assert pc.all(pc.equal(recent.column("recency_days"), 1.0)).as_py()


def test_one_row_per_entity_seen_before_the_cut_with_readable_feature_names(event_log):
    cfg = _cfg(windows=["30d", "13w"])
    t = _table(event_log, cfg)
    before = event_log.filter(pc.less(event_log.column("at"), pa.scalar(CUT)))
    assert t.num_rows == len(pc.unique(before.column("customer")))
    assert t.column("customer").to_pylist() == sorted(t.column("customer").to_pylist())
    names = t.column_names
    for name in (
        "events_count_30d",
        "amount_sum_13w",
        "amount_mean_30d",
        "amount_trend_30d",
        "recency_days",
        "tenure_days",
        "gap_mean_days",
        "channel_share_web_365d",
        "store_distinct_365d",
        "active_days_365d",
        "as_of",
        "future_amount_sum",
    ):
        assert name in names, name
    # shares of a customer's channels add up to 1 where the history has events
    shares = sum(
        t.column(f"channel_share_{v}_365d").to_numpy(zero_copy_only=False) for v in ("web", "store", "phone")
    )
    seen = t.column("events_count_365d").to_numpy() > 0
    np.testing.assert_allclose(shares[seen], 1.0)
    # one customer by hand
    row = t.filter(pc.equal(t.column("customer"), "c0007")).to_pylist()[0]
    mine = before.filter(pc.equal(before.column("customer"), "c0007")).to_pandas()
    mine["at"] = mine["at"].astype("datetime64[ns]")
    recent = mine[mine["at"] >= np.datetime64(CUT - timedelta(days=91))]
    assert row["amount_sum_13w"] == pytest.approx(recent["amount"].sum())
    assert row["events_count_13w"] == len(recent)
    assert row["recency_days"] == pytest.approx(
        (np.datetime64(CUT) - mine["at"].max()) / np.timedelta64(1, "D")
    )


def test_a_csv_log_with_times_as_text_gives_the_same_table_as_parquet(event_log, event_log_file, tmp_path):
    import pyarrow.csv as pcsv

    csv = tmp_path / "purchases.csv"
    pcsv.write_csv(event_log, csv)
    cfg = _cfg()
    a, b = _table(event_log_file, cfg), _table(csv, cfg)
    assert a.column_names == b.column_names
    for name in a.column_names:
        if name == "customer":
            assert a.column(name).to_pylist() == b.column(name).to_pylist()
        else:
            np.testing.assert_allclose(
                np.asarray(a.column(name).to_pylist(), dtype=float) if name != "as_of" else 0,
                np.asarray(b.column(name).to_pylist(), dtype=float) if name != "as_of" else 0,
            )


def test_events_without_entity_or_readable_time_are_counted_with_examples(event_log):
    bad = pa.table(
        {
            "customer": [None, "c0001"],
            "at": ["1997-05-01", "not a date"],
            "amount": [1.0, 2.0],
            "channel": ["web", "web"],
            "store": ["s1", "s1"],
        }
    )
    log = pa.concat_tables([event_log.cast(bad.schema.set(1, pa.field("at", pa.string()))), bad])
    with EventLog(log, "customer", "at") as ev:
        assert ev.rejected["missing_entity"] == 1
        assert ev.rejected["unreadable_time"] == 1
        text = ev.describe_rejected()
        assert text is not None and "not a date" in text


def test_clear_errors_name_the_column_and_the_fix(event_log):
    with pytest.raises(DataError, match="entity column") as e:
        _table(event_log, _cfg(entity="client"))
    assert e.value.column == "client"
    with pytest.raises(DataError, match="label window") as e:
        with EventLog(event_log, "customer", "at") as log:
            cfg = _cfg(as_of=[date(1998, 12, 1)])
            EventFeatures.learn(log, cfg).check_label_window(log, cfg.as_of[0])
    assert "on or before 1998-10-" in str(e.value)
    with pytest.raises(DataError, match="no events before"):
        _table(event_log, _cfg(as_of=[date(1996, 1, 1)]))
    with pytest.raises(DataError, match="numeric"):
        _table(event_log, _cfg(label="sum(channel)"))
    with pytest.raises(ConfigError, match="--as-of"):
        as_date("next tuesday")
    assert as_date(datetime(1998, 7, 1, 12, 30)) == as_date("1998-07-01T12:30") == date(1998, 7, 1)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("3 months")
    with pytest.raises(ValueError, match="label like"):
        parse_label("median(amount)")
    with pytest.raises(ConfigError, match="label like"):
        from winnow.config import ScreenConfig

        ScreenConfig.build(
            target="total(amount)", entity="customer", time="at", as_of=["1998-01-01"], top_fraction=0.1
        )


def test_definitions_are_learned_before_the_first_cut_and_round_trip(event_log):
    cfg = _cfg(windows=["30d", "90d"], history="1y")
    with EventLog(event_log, "customer", "at") as log:
        f = EventFeatures.learn(log, cfg)
    assert f.windows == [("30d", 30), ("90d", 90), ("1y", 365)]
    assert f.numeric == ["amount"]
    assert f.categories == {"channel": ["web", "store", "phone"]}
    assert f.distinct == ["store"]
    assert EventFeatures.from_json(f.to_json()) == f
    # default windows: those of 7/30/90/365 days shorter than the history before the first cut
    with EventLog(event_log, "customer", "at") as log:
        f = EventFeatures.learn(log, _cfg(as_of=[date(1997, 4, 1)]))
    assert [w for w, _ in f.windows] == ["7d", "30d", "90d"]


def test_timestamps_with_hours_cut_at_midnight(event_log):
    t = event_log.set_column(1, "at", pc.cast(event_log.column("at"), pa.timestamp("us")))
    late_evening = pa.table(
        {
            "customer": ["c0001"],
            "at": pa.array([datetime(1997, 12, 31, 23, 59)], pa.timestamp("us")),
            "amount": [1e6],
            "channel": ["web"],
            "store": ["s1"],
        }
    )
    cfg = _cfg()
    clean, planted = _table(t, cfg), _table(pa.concat_tables([t, late_evening]), cfg)
    i = clean.column("customer").to_pylist().index("c0001")
    assert planted.column("amount_sum_7d")[i].as_py() - clean.column("amount_sum_7d")[
        i
    ].as_py() == pytest.approx(1e6)
    assert planted.column("future_amount_sum").equals(clean.column("future_amount_sum"))
