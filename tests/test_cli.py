"""The ``winnow`` command line: commands, output files and exit codes (0, 2, 3, 4).

Fast checks use Typer's CliRunner; the main path and the exit codes also run the installed
console script in a real subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.helpers import fast_toml, make_frame
from winnow.cli import app

runner = CliRunner()
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run(
    exe: str, *args: str | Path, cwd: Path | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [exe, *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    make_frame(600, seed=0).to_parquet(d / "train.parquet")
    make_frame(400, seed=21).drop(columns=["churn"]).to_csv(d / "new.csv", index=False)
    make_frame(300, seed=22).to_parquet(d / "labelled.parquet")
    fast_toml(d / "fast.toml", drop=["future_spend"])
    return d


@pytest.fixture(scope="module")
def cli_artifact(work, winnow_exe) -> Path:
    """``winnow fit`` run once in a real subprocess."""
    out = work / "screener"
    r = run(
        winnow_exe,
        "fit",
        work / "train.parquet",
        "--target",
        "churn",
        "--positive",
        "yes",
        "--id",
        "customer_id",
        "--budget",
        "0.1",
        "--config",
        work / "fast.toml",
        "--out",
        out,
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert "artifact written to" in r.stdout and "AUC-PR" in r.stdout
    return out


class TestHelp:
    @pytest.mark.parametrize("command", ["fit", "evaluate", "score", "screen", "inspect", "demo"])
    def test_every_command_has_help(self, command):
        r = runner.invoke(app, [command, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output

    def test_top_level_help_lists_commands(self):
        r = runner.invoke(app, ["--help"])
        assert r.exit_code == 0
        for command in ("fit", "evaluate", "score", "screen", "inspect", "demo"):
            assert command in r.output

    def test_version(self, winnow_exe):
        import winnow

        r = run(winnow_exe, "--version")
        assert r.returncode == 0 and r.stdout.strip() == f"winnow {winnow.__version__}"

    def test_python_dash_m(self):
        import sys

        import winnow

        r = subprocess.run(
            [sys.executable, "-m", "winnow", "--version"], capture_output=True, text=True, env=ENV
        )
        assert r.returncode == 0 and r.stdout.strip() == f"winnow {winnow.__version__}"

    def test_help_in_a_subprocess(self, winnow_exe):
        r = run(winnow_exe, "--help")
        assert r.returncode == 0 and "screen" in r.stdout


class TestEndToEnd:
    def test_artifact_written(self, cli_artifact):
        man = json.loads((cli_artifact / "manifest.json").read_text())
        assert man["config"]["budget"] == {"fraction": 0.1, "count": None, "min_precision": None}
        assert man["config"]["id"] == "customer_id" and man["config"]["models"] == ["lightgbm", "linear"]

    def test_screen(self, work, cli_artifact, winnow_exe):
        out = work / "top.csv"
        r = run(winnow_exe, "screen", cli_artifact, work / "new.csv", "--out", out, "--quiet")
        assert r.returncode == 0, r.stderr
        top = pd.read_csv(out)
        assert len(top) == math.ceil(0.1 * 400)
        assert top["rank"].tolist() == list(range(1, 41))
        assert top["score"].is_monotonic_decreasing
        assert "read 400, scored 400, selected 40, rejected 0" in r.stdout

    def test_screen_budget_override_and_parquet_output(self, work, cli_artifact, winnow_exe):
        out = work / "top10.parquet"
        r = run(winnow_exe, "screen", cli_artifact, work / "new.csv", "--out", out, "--budget", "10", "-q")
        assert r.returncode == 0, r.stderr
        assert pq.read_table(out).num_rows == 10

    def test_screen_agrees_with_the_python_api(self, work, cli_artifact, winnow_exe):
        from winnow import Screener

        out = work / "top_api.parquet"
        assert run(winnow_exe, "screen", cli_artifact, work / "new.csv", "--out", out, "-q").returncode == 0
        api = Screener.load(cli_artifact).screen(work / "new.csv").selected
        cli = pq.read_table(out)
        assert cli.column("row").to_pylist() == api.column("row").to_pylist()
        np.testing.assert_allclose(cli.column("score").to_numpy(), api.column("score").to_numpy(), rtol=1e-12)

    def test_score_every_row(self, work, cli_artifact, winnow_exe):
        out = work / "scores.parquet"
        r = run(winnow_exe, "score", cli_artifact, work / "new.csv", "--out", out, "-q")
        assert r.returncode == 0, r.stderr
        t = pq.read_table(out)
        assert t.column_names == ["row", "customer_id", "score", "selected"]
        assert t.num_rows == 400 and t.column("row").to_pylist() == list(range(400))

    def test_json_summaries_for_scripts(self, work, cli_artifact, winnow_exe, tmp_path):
        """--json: stdout is one JSON object (no progress, no tables) on every summary command."""
        out = tmp_path / "s.parquet"
        r = run(winnow_exe, "score", cli_artifact, work / "new.csv", "--out", out, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["rows_scored"] == 400
        r = run(winnow_exe, "screen", cli_artifact, work / "new.csv", "--out", tmp_path / "t.csv", "--json")
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["rows_selected"] == 40 and summary["out"] == str(tmp_path / "t.csv")
        r = run(winnow_exe, "fit", work / "train.parquet", "--target", "churn", "--positive", "yes",
                "--config", work / "fast.toml", "--out", tmp_path / "m", "--json")  # fmt: skip
        assert r.returncode == 0, r.stderr
        fitted = json.loads(r.stdout)
        assert fitted["artifact"] == str(tmp_path / "m") and 0 < fitted["metrics"]["winnow"]["auc_pr"] <= 1
        assert fitted["summary"]["rows_read"] == 600
        r = run(winnow_exe, "retrain", cli_artifact, "--data", work / "train.parquet",
                "--labels", work / "labelled.parquet", "--out", tmp_path / "c", "--json")  # fmt: skip
        assert r.returncode == 0, r.stderr
        verdict = json.loads(r.stdout)
        assert isinstance(verdict["promoted"], bool) and "auc_pr" in verdict["champion"]

    def test_json_from_quality_and_similarity_commands(self, work, cli_artifact, tmp_path):
        train, new, art = str(work / "train.parquet"), str(work / "new.csv"), str(cli_artifact)
        runs = {
            "clean": ["clean", train, "--out", str(tmp_path / "c.parquet")],
            "value": ["value", train, "--target", "churn", "--positive", "yes", "--drop", "future_spend",
                      "--out", str(tmp_path / "v.parquet")],
            "suggest": ["suggest", art, new, "--budget", "5", "--out", str(tmp_path / "s.csv")],
            "similar": ["similar", art, new, "--examples", new, "--top", "5", "--include-examples",
                        "--out", str(tmp_path / "m.csv")],
        }  # fmt: skip
        got = {}
        for name, args in runs.items():
            r = runner.invoke(app, [*args, "--json"])
            assert r.exit_code == 0, (name, r.output)
            got[name] = json.loads(r.stdout)
        assert got["clean"]["rows_in"] == 600 and got["value"]["records"] == 600
        assert got["suggest"]["suggested"] == 5 and got["similar"]["rows_selected"] == 5

    def test_evaluate_json(self, work, cli_artifact, winnow_exe):
        r = run(winnow_exe, "evaluate", cli_artifact, work / "labelled.parquet", "--json")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["rows"] == 300 and 0 < report["auc_pr"] <= 1
        assert report["budget"]["k"] == 30

    def test_evaluate_table(self, work, cli_artifact):
        r = runner.invoke(app, ["evaluate", str(cli_artifact), str(work / "labelled.parquet")])
        assert r.exit_code == 0, r.output
        assert "AUC-PR" in r.output and "artifact threshold" in r.output

    def test_inspect(self, cli_artifact, winnow_exe):
        r = run(winnow_exe, "inspect", cli_artifact)
        assert r.returncode == 0, r.stderr
        assert "churn == 'yes'" in r.stdout and "files verified" in r.stdout
        r = run(winnow_exe, "inspect", cli_artifact, "--json")
        assert json.loads(r.stdout)["format"] == "winnow-screener"

    def test_rejects_go_next_to_the_output(self, work, cli_artifact, winnow_exe, tmp_path):
        lines = (work / "new.csv").read_text().splitlines()
        lines.insert(2, "oops,too,few")
        bad = tmp_path / "bad.csv"
        bad.write_text("\n".join(lines) + "\n")
        out = tmp_path / "top.csv"
        r = run(winnow_exe, "screen", cli_artifact, bad, "--out", out, "-q")
        assert r.returncode == 0, r.stderr
        rejects = tmp_path / "top.rejects.jsonl"
        [rec] = [json.loads(x) for x in rejects.read_text().splitlines()]
        assert "malformed CSV line" in rec["reason"]
        assert "read 401, scored 400, selected 40, rejected 1" in r.stdout

    def test_positive_one_on_an_integer_column(self, work, winnow_exe, tmp_path):
        f = make_frame(300, seed=23)
        f["label"] = (f.pop("churn") == "yes").astype(int)
        f.to_parquet(tmp_path / "int.parquet")
        r = run(
            winnow_exe, "fit", tmp_path / "int.parquet", "--target", "label", "--positive", "1",
            "--config", work / "fast.toml", "--out", tmp_path / "s", "-q",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "used 300 (60 high-value)" in r.stdout


class TestExitCodes:
    def test_usage_missing_argument(self, winnow_exe):
        r = run(winnow_exe, "fit")
        assert r.returncode == 2 and "Missing argument" in r.stderr

    def test_usage_unknown_option(self):
        assert runner.invoke(app, ["screen", "a", "b", "--out", "x.csv", "--colour", "red"]).exit_code == 2

    def test_usage_no_command_shows_help(self):
        r = runner.invoke(app, [])
        assert "Usage" in r.output and "screen" in r.output

    def test_config_bad_budget(self, work, winnow_exe):
        r = run(
            winnow_exe,
            "fit",
            work / "train.parquet",
            "--target",
            "churn",
            "--positive",
            "yes",
            "--budget",
            "abc",
        )
        assert r.returncode == 2
        assert "--budget" in r.stderr and "'abc'" in r.stderr

    def test_config_positive_and_top_fraction(self, work):
        r = runner.invoke(
            app,
            [
                "fit",
                str(work / "train.parquet"),
                "--target",
                "churn",
                "--positive",
                "yes",
                "--top-fraction",
                "0.1",
            ],
        )
        assert r.exit_code == 2

    def test_live_model_option(self, work, tmp_path):
        base = ["fit", str(work / "train.parquet"), "--target", "churn", "--positive", "yes"]
        opts = ["--config", str(work / "fast.toml"), "--quiet"]
        r = runner.invoke(app, [*base, *opts, "--live-model", "fastest", "--out", str(tmp_path / "a")])
        assert r.exit_code == 2 and "live_model" in r.output
        r = runner.invoke(app, [*base, *opts, "--live-model", "full", "--out", str(tmp_path / "b")])
        assert r.exit_code == 0, r.output
        manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
        assert manifest["config"]["live_model"] == "full"
        assert manifest["metrics"]["live"]["model"] == "full"

    def test_config_no_target(self, work):
        assert runner.invoke(app, ["fit", str(work / "train.parquet"), "--positive", "yes"]).exit_code == 2

    def test_config_missing_toml(self, work):
        r = runner.invoke(
            app,
            [
                "fit",
                str(work / "train.parquet"),
                "--target",
                "churn",
                "--positive",
                "yes",
                "--config",
                "nope.toml",
            ],
        )
        assert r.exit_code == 2

    def test_config_bad_output_extension(self, work, cli_artifact):
        r = runner.invoke(
            app, ["screen", str(cli_artifact), str(work / "new.csv"), "--out", str(work / "x.xlsx")]
        )
        assert r.exit_code == 2

    def test_data_missing_file(self, cli_artifact, winnow_exe, tmp_path):
        r = run(winnow_exe, "screen", cli_artifact, tmp_path / "nope.csv", "--out", tmp_path / "o.csv")
        assert r.returncode == 3 and "does not exist" in r.stderr

    def test_data_missing_column(self, work, cli_artifact, winnow_exe, tmp_path):
        make_frame(50, seed=1).drop(columns=["visits"]).to_parquet(tmp_path / "d.parquet")
        r = run(winnow_exe, "screen", cli_artifact, tmp_path / "d.parquet", "--out", tmp_path / "o.csv")
        assert r.returncode == 3
        assert "missing columns: 'visits'" in r.stderr

    def test_data_wrong_type(self, cli_artifact, tmp_path):
        make_frame(50, seed=1).assign(signup=2.5).to_parquet(tmp_path / "d.parquet")
        r = runner.invoke(
            app, ["score", str(cli_artifact), str(tmp_path / "d.parquet"), "--out", str(tmp_path / "o.csv")]
        )
        assert r.exit_code == 3

    def test_data_positive_never_occurs(self, work, winnow_exe):
        r = run(
            winnow_exe, "fit", work / "train.parquet", "--target", "churn", "--positive", "maybe",
            "--config", work / "fast.toml", "--out", work / "never",
        )  # fmt: skip
        assert r.returncode == 3
        assert "'maybe' never occurs" in r.stderr and "'yes'" in r.stderr and "'no'" in r.stderr

    def test_data_all_one_class(self, work, tmp_path):
        make_frame(100).assign(churn="yes").to_parquet(tmp_path / "one.parquet")
        r = runner.invoke(
            app,
            ["fit", str(tmp_path / "one.parquet"), "--target", "churn", "--positive", "yes",
             "--config", str(work / "fast.toml"), "--out", str(tmp_path / "s")],
        )  # fmt: skip
        assert r.exit_code == 3

    def test_data_empty_file(self, work, tmp_path):
        (tmp_path / "e.csv").write_text("")
        r = runner.invoke(app, ["fit", str(tmp_path / "e.csv"), "--target", "y", "--positive", "1"])
        assert r.exit_code == 3

    def test_artifact_missing(self, work, winnow_exe, tmp_path):
        r = run(winnow_exe, "screen", tmp_path / "no-artifact", work / "new.csv", "--out", tmp_path / "o.csv")
        assert r.returncode == 4 and "is not a folder" in r.stderr

    def test_artifact_tampered(self, work, cli_artifact, winnow_exe, tmp_path):
        import shutil

        bad = tmp_path / "tampered"
        shutil.copytree(cli_artifact, bad)
        model = bad / "models" / "linear.json"
        model.write_text(model.read_text().replace("[", "[0.5, ", 1))
        r = run(winnow_exe, "screen", bad, work / "new.csv", "--out", tmp_path / "o.csv")
        assert r.returncode == 4
        assert "models/linear.json" in r.stderr
        assert runner.invoke(app, ["inspect", str(bad)]).exit_code == 4
        assert runner.invoke(app, ["evaluate", str(bad), str(work / "labelled.parquet")]).exit_code == 4

    def test_no_traceback_on_handled_errors(self, work, winnow_exe, tmp_path):
        r = run(winnow_exe, "score", tmp_path / "none", work / "new.csv", "--out", tmp_path / "o.csv")
        assert r.returncode == 4 and "Traceback" not in r.stderr and r.stderr.startswith("error:")


def test_fit_with_preset_models_and_search(work, tmp_path):
    out = tmp_path / "tuned"
    args = [
        "fit",
        str(work / "train.parquet"),
        "--target",
        "churn",
        "--positive",
        "yes",
        "--id",
        "customer_id",
    ]
    args += ["--preset", "fast", "--model", "lightgbm", "--model", "linear", "--tune", "lightgbm"]
    args += ["--tune-trials", "2", "--threads", "1", "--drop", "future_spend", "--out", str(out)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "preset fast" in r.output and "search lightgbm" in r.output and "2 trials" in r.output
    # the HTML report is written beside the artifact unless --no-report
    assert "search" in (tmp_path / "tuned.report.html").read_text()
    r = runner.invoke(app, [*args[:-1], str(tmp_path / "quiet"), "--no-report"])
    assert r.exit_code == 0 and not (tmp_path / "quiet.report.html").exists()
    r = runner.invoke(
        app,
        ["fit", str(work / "train.parquet"), "--target", "churn", "--positive", "yes", "--preset", "slow"],
    )
    assert r.exit_code == 2 and "preset" in r.output


def test_monitor_command(work, cli_artifact, tmp_path):
    import json

    import pandas as pd

    data = work / "train.parquet"
    r = runner.invoke(app, ["monitor", str(cli_artifact), str(data)])
    assert r.exit_code == 0, r.output
    assert "Drift of" in r.output and "selection rate" in r.output
    shifted = pd.read_parquet(data)
    shifted["spend"] = shifted["spend"] * 10
    shifted.to_parquet(tmp_path / "shifted.parquet")
    r = runner.invoke(app, ["monitor", str(cli_artifact), str(tmp_path / "shifted.parquet"), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert next(f for f in rep["features"] if f["column"] == "spend")["status"] == "major"
    assert runner.invoke(app, ["monitor", str(cli_artifact), str(data), "--window", "0"]).exit_code == 2


def test_explain_command_writes_every_row_adding_up(cli_artifact, work, tmp_path):
    import numpy as np

    out = tmp_path / "why.parquet"
    args = ["score", str(cli_artifact), str(work / "new.csv"), "--out", str(out), "--explain", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows_scored"] == 400
    t = pq.read_table(out)
    assert t.column_names[:5] == ["row", "customer_id", "logit", "base", "residual"]
    parts = [c for c in t.column_names if c.startswith("contribution_")]
    total = sum(t.column(c).to_numpy() for c in [*parts, "base", "residual"])
    np.testing.assert_allclose(total, t.column("logit").to_numpy(), atol=1e-9)
