"""Soak: ``winnow serve`` for minutes at a fixed rate with a share of invalid requests.

The real service (``winnow serve ARTIFACT --api-key-file F --no-access-log``, one worker
process, one scoring thread) gets an open-loop stream of requests: request *i* is due at
``start + i / rate`` and its latency counts from that due time, so a server that falls behind
is charged for the queue it builds (no coordinated omission). 90% are valid single-record
``/v1/screen`` requests (résumé call-back rows cycled); 10% are invalid, spread over kinds a
careless or hostile client sends: malformed JSON, a wrong type in a field, a number past the
limit, records that are not objects, an empty list, too many records, a threshold and a budget together,
a missing or wrong API key, an unsupported content type, and a body past ``--max-body-bytes``.

What is checked and written down, per minute and overall:

- every valid request answered 200, every invalid one answered 4xx with the status its kind
  must get (never 5xx, never a timeout);
- the server's resident memory (``/proc/PID/status`` VmRSS every 5 s): growth from the end of
  the first minute (caches warm) to the end of the run, target < 5%;
- latency p50 / p99 / max of valid requests, from the scheduled send.

The load generator is this file in a second process (``--loadgen``): a small asyncio HTTP/1.1
client on keep-alive connections (bench/http_latency.py's), so its cost per request stays low.

    python bench/soak.py                              # 10 minutes at 1,000 req/s
    python bench/soak.py --minutes 1 --rate 500       # a short look

Writes ``bench/out/soak.md`` and ``bench/out/soak.json``; exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_latency import DATA, OUT, ROOT, TARGET, Conn, free_port, pct, run_loadgen, start, stop

KEY = "soak-key-0123456789abcdef"
INVALID_SHARE = 0.10
MAX_BODY = 1 << 20  # the server's --max-body-bytes in this run
WINDOW_S = 60.0


def invalid_kinds(record: dict[str, Any]) -> list[tuple[str, int, bytes, dict[str, str]]]:
    """(kind, expected status, body, extra headers) for each invalid request kind."""

    def body(obj: Any) -> bytes:
        return json.dumps(obj).encode()

    wrong_type = {**record, "years_experience": "many"}
    key = {"X-API-Key": KEY}
    big = body({**record, "years_experience": 0}).replace(
        b'"years_experience": 0', b'"years_experience": 1e400'
    )
    both = body({"records": [record], "threshold": 0.5, "budget": 0.1})
    return [
        ("malformed JSON", 400, b'{"years_experience": 3,', key),
        ("wrong type in a field", 422, body(wrong_type), key),
        ("number past the limit", 422, big, key),
        ("a record that is not an object", 422, b"[1, 2]", key),
        ("empty list", 422, b"[]", key),
        ("too many records", 422, body({"records": [record] * 1001}), key),
        ("threshold and budget together", 422, both, key),
        ("no API key", 401, body(record), {}),
        ("wrong API key", 401, body(record), {"X-API-Key": "not-the-key"}),
        ("unsupported content type", 415, body(record), {**key, "Content-Type": "text/csv"}),
        ("body past the size limit", 413, b"[" + b" " * MAX_BODY + b"]", key),
    ]


# ---------------------------------------------------------------------------- load generator
class Window:
    """Counts and latencies of one minute."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.status: collections.Counter[str] = collections.Counter()
        self.wrong: collections.Counter[str] = collections.Counter()  # kind -> answers not as expected
        self.timeouts = 0


async def soak(spec: dict[str, Any]) -> dict[str, Any]:
    port, rate, seconds, timeout = spec["port"], spec["rate"], spec["seconds"], spec["timeout"]
    valid = [b.encode() for b in spec["valid"]]
    kinds = [(k, s, bytes.fromhex(b), h) for k, s, b, h in spec["invalid"]]
    key = {"X-API-Key": KEY}
    windows = [Window() for _ in range(int(seconds // WINDOW_S) + 1)]
    idle: collections.deque[Conn] = collections.deque()
    slots = asyncio.Semaphore(512)
    every = round(1 / INVALID_SHARE)
    now = time.perf_counter

    async def one(i: int, due: float) -> None:
        w = windows[min(len(windows) - 1, int((due - t0) // WINDOW_S))]
        if i % every == every - 1:
            kind, expect, body, headers = kinds[(i // every) % len(kinds)]
        else:
            kind, expect, body, headers = "valid", 200, valid[i % len(valid)], key
        ctype = headers.get("Content-Type", "application/json")
        extra = {k: v for k, v in headers.items() if k != "Content-Type"}
        try:
            async with asyncio.timeout(max(0.001, due + timeout - now())), slots:
                conn = idle.popleft() if idle else await Conn.open(port)
                try:
                    status = await conn.post("/v1/screen", body, ctype, extra)
                except BaseException:
                    conn.close()
                    raise
                if conn.closed_by_server:  # answered (e.g. 413), then closed: not reused
                    conn.close()
                else:
                    idle.append(conn)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            w.timeouts += 1
            return
        w.status[f"{status // 100}xx"] += 1
        if status != expect:
            w.wrong[kind] += 1
        if kind == "valid" and status == 200:
            w.lat.append(now() - due)

    total = int(rate * seconds)
    t0 = now() + 0.05
    pending: set[asyncio.Task[None]] = set()
    for i in range(total):
        due = t0 + i / rate
        delay = due - now()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    for c in idle:
        c.close()
    out = []
    for k, w in enumerate(windows):
        ms = [x * 1000 for x in w.lat]
        if not (ms or w.status or w.timeouts):
            continue
        out.append(
            {
                "minute": k + 1,
                "answered": sum(w.status.values()),
                "status": dict(w.status),
                "wrong": dict(w.wrong),
                "timeouts": w.timeouts,
                "latencies_ms": ms,
            }
        )
    return {"windows": out, "span_s": now() - t0}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """The server's resident memory every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append((time.monotonic() - self.t0, rss_kib(self.pid)))


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifact", type=Path, default=OUT / "resume_default_fast")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before a request counts as lost")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loadgen:
        coro = soak(json.loads(sys.stdin.read()))
        try:
            import uvloop

            print(json.dumps(uvloop.run(coro)))
        except ImportError:
            print(json.dumps(asyncio.run(coro)))
        return

    import pyarrow.parquet as pq

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    print(command, flush=True)
    if not (args.artifact / "manifest.json").exists():
        sys.exit(f"no artifact at {args.artifact}: fit one first (see bench/RESULTS.md)")
    records = pq.read_table(DATA).drop([TARGET]).slice(0, 1000).to_pylist()
    work = Path(tempfile.mkdtemp(prefix="winnow-soak-"))
    (work / "keys").write_text(KEY + "\n")
    port = free_port()
    winnow = Path(sys.executable).with_name("winnow")
    cmd = [
        str(winnow),
        "serve",
        str(args.artifact),
        "--port",
        str(port),
        "--api-key-file",
        str(work / "keys"),
    ]
    cmd += ["--no-access-log", "--log-level", "warning", "--max-body-bytes", str(MAX_BODY)]
    load_before = os.getloadavg()
    proc = start(cmd, port, work / "server.log")
    sampler = Sampler(proc.pid)
    try:
        warm = [json.dumps(r) for r in records[:50]]
        spec = {"port": port, "rate": 200.0, "seconds": 5.0, "timeout": args.timeout, "valid": warm}
        spec["invalid"] = [(k, s, b.hex(), h) for k, s, b, h in invalid_kinds(records[0])]
        run_loadgen(spec, __file__)  # warm-up (lazily imported code, caches), not counted
        sampler.start()
        spec.update(rate=args.rate, seconds=args.minutes * 60, valid=[json.dumps(r) for r in records])
        print(f"soak: {args.rate:,.0f} req/s for {args.minutes:g} min on 127.0.0.1:{port}", flush=True)
        res = run_loadgen(spec, __file__)
        sampler.done.set()
        alive = proc.poll() is None
        rss_end = rss_kib(proc.pid) if alive else 0
    finally:
        stop(proc)
    load_after = os.getloadavg()
    server_log = (work / "server.log").read_text(errors="replace")
    report = render(args, command, res, sampler.samples, rss_end, alive, load_before, load_after, server_log)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(report["text"])
    (args.out / "soak.json").write_text(json.dumps(report["summary"], indent=2))
    print(report["text"])
    sys.exit(0 if report["summary"]["ok"] else 1)


def render(
    args: argparse.Namespace,
    command: str,
    res: dict[str, Any],
    samples: list[tuple[float, int]],
    rss_end: int,
    alive: bool,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
    server_log: str,
) -> dict[str, Any]:
    windows = res["windows"]
    all_ms = [x for w in windows for x in w["latencies_ms"]]
    status: collections.Counter[str] = collections.Counter()
    wrong: collections.Counter[str] = collections.Counter()
    for w in windows:
        status.update(w["status"])
        wrong.update(w["wrong"])
    timeouts = sum(w["timeouts"] for w in windows)
    first = [kib for t, kib in samples if t <= WINDOW_S]
    rss_first = first[-1] if first else (samples[0][1] if samples else 0)
    rss_end = rss_end or (samples[-1][1] if samples else 0)
    growth = (rss_end - rss_first) / rss_first * 100 if rss_first else None
    rss_max = max((kib for _, kib in samples), default=0)
    tracebacks = server_log.count("Traceback")
    answered = sum(status.values())
    summary = {
        "rate": args.rate,
        "minutes": args.minutes,
        "requests": answered + timeouts,
        "answered": answered,
        "status": dict(status),
        "not_as_expected": dict(wrong),
        "timeouts": timeouts,
        "p50_ms": pct(all_ms, 50),
        "p99_ms": pct(all_ms, 99),
        "p999_ms": pct(all_ms, 99.9),
        "max_ms": max(all_ms) if all_ms else None,
        "rss_after_first_minute_mib": rss_first / 1024,
        "rss_end_mib": rss_end / 1024,
        "rss_max_mib": rss_max / 1024,
        "rss_growth_pct": growth,
        "server_tracebacks": tracebacks,
        "server_alive": alive,
        "achieved_req_per_s": (answered + timeouts) / res["span_s"],
    }
    checks = [
        ("0 responses 5xx", status.get("5xx", 0) == 0),
        ("0 requests lost (timed out or connection dropped)", timeouts == 0),
        ("every request answered with the status its kind must get", not wrong),
        ("memory growth < 5% (end of minute 1 to the end)", growth is not None and growth < 5.0),
        ("no traceback in the server log", tracebacks == 0),
        ("server alive at the end", alive),
    ]
    summary["ok"] = all(ok for _, ok in checks)
    summary["checks"] = {name: ok for name, ok in checks}
    la = lambda t: " / ".join(f"{x:.2f}" for x in t)  # noqa: E731
    kinds = invalid_kinds({})
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs; load average {la(load_before)} (1/5/15 min) before, "
        f"{la(load_after)} after (the server and the load generator share these CPUs).",
        "",
        f"Server: `winnow serve {args.artifact.name} --api-key-file F --no-access-log --max-body-bytes "
        f"{MAX_BODY}` (one process, one scoring thread). Load: {args.rate:,.0f} req/s open loop for "
        f"{args.minutes:g} min, {INVALID_SHARE:.0%} invalid, one record per valid request; latency from "
        f"each request's scheduled send; a request unanswered after {args.timeout:g} s counts as lost.",
        "",
        f"Invalid kinds (each ~{INVALID_SHARE / len(kinds):.1%} of requests, with the status it must get): "
        + "; ".join(f"{k} ({s})" for k, s, _, _ in kinds)
        + ".",
        "",
        "| minute | answered | 2xx | 4xx | 5xx | lost | not as expected | p50 ms | p99 ms | max ms "
        "| RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in windows:
        m = w["minute"]
        rss = [kib for t, kib in samples if (m - 1) * WINDOW_S < t <= m * WINDOW_S]
        ms = w["latencies_ms"]
        lines.append(
            f"| {m} | {w['answered']:,} | {w['status'].get('2xx', 0):,} | {w['status'].get('4xx', 0):,} | "
            f"{w['status'].get('5xx', 0):,} | {w['timeouts']:,} | {sum(w['wrong'].values()):,} | "
            f"{fmt(pct(ms, 50))} | {fmt(pct(ms, 99))} | {fmt(max(ms) if ms else None)} | "
            f"{fmt(rss[-1] / 1024 if rss else None)} |"
        )
    lines += [
        f"| **all** | **{answered:,}** | {status.get('2xx', 0):,} | {status.get('4xx', 0):,} | "
        f"**{status.get('5xx', 0):,}** | {timeouts:,} | {sum(wrong.values()):,} | {fmt(summary['p50_ms'])} | "
        f"**{fmt(summary['p99_ms'])}** | {fmt(summary['max_ms'])} | {fmt(rss_max / 1024)} (max) |",
        "",
        f"Achieved {summary['achieved_req_per_s']:,.0f} req/s; p99.9 {fmt(summary['p999_ms'])} ms. "
        "Server memory: "
        f"{rss_first / 1024:,.1f} MiB at the end of minute 1, {rss_end / 1024:,.1f} MiB at the end: growth "
        f"**{fmt(growth, 2)}%**.",
        "",
        "| check | result |",
        "|---|---|",
        *(f"| {name} | {'PASS' if ok else '**FAIL**'} |" for name, ok in checks),
        "",
        f"All checks passed: {summary['ok']}.",
    ]
    if wrong:
        lines += ["", "Not as expected: " + ", ".join(f"{k} x{n}" for k, n in wrong.items())]
    return {"text": "\n".join(lines) + "\n", "summary": summary}


if __name__ == "__main__":
    main()
