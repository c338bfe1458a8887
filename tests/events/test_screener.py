"""A screener fitted on an event log: the same definitions replayed when screening (through the
artifact), stacked cuts with whole entities held out, the sequence encoder, the CLI."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from tests.events.conftest import CUT, OPTIONS
from winnow import Screener
from winnow.cli import app
from winnow.errors import ConfigError
from winnow.events.build import training_table
from winnow.events.sequence import SCORE


def test_features_at_screening_equal_features_at_fitting_for_the_same_cut(event_screener, big_log):
    s, art = event_screener
    loaded = Screener.load(art)
    cfg = loaded.config
    assert cfg is not None and cfg.target == "future_amount_sum" and cfg.id == "customer"
    train, _ = training_table(big_log[1], cfg)
    replay = loaded.entity_table(big_log[1], CUT)
    features = [c for c in replay.column_names if c != SCORE]
    assert replay.select(features).equals(train.select(features))
    # the sequence score: out of fold while fitting, the fold models' mean when screening;
    # the artifact's encoder scores exactly as the fitted one
    assert s.entity_table(big_log[1], CUT).column(SCORE).equals(replay.column(SCORE))
    oof, mean = train.column(SCORE).to_numpy(), replay.column(SCORE).to_numpy()
    assert np.corrcoef(oof, mean)[0, 1] > 0.8


def test_screening_as_of_a_later_date_ranks_entities_and_knows_the_fit(event_screener, big_log, tmp_path):
    s, art = event_screener
    loaded = Screener.load(art)
    result = loaded.screen(big_log[1], as_of="1998-10-01", out=tmp_path / "top.parquet")
    assert result.summary.rows_scored == len(
        pc.unique(
            big_log[0]
            .filter(pc.less(big_log[0].column("at"), pa.scalar(date(1998, 10, 1))))
            .column("customer")
        )
    )
    assert result.summary.rows_selected == round(0.1 * result.summary.rows_scored)
    top = result.selected
    assert set(top.column("as_of").to_pylist()) == {date(1998, 10, 1)}
    # the screener learned something: better than the rule of last 90 days' spend on its test rows
    m = s.metrics_
    assert m["winnow"]["auc_pr"] > 0.3
    with pytest.raises(ConfigError, match="--as-of"):
        loaded.screen(big_log[1], out=tmp_path / "x.parquet")
    # the entity rows themselves screen as a table, with the same result
    rows = loaded.entity_table(big_log[1], "1998-10-01")
    same = loaded.screen(rows, out=tmp_path / "rows.parquet")
    assert same.selected.column("customer").equals(top.column("customer"))
    assert same.selected.column("score").equals(top.column("score"))


def test_the_screener_of_a_table_refuses_an_as_of(fitted, tmp_path):
    with pytest.raises(ConfigError, match="event log"):
        fitted.screen(tmp_path / "x.parquet", as_of="2020-01-01")


def test_stacked_cuts_tag_each_row_and_hold_out_whole_entities(big_log):
    from winnow.config import ScreenConfig

    opts = {k: v for k, v in OPTIONS.items() if k != "budget"}
    cfg = ScreenConfig.build(as_of=["1997-10-01", CUT.isoformat()], **opts)
    assert cfg.split_column == "split" and "as_of" in cfg.drop
    table, model = training_table(big_log[1], cfg)
    assert set(table.column("as_of").to_pylist()) == {date(1997, 10, 1), CUT}
    sides = {}
    for e, side in zip(table.column("customer").to_pylist(), table.column("split").to_pylist(), strict=True):
        assert sides.setdefault(e, side) == side
    share = np.mean([v == "test" for v in sides.values()])
    assert 0.15 < share < 0.25
    # every cut's features are built with the definitions learned before the first cut
    assert model.features.windows[-1][0] == "273d"


def test_the_sequence_encoder_is_deterministic_for_a_seed(big_log):
    from winnow.config import ScreenConfig

    opts = {k: v for k, v in OPTIONS.items() if k != "budget"}
    cfg = ScreenConfig.build(as_of=[CUT.isoformat()], sequence=True, sequence_length=8, **opts)
    small = big_log[0].slice(0, 20_000)
    a, _ = training_table(small, cfg, threads=1)
    b, _ = training_table(small, cfg, threads=1)
    assert a.column(SCORE).equals(b.column(SCORE))


def test_cli_fits_an_event_log_and_screens_it_as_of_a_date(big_log, tmp_path):
    runner = CliRunner()
    art = tmp_path / "art"
    r = runner.invoke(
        app,
        [
            "fit",
            str(big_log[1]),
            "--entity",
            "customer",
            "--time",
            "at",
            "--as-of",
            "1998-01-01",
            "--label-window",
            "13w",
            "--target",
            "count()",
            "--top-fraction",
            "0.1",
            "--window",
            "30d",
            "--window",
            "13w",
            "--preset",
            "fast",
            "--out",
            str(art),
            "--no-report",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    loaded = Screener.load(art)
    assert loaded.config is not None and loaded.config.target == "future_events_count"
    assert "events_count_13w" in loaded.input_columns
    out = tmp_path / "top.csv"
    r = runner.invoke(
        app, ["screen", str(art), str(big_log[1]), "--as-of", "1998-09-01", "--out", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert out.read_text().splitlines()[0].startswith('"rank"')
    r = runner.invoke(app, ["screen", str(art), str(big_log[1]), "--out", str(out)])
    assert r.exit_code != 0 and "--as-of" in r.output
