"""Stream worker under faults: kill -9, Redis restarts and a sink outage; nothing lost or doubled.

While a producer adds N records (default 1,000,000) to a Redis stream at a fixed rate, the real
worker (``python -m winnow.stream``, PostgreSQL sink with ``--audit``; ``--sink duckdb`` for a
DuckDB file) meets faults in a random order at random points of the production run: ``--kills``
SIGKILLs (default 10), each followed by a restart alternating two consumer names (same name,
switch, same, switch, ...) so that both recovery paths run: a consumer restarted under its old
name re-reads its own pending entries, and the other name claims the dead one's entries
(XAUTOCLAIM); ``--redis-restarts`` restarts of the Redis server itself (default 2; graceful
shutdown, append-only file), after which the worker and the producer reconnect with backoff; and
a PostgreSQL outage of ``--sink-outage`` seconds (default 10; a fast shutdown that cuts the
worker's session), during which the worker retries its batch without acknowledging it. Every
1,000th record is unscorable on purpose.

At the end (the stream drained, the last worker stopped with SIGTERM) the script proves:

- every high-value record is in the sink exactly once, with the score OnlineScorer gives it;
- every input is accounted for exactly once: selected, not selected (the audit table) or
  dead-lettered (the dead-letter stream), and the dead letters are exactly the bad records.

Results go to ``bench/out/stream_faults.md``; the exit code is 1 if any check fails.

    python bench/stream_faults.py
    python bench/stream_faults.py --records 20000 --kills 5 --redis-restarts 1 --sink-outage 3
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_throughput import (
    OUT,
    Redis,
    as_fields,
    base_records,
    base_results,
    command_line,
    drained,
    fit_artifact,
    free_port,
    machine,
    start_worker,
    stop_worker,
    worker_cmd,
)

STREAM = "faults"
BAD_EVERY = 1000


def entry_id(n: int) -> str:
    """Explicit ids make a producer retry after a lost reply safe: a second XADD is refused."""
    return f"1-{n}"


class Producer(threading.Thread):
    """Adds records 1..N at ``rate`` per second; survives Redis restarts."""

    def __init__(self, redis: Redis, n: int, rate: float, base: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.redis, self.n, self.rate, self.base = redis, n, rate, base
        self.sent = 0
        self.retries = 0
        self.finished_at: float | None = None

    def record(self, n: int) -> dict[str, str]:
        f = as_fields(self.base[(n - 1) % len(self.base)])
        if n % BAD_EVERY == 0:
            f["years_experience"] = "n/a"
        return f

    def run(self) -> None:
        import redis

        t0 = time.monotonic()
        client = self.redis.client()
        chunk = max(1, int(self.rate / 50))
        while self.sent < self.n:
            hi = min(self.n, self.sent + chunk)
            try:
                pipe = client.pipeline(transaction=False)
                for i in range(self.sent + 1, hi + 1):
                    pipe.xadd(STREAM, self.record(i), id=entry_id(i))
                pipe.execute()
                self.sent = hi
            except redis.RedisError:
                # part of the chunk may have landed: resume after the last id Redis holds
                self.retries += 1
                time.sleep(0.2)
                try:
                    client = self.redis.client()
                    last = client.xinfo_stream(STREAM)["last-generated-id"].decode()
                    self.sent = int(last.split("-")[1])
                except redis.RedisError:
                    pass
                continue
            wait = t0 + self.sent / self.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self.finished_at = time.monotonic()


def consumer_pending(client: Any, consumer: str) -> int:
    try:
        for c in client.xinfo_consumers(STREAM, "winnow"):
            if c["name"].decode() == consumer:
                return int(c["pending"])
    except Exception:
        return -1
    return 0


class Postgres:
    """A throwaway PostgreSQL 15 cluster on loopback (as the ``postgres`` user when run as root)."""

    BIN = Path("/usr/lib/postgresql/15/bin")

    def __init__(self) -> None:
        if not (self.BIN / "initdb").exists():
            sys.exit(f"PostgreSQL binaries not found in {self.BIN} (apt-get install postgresql)")
        # its own folder: the postgres user cannot enter the (root-only) work folder
        self.folder = Path(tempfile.mkdtemp(prefix="winnow-bench-pg-"))
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.folder, "postgres", "postgres")
        self.port = free_port()
        self.data = self.folder / "data"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, exe: str, *args: str) -> None:
        subprocess.run(
            [*self.prefix, str(self.BIN / exe), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "-o", opts, "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session at once: the worker's open connection breaks mid-stream."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn) as con:
            return con.execute(sql).fetchall()


def wait_for(logs: list[Path], text: str, after: int, limit: float, what: str) -> None:
    """Until ``text`` appears in the current worker's log past offset ``after``."""
    deadline = time.monotonic() + limit
    while text not in logs[-1].read_text(errors="replace")[after:]:
        if time.monotonic() > deadline:
            sys.exit(f"{what} within {limit:.0f} s")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs of the worker")
    ap.add_argument("--redis-restarts", type=int, default=2)
    ap.add_argument("--sink", choices=["postgres", "duckdb"], default="postgres")
    ap.add_argument("--sink-outage", type=float, default=10.0, help="seconds PostgreSQL is down (0: none)")
    ap.add_argument("--rate", type=float, default=2500.0, help="records/s the producer adds")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--artifact", type=Path, help="reuse a fitted artifact instead of fitting one")
    ap.add_argument("--out", type=Path, default=OUT / "stream_faults.md")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    print("command:", command_line(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="winnow-bench-faults-"))
    redis = Redis(work, persist=True)
    redis.start()
    pg = Postgres() if args.sink == "postgres" else None
    if pg is not None:
        pg.start()
    outage = args.sink_outage if pg is not None else 0.0
    artifact = args.artifact or fit_artifact(work)
    base = base_records()
    results = base_results(artifact, base)
    before = machine()

    db = work / "sink.duckdb"
    sink = pg.dsn if pg is not None else f"duckdb:{db}"
    extra = ("--audit", "--batch-size", str(args.batch_size), "--claim-idle-ms", "3000", "--max-backoff", "1")
    extra += ("--block-ms", "200")
    logs: list[Path] = []
    events: list[dict[str, Any]] = []

    def launch(consumer: str) -> Any:
        log = work / f"worker-{len(logs)}-{consumer}.log"
        logs.append(log)
        cmd = worker_cmd(artifact, redis.url, STREAM, sink, "--consumer", consumer, *extra)
        return start_worker(cmd, log), time.monotonic()

    # the faults in a random order, spread over the production run
    plan = ["kill"] * args.kills + ["redis"] * args.redis_restarts + (["sink"] if outage else [])
    rng.shuffle(plan)
    due = sorted(rng.uniform(0.02, 0.95) for _ in plan)
    t_start = time.monotonic()
    producer = Producer(redis, args.records, args.rate, base)
    consumers = ["w1", "w2"]
    current = consumers[0]
    proc, up = launch(current)
    producer.start()
    kills = 0
    restarts: list[dict[str, Any]] = []
    outages: list[dict[str, Any]] = []
    client = redis.client()
    for fault, frac in zip(plan, due, strict=True):
        while producer.sent < frac * args.records and producer.finished_at is None:
            time.sleep(0.05)
        # the worker must be working first (start-up takes seconds on a loaded machine)
        wait_for(logs, "connected to Redis", 0, 120, "the worker did not connect to Redis")
        time.sleep(rng.uniform(0.3, 2.0))
        at = time.monotonic() - t_start
        mark = len(logs[-1].read_text(errors="replace"))
        if fault == "redis":
            redis.stop()
            down = rng.uniform(1.5, 3.0)
            time.sleep(down)
            redis.start()
            client = redis.client()
            # the next fault only once the worker is back, so the reconnect is shown, not assumed
            wait_for(logs, "reconnected to Redis", mark, 120, "the worker did not reconnect to Redis")
            back = time.monotonic() - t_start - at
            restarts.append({"at": at, "down": down, "back": back})
            detail = f"server down {down:.1f}s; worker reconnected {back:.1f}s after the shutdown"
            events.append({"event": f"redis restart #{len(restarts)}", "at": at, "detail": detail})
        elif fault == "sink":
            assert pg is not None
            pg.stop("fast")
            time.sleep(outage)
            pg.start()
            wait_for(logs, "sink unavailable", mark, 60, "the worker never saw the sink outage")
            # back when the audit table grows again
            n0 = pg.rows("SELECT count(*) FROM selected_scored")[0][0]
            deadline = time.monotonic() + 120
            while pg.rows("SELECT count(*) FROM selected_scored")[0][0] == n0:
                if time.monotonic() > deadline:
                    sys.exit("the worker did not write to PostgreSQL within 2 minutes of its restart")
                time.sleep(0.1)
            back = time.monotonic() - t_start - at
            retries = logs[-1].read_text(errors="replace")[mark:].count("sink unavailable")
            outages.append({"at": at, "down": outage, "back": back, "retries": retries})
            detail = (
                f"PostgreSQL stopped (fast shutdown: open sessions cut) for {outage:.0f}s; the worker "
                f"retried the batch {retries} times and wrote again {back:.1f}s after the stop"
            )
            events.append({"event": "sink outage", "at": at, "detail": detail})
        else:
            consumer = current
            in_flight = consumer_pending(client, consumer)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            at = time.monotonic() - t_start
            nxt = current = consumers[(kills // 2) % 2]
            detail = (
                f"{consumer} killed {at - (up - t_start):.1f}s after its start, {in_flight} entries in "
                f"flight (read, not acknowledged); restarted as {nxt}"
            )
            events.append({"event": f"kill -9 #{kills}", "at": at, "detail": detail})
            proc, up = launch(nxt)
        print(
            f"[{at:6.1f}s] {events[-1]['event']}: {events[-1]['detail']} (produced {producer.sent:,})",
            flush=True,
        )
    producer.join()
    produced_at = (producer.finished_at or time.monotonic()) - t_start
    deadline = time.monotonic() + 1800
    while not drained(client, STREAM):
        if time.monotonic() > deadline:
            sys.exit("the stream did not drain in 30 minutes")
        time.sleep(0.2)
    drained_at = time.monotonic() - t_start
    summary = stop_worker(proc, logs[-1])
    after = machine()
    print(f"produced {args.records:,} by {produced_at:.1f}s, drained at {drained_at:.1f}s", flush=True)

    # ----------------------------------------------------------------------------- checks
    if pg is not None:
        sel = pg.rows("SELECT id, score FROM selected")
        aud = pg.rows("SELECT id, score, selected FROM selected_scored")
        pg.stop("immediate")
    else:
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            sel = con.execute("SELECT id, score FROM selected").fetchall()
            aud = con.execute("SELECT id, score, selected FROM selected_scored").fetchall()
    dead = [
        (f[b"entry_id"].decode(), f[b"kind"].decode(), f[b"field"].decode())
        for _, f in client.xrange(f"{STREAM}:dead")
    ]
    all_ids = {entry_id(n) for n in range(1, args.records + 1)}
    bad_ids = {entry_id(n) for n in range(BAD_EVERY, args.records + 1, BAD_EVERY)}
    want = {entry_id(n): results[(n - 1) % len(base)] for n in range(1, args.records + 1) if n % BAD_EVERY}
    want_sel = {k for k, v in want.items() if v.selected}
    sel_ids = [i for i, _ in sel]
    aud_ids = [i for i, _, _ in aud]
    dead_ids = [d[0] for d in dead]
    score_ok = all(math.isclose(s, want[i].score, abs_tol=1e-12) for i, s in sel) and all(
        math.isclose(s, want[i].score, abs_tol=1e-12) and flag == want[i].selected for i, s, flag in aud
    )
    checks = [
        ("stream holds every produced record", client.xlen(STREAM) == args.records),
        ("every high-value record in the sink", set(sel_ids) == want_sel),
        ("... exactly once (no duplicate ids)", len(sel_ids) == len(set(sel_ids))),
        ("audit table: each scored record once", len(aud_ids) == len(set(aud_ids))),
        ("dead letters: each once", len(dead_ids) == len(set(dead_ids))),
        ("dead letters are exactly the bad records", set(dead_ids) == bad_ids),
        (
            "dead letters name the bad field",
            all(k == "invalid" and f == "years_experience" for _, k, f in dead),
        ),
        ("audit and dead letters are disjoint", not (set(aud_ids) & set(dead_ids))),
        ("every input accounted for (audit + dead letters = input)", set(aud_ids) | set(dead_ids) == all_ids),
        ("selected rows = audit rows marked selected", set(sel_ids) == {i for i, _, f in aud if f}),
        ("scores equal OnlineScorer.score_records", score_ok),
        ("last worker exited cleanly on SIGTERM", summary.get("exit_code") == 0),
        ("worker reconnected after every Redis restart", len(restarts) == args.redis_restarts),
        ("worker wrote again after the sink outage", len(outages) == (1 if outage else 0)),
        ("every kill -9 done", kills == args.kills),
        ("nothing pending", drained(client, STREAM)),
    ]
    redis.stop()
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    recovered = sum(int(m) for m in re.findall(r"re-processed (\d+) pending entries", text))
    claimed = sum(int(m) for m in re.findall(r"claimed (\d+) entries", text))
    reconnects = len(re.findall(r"reconnected to Redis", text))
    unreachable = len(re.findall(r"Redis unreachable", text))
    ok = all(c for _, c in checks)

    sink_name = "PostgreSQL 15 (fsync off)" if pg is not None else "DuckDB"
    lines = [
        "# Stream worker under faults: kill -9, Redis restarts, a sink outage",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Machine: {before} at the start, {after} at the end. Other processes may share these CPUs.",
        "",
        f"Setup: {args.records:,} records (resume call-back rows cycled; every {BAD_EVERY:,}th has "
        f'`years_experience = "n/a"`) added at {args.rate:,.0f} records/s with explicit entry ids; '
        f"worker `python -m winnow.stream` with the {sink_name} sink, `--audit`, batch size "
        f"{args.batch_size}, claim idle 3 s; redis-server 7 with the append-only file (fsync every second; a "
        f"restart is a graceful shutdown). Faults: {args.kills} kill -9, {args.redis_restarts} Redis "
        f"restart(s), {outage:g} s sink outage, in a random order at random points of the production run. "
        f"Random seed {args.seed}.",
        "",
        "## What happened",
        "",
        "| at (s) | event | detail |",
        "|---:|---|---|",
    ]
    events.append(
        {
            "event": "producer done",
            "at": produced_at,
            "detail": f"{args.records:,} records, {producer.retries} chunk(s) retried",
        }
    )
    events.append(
        {
            "event": "stream drained",
            "at": drained_at,
            "detail": f"last worker stopped with SIGTERM (exit {summary.get('exit_code')})",
        }
    )
    for e in sorted(events, key=lambda e: e["at"]):
        lines.append(f"| {e['at']:.1f} | {e['event']} | {e['detail']} |")
    lines += [
        "",
        f"- worker runs: {len(logs)} ({args.kills} killed with SIGKILL, the last one stopped with SIGTERM)",
        f"- entries re-processed by a restarted consumer from its own pending list: {recovered:,}",
        f"- entries claimed from the killed consumer by the other one (XAUTOCLAIM): {claimed:,}",
        f"- Redis restarts: {len(restarts)} (down "
        + ", ".join(f"{r['down']:.1f}s" for r in restarts)
        + f"); the workers logged {unreachable} failed connection attempts (backoff capped at 1 s) and "
        f"reconnected {reconnects} time(s); the producer retried {producer.retries} chunk(s), resuming after "
        "the last id Redis held",
        f"- sink outages: {len(outages)}"
        + "".join(
            f" (PostgreSQL down {o['down']:.0f}s; {o['retries']} retries of the batch; writing again "
            f"{o['back']:.1f}s after the stop)"
            for o in outages
        ),
        f"- overall: {args.records:,} records in {drained_at:.1f}s = "
        f"{args.records / drained_at:,.0f} records/s including every kill, restart and recovery",
        "",
        "## Checks",
        "",
        f"Sink: {len(sel_ids):,} selected rows; audit table {len(aud_ids):,} rows; dead letters "
        f"{len(dead_ids):,}; inputs {args.records:,} (= {len(aud_ids):,} + {len(dead_ids):,}).",
        "",
        "| check | result |",
        "|---|---|",
    ]
    for name, c in checks:
        lines.append(f"| {name} | {'PASS' if c else '**FAIL**'} |")
    lines += ["", f"All checks passed: {ok}."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    for name, c in checks:
        print(f"{'PASS' if c else 'FAIL'}  {name}")
    print(f"wrote {args.out}")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
        if pg is not None:
            shutil.rmtree(pg.folder, ignore_errors=True)
    else:
        print(f"kept {work} for inspection")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
