"""Retraining with new labels: challenger vs champion on the same held-out rows, lineage kept."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.helpers import fit_options, make_frame
from winnow import Screener
from winnow.errors import DataError
from winnow.retrain import retrain


def _flipped_world(n: int, seed: int) -> pd.DataFrame:
    """The same customers, but now high-value means the opposite of what the spend said."""
    f = make_frame(n, seed=seed)
    z = -np.log(f["spend"].fillna(f["spend"].median())) + np.random.default_rng(seed).normal(0, 0.3, n)
    f["churn"] = np.where(z > np.quantile(z, 0.8), "yes", "no")
    return f


@pytest.fixture(scope="module")
def old():
    return make_frame(800, seed=21)


@pytest.fixture(scope="module")
def champion(old):
    return Screener().fit(old, **fit_options())


def test_a_changed_world_promotes_the_challenger_with_lineage(champion, old, tmp_path):
    new = _flipped_world(2000, seed=22)
    res = retrain(champion, old, new, holdout=0.3)
    assert res.promoted
    assert res.challenger_metrics["budget"]["precision"] > res.champion_metrics["budget"]["precision"]
    lin = res.challenger.lineage_
    assert lin["data_added"]["rows"] == 1400 and lin["held_out"]["rows"] == 600
    assert lin["parent"]["created"] == champion.created_ and lin["promoted"] is True
    res.challenger.save(tmp_path / "c")
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["lineage"]["champion"]["auc_pr"] == pytest.approx(res.champion_metrics["auc_pr"])
    assert Screener.load(tmp_path / "c").lineage_ == manifest["lineage"]


def test_more_of_the_same_world_does_not_force_a_promotion_on_noise(champion, old):
    new = make_frame(600, seed=23)
    res = retrain(champion, old, new, holdout=0.5)
    # whatever the verdict, it is the comparison's: same rows, same labels, same k
    assert res.lineage["held_out"]["budget_k"] == res.champion_metrics["budget"]["k"]
    assert res.promoted == (
        (res.challenger_metrics["budget"]["precision"], res.challenger_metrics["auc_pr"])
        > (res.champion_metrics["budget"]["precision"], res.champion_metrics["auc_pr"])
    )


def test_bad_new_labels_are_refused(champion, old):
    with pytest.raises(DataError, match="target"):
        retrain(champion, old, make_frame(100, seed=24).drop(columns=["churn"]))
    one_class = make_frame(100, seed=25).assign(churn="no")
    with pytest.raises(DataError, match="never occurs"):
        retrain(champion, old, one_class)


def test_retrain_command(tmp_path, champion, old):
    from typer.testing import CliRunner

    from winnow.cli import app

    champion.save(tmp_path / "champ")
    old.to_parquet(tmp_path / "old.parquet")
    _flipped_world(1500, seed=26).to_parquet(tmp_path / "new.parquet")
    args = ["retrain", str(tmp_path / "champ"), "--data", str(tmp_path / "old.parquet")]
    args += ["--labels", str(tmp_path / "new.parquet"), "--out", str(tmp_path / "next"), "--quiet"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "promoted" in r.output and (tmp_path / "next" / "manifest.json").exists()


def test_too_few_of_a_class_to_hold_out(champion, old):
    few = make_frame(100, seed=27)
    few["churn"] = "no"
    few.loc[0, "churn"] = "yes"
    with pytest.raises(DataError, match="at least 2"):
        retrain(champion, old, few)


def test_reviewed_verdicts_are_the_labels_a_challenger_learns_from(champion, old, tmp_path):
    """Reviewers judge what the champion screened in a changed world; their verdicts alone
    become the new labels (`--labels duckdb:...`), and the challenger that learns them wins."""
    import json as _json

    from typer.testing import CliRunner

    from winnow.cli import app
    from winnow.retrain import reviewed_table
    from winnow.review.store import ReviewStore, Screened

    world = _flipped_world(1500, seed=24)
    truth = world.pop("churn").eq("yes").to_numpy()
    scores = champion.score(world)
    chosen = scores >= champion.threshold_.value
    rows = [
        Screened(f"c{i}", float(scores[i]), bool(chosen[i]), None, [], rec, "v1")
        for i, rec in enumerate(_json.loads(world.to_json(orient="records", date_format="iso")))
    ]
    url = f"duckdb:{tmp_path / 'reviews.duckdb'}"
    with ReviewStore(url) as store:
        store.add_screened(rows, screened=len(rows), selected=int(chosen.sum()), version="v1")
        for i in range(len(rows)):
            right = bool(truth[i]) == bool(chosen[i])
            store.record_verdict(f"c{i}", "right" if right else "wrong", "ana")

    table = reviewed_table(url, pa.Table.from_pandas(old, preserve_index=False), champion)
    assert table.num_rows == 1500 and table.column_names == list(old.columns)
    got = dict(zip(table.column("customer_id").to_pylist(), table.column("churn").to_pylist(), strict=True))
    assert [got[c] == "yes" for c in world["customer_id"]] == truth.tolist()
    assert table.column("spend").type == pa.float64()

    res = retrain(champion, old, url, holdout=0.3)
    assert res.promoted and res.lineage["data_added"]["rows"] == 1050

    out = tmp_path / "challenger"
    old_path = tmp_path / "old.parquet"
    old.to_parquet(old_path)
    champion_dir = champion.save(tmp_path / "champion")
    r = CliRunner().invoke(
        app,
        ["retrain", str(champion_dir), "--data", str(old_path), "--labels", url, "--out", str(out), "--json"],
    )
    assert r.exit_code == 0, r.output
    assert (
        _json.loads(r.output.strip().splitlines()[-1])["promoted"] is True
        and (out / "manifest.json").exists()
    )


def test_an_empty_review_store_is_refused(champion, old, tmp_path):
    from winnow.review.store import ReviewStore

    url = f"duckdb:{tmp_path / 'empty.duckdb'}"
    ReviewStore(url).open().close()
    with pytest.raises(DataError, match="holds no verdicts yet"):
        retrain(champion, old, url)
