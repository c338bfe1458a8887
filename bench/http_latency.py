"""HTTP latency and throughput: ``winnow serve`` against a naive FastAPI endpoint, same run.

Servers (each its own uvicorn process on a loopback port, access log off, one worker):

* **winnow**: the real service (``winnow.serve.cli.serve``): JSON parsed without pandas,
  records validated by :class:`winnow.online.OnlineScorer`, concurrent requests coalesced into
  micro-batches scored in a worker thread. Route ``/v1/screen`` (score, select, reasons).
* **naive**: what one writes first: a sync FastAPI endpoint (run in the threadpool) that builds
  ``pd.DataFrame(records)`` per request and calls ``Screener.score`` on it.

* **naive_async**: the same endpoint as an ``async def`` (scored on the event loop).
* **naive_lgbm**: the naive endpoint without winnow: LightGBM with default parameters trained
  at start-up on the same task (the quality benchmark's baseline, pandas categoricals), a sync
  endpoint that builds ``pd.DataFrame(records)`` and calls ``predict_proba``.
* **floor**: no model, a bare ASGI app that reads the body and answers a fixed JSON: what the
  stack and the load generator cost before any work (left out of the ratios).

All load the same artifact with one scoring thread per call.

The load comes from a separate process (this file with ``--loadgen``): a small asyncio HTTP/1.1
client on keep-alive connections, on uvloop when installed, latencies on ``time.perf_counter``
(a full client such as httpx costs more CPU per request than
the servers under test, on a 2-core machine). Measurements:

* **fixed rate** (open loop): single-record requests sent on a schedule (200 and 1,000 req/s,
  10 s each after 1 s of warm-up). Latency counts from the scheduled send time, so a server that
  falls behind is charged for the queue it builds (no coordinated omission). Requests not
  answered within 10 s count as errors.
* **closed loop** (maximum records/s): 32 clients each sending single-record requests back to
  back, then 8 clients sending 100-record requests, 10 s each after 1 s of warm-up; records/s
  and latency per request. winnow also gets the same batches as Arrow IPC streams on
  ``/v1/score`` (``Content-Type: application/vnd.apache.arrow.stream``, the bulk route).

    python bench/http_latency.py                         # fits the screener if needed
    python bench/http_latency.py --rates 200 1000 --duration 10 --batch 100

Writes ``bench/out/http_latency.md`` and ``bench/out/http_latency.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "resume_callbacks.parquet"
OUT = ROOT / "bench" / "out"
TARGET = "received_callback"
FIT = {
    "target": TARGET,
    "positive": "1",
    "models": ["lightgbm", "linear"],
    "folds": 3,
    "threads": 1,
    "seed": 0,
}


# ---------------------------------------------------------------------------- servers
def naive_app(artifact: str, mode: str = "sync") -> Any:
    """A FastAPI endpoint that builds a DataFrame per request and calls the model.

    ``sync``: a plain ``def`` endpoint (FastAPI runs it in its threadpool, up to 40 at once);
    ``async``: an ``async def`` endpoint (requests are scored one after another on the loop).
    """
    import numpy as np
    import pandas as pd
    from fastapi import FastAPI

    from winnow import Screener

    if mode == "lgbm":
        score = lightgbm_defaults()
    else:
        screener = Screener.load(artifact)
        screener.set_threads(1)
        score = screener.score
    app = FastAPI()

    def predict(payload: dict[str, Any]) -> dict[str, Any]:
        records = payload["records"] if "records" in payload else [payload]
        scores = score(pd.DataFrame(records))
        return {"scores": [None if np.isnan(s) else float(s) for s in scores]}

    async def predict_async(payload: dict[str, Any]) -> dict[str, Any]:
        return predict(payload)

    app.post("/predict")(predict if mode == "sync" else predict_async)

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def lightgbm_defaults() -> Any:
    """LightGBM defaults (one thread) fitted on the task's rows: frame -> probabilities."""
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import quality

    quality.THREADS = 1
    df = pd.read_parquet(DATA)
    y, known, _ = quality.make_y(df, {"target": TARGET, "positive": FIT["positive"]})
    train = df[known].drop(columns=[TARGET]).reset_index(drop=True)
    roles = quality.baseline_roles(train, list(train.columns))
    predict, _, _ = quality.fit_lightgbm(train, y[known], roles, seed=0)
    return predict


def floor_app() -> Any:
    """No model at all: a bare ASGI app answering every POST with a fixed JSON body.

    The same uvicorn stack and load generator as the other servers, so its latency is the floor
    of this machine's measurement: what any endpoint pays before it does any work.
    """
    body = b'{"scores":[0.5]}'
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:  # read the whole body, as a real endpoint must
            more = (await receive()).get("more_body", False)
        await send(start)
        await send({"type": "http.response.body", "body": body})

    return app


def naive_factory() -> Any:
    return naive_app(os.environ["WINNOW_BENCH_ARTIFACT"], os.environ.get("WINNOW_BENCH_NAIVE", "sync"))


def run_naive(artifact: str, port: int, workers: int, mode: str) -> None:
    import uvicorn

    os.environ["WINNOW_BENCH_ARTIFACT"] = artifact
    os.environ["WINNOW_BENCH_NAIVE"] = mode
    uvicorn.run(
        "http_latency:floor_app" if mode == "floor" else "http_latency:naive_factory",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    import urllib.request

    out = open(log, "wb")  # the child writes to it; closed when this process ends
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {' '.join(cmd)}\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server not ready: {' '.join(cmd)}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---------------------------------------------------------------------------- load generator
class Conn:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.closed_by_server = False

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> int:
        """The answer's status; ``closed_by_server`` tells whether the server ended the connection."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        lines = header.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, chunked = 0, False
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
            elif k == b"connection" and b"close" in v.lower():
                self.closed_by_server = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def summary(lat: list[float], errors: int, seconds: float, records_per_request: int) -> dict[str, Any]:
    ms = [x * 1000 for x in lat]
    return {
        "requests_ok": len(lat),
        "errors": errors,
        "seconds": round(seconds, 3),
        "requests_per_s": round(len(lat) / seconds, 1),
        "records_per_s": round(len(lat) * records_per_request / seconds, 1),
        "p50_ms": pct(ms, 50),
        "p90_ms": pct(ms, 90),
        "p99_ms": pct(ms, 99),
        "max_ms": max(ms) if ms else None,
    }


# uvloop's loop.time() counts whole milliseconds: every latency is taken on this clock instead
now = time.perf_counter


async def fixed_rate(
    port: int, path: str, bodies: list[bytes], rate: float, duration: float, timeout: float
) -> dict[str, Any]:
    """Open loop: request i is due at start + i/rate; latency from the due time."""
    # first in, first out: every pooled connection stays in use, so none sits idle past the
    # server's keep-alive timeout (uvicorn: 5 s) and gets closed under us
    idle: collections.deque[Conn] = collections.deque()
    lat: list[float] = []
    errors = 0
    # at most this many connections (and requests in flight); later requests queue here, and
    # their wait counts in their latency
    slots = asyncio.Semaphore(256)

    async def one(due: float, body: bytes, measure: bool) -> None:
        nonlocal errors
        try:
            async with asyncio.timeout(max(0.001, due + timeout - now())), slots:
                reused = bool(idle)
                conn = idle.popleft() if idle else await Conn.open(port)
                try:
                    status = await conn.post(path, body)
                except (OSError, asyncio.IncompleteReadError):
                    conn.close()
                    if not reused:
                        raise
                    # closed by the server while idle: retry once on a new connection
                    conn = await Conn.open(port)
                    try:
                        status = await conn.post(path, body)
                    except BaseException:
                        conn.close()
                        raise
                except BaseException:
                    conn.close()
                    raise
                idle.append(conn)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            if measure:
                errors += 1
            return
        if measure:
            if status == 200:
                lat.append(now() - due)
            else:
                errors += 1

    warm = max(1, int(rate * 1.0))
    total = warm + int(rate * duration)
    t0 = now() + 0.05
    tasks = []
    for i in range(total):
        due = t0 + i / rate
        delay = due - now()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, bodies[i % len(bodies)], i >= warm)))
    await asyncio.gather(*tasks)
    for c in idle:
        c.close()
    # achieved rate: answers over the time from the first measured send to the last answer
    span = max(duration, now() - (t0 + warm / rate))
    out = summary(lat, errors, span, 1)
    out["target_rate"] = rate
    return out


async def closed_loop(
    port: int,
    path: str,
    bodies: list[bytes],
    clients: int,
    duration: float,
    per_request: int,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """``clients`` connections each sending requests back to back."""
    lat: list[float] = []
    errors = 0
    t_warm = now() + 1.0
    t_end = t_warm + duration

    async def client(k: int) -> None:
        nonlocal errors
        conn = await Conn.open(port)
        i = k
        while now() < t_end:
            t = now()
            try:
                status = await conn.post(path, bodies[i % len(bodies)], content_type)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                conn.close()
                conn = await Conn.open(port)
                status = 0
            i += clients
            if t >= t_warm and now() <= t_end:
                if status == 200:
                    lat.append(now() - t)
                else:
                    errors += 1
        conn.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    out = summary(lat, errors, duration, per_request)
    out["clients"] = clients
    out["records_per_request"] = per_request
    return out


def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    if "bodies_b64" in spec:  # binary bodies (Arrow IPC streams)
        bodies = [base64.b64decode(b) for b in spec["bodies_b64"]]
    else:
        bodies = [b.encode() for b in spec["bodies"]]
    if spec["mode"] == "rate":
        coro = fixed_rate(spec["port"], spec["path"], bodies, spec["rate"], spec["duration"], spec["timeout"])
    else:
        coro = closed_loop(
            spec["port"],
            spec["path"],
            bodies,
            spec["clients"],
            spec["duration"],
            spec["per_request"],
            spec.get("content_type", "application/json"),
        )
    try:  # the client's own cost per request is part of every latency measured: keep it low
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def run_loadgen(spec: dict[str, Any], script: str = __file__) -> dict[str, Any]:
    """The load generator (``script --loadgen``) in its own process; returns its JSON result."""
    proc = subprocess.run(
        [sys.executable, script, "--loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"load generator failed:\n{proc.stderr.decode()[-3000:]}")
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------- orchestration
def ensure_artifact(path: Path) -> Path:
    if (path / "manifest.json").exists():
        return path
    from winnow import Screener

    print(f"fitting the screener on {DATA.name} -> {path}", flush=True)
    return Screener().fit(DATA, **FIT).save(path)


def drain(port: int, path: str, body: str, seconds: float = 120.0) -> float:
    """Wait until the server answers a single request quickly again (its backlog is gone)."""
    import urllib.request

    t_start = time.monotonic()
    fast = 0
    while fast < 3 and time.monotonic() - t_start < seconds:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=body.encode(), headers={"Content-Type": "application/json"}
        )
        t = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
        except OSError:
            time.sleep(0.5)
            continue
        fast = fast + 1 if time.monotonic() - t < 0.1 else 0
        time.sleep(0.1)
    return time.monotonic() - t_start


def scrape_batches(port: int) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    vals = {}
    for ln in text.splitlines():
        for name in ("winnow_batch_records_sum", "winnow_batch_records_count", "winnow_batch_requests_sum"):
            if ln.startswith(name + " "):
                vals[name] = float(ln.split()[-1])
    return vals


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def render(report: dict[str, Any]) -> str:
    lines = [
        "# HTTP latency: winnow serve vs a naive FastAPI endpoint",
        "",
        f"Run {report['started']} on {report['machine']} ({report['cpus']} CPUs), "
        f"{report['workers']} uvicorn worker(s) per server, Python "
        f"{report['python']}, uvicorn {report['uvicorn']} ({report.get('http_stack', 'h11, asyncio')}), "
        "load average before/after "
        f"{report['load_before']} / {report['load_after']}.",
        "",
        f"Command: `{report['command']}`",
        "",
        "Data: resume_callbacks (29 fields per record); model LightGBM + linear, 1 scoring thread. "
        "winnow: `POST /v1/screen` (score, select, reasons); naive: `POST /predict` "
        "(`pd.DataFrame(records)` then `Screener.score`). Load from a separate process on loopback.",
        "",
        "## Single-record requests at a fixed rate (open loop, latency from the scheduled send)",
        "",
        "| server | target req/s | achieved req/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["fixed_rate"]:
        lines.append(
            f"| {r['server']} | {fmt(r['target_rate'], 0)} | {fmt(r['requests_per_s'])} "
            f"| {fmt(r['p50_ms'], 2)} | {fmt(r['p90_ms'], 2)} | {fmt(r['p99_ms'], 2)} "
            f"| {fmt(r['max_ms'], 0)} | {r['errors']} |"
        )
    lines += [
        "",
        "## Closed loop: maximum records/s (single records, and batches of records)",
        "",
        "| server | route | clients | records/request | records/s | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["batched"]:
        lines.append(
            f"| {r['server']} | `{r['route']}` | {r['clients']} | {r['records_per_request']} "
            f"| {fmt(r['records_per_s'], 0)} "
            f"| {fmt(r['requests_per_s'])} | {fmt(r['p50_ms'], 1)} | {fmt(r['p99_ms'], 1)} | {r['errors']} |"
        )
    lines += ["", "## winnow micro-batches (from its /metrics)", ""]
    for phase, v in report["winnow_batches"].items():
        lines.append(
            f"- {phase}: {fmt(v.get('records_per_batch'))} records and "
            f"{fmt(v.get('requests_per_batch'))} requests per model call"
        )
    lines += ["", "## Ratios (winnow / naive)", ""]
    for k, v in report["ratios"].items():
        lines.append(f"- {k}: {fmt(v, 2)}")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifact", type=Path, default=OUT / "http_latency_screener")
    ap.add_argument("--rates", type=float, nargs="+", default=[200.0, 1000.0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--clients", type=int, default=8, help="closed-loop clients for batched requests")
    ap.add_argument("--single-clients", type=int, default=32, help="closed-loop clients, single records")
    ap.add_argument("--batch-wait-ms", type=float, default=0.0, help="winnow serve --batch-wait-ms")
    ap.add_argument("--inline-records", type=int, default=256, help="winnow serve --inline-records")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument(
        "--servers",
        nargs="+",
        default=["winnow", "naive", "naive_async", "naive_lgbm"],
        choices=["winnow", "naive", "naive_async", "naive_lgbm", "floor"],
    )
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of both servers")
    ap.add_argument("--rates-only", action="store_true", help="only the fixed-rate phases (no closed loop)")
    ap.add_argument(
        "--naive-server", nargs=4, metavar=("ARTIFACT", "PORT", "WORKERS", "MODE"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.loadgen:
        print(json.dumps(loadgen(json.loads(sys.stdin.read()))))
        return
    if args.naive_server:
        run_naive(
            args.naive_server[0], int(args.naive_server[1]), int(args.naive_server[2]), args.naive_server[3]
        )
        return

    import pyarrow as pa
    import pyarrow.parquet as pq
    import uvicorn

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    print(command, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    artifact = ensure_artifact(args.artifact)
    records = pq.read_table(DATA).drop([TARGET]).slice(0, 1000).to_pylist()
    singles = [json.dumps(r) for r in records]
    batches = [
        json.dumps({"records": records[i : i + args.batch]})
        for i in range(0, len(records) - args.batch + 1, args.batch)
    ]
    arrow_batches = [
        base64.b64encode(_arrow_stream(pa.Table.from_pylist(records[i : i + args.batch]))).decode()
        for i in range(0, len(records) - args.batch + 1, args.batch)
    ]
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "http_stack": _http_stack(),
        "workers": args.workers,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "fixed_rate": [],
        "batched": [],
        "winnow_batches": {},
    }
    for server in args.servers:
        path = "/v1/screen" if server == "winnow" else "/predict"
        phases: list[tuple[str, dict[str, Any]]] = [
            (f"{rate:g} req/s single", {"mode": "rate", "bodies": singles, "rate": rate, "path": path})
            for rate in args.rates
        ]
        closed = [(singles, args.single_clients, 1, path), (batches, args.clients, args.batch, path)]
        if server == "winnow":  # the same work as the naive endpoint: scores only
            closed.append((batches, args.clients, args.batch, "/v1/score"))
        if args.rates_only:
            closed = []
        for bodies, clients, per_request, route in closed:
            spec = {"mode": "closed", "bodies": bodies, "clients": clients, "per_request": per_request}
            phases.append((f"closed loop, {per_request} record(s)/request, {route}", {**spec, "path": route}))
        if server == "winnow" and not args.rates_only:  # the bulk route: the same batches as Arrow IPC
            spec = {
                "mode": "closed",
                "bodies_b64": arrow_batches,
                "content_type": ARROW_STREAM,
                "clients": args.clients,
                "per_request": args.batch,
                "label": "/v1/score (Arrow IPC)",
            }
            phases.append(
                (f"closed loop, {args.batch} record(s)/request, Arrow IPC", {**spec, "path": "/v1/score"})
            )
        for phase, spec in phases:
            # a fresh server per phase: a server that fell behind in one phase must not carry its
            # backlog (requests still queued in its threadpool) into the next
            port = free_port()
            if server == "winnow":
                code = (
                    "from pathlib import Path; from winnow.serve.cli import serve; "
                    f"serve(Path({str(artifact)!r}), port={port}, access_log=False, log_level='warning', "
                    f"batch_wait_ms={args.batch_wait_ms}, inline_records={args.inline_records}, "
                    f"workers={args.workers})"
                )
                cmd = [sys.executable, "-c", code]
            else:
                mode = {"naive_async": "async", "naive_lgbm": "lgbm", "floor": "floor"}.get(server, "sync")
                cmd = [
                    sys.executable,
                    __file__,
                    "--naive-server",
                    str(artifact),
                    str(port),
                    str(args.workers),
                    mode,
                ]
            print(f"[{server}] {phase}: starting on 127.0.0.1:{port}", flush=True)
            proc = start(cmd, port, args.out / f"http_latency_{server}.log")
            try:
                drain(port, path, singles[0])  # warm: the first requests load lazily imported code
                before = scrape_batches(port) if server == "winnow" else {}
                res = run_loadgen({**spec, "port": port, "duration": args.duration, "timeout": args.timeout})
                res["server"] = server
                if spec["mode"] == "rate":
                    report["fixed_rate"].append(res)
                else:
                    res["route"] = spec.get("label", spec["path"])
                    report["batched"].append(res)
                print(f"[{server}] {phase}: {res}", flush=True)
                if server == "winnow":
                    report["winnow_batches"][phase] = _batch_stats(before, scrape_batches(port))
            finally:
                stop(proc)
    report["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report["ratios"] = _ratios(report)
    (args.out / "http_latency.json").write_text(json.dumps(report, indent=2))
    (args.out / "http_latency.md").write_text(render(report))
    print(render(report))
    print(f"written {args.out / 'http_latency.md'} and {args.out / 'http_latency.json'}")


ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _arrow_stream(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _http_stack() -> str:
    """What uvicorn's "auto" settings pick here: httptools/h11 and uvloop/asyncio."""
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"{http}, {loop}"


def _batch_stats(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    n = after.get("winnow_batch_records_count", 0) - before.get("winnow_batch_records_count", 0)
    if n <= 0:
        return {"records_per_batch": None, "requests_per_batch": None}
    recs = after["winnow_batch_records_sum"] - before.get("winnow_batch_records_sum", 0)
    reqs = after["winnow_batch_requests_sum"] - before.get("winnow_batch_requests_sum", 0)
    return {"records_per_batch": recs / n, "requests_per_batch": reqs / n}


def _ratios(report: dict[str, Any]) -> dict[str, float | None]:
    """winnow against each naive variant, phase by phase."""
    out: dict[str, float | None] = {}
    naive = sorted({r["server"] for r in report["fixed_rate"] + report["batched"]} - {"winnow", "floor"})
    for name in naive:
        for w in report["fixed_rate"]:
            same = [r for r in report["fixed_rate"] if r["target_rate"] == w["target_rate"]]
            n = next((r for r in same if r["server"] == name), None)
            if w["server"] != "winnow" or n is None:
                continue
            rate = f"{w['target_rate']:g} req/s vs {name}"
            out[f"{rate}: achieved req/s"] = (
                w["requests_per_s"] / n["requests_per_s"] if n["requests_per_s"] else None
            )
            if w["p99_ms"] and n["p99_ms"]:
                out[f"{rate}: p99 (naive / winnow)"] = n["p99_ms"] / w["p99_ms"]
        for w in report["batched"]:
            per = w["records_per_request"]
            same = [r for r in report["batched"] if r["records_per_request"] == per]
            n = next((r for r in same if r["server"] == name), None)
            if w["server"] != "winnow" or n is None or not n["records_per_s"]:
                continue
            what = f"closed loop {per} record(s)/request {w['route']} vs {name}"
            out[f"{what}: records/s"] = w["records_per_s"] / n["records_per_s"]
            if w["p99_ms"] and n["p99_ms"]:
                out[f"{what}: p99 (naive / winnow)"] = n["p99_ms"] / w["p99_ms"]
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
