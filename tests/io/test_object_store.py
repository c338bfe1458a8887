"""Object stores by URI: a real S3-compatible server (moto in server mode on loopback), fsspec's
memory filesystem and file:// URIs, in and out, screening like the same local files."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tests.helpers import make_frame
from winnow.errors import DataError
from winnow.io.readers import open_source


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists() and shutil.which("moto_server") is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = _free_port()
    proc = subprocess.Popen(
        [str(exe if exe.exists() else "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def s3(s3_endpoint, monkeypatch):
    """An empty bucket on the S3-compatible server; the AWS variables point at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fs = pafs.S3FileSystem(
        endpoint_override=s3_endpoint,
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    bucket = f"winnow-{time.monotonic_ns()}"
    fs.create_dir(bucket)
    return fs, bucket


@pytest.fixture(scope="module")
def customers():
    return make_frame(300, seed=41).drop(columns=["churn", "future_spend"])


def test_s3_round_trip_in_every_format(fitted, s3, customers, tmp_path):
    fs, bucket = s3
    table = pa.Table.from_pandas(customers, preserve_index=False)
    with fs.open_output_stream(f"{bucket}/in/customers.parquet") as f:
        pq.write_table(table, f)
    with fs.open_output_stream(f"{bucket}/in/customers.csv") as f:
        pacsv.write_csv(table, f)
    lines = customers.assign(signup=customers["signup"].dt.strftime("%Y-%m-%d")).to_dict("records")
    with fs.open_output_stream(f"{bucket}/in/customers.jsonl") as f:
        f.write(
            "".join(
                json.dumps({k: (None if v != v else v) for k, v in r.items()}) + "\n" for r in lines
            ).encode()
        )
    expected = fitted.score(customers)
    for name in ("customers.parquet", "customers.csv", "customers.jsonl"):
        np.testing.assert_allclose(
            fitted.score(f"s3://{bucket}/in/{name}"), expected, rtol=1e-9, err_msg=name
        )
    for i, part in enumerate((table.slice(0, 100), table.slice(100))):
        with fs.open_output_stream(f"{bucket}/folder/part-{i}.parquet") as f:
            pq.write_table(part, f)
    np.testing.assert_allclose(fitted.score(f"s3://{bucket}/folder/"), expected, rtol=1e-12)

    r = fitted.screen(f"s3://{bucket}/in/customers.parquet", budget=20, out=f"s3://{bucket}/out/top.parquet")
    with fs.open_input_file(f"{bucket}/out/top.parquet") as f:
        back = pq.read_table(f)
    assert back.equals(r.selected) and back.num_rows == 20
    local = fitted.screen(customers, budget=20).selected
    assert back.column("row").to_pylist() == local.column("row").to_pylist()
    for out in ("scores.csv", "scores.jsonl"):
        fitted.screen(f"s3://{bucket}/in/customers.parquet", budget=20, out=f"s3://{bucket}/out/{out}")
        assert fs.get_file_info(f"{bucket}/out/{out}").size > 0


def test_missing_object_and_unknown_scheme_are_clear(s3):
    _, bucket = s3
    with pytest.raises(DataError, match="does not exist"):
        open_source(f"s3://{bucket}/nothing.parquet")
    with pytest.raises(DataError, match="no filesystem for 'nosuchscheme://"):
        open_source("nosuchscheme://x/y.csv")


def test_memory_and_file_uris(fitted, customers, tmp_path):
    import fsspec

    mem = fsspec.filesystem("memory")
    with mem.open("/winnow-test/customers.parquet", "wb") as f:
        pq.write_table(pa.Table.from_pandas(customers, preserve_index=False), f)
    expected = fitted.score(customers)
    np.testing.assert_allclose(fitted.score("memory://winnow-test/customers.parquet"), expected, rtol=1e-12)
    fitted.screen("memory://winnow-test/customers.parquet", budget=10, out="memory://winnow-test/top.jsonl")
    assert len(mem.cat("/winnow-test/top.jsonl").decode().splitlines()) == 10
    customers.to_csv(tmp_path / "c.csv", index=False)
    np.testing.assert_allclose(fitted.score(f"file://{tmp_path / 'c.csv'}"), expected, rtol=1e-9)
