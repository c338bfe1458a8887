"""The report of a real fitted screener: every section, no network, valid SVG, exact numbers."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import numpy as np
import pytest

from tests.report.htmlparse import SVG, table_rows
from winnow.errors import ArtifactError, ConfigError
from winnow.metrics import at_budget
from winnow.report import render_report, write_report
from winnow.report.build import SECTIONS


def test_every_section_is_present(report_path: Path, ruled) -> None:
    html = report_path.read_text()
    assert html.startswith("<!doctype html>")
    for sid, title in SECTIONS:
        assert f'id="{sid}"' in html
        assert f"<h2>{title}</h2>" in html
        assert f'href="#{sid}"' in html
    # header facts straight from the manifest
    assert escape(ruled.target_["description"]) in html
    assert ruled.created_ in html
    assert f"winnow {ruled.version_}" in html
    assert "balanced" in html  # preset
    for name, w in zip(ruled.fusion_.names, ruled.fusion_.weights, strict=True):
        assert f"<strong>{name}</strong>" in html
        assert f"{w * 100:.0f}%" in html
    assert "No hyper-parameter search was run" in html
    # data profile
    assert f"{ruled.summary_['rows_read']:,}" in html
    assert "future_spend" in html and "dropped by the configuration" in html
    # one chart of each kind, and the importance bars with every column named
    for fid in (
        "chart-pr",
        "chart-gain",
        "chart-lift",
        "chart-calibration",
        "chart-scores",
        "chart-importance",
    ):
        assert f'id="{fid}"' in html
    for col in ruled.importance_:
        assert f">{col}</text>" in html
    # without data the screening section says how to get reason codes
    assert "--data" in html


def test_no_network_resources(report_path: Path) -> None:
    html = report_path.read_text()
    assert "http://" not in html and "https://" not in html
    for external in ("<script", "<link", "<img", "<iframe", "@import", "url(", " src="):
        assert external not in html.lower()


def test_svgs_are_well_formed(report_path: Path) -> None:
    svgs = SVG.findall(report_path.read_text())
    assert len(svgs) == 6  # 5 charts + importance
    for s in svgs:
        root = ET.fromstring(s)
        assert root.tag == "svg"
        assert root.get("viewBox")
        assert root.find("title") is not None
        assert root.findall(".//path") or root.findall(".//rect")


def test_metrics_table_equals_manifest(report_path: Path, ruled) -> None:
    rows = table_rows(report_path.read_text(), "metrics-table")
    header = [text for _, text in rows[0]]
    assert header[1:4] == ["winnow", "logistic regression", "rule: spend"]
    seen = 0
    for row in rows[1:]:
        for attrs, text in row:
            if "data-metric" not in attrs:
                continue
            m = ruled.metrics_[attrs["data-scorer"]]
            value = m
            for part in attrs["data-metric"].split("."):
                value = value[part]
            assert float(attrs["data-value"]) == value
            # the shown text is the value rounded, not another number
            shown = float(text.rstrip("x").replace(",", ""))
            assert abs(shown - value) <= 0.5 * 10 ** -(
                len(text.rstrip("x").split(".")[-1]) if "." in text else 0
            )
            seen += 1
    # 10 metrics for the two probability scorers, 8 for the rule (no log-loss / ECE)
    assert seen == 10 + 10 + 8


def test_budget_table_agrees_with_metrics(report_path: Path, ruled) -> None:
    rows = table_rows(report_path.read_text(), "budget-table")
    ev = ruled.evaluation_
    y, s = ev["y"], ev["score"]
    n = len(y)
    body = rows[1:]
    assert [r[0][1].split()[1] for r in body] == ["1%", "5%", "10%", "20%"]
    for row, frac in zip(body, ("0.01", "0.05", "0.1", "0.2"), strict=True):
        cells = [t for _, t in row]
        k = int(cells[1].replace(",", ""))
        expected = at_budget(y, s, k)
        assert cells[3] == f"{expected['precision'] * 100:.1f}%"
        assert cells[4] == f"{expected['recall'] * 100:.1f}%"
        assert cells[6] == f"{at_budget(y, ev['logistic_regression'], k)['recall'] * 100:.1f}%"
        assert cells[7] == f"{at_budget(y, ev['rule'], k)['recall'] * 100:.1f}%"
        # the threshold is the score of the k-th ranked row
        assert float(cells[2]) == pytest.approx(np.sort(s)[::-1][k - 1], abs=5e-5)
        if frac in ruled.metrics_["winnow"]["lift_curve"] and "configured" not in cells[0]:
            assert k == ruled.metrics_["winnow"]["lift_curve"][frac]["k"]
    # the configured budget (5%) is marked and uses the manifest's k
    configured = [r for r in body if "configured" in r[0][1]]
    assert len(configured) == 1
    assert int(configured[0][1][1]) == ruled.metrics_["winnow"]["budget"]["k"]
    assert f"selected of {ruled.summary_['rows_used']:,}" in [t for _, t in rows[0]]
    assert n == ruled.metrics_["winnow"]["rows"]


def test_same_artifact_same_bytes(ruled_dir: Path, report_path: Path, tmp_path: Path) -> None:
    again = write_report(ruled_dir, tmp_path / "again.html")
    assert again.read_bytes() == report_path.read_bytes()


def test_screener_object_and_old_artifact_without_held_out_rows(ruled_dir: Path, tmp_path: Path) -> None:
    from winnow import Screener

    s = Screener.load(ruled_dir)
    s.evaluation_ = {}  # as loaded from an artifact written before evaluation.safetensors existed
    html = render_report(s)
    for sid, _ in SECTIONS:
        assert f'id="{sid}"' in html
    assert "cannot be drawn" in html
    assert len(SVG.findall(html)) == 1  # only the importance bars
    assert 'data-metric="auc_pr"' in html  # the metrics come from the manifest


def test_errors(ruled_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        write_report(tmp_path / "nothing-here", tmp_path / "r.html")
    with pytest.raises(ConfigError, match="--top"):
        write_report(ruled_dir, tmp_path / "r.html", top=-1)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="--out"):
        write_report(ruled_dir, blocker / "r.html")


def test_report_survives_a_copied_artifact(ruled_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy"
    shutil.copytree(ruled_dir, dst)
    html = write_report(dst, tmp_path / "r.html").read_text()
    assert re.search(r"artifact <code>[^<]*copy</code>", html)
