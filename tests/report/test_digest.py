"""``winnow digest`` on a sentiment watch: reviews screened over two weeks, the negative ones
selected; the digest of the last week, its themes and what is new, in HTML, JSON and Markdown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from winnow import Screener
from winnow.report.digest import build_digest, parse_span
from winnow.report.digest_page import digest_html, digest_markdown

START = datetime(2026, 11, 23)
Watch = tuple[Screener, pa.Table]


@pytest.fixture(scope="module")
def watch(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Watch:
    """A screener of "not great" reviews, and its audit table: every review of the test split
    scored once over 14 days (the sink's columns: id, score, selected, reasons, record, scored_at)."""
    df = pd.read_parquet(shared_data / "fine_food_reviews.parquet")
    train, stream = (
        df[df["split"] == "train"].drop(columns="split"),
        df[df["split"] != "train"].drop(columns="split"),
    )
    s = Screener().fit(
        train, target="score", positive="other", drop=["product"], models=["linear"], folds=3, seed=0
    )
    stream = stream.reset_index(drop=True)
    frame = s.score(stream, output="pandas", reasons=2)
    rng = np.random.default_rng(0)
    at = [START + timedelta(seconds=float(v)) for v in np.sort(rng.uniform(0, 14 * 86400, len(stream)))]
    records = stream.drop(columns="score").to_dict("records")
    table = pa.table(
        {
            "id": [f"rev{i}" for i in range(len(stream))],
            "score": frame["score"].to_numpy(),
            "selected": frame["selected"].to_numpy(),
            "rule": [None] * len(stream),
            "reasons": [
                [r for r in (a, b) if isinstance(r, str)]
                for a, b in zip(frame["reason_1"], frame["reason_2"], strict=True)
            ],
            "record": [json.dumps(r) for r in records],
            "scored_at": pa.array(at, pa.timestamp("us")),
        }
    )
    return s, table


def test_the_digest_of_a_week(watch: Watch) -> None:
    s, table = watch
    since, until = START + timedelta(days=7), START + timedelta(days=14)
    d = build_digest(table, s, since=since, until=until, interval=parse_span("1d"))
    assert build_digest(table, s, every=parse_span("7d"), until=until)["period"] == d["period"]
    at = pd.to_datetime(table.column("scored_at").to_pandas())
    in_week = (at >= since) & (at < until)
    sel = np.asarray(table.column("selected").to_pylist())
    assert d["scored"] == int(in_week.sum()) and d["selected"] == int(sel[in_week].sum())
    assert len(d["volume"]) == 7 and sum(v["scored"] for v in d["volume"]) == d["scored"]
    assert d["period"]["since"] == "2026-11-30T00:00:00Z" and d["previous"]["records"] > 0
    scores = [t["score"] for t in d["top"]]
    assert len(scores) == 20 and scores == sorted(scores, reverse=True)
    assert all(t["reasons"] for t in d["top"])
    assert all(set(o) == {"column", "value", "contribution"} for t in d["top"] for o in t["reason_details"])
    assert d["top"][0]["reason_details"][0]["column"] == "review"
    assert 2 <= len(d["themes"]) <= 6 and sum(t["records"] for t in d["themes"]) == d["selected"]
    assert any(t["words"].get("review") for t in d["themes"])  # the words that set a theme apart
    assert d["new"]["score_psi"] is not None and d["new"]["selection_rate_before"] is not None
    assert d["expected"]["precision"]["low"] <= d["expected"]["precision"]["value"]
    assert d["reviews"] is None


def test_the_same_digest_gives_the_same_bytes(watch: Watch, tmp_path: Path) -> None:
    s, table = watch
    a = digest_html(build_digest(table, s, since=START + timedelta(days=7)))
    b = digest_html(build_digest(table, s, since=START + timedelta(days=7)))
    assert a == b and "<script" not in a and "http://" not in a and "https://" not in a
    md = digest_markdown(build_digest(table, s))
    assert md.startswith("# What was screened") and "## Themes" in md and "| id | score | reasons |" in md


def test_reviews_give_the_realised_precision(watch: Watch, tmp_path: Path) -> None:
    from winnow.review.store import ReviewStore, Screened

    s, table = watch
    url = f"duckdb:{tmp_path / 'reviews.duckdb'}"
    with ReviewStore(url) as store:
        store.add_screened([Screened(f"rev{i}", 0.9, True, None, [], {}, "v") for i in range(4)], 100, 4, "v")
        for i, v in enumerate(["right", "right", "right", "wrong"]):
            store.record_verdict(f"rev{i}", v, "ana")
    d = build_digest(table, s, reviews=url)
    assert d["reviews"]["precision"]["value"] == 0.75
    assert "realised precision 75%" in digest_markdown(d)


def test_winnow_digest_writes_html_json_and_markdown(watch: Watch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from winnow.cli import app

    s, table = watch
    art = s.save(tmp_path / "screener")
    src = tmp_path / "audit.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, src)
    out = tmp_path / "digest.html"
    r = CliRunner().invoke(
        app,
        [
            "digest",
            str(art),
            str(src),
            "--out",
            str(out),
            "--json",
            str(tmp_path / "d.json"),
            "--markdown",
            str(tmp_path / "d.md"),
            "--every",
            "7d",
            "--until",
            "2026-12-07",
            "--interval",
            "1d",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["period"]["since"] == "2026-11-30T00:00:00Z" and d["period"]["until"] == "2026-12-07T00:00:00Z"
    assert len(d["volume"]) == 7 and out.read_text().startswith("<!doctype html>")
    bad = CliRunner().invoke(app, ["digest", str(art), str(src), "--out", str(out), "--every", "soon"])
    assert bad.exit_code == 2 and "--every" in bad.output


@pytest.mark.browser
def test_the_digest_renders_in_chromium(chromium: str, watch: Watch, tmp_path: Path) -> None:
    exe = chromium
    s, table = watch
    page = tmp_path / "digest.html"
    page.write_text(
        digest_html(build_digest(table, s, since=START + timedelta(days=7), interval=parse_span("1d")))
    )
    shot = tmp_path / "digest.png"
    subprocess.run(
        [
            exe,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'p'}",
            f"--screenshot={shot}",
            "--window-size=1280,2200",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 30_000
    from tests.report import png

    img = png.decode(shot.read_bytes())[..., :3]
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 20  # charts and tables, not a blank page
    if os.environ.get("WINNOW_DIGEST_SCREENSHOT"):
        shutil.copy(shot, os.environ["WINNOW_DIGEST_SCREENSHOT"])


def test_a_screen_output_and_an_audit_file_can_be_digested(watch: Watch, tmp_path: Path) -> None:
    """A batch result (its selected rows, ranked, reason_1..N) and the service's audit file
    (JSON lines of not-selected records with audited_at) are screening output too."""
    s, table = watch
    records = pd.DataFrame([json.loads(r) for r in table.column("record").to_pylist()])
    result = s.screen(records, budget=0.1, output="arrow")
    d = build_digest(result.selected, s)
    assert d["scored"] == d["selected"] == result.summary.rows_selected and d["top"][0]["reasons"]
    assert d["volume"][0]["start"] is None and d["themes"]

    audit = tmp_path / "audit.jsonl"
    with audit.open("w") as fh:
        for i, rec in enumerate(records.head(40).to_dict("records")):
            row = {
                "audited_at": f"2026-12-0{1 + i % 7}T10:00:00Z",
                "id": f"a{i}",
                "score": 0.01,
                "record": rec,
            }
            fh.write(json.dumps(row) + "\n")
    from winnow.io.readers import open_source

    d = build_digest(open_source(audit).read_all(), s)
    assert d["scored"] == 40 and d["selected"] == 0 and d["top"] == []
    assert d["period"]["since"] == "2026-12-01T10:00:00Z"
