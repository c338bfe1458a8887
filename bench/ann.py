"""Approximate nearest-neighbour search on 1M real embeddings: recall@10 vs exact, queries/s,
build seconds and memory for faiss (HNSW, IVF), hnswlib and usearch.

The embeddings are real: a screener with a TabM member (``--model tabm``) is fitted on 100,000
NYC flights of 2013 (late >= 60 min, pre-departure columns), then embeds the 336,776 flights plus
two perturbed copies (scheduled times moved by up to +-45 min, day by up to +-3, distance by up to
+-3%), 1,010,328 rows of 128 dims. A seeded permutation puts 1,000,000 in the index and 1,000
of the rest are the queries (cosine similarity: vectors L2-normalised, inner product).

    pip install faiss-cpu usearch             # the candidates winnow does not depend on
    python bench/ann.py embed                 # once: fit + embed, cached in bench/out/ann/
    python bench/ann.py run --repeats 3       # every candidate, one process each, 1 thread
    python bench/ann.py stream                # winnow similar: streamed vs exact / HNSW index

Each candidate runs in its own process (peak RSS is that process's), single-threaded so the
build is deterministic and the numbers do not depend on what else the machine runs; one
candidate at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nyc_flights_2013.parquet"
OUT = ROOT / "bench" / "out" / "ann"
LEAKY = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
N_INDEX = 1_000_000
N_QUERIES = 1_000
K = 10
SEED = 0

# name -> (library, build parameters, list of search settings)
CANDIDATES: dict[str, tuple[str, dict[str, Any], list[dict[str, Any]]]] = {
    "faiss-hnsw32": ("faiss-hnsw", {"M": 32, "efConstruction": 40}, [{"ef": e} for e in (16, 32, 64, 128)]),
    "faiss-ivf4096-flat": ("faiss-ivf", {"nlist": 4096}, [{"nprobe": p} for p in (8, 16, 32, 64)]),
    "faiss-ivf4096-sq8": ("faiss-ivf-sq8", {"nlist": 4096}, [{"nprobe": p} for p in (8, 16, 32, 64)]),
    "hnswlib-M16": ("hnswlib", {"M": 16, "ef_construction": 100}, [{"ef": e} for e in (16, 32, 64, 128)]),
    "usearch-M16-f32": (
        "usearch",
        {"M": 16, "expansion_add": 128, "dtype": "f32"},
        [{"ef": e} for e in (16, 32, 64, 128)],
    ),
    # matched graph settings (M=16, 100 candidates when adding) for the three HNSW libraries
    "faiss-hnsw16-efc100": (
        "faiss-hnsw",
        {"M": 16, "efConstruction": 100},
        [{"ef": e} for e in (16, 32, 64, 128)],
    ),
    "usearch-M16-f32-add100": (
        "usearch",
        {"M": 16, "expansion_add": 100, "dtype": "f32"},
        [{"ef": e} for e in (16, 32, 64, 128)],
    ),
    "usearch-M16-f16": (
        "usearch",
        {"M": 16, "expansion_add": 128, "dtype": "f16"},
        [{"ef": e} for e in (16, 32, 64, 128)],
    ),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- data
def widened_flights() -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(DATA).drop_columns(LEAKY)
    rng = np.random.default_rng(SEED)
    parts = [t]
    for _ in range(2):
        n = t.num_rows

        def shift_hhmm(col: Any, minutes: np.ndarray) -> Any:
            v = col.to_numpy(zero_copy_only=False).astype(np.float64)
            mins = (v // 100) * 60 + v % 100 + minutes
            mins = np.clip(mins, 0, 23 * 60 + 59)
            return pa.array((mins // 60) * 100 + mins % 60, col.type, mask=np.isnan(v))

        minutes = rng.integers(-45, 46, n)
        c = t.set_column(
            t.schema.get_field_index("sched_dep_time"),
            "sched_dep_time",
            shift_hhmm(t["sched_dep_time"].combine_chunks(), minutes),
        )
        c = c.set_column(
            c.schema.get_field_index("sched_arr_time"),
            "sched_arr_time",
            shift_hhmm(c["sched_arr_time"].combine_chunks(), minutes),
        )
        day = np.clip(t["day"].to_numpy() + rng.integers(-3, 4, n), 1, 28)
        c = c.set_column(c.schema.get_field_index("day"), "day", pa.array(day, t["day"].type))
        dist = pc.multiply(t["distance"].cast(pa.float64()), pa.array(1 + rng.uniform(-0.03, 0.03, n)))
        c = c.set_column(c.schema.get_field_index("distance"), "distance", dist)
        parts.append(c.cast(t.schema, safe=False))
    return pa.concat_tables(parts)


def embed(args: argparse.Namespace) -> None:
    """Fit the screener (or reuse it) and write embeddings.npy."""
    import pandas as pd

    from winnow import Screener
    from winnow.io.readers import open_source
    from winnow.similarity.embedding import embedder

    OUT.mkdir(parents=True, exist_ok=True)
    art = OUT / "screener"
    if not art.exists():
        df = pd.read_parquet(DATA)
        df = df[df["arr_delay"].notna()].copy()
        df["late_60"] = (df["arr_delay"] >= 60).astype("int64")
        df = df.drop(columns=LEAKY).sample(100_000, random_state=SEED)
        log(f"fitting a TabM screener on {len(df):,} flights")
        t = time.perf_counter()
        s = Screener().fit(
            df,
            target="late_60",
            positive="1",
            models=["tabm"],
            threads=1,
            seed=SEED,
            time_limit=args.fit_seconds,
        )
        s.save(art)
        log(f"fitted in {time.perf_counter() - t:.0f}s: {s}")
    s = Screener.load(art)
    s.set_threads(1)
    table = widened_flights()
    emb = embedder(s)
    log(f"embedding {table.num_rows:,} rows: {emb.describe()}")
    t = time.perf_counter()
    parts = [e for _, _, _, e in emb.batches(open_source(table), 65_536)]
    x = np.concatenate(parts)
    secs = time.perf_counter() - t
    np.save(OUT / "embeddings.npy", x)
    (OUT / "embeddings.json").write_text(
        json.dumps(
            {
                "rows": int(x.shape[0]),
                "dim": int(x.shape[1]),
                "embed_seconds": round(secs, 1),
                "embed_rows_per_s": round(x.shape[0] / secs),
                "embedding": emb.describe(),
                "zero_rows": int((np.abs(x).sum(1) == 0).sum()),
            },
            indent=2,
        )
    )
    log(f"embedded {x.shape} in {secs:.0f}s ({x.shape[0] / secs:,.0f} rows/s)")


def split() -> tuple[np.ndarray, np.ndarray]:
    x = np.load(OUT / "embeddings.npy", mmap_mode="r")
    perm = np.random.default_rng(SEED).permutation(x.shape[0])
    base = normalise(np.asarray(x[np.sort(perm[:N_INDEX])]))
    queries = normalise(np.asarray(x[perm[N_INDEX : N_INDEX + N_QUERIES]]))
    return base, queries


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def ground_truth() -> np.ndarray:
    path = OUT / "truth.npy"
    if path.exists():
        return np.load(path)
    base, queries = split()
    log("exact top-10 of the queries (numpy/BLAS)")
    truth = np.empty((len(queries), K), np.int64)
    for i in range(0, len(queries), 100):
        sims = queries[i : i + 100] @ base.T
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1, kind="stable")
        truth[i : i + 100] = np.take_along_axis(top, order, 1)
    np.save(path, truth)
    return truth


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


# ------------------------------------------------------------------------------- candidates
_KEEP: list[Any] = []


def build(lib: str, params: dict[str, Any], base: np.ndarray) -> tuple[Any, int]:
    """(index, serialised bytes)."""
    dim = base.shape[1]
    if lib.startswith("faiss"):
        import faiss

        faiss.omp_set_num_threads(1)
        if lib == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params["efConstruction"]
        else:
            quant = faiss.IndexFlatIP(dim)
            if lib == "faiss-ivf":
                index = faiss.IndexIVFFlat(quant, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexIVFScalarQuantizer(
                    quant, dim, params["nlist"], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
                )
            index.cp.seed = SEED
            sample = base[np.random.default_rng(SEED).choice(len(base), 40 * params["nlist"], replace=False)]
            index.train(sample)
            _KEEP.append(quant)  # the index does not own its quantizer
        index.add(base)
        return index, int(faiss.serialize_index(index).nbytes)
    if lib == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(
            max_elements=len(base), M=params["M"], ef_construction=params["ef_construction"], random_seed=SEED
        )
        index.set_num_threads(1)
        index.add_items(base, np.arange(len(base)), num_threads=1)
        path = OUT / "tmp.hnswlib"
        index.save_index(str(path))
        size = path.stat().st_size
        path.unlink()
        return index, size
    if lib == "usearch":
        from usearch.index import Index

        index = Index(
            ndim=dim,
            metric="ip",
            dtype=params["dtype"],
            connectivity=params["M"],
            expansion_add=params["expansion_add"],
        )
        index.add(np.arange(len(base), dtype=np.uint64), base, threads=1)
        return index, len(index.save())
    raise ValueError(lib)


def search(lib: str, index: Any, queries: np.ndarray, setting: dict[str, Any]) -> np.ndarray:
    if lib.startswith("faiss"):
        if "ef" in setting:
            index.hnsw.efSearch = setting["ef"]
        else:
            index.nprobe = setting["nprobe"]
        return index.search(queries, K)[1]
    if lib == "hnswlib":
        index.set_ef(setting["ef"])
        return index.knn_query(queries, k=K, num_threads=1)[0].astype(np.int64)
    if lib == "usearch":
        index.expansion_search = setting["ef"]
        return index.search(queries, K, threads=1).keys.astype(np.int64)
    raise ValueError(lib)


def rss_mib() -> float:
    """Resident memory now (not the peak: the split's temporary copies would hide the index)."""
    import gc

    gc.collect()
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def one(name: str, repeats: int) -> dict[str, Any]:
    lib, params, settings = CANDIDATES[name]
    base, queries = split()
    truth = ground_truth()
    rss0 = rss_mib()
    t = time.perf_counter()
    index, nbytes = build(lib, params, base)
    build_s = time.perf_counter() - t
    rss1 = rss_mib()
    log(f"{name}: built in {build_s:.0f}s, {nbytes / 2**20:.0f} MiB serialised")
    rows = []
    for setting in settings:
        times, found = [], None
        for _ in range(repeats):
            t = time.perf_counter()
            found = search(lib, index, queries, setting)
            times.append(time.perf_counter() - t)
        qps = len(queries) / statistics.median(times)
        rows.append({"setting": setting, "recall_at_10": recall(found, truth), "queries_per_s": round(qps)})
        log(f"{name} {setting}: recall@10 {rows[-1]['recall_at_10']:.4f}, {qps:,.0f} q/s")
    return {
        "candidate": name,
        "library": lib,
        "params": params,
        "build_seconds": round(build_s, 1),
        "index_mib": round(nbytes / 2**20, 1),
        "rss_growth_mib": round(rss1 - rss0),
        "searches": rows,
    }


def exact(repeats: int) -> dict[str, Any]:
    """The reference: brute force with numpy/BLAS and faiss IndexFlatIP, 1 thread."""
    import faiss

    faiss.omp_set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    base, queries = split()
    truth = ground_truth()
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        found = flat.search(queries[:200], K)[1]
        times.append(time.perf_counter() - t)
    return {
        "candidate": "exact (faiss IndexFlatIP)",
        "library": "faiss-flat",
        "params": {},
        "build_seconds": 0.0,
        "index_mib": round(base.nbytes / 2**20, 1),
        "rss_growth_mib": None,
        "searches": [
            {
                "setting": {},
                "recall_at_10": recall(found, truth[:200]),
                "queries_per_s": round(200 / statistics.median(times)),
            }
        ],
    }


def run(args: argparse.Namespace) -> None:
    ground_truth()
    results = []
    path = OUT / "results.json"
    if path.exists() and args.resume:
        results = json.loads(path.read_text())["results"]
    done = {r["candidate"] for r in results}
    names = ["exact", *CANDIDATES] if not args.only else args.only
    for name in names:
        if name in done or (name == "exact" and "exact (faiss IndexFlatIP)" in done):
            continue
        log(f"--- {name} (load average {os.getloadavg()[0]:.2f})")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run(
            [sys.executable, __file__, "one", name, "--repeats", str(args.repeats)],
            env=env,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        res = json.loads(proc.stdout)
        res["load_average_1min"] = round(os.getloadavg()[0], 2)
        results.append(res)
        path.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    print(table(results))


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| candidate | search setting | recall@10 | queries/s (1 thread) | build s | index MiB "
        "| RSS growth MiB (build) | load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for s in r["searches"]:
            setting = ", ".join(f"{k}={v}" for k, v in s["setting"].items()) or "-"
            lines.append(
                f"| {r['candidate']} | {setting} | {s['recall_at_10']:.4f} | {s['queries_per_s']:,} "
                f"| {r['build_seconds']:.0f} | {r['index_mib']:.0f} | {r.get('rss_growth_mib') or '-'} "
                f"| {r.get('load_average_1min', '-')} |"
            )
    return "\n".join(lines)


def stream(args: argparse.Namespace) -> None:
    """Which default for `winnow similar`: stream + exact cosine, or a saved index?"""
    import pyarrow.parquet as pq

    from winnow import Screener
    from winnow.similarity.search import normalise

    path = OUT / "flights_1m.parquet"
    if not path.exists():
        pq.write_table(widened_flights(), path, row_group_size=100_000, compression="zstd")
    s = Screener.load(OUT / "screener")
    s.set_threads(1)
    x = np.load(OUT / "embeddings.npy", mmap_mode="r")
    rng = np.random.default_rng(SEED)
    examples_rows = np.sort(rng.choice(x.shape[0], args.examples, replace=False))
    examples = pq.read_table(path).take(examples_rows)
    ex = normalise(np.asarray(x[examples_rows]))
    res: dict[str, Any] = {
        "rows": int(x.shape[0]),
        "examples": args.examples,
        "top": args.top,
        "load_average_start": round(os.getloadavg()[0], 2),
    }
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for i in range(0, x.shape[0], 65_536):
            (normalise(np.asarray(x[i : i + 65_536])) @ ex.T).max(axis=1)
        times.append(time.perf_counter() - t)
    res["exact_scoring_seconds"] = round(statistics.median(times), 2)
    log(
        f"exact cosine of {x.shape[0]:,} stored embeddings with {args.examples} examples: "
        f"{res['exact_scoring_seconds']}s"
    )
    runs: dict[str, dict[str, Any]] = {"streamed": {}}
    for kind in args.kinds:
        ix = OUT / f"flights-{kind}.index"
        runs[f"{kind} index build"] = {"index": ix, "index_kind": kind}
        runs[f"{kind} index reuse"] = {"index": ix, "index_kind": kind}
    for name, extra in runs.items():
        if name.endswith("build") and extra["index"].exists():
            import shutil

            shutil.rmtree(extra["index"])
        t = time.perf_counter()
        r = s.similar(
            path, examples, top=args.top, out=OUT / f"similar-{name.replace(' ', '-')}.parquet", **extra
        )
        res[f"{name} seconds"] = round(time.perf_counter() - t, 1)
        log(f"winnow similar, {name}: {res[f'{name} seconds']}s ({r.summary.method})")
    a = pq.read_table(OUT / "similar-streamed.parquet").column("row").to_pylist()
    for kind in args.kinds:
        b = pq.read_table(OUT / f"similar-{kind}-index-reuse.parquet").column("row").to_pylist()
        res[f"{kind}_index_top_overlap"] = len(set(a) & set(b)) / max(len(a), 1)
    res["load_average_end"] = round(os.getloadavg()[0], 2)
    (OUT / f"stream-{'-'.join(args.kinds)}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed")
    e.add_argument("--fit-seconds", type=float, default=240)
    r = sub.add_parser("run")
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--only", nargs="*")
    r.add_argument("--resume", action="store_true")
    st = sub.add_parser("stream")
    st.add_argument("--examples", type=int, default=10)
    st.add_argument("--top", type=int, default=1000)
    st.add_argument("--repeats", type=int, default=3)
    st.add_argument("--kinds", nargs="+", default=["exact", "hnsw"])
    o = sub.add_parser("one")
    o.add_argument("name")
    o.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if args.cmd == "embed":
        embed(args)
    elif args.cmd == "run":
        run(args)
    elif args.cmd == "stream":
        stream(args)
    elif args.cmd == "one":
        res = exact(args.repeats) if args.name == "exact" else one(args.name, args.repeats)
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
