"""The report with data: the top selected records with their reasons, and the CLI end to end."""

from __future__ import annotations

from html import escape
from pathlib import Path

import typer
from typer.testing import CliRunner

from tests.helpers import make_frame
from tests.report.htmlparse import table_rows
from winnow.report import write_report
from winnow.report.cli import report


def test_top_rows_and_reasons(report_with_data: Path, ruled, new_records: Path) -> None:
    html = report_with_data.read_text()
    expected = ruled.screen(new_records, reasons=3)
    sel = expected.selected.to_pylist()
    s = expected.summary
    rows = table_rows(html, "top-table")
    header = [t for _, t in rows[0]]
    assert header[:3] == ["rank", "customer_id", "score"]
    assert header[-1] == "top reasons"
    body = rows[1:]
    assert len(body) == min(20, s.rows_selected)
    for row, rec in zip(body, sel, strict=False):
        cells = [t for _, t in row]
        assert int(cells[0]) == rec["rank"]
        assert cells[1] == str(rec["customer_id"])
        assert cells[2] == f"{rec['score']:.4f}"
        # the reasons are the ones `winnow screen` writes
        for r in ("reason_1", "reason_2", "reason_3"):
            if rec[r]:
                assert rec[r] in cells[-1]
    for label, value in (
        ("rows read", s.rows_read),
        ("rows scored", s.rows_scored),
        ("rows selected", s.rows_selected),
        ("rows rejected", s.rows_rejected),
    ):
        assert f"<dt>{label}</dt><dd>{value:,}</dd>" in html
    assert escape(str(new_records)) in html
    assert 'class="chip"' in html


def test_top_limits_the_list_and_rejects_are_counted(ruled_dir: Path, tmp_path: Path) -> None:
    frame = make_frame(120, seed=3).drop(columns=["churn", "future_spend"])
    frame["visits"] = frame["visits"].astype(object)
    frame.loc[[4, 9], "visits"] = "many"  # not a number: these two rows are rejected
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    html = write_report(ruled_dir, tmp_path / "r.html", data=path, top=5).read_text()
    assert len(table_rows(html, "top-table")) == 1 + 5
    assert "<dt>rows rejected</dt><dd>2</dd>" in html
    assert "rejected: " in html


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("report")(report)

    @app.callback()
    def main() -> None:
        """winnow, as far as these tests need it."""

    return app


def test_cli_end_to_end(ruled_dir: Path, new_records: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "nested" / "report.html"
    res = runner.invoke(_app(), ["report", str(ruled_dir), "--out", str(out), "--data", str(new_records)])
    assert res.exit_code == 0, res.output
    assert "report written to" in res.output
    html = out.read_text()
    assert 'id="top-table"' in html
    # no data: still a full report
    res = runner.invoke(_app(), ["report", str(ruled_dir), "--out", str(tmp_path / "plain.html")])
    assert res.exit_code == 0, res.output
    assert 'id="top-table"' not in (tmp_path / "plain.html").read_text()


def test_cli_exit_codes(ruled_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    res = runner.invoke(app, ["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    res = runner.invoke(
        app, ["report", str(ruled_dir), "--out", str(tmp_path / "r.html"), "--data", str(bad)]
    )
    assert res.exit_code == 3
    assert "missing columns" in " ".join(res.output.split())
    res = runner.invoke(app, ["report", str(ruled_dir), "--out", str(tmp_path / "r.html"), "--top", "-2"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["report", str(ruled_dir)])  # --out is required
    assert res.exit_code == 2
