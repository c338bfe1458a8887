"""The public surface: ``winnow.__all__`` is pinned and ``import winnow`` stays cheap."""

from __future__ import annotations

import subprocess
import sys

import winnow

EXPECTED_ALL = [
    "ArtifactError",
    "Budget",
    "ConfigError",
    "DataError",
    "NotFittedError",
    "SchemaError",
    "ScreenConfig",
    "Screener",
    "WinnowClassifier",
    "WinnowError",
    "__version__",
]


def test_all_is_pinned():
    assert sorted(winnow.__all__) == EXPECTED_ALL


def test_every_name_in_all_resolves():
    for name in winnow.__all__:
        assert getattr(winnow, name) is not None


def test_lazy_names_are_the_real_objects():
    from winnow.config import Budget, ScreenConfig
    from winnow.errors import ArtifactError, DataError
    from winnow.screener import Screener

    assert winnow.Screener is Screener
    assert winnow.ScreenConfig is ScreenConfig
    assert winnow.Budget is Budget
    assert winnow.DataError is DataError
    assert winnow.ArtifactError is ArtifactError
    from winnow.estimator import WinnowClassifier

    assert winnow.WinnowClassifier is WinnowClassifier


def test_unknown_attribute_raises_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = winnow.no_such_name


def test_version_is_a_string():
    assert isinstance(winnow.__version__, str) and winnow.__version__.count(".") >= 1


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(out.stdout.split())


def test_import_winnow_does_not_load_heavy_libraries():
    loaded = _modules_after("import winnow")
    assert "winnow" in loaded
    heavy = {"torch", "lightgbm"} & loaded
    assert not heavy, f"`import winnow` loaded {sorted(heavy)}"


def test_help_loads_no_numeric_library():
    code = (
        "import sys\n"
        "from winnow.cli import app\n"
        "try:\n"
        "    app(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    loaded = _modules_after(code)
    heavy = {"numpy", "pyarrow", "pandas", "torch", "fastapi", "lightgbm", "catboost"} & loaded
    assert not heavy, f"`winnow --help` loaded {sorted(heavy)}"


def test_screener_class_import_does_not_load_torch():
    # the deep learner is only needed when a deep model is fitted or loaded
    loaded = _modules_after("from winnow import Screener")
    assert "torch" not in loaded
