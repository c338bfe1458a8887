"""The Ray engine gives the local engine's result row for row: on a Ray that winnow starts, on a
real two-node cluster started with ``ray start``, and after a job killed midway is resumed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import fit_options, make_frame
from winnow import Screener
from winnow.engines.units import plan_units

pytest.importorskip("ray")

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"})


@pytest.fixture(scope="module")
def ruled(tmp_path_factory) -> Path:
    """A screener with a rule that forces rows in, saved."""
    frame = make_frame(600, seed=0)
    s = Screener().fit(
        frame, **fit_options(rules=[{"name": "loyal", "when": "visits >= 9", "action": "select"}])
    )
    return s.save(tmp_path_factory.mktemp("ray-artifact") / "screener")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three Parquet files (9,000 rows, row groups of 500), two records that must be rejected."""
    root = tmp_path_factory.mktemp("ray-data") / "customers"
    root.mkdir()
    for i in range(3):
        f = make_frame(3000, seed=20 + i).drop(columns=["churn", "future_spend"])
        if i == 1:
            f.loc[[7, 2500], "spend"] = np.inf
        pq.write_table(
            pa.Table.from_pandas(f, preserve_index=False), root / f"part-{i}.parquet", row_group_size=500
        )
    return root


def _local(artifact: Path, data: Path, out: Path, **kw):
    return Screener.load(artifact).screen(data, out=out, rejects=out.with_suffix(".rejects.jsonl"), **kw)


def _same(a: Path, b: Path) -> None:
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.num_rows > 0
    assert ta.schema.equals(tb.schema)
    assert ta.equals(tb), "the Ray engine's rows differ from the local engine's"


def test_units_number_rows_like_the_local_reader(folder):
    plan = plan_units(folder, unit_rows=1200)
    assert plan.rows == 9000
    assert [u.first_row for u in plan.units][:4] == [0, 1500, 3000, 4500]
    assert all(u.rows == 1500 for u in plan.units)  # whole row groups: 3 x 500, never across files


def test_csv_input_is_refused_with_the_fix(ruled, tmp_path):
    from winnow.engines.ray_engine import screen_ray
    from winnow.errors import ConfigError

    csv = tmp_path / "x.csv"
    make_frame(20).to_csv(csv, index=False)
    with pytest.raises(ConfigError, match="Parquet"):
        screen_ray(ruled, csv, out=tmp_path / "o.parquet")


class TestLocalRay:
    """winnow starts (and stops) a local Ray itself when no address is given."""

    def test_budget_screen_matches_the_local_engine(self, ruled, folder, tmp_path):
        from winnow.engines.ray_engine import screen_ray

        local = _local(ruled, folder, tmp_path / "local.parquet", budget=0.03)
        r = screen_ray(
            ruled,
            folder,
            out=tmp_path / "ray.parquet",
            budget=0.03,
            rejects_path=tmp_path / "ray.rejects.jsonl",
            workers=2,
            unit_rows=1000,
        )
        _same(tmp_path / "local.parquet", tmp_path / "ray.parquet")
        s, ls = r.summary, local.summary
        assert (
            (s.rows_read, s.rows_scored, s.rows_rejected, s.rows_selected)
            == (
                ls.rows_read,
                ls.rows_scored,
                ls.rows_rejected,
                ls.rows_selected,
            )
            == (9000, 8998, 2, ls.rows_selected)
        )
        assert s.selection == ls.selection and s.threshold == ls.threshold
        # the rule forced rows in on top of the budget, on both engines
        assert "loyal" in pq.read_table(tmp_path / "ray.parquet").column("rule").to_pylist()
        assert (tmp_path / "ray.rejects.jsonl").read_text() == (tmp_path / "local.rejects.jsonl").read_text()
        assert not (tmp_path / "ray.parquet.parts").exists()  # removed after success

    def test_threshold_screen_matches_the_local_engine(self, ruled, folder, tmp_path):
        """Through the Python API, with a screener fitted in this process (never saved): the
        Ray actors load a copy saved beside the output, removed afterwards."""
        _local(ruled, folder, tmp_path / "local.parquet", use_threshold=True)
        fitted = Screener().fit(
            make_frame(600, seed=0),
            **fit_options(rules=[{"name": "loyal", "when": "visits >= 9", "action": "select"}]),
        )
        assert fitted.path_ is None
        out = tmp_path / "ray" / "ray.parquet"
        out.parent.mkdir()
        fitted.screen(folder, out=out, use_threshold=True, engine="ray", workers=2, unit_rows=2000)
        _same(tmp_path / "local.parquet", out)
        assert sorted(p.name for p in out.parent.iterdir()) == ["ray.parquet"]  # no copy left


def test_engine_options_are_checked(ruled, folder, tmp_path):
    from winnow.errors import ConfigError

    s = Screener.load(ruled)
    with pytest.raises(ConfigError, match="'local' or 'ray'"):
        s.screen(folder, out=tmp_path / "o.parquet", engine="spark")
    with pytest.raises(ConfigError, match="unit_rows"):
        s.screen(folder, out=tmp_path / "o.parquet", unit_rows=10)
    with pytest.raises(ConfigError, match="--engine local"):
        s.screen(folder, out=tmp_path / "o.parquet", engine="ray", diverse=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str) -> None:
    ray_exe = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray_exe, *args], env=ENV, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def cluster():
    """A real two-node Ray cluster on this machine: a head and a second node, one CPU each."""
    port = _free_port()
    common = ["--num-cpus=1", "--disable-usage-stats", "--object-store-memory=200000000"]
    _ray("start", "--head", f"--port={port}", "--include-dashboard=false", *common)
    try:
        _ray("start", f"--address=127.0.0.1:{port}", *common)
        yield f"127.0.0.1:{port}"
    finally:
        _ray("stop", "--force")


def _cli(winnow_exe: str, artifact: Path, data: Path, out: Path, *extra: str, **popen):
    cmd = [winnow_exe, "screen", str(artifact), str(data), "--out", str(out), "--quiet", *extra]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


class TestCluster:
    def test_screen_through_a_two_node_cluster(self, cluster, winnow_exe, ruled, folder, tmp_path):
        _local(ruled, folder, tmp_path / "local.parquet", budget=0.03)
        p = _cli(
            winnow_exe,
            ruled,
            folder,
            tmp_path / "ray.parquet",
            "--budget",
            "0.03",
            "--engine",
            "ray",
            "--address",
            cluster,
            "--unit-rows",
            "1000",
            "--keep-parts",
        )
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        _same(tmp_path / "local.parquet", tmp_path / "ray.parquet")
        markers = [
            json.loads(m.read_text()) for m in (tmp_path / "ray.parquet.parts" / "pass1").glob("*.done.json")
        ]
        assert len(markers) == 9
        assert len({m["node"] for m in markers}) == 2, "both nodes should have run units"

    def test_killed_job_resumes_without_redoing_finished_units(
        self, cluster, winnow_exe, ruled, folder, tmp_path
    ):
        _local(ruled, folder, tmp_path / "local.parquet", budget=0.03)
        args = ("--budget", "0.03", "--engine", "ray", "--address", cluster, "--unit-rows", "500")
        args += ("--workers", "1", "--batch-rows", "100", "--keep-parts")
        out = tmp_path / "ray.parquet"
        pass1 = tmp_path / "ray.parquet.parts" / "pass1"
        p = _cli(winnow_exe, ruled, folder, out, *args, start_new_session=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(list(pass1.glob("*.done.json"))) < 2:
            assert p.poll() is None, p.communicate()[1]
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        before = {m.name: (m.stat().st_mtime_ns, m.read_text()) for m in pass1.glob("*.done.json")}
        assert 2 <= len(before) < 18, "the job should have been killed midway"
        assert not out.exists()

        p = _cli(winnow_exe, ruled, folder, out, *args)
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        for name, (mtime, text) in before.items():
            marker = pass1 / name
            assert (marker.stat().st_mtime_ns, marker.read_text()) == (mtime, text), f"{name} was redone"
        assert len(list(pass1.glob("*.done.json"))) == 18
        assert len(list(pass1.glob("*.scores.parquet"))) == 18
        _same(tmp_path / "local.parquet", out)


def test_a_folder_without_a_manifest_is_an_artifact_error(tmp_path):
    """It used to raise TypeError (ArtifactError was given one argument instead of two)."""
    from winnow.engines.ray_engine import _identity
    from winnow.errors import ArtifactError

    with pytest.raises(ArtifactError, match="cannot read its manifest"):
        _identity(tmp_path, None)  # type: ignore[arg-type]  # the plan is not reached
