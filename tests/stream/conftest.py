"""Real servers and a real worker for the stream tests.

- ``redis_server``: one ``redis-server`` on a free loopback port for the session (AOF on, so a
  restart keeps the stream); ``make_redis`` starts more (the restart test owns its own).
- ``artifact``: a screener fitted once on ``resume_callbacks.parquet`` and saved.
- ``worker``: starts ``python -m winnow.stream`` subprocesses and kills leftovers at teardown.

Each test uses its own stream and table names, so tests share the servers safely.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stream.helpers import WorkerProcess, typed_records


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on loopback; ``restart`` keeps its data (append-only file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start; see {self.folder / 'redis.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # flushes the append-only file
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


@pytest.fixture(scope="session")
def make_redis() -> Iterator[Any]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    servers: list[RedisServer] = []

    def make() -> RedisServer:
        folder = Path(tempfile.mkdtemp(prefix="winnow-redis-"))
        server = RedisServer(folder)
        server.start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()
        shutil.rmtree(s.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(make_redis: Any) -> RedisServer:
    return make_redis()


@pytest.fixture(scope="session")
def artifact(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A screener fitted once on the resume call-backs (no id column: entry ids are the ids)."""
    from winnow import Screener

    screener = Screener().fit(
        shared_data / "resume_callbacks.parquet",
        target="received_callback",
        positive="1",
        models=["lightgbm", "linear"],
        folds=3,
        threads=1,
        seed=0,
        rules=[{"name": "veteran", "when": "years_experience >= 25", "action": "select"}],
    )
    return screener.save(tmp_path_factory.mktemp("stream") / "screener")


@pytest.fixture(scope="session")
def records(shared_data: Path) -> list[dict[str, Any]]:
    """The resume rows without the target, as Python values (None where missing)."""
    return typed_records(shared_data / "resume_callbacks.parquet", "received_callback")


@pytest.fixture(scope="session")
def scorer(artifact: Path) -> Any:
    from winnow.online import OnlineScorer
    from winnow.screener import Screener

    return OnlineScorer(Screener.load(artifact))


@pytest.fixture
def names() -> dict[str, str]:
    """Fresh stream / table names for one test."""
    tag = uuid.uuid4().hex[:8]
    return {"stream": f"in-{tag}", "table": f"t_{tag}", "tag": tag}


@pytest.fixture
def worker(artifact: Path, tmp_path: Path) -> Iterator[Any]:
    """Start the real worker: ``worker(source_url, stream, *extra_args, consumer=...)``."""
    started: list[WorkerProcess] = []

    def start(source: str, stream: str, *args: str, consumer: str = "w1") -> WorkerProcess:
        cmd = [
            sys.executable,
            "-m",
            "winnow.stream",
            str(artifact),
            "--source",
            source,
            "--stream",
            stream,
            "--consumer",
            consumer,
            *args,
        ]
        w = WorkerProcess(cmd, tmp_path / f"worker-{len(started)}")
        started.append(w)
        w.wait_ready()
        return w

    yield start
    for w in started:
        w.kill()
