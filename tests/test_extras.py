"""The lean install: each optional feature names the extra to install when its package is missing."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from winnow.errors import WinnowError
from winnow.extras import EXTRA_OF, MissingExtra, require

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if it were not installed
    with pytest.raises(MissingExtra) as e:
        require("duckdb")
    assert isinstance(e.value, WinnowError) and isinstance(e.value, ImportError)
    assert e.value.exit_code == 2 and "pip install 'winnow[sql]'" in str(e.value)


def test_a_feature_without_its_extra_stops_with_the_command(monkeypatch, tmp_path):
    from winnow.io.readers import open_source

    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(MissingExtra, match=re.escape("winnow[sql]")):
        open_source(f"duckdb:{tmp_path / 'x.duckdb'}?table=t")
    monkeypatch.setitem(sys.modules, "optuna", None)
    from winnow.tuning import tune

    with pytest.raises(MissingExtra, match=re.escape("winnow[tune]")):
        tune("lightgbm", None, None, None, trials=1, seconds=None)  # type: ignore[arg-type]


def test_the_cli_turns_a_missing_package_into_the_install_command(monkeypatch, capsys):
    import winnow.cli as cli

    def no_fastapi() -> None:
        raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

    monkeypatch.setattr(cli, "app", no_fastapi)
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 2
    assert "pip install 'winnow[serve]'" in capsys.readouterr().err


def test_pyproject_has_every_extra_and_all_holds_them():
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert set(EXTRA_OF.values()) <= set(extras)
    everything = re.search(r"winnow\[([^\]]+)\]", " ".join(extras["all"]))
    assert everything is not None
    # dev (tests, lint) and bench (the benchmark suite's tables) are for working on winnow
    assert set(everything[1].split(",")) == set(extras) - {"all", "dev", "bench"}
