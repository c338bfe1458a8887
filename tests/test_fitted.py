"""The fitted state: what the fit returns is what the artifact holds, written and read by itself."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from winnow import Screener
from winnow.artifact import read_artifact
from winnow.errors import NotFittedError
from winnow.fitted import Fitted


def test_the_screener_attributes_are_the_fitted_fields(fitted: Screener) -> None:
    state = fitted.fitted_
    assert isinstance(state, Fitted)
    assert fitted.specs_ is state.specs and fitted.prep_ is state.prep
    assert fitted.learners_ is state.learners and fitted.fusion_ is state.fusion
    assert fitted.threshold_ is state.threshold and fitted.target_ is state.target
    assert fitted.config is state.config


def test_an_artifact_reads_back_to_the_same_state(fitted: Screener, artifact_dir: Path) -> None:
    again = Fitted.from_artifact(artifact_dir, read_artifact(artifact_dir))
    assert again.manifest() == fitted.fitted_.manifest()
    manifest, files = again.to_artifact()
    manifest_before, files_before = fitted.fitted_.to_artifact()
    assert manifest == manifest_before and files == files_before  # byte for byte
    assert set(again.evaluation) == set(fitted.evaluation_)
    for k, v in again.evaluation.items():
        np.testing.assert_array_equal(v, fitted.evaluation_[k])


def test_an_unfitted_screener_says_so() -> None:
    s = Screener()
    assert repr(s) == "Screener(unfitted)"
    with pytest.raises(NotFittedError):
        _ = s.specs_
    with pytest.raises(NotFittedError):
        s.lineage_ = {"parent": "x"}


def test_a_copy_changes_without_touching_the_original(fitted: Screener) -> None:
    twin = copy.copy(fitted)
    twin.learners_ = {}
    twin.lineage_ = {"parent": "abc"}
    assert fitted.learners_ and fitted.lineage_ is None
    assert twin.prep_ is fitted.prep_  # shallow: the parts themselves are shared


def test_a_changed_config_is_what_the_artifact_keeps(fitted: Screener, tmp_path: Path) -> None:
    twin = copy.copy(fitted)
    twin.config = twin.config.model_copy(update={"baseline": "visits * 2"})
    assert twin.fitted_.config.baseline == "visits * 2" and fitted.config.baseline is None
    assert Screener.load(twin.save(tmp_path / "s")).config.baseline == "visits * 2"
