"""Stream worker: what committing to the sink in its own thread buys when the sink is slow.

A remote database adds its round trips to every batch's commit. The worker commits batch *n*
in a writer thread while it scores batch *n + 1*; ``StreamWorker(pipelined=False)`` waits for
each commit first. This runs the real worker in process (real Redis, real DuckDB sink) with a
fixed delay added before each sink write, as a stand-in for the network (loopback has none):
records/s from the first read to the last acknowledgement, both modes interleaved.

    python bench/stream_sink_latency.py --artifact bench/out/resume_default_fast
    python bench/stream_sink_latency.py --delays-ms 0 5 20 --records 40000 --repeat 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_throughput import (  # the sibling benchmark's helpers
    OUT,
    Redis,
    as_fields,
    base_records,
    command_line,
    describe_artifact,
    drained,
    fit_artifact,
    machine,
)


class DelayedSink:
    """The real sink, each write starting ``delay`` seconds late (a remote round trip)."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.description = inner.description

    def open(self) -> None:
        self.inner.open()

    def write(self, batch: Any) -> None:
        time.sleep(self.delay)
        self.inner.write(batch)

    def close(self) -> None:
        self.inner.close()


def drain(
    scorer: Any, redis: Redis, work: Path, records: list, n: int, delay: float, pipelined: bool
) -> float:
    from winnow.io.sinks import DuckDBSink
    from winnow.stream.source import RedisSource
    from winnow.stream.worker import StreamWorker

    client = redis.client()
    stream = f"latency-{time.monotonic_ns()}"
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, as_fields(records[i % len(records)]))
        if len(pipe) == 1000:
            pipe.execute()
    pipe.execute()
    source = RedisSource(redis.url, stream, "winnow", "b1", dead_letter=f"{stream}:dead", block_ms=50)
    sink = DelayedSink(DuckDBSink(work / f"{stream}.duckdb"), delay)
    worker = StreamWorker(scorer, source, sink, batch_size=500, pipelined=pipelined)  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    t0 = time.monotonic()
    thread.start()
    while not drained(client, stream):
        time.sleep(0.01)
    rate = n / (time.monotonic() - t0)
    worker.stop()
    thread.join(30)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact", type=Path, help="reuse a fitted artifact instead of fitting one")
    ap.add_argument("--records", type=int, default=40_000)
    ap.add_argument("--delays-ms", type=float, nargs="+", default=[0.0, 5.0, 20.0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT / "stream_sink_latency.md")
    args = ap.parse_args()

    from winnow.online import OnlineScorer
    from winnow.screener import Screener

    print("command:", command_line(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="winnow-bench-sink-"))
    redis = Redis(work, persist=False)
    redis.start()
    try:
        artifact = args.artifact or fit_artifact(work)
        scorer = OnlineScorer(Screener.load(artifact))
        records = base_records()
        before = machine()
        rows = []
        for delay in args.delays_ms:
            got: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.repeat):
                for pipelined in (False, True):
                    rate = drain(scorer, redis, work, records, args.records, delay / 1000, pipelined)
                    got[pipelined].append(rate)
                    mode = "pipelined" if pipelined else "in line"
                    print(f"sink delay {delay:g} ms, {mode}: {rate:,.0f} records/s", flush=True)
            rows.append((delay, got))
        after = machine()
    finally:
        redis.stop()
    lines = [
        "# Stream worker: sink commits in line vs in a writer thread",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Machine: {before} before, {after} after.",
        "",
        f"Worker in process (`StreamWorker`, batch size 500, 1 scoring thread), real redis-server on "
        f"loopback, DuckDB sink with each write delayed by the given time. Artifact: "
        f"{describe_artifact(artifact)}. {args.records:,} records drained per run, the modes "
        f"interleaved, {args.repeat} runs each; medians, every run in brackets.",
        "",
        "| sink delay per batch | in line records/s | writer thread records/s | ratio |",
        "|---:|---:|---:|---:|",
    ]
    for delay, got in rows:
        a, b = float(np.median(got[False])), float(np.median(got[True]))
        runs_a = ", ".join(f"{x:,.0f}" for x in got[False])
        runs_b = ", ".join(f"{x:,.0f}" for x in got[True])
        lines.append(f"| {delay:g} ms | {a:,.0f} ({runs_a}) | {b:,.0f} ({runs_b}) | {b / a:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
