"""Stream worker under faults: kill -9 at random points and a Redis restart, nothing lost or doubled.

While a producer adds N records (default 100,000) to a Redis stream at a fixed rate, the real
worker (``python -m winnow.stream``, DuckDB sink with ``--audit``) is killed with SIGKILL at
random moments, at least ``--kills`` times (default 6), and restarted each time, alternating
two consumer names (same name, switch, same, switch, ...) so that both recovery paths run: a
consumer restarted under its old name re-reads its own pending entries, and the other name
claims the dead one's entries (XAUTOCLAIM). Midway the
Redis server itself is restarted (graceful shutdown, append-only file); the worker and the
producer reconnect with backoff. Every 1,000th record is unscorable on purpose.

At the end (the stream drained, the last worker stopped with SIGTERM) the script proves:

- every high-value record is in the sink exactly once, with the score OnlineScorer gives it;
- every input is accounted for exactly once: selected, not selected (the audit table) or
  dead-lettered (the dead-letter stream), and the dead letters are exactly the bad records.

Results go to ``bench/out/stream_faults.md``; the exit code is 1 if any check fails.

    python bench/stream_faults.py
    python bench/stream_faults.py --records 20000 --kills 5 --rate 2000
"""

from __future__ import annotations

import argparse
import math
import random
import re
import shutil
import signal
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--kills", type=int, default=6, help="SIGKILLs of the worker (at least 5)")
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
    artifact = args.artifact or fit_artifact(work)
    base = base_records()
    results = base_results(artifact, base)
    before = machine()

    db = work / "sink.duckdb"
    extra = ("--audit", "--batch-size", str(args.batch_size), "--claim-idle-ms", "3000", "--max-backoff", "1")
    extra += ("--block-ms", "200")
    logs: list[Path] = []
    events: list[dict[str, Any]] = []

    def launch(consumer: str) -> Any:
        log = work / f"worker-{len(logs)}-{consumer}.log"
        logs.append(log)
        cmd = worker_cmd(artifact, redis.url, STREAM, f"duckdb:{db}", "--consumer", consumer, *extra)
        return start_worker(cmd, log), time.monotonic()

    t_start = time.monotonic()
    producer = Producer(redis, args.records, args.rate, base)
    consumers = ["w1", "w2"]
    current = consumers[0]
    proc, up = launch(current)
    producer.start()
    kills, redis_restarted = 0, False
    restart_info: dict[str, Any] = {}
    client = redis.client()
    while kills < args.kills or not redis_restarted:
        # a random moment once the worker is working (start-up takes seconds on a loaded machine)
        ready = time.monotonic() + 120
        while "connected to Redis" not in logs[-1].read_text(errors="replace") and time.monotonic() < ready:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.3, 3.0))
        if not redis_restarted and (producer.sent >= args.records // 2 or producer.finished_at):
            at = time.monotonic() - t_start
            redis.stop()
            down = rng.uniform(1.5, 3.0)
            time.sleep(down)
            redis.start()
            client = redis.client()
            redis_restarted = True
            # the next kill only once the worker is back, so the reconnect is shown, not assumed
            back = time.monotonic() + 120
            while "reconnected to Redis" not in logs[-1].read_text(errors="replace"):
                if time.monotonic() > back:
                    sys.exit("the worker did not reconnect within 2 minutes of the Redis restart")
                time.sleep(0.05)
            back_at = time.monotonic() - t_start
            restart_info = {"at": at, "down": down, "back": back_at - at}
            detail = f"server down {down:.1f}s; worker reconnected {back_at - at:.1f}s after the shutdown"
            events.append({"event": "redis restart", "at": at, "detail": detail})
            print(f"[{at:5.1f}s] Redis restart: {detail}", flush=True)
            continue
        consumer = current
        in_flight = consumer_pending(client, consumer)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
        at = time.monotonic() - t_start
        nxt = current = consumers[(kills // 2) % 2]
        detail = (
            f"{consumer} killed {at - (up - t_start):.1f}s after its start, {in_flight} entries in flight "
            f"(read, not acknowledged); restarted as {nxt}"
        )
        events.append({"event": f"kill -9 #{kills}", "at": at, "detail": detail})
        print(f"[{at:5.1f}s] {detail} (produced {producer.sent:,})", flush=True)
        proc, up = launch(nxt)
    producer.join()
    produced_at = (producer.finished_at or time.monotonic()) - t_start
    deadline = time.monotonic() + 600
    while not drained(client, STREAM):
        if time.monotonic() > deadline:
            sys.exit("the stream did not drain in 10 minutes")
        time.sleep(0.1)
    drained_at = time.monotonic() - t_start
    summary = stop_worker(proc, logs[-1])
    after = machine()
    print(f"produced {args.records:,} by {produced_at:.1f}s, drained at {drained_at:.1f}s", flush=True)

    # ----------------------------------------------------------------------------- checks
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
        ("worker reconnected after the Redis restart", bool(restart_info.get("back"))),
        ("nothing pending", drained(client, STREAM)),
    ]
    redis.stop()
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    recovered = sum(int(m) for m in re.findall(r"re-processed (\d+) pending entries", text))
    claimed = sum(int(m) for m in re.findall(r"claimed (\d+) entries", text))
    reconnects = len(re.findall(r"reconnected to Redis", text))
    unreachable = len(re.findall(r"Redis unreachable", text))
    ok = all(c for _, c in checks)

    lines = [
        "# Stream worker under faults: kill -9 and a Redis restart",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Machine: {before} at the start, {after} at the end. Other processes may share these CPUs.",
        "",
        f"Setup: {args.records:,} records (resume call-back rows cycled; every {BAD_EVERY:,}th has "
        f'`years_experience = "n/a"`) added at {args.rate:,.0f} records/s with explicit entry ids; '
        f"worker `python -m winnow.stream` with the DuckDB sink, `--audit`, batch size {args.batch_size}, "
        "claim idle 3 s; redis-server 7 with the append-only file (fsync every second; the restart is "
        "a graceful shutdown). Random seed "
        f"{args.seed}.",
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
        f"- Redis restart: down {restart_info.get('down', 0):.1f}s; the worker logged {unreachable} failed "
        f"connection attempts (backoff capped at 1 s) and reconnected {reconnects} time(s); the "
        f"producer retried {producer.retries} chunk(s), resuming after the last id Redis held",
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
    else:
        print(f"kept {work} for inspection")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
