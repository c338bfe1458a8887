"""The `optimise` command, registered on a Typer app as winnow.cli will register it."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from winnow.artifact import read_artifact
from winnow.optimise.cli import optimise


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("optimise")(optimise)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps Typer from collapsing the app into one command
        pass

    return app


def test_cli_end_to_end(original_dir, resume_path, tmp_path):
    out = tmp_path / "fast"
    args = ["optimise", str(original_dir), "--out", str(out), "--data", str(resume_path)]
    args += ["--step", "trees", "--step", "onnx", "--repeats", "1", "--max-rows", "1500"]
    result = CliRunner().invoke(_app(), args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "total" in result.output and "trees" in result.output and "rows/s" in result.output
    man = read_artifact(out).manifest
    assert [s["step"] for s in man["optimisation"]["steps"]] == ["onnx", "trees"]
    assert man["optimisation"]["sample"]["rows"] == 1500


def test_cli_errors_have_the_documented_exit_codes(original_dir, resume_path, tmp_path):
    runner = CliRunner()
    base = ["--out", str(tmp_path / "o"), "--data", str(resume_path)]
    bad_step = runner.invoke(_app(), ["optimise", str(original_dir), *base, "--step", "distil"])
    assert bad_step.exit_code == 2
    missing = runner.invoke(_app(), ["optimise", str(tmp_path / "nothing"), *base])
    assert missing.exit_code == 4
