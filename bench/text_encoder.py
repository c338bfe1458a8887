"""Text columns: sentence-encoder embeddings vs hashed TF-IDF vs both, on the fine-food reviews.

Task: ``score == "great"`` from the review text (bench/tasks.py ``fine_food_reviews``; the
product id is not used), 5,000 reviews, stratified 80/20 split per seed. For each seed and each
``text`` mode (tfidf, encoder, both) winnow fits its linear member only (``models=["linear"]``),
so the comparison is about the text representation; ``both (balanced)`` is the default portfolio
with ``text="both"``. A ``+ft`` mode (``encoder+ft``, ``both+ft``) first fine-tunes the
encoder's top layers on the training labels (``finetune_text``). ``--train-rows N`` fits on a
stratified N-row sample of each training part (fewer labels), same test part. Metrics on the
outer test part; medians over seeds.

Latency: for the first seed, each mode's screener scores single records of the test part through
the online scorer (the service's and stream worker's path), each text changed by one appended
token so no embedding comes from the cache; the median of 50 records.

Throughput: all reviews embedded once with an empty cache (texts/s on this machine's threads),
then again from the cache (the speed-up of a re-fit).

    python bench/text_encoder.py
    python bench/text_encoder.py --seeds 0 --modes tfidf encoder
    python bench/text_encoder.py --seeds 0 1 --modes tfidf encoder both encoder+ft both+ft
    python bench/text_encoder.py --seeds 0 1 2 --train-rows 500 --modes tfidf encoder encoder+ft
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fine_food_reviews.parquet"
OUT = ROOT / "bench" / "out"


def load() -> pd.DataFrame:
    df = pd.read_parquet(DATA)
    return df[["review", "score"]].reset_index(drop=True)


def score_metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score

    k = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-s, kind="stable")[:k]
    return {"auc_pr": float(average_precision_score(y, s)), "recall_top10": float(y[top].sum() / y.sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--modes", nargs="+", default=["tfidf", "encoder", "both", "both (balanced)"])
    ap.add_argument("--train-rows", type=int, default=None, help="labelled rows to fit on (default: all)")
    ap.add_argument("--name", default="text_encoder", help="report file name (bench/out/NAME.md)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from sklearn.model_selection import train_test_split

    from winnow import Screener
    from winnow.prep.encoder import TextEncoder, load_model

    t0 = time.perf_counter()
    cache = Path(tempfile.mkdtemp(prefix="winnow-bench-emb-"))
    os.environ["WINNOW_CACHE_DIR"] = str(cache)
    df = load()
    y_all = (df["score"] == "great").to_numpy().astype(int)
    report: dict[str, Any] = {
        "command": "python bench/text_encoder.py " + " ".join(sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "rows": len(df),
        "positive_rate": float(y_all.mean()),
    }
    import torch

    t = time.perf_counter()
    load_model()
    report["model_load_seconds"] = round(time.perf_counter() - t, 2)
    enc = TextEncoder(cache_dir=cache)
    texts = df["review"].tolist()
    t = time.perf_counter()
    enc.encode(texts)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    TextEncoder(cache_dir=cache).encode(texts)
    warm = time.perf_counter() - t
    report["throughput"] = {
        "texts": len(texts),
        "distinct_embedded": enc.computed,
        "torch_threads": torch.get_num_threads(),
        "cold_seconds": round(cold, 2),
        "texts_per_second": round(enc.computed / cold, 1),
        "cached_seconds": round(warm, 3),
        "cache_speedup": round(cold / warm, 1),
        "mean_words": float(df["review"].str.split().str.len().mean()),
    }
    print(f"embedding: {report['throughput']}", file=sys.stderr, flush=True)
    runs = []
    for seed in args.seeds:
        tr, te = train_test_split(np.arange(len(df)), test_size=0.2, stratify=y_all, random_state=seed)
        if args.train_rows is not None and args.train_rows < len(tr):
            tr, _ = train_test_split(tr, train_size=args.train_rows, stratify=y_all[tr], random_state=seed)
        train, test = df.iloc[tr].reset_index(drop=True), df.iloc[te].reset_index(drop=True)
        for mode in args.modes:
            opts: dict[str, Any] = {"target": "score", "positive": "great", "seed": seed}
            text = mode.removesuffix("+ft")
            if text == "both (balanced)":
                opts["text"] = "both"
            else:
                opts.update(text=text, models=["linear"])
            if mode.endswith("+ft"):
                opts["finetune_text"] = True
            t = time.perf_counter()
            s = Screener().fit(train, **opts)
            fit_s = time.perf_counter() - t
            m = score_metrics(y_all[te], s.score(test.drop(columns=["score"])))
            run: dict[str, Any] = {"seed": seed, "mode": mode, **m, "fit_seconds": round(fit_s, 1)}
            if "text_finetune" in s.metrics_:
                run["finetune"] = s.metrics_["text_finetune"]["review"]
            if seed == args.seeds[0]:
                run["latency_ms"] = single_record_ms(s, test.drop(columns=["score"]))
            runs.append(run)
            print(
                f"seed {seed} {mode:16s} AUC-PR {m['auc_pr']:.4f} fit {fit_s:.1f}s "
                f"{run.get('latency_ms', '')} {run.get('finetune', '')}",
                file=sys.stderr,
                flush=True,
            )
    report["runs"] = runs
    report["median"] = {
        mode: {
            k: float(np.median([r[k] for r in runs if r["mode"] == mode]))
            for k in ("auc_pr", "recall_top10", "fit_seconds")
        }
        for mode in args.modes
    }
    report["train_rows"] = args.train_rows
    report["latency_ms"] = {r["mode"]: r["latency_ms"] for r in runs if "latency_ms" in r}
    report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    md = markdown(report, args.seeds)
    (args.out / f"{args.name}.md").write_text(md)
    print(md)
    return 0


def single_record_ms(screener: Any, test: pd.DataFrame, n: int = 50) -> float:
    """Median milliseconds to score one record through the online scorer, text not cached."""
    from winnow.online import OnlineScorer

    scorer = OnlineScorer(screener)
    recs = json.loads(test.head(n).to_json(orient="records"))
    scorer.score_records([dict(recs[0], review="warm-up")], threshold=0.5)  # loads the encoder
    times = []
    for i, rec in enumerate(recs):
        rec = dict(rec, review=f"{rec['review']} ({i} {time.time_ns()})")  # never seen before
        t = time.perf_counter()
        scorer.score_records([rec], threshold=0.5)
        times.append(time.perf_counter() - t)
    return round(1000 * float(np.median(times)), 1)


def markdown(r: dict[str, Any], seeds: list[int]) -> str:
    th = r["throughput"]
    lines = [
        "# Text columns: sentence encoder vs hashed TF-IDF (fine-food reviews)",
        "",
        f"Command: `{r['command'].strip()}`",
        "",
        f"Run {r['started']} on {r['machine']}; total {r['total_seconds']:.0f}s; load average "
        f"{r['load_average_start']} at the start, {r['load_average_end']} at the end. {r['rows']:,} reviews "
        f"({r['positive_rate']:.1%} great), seeds {', '.join(map(str, seeds))}, medians; "
        + ("all training rows" if not r.get("train_rows") else f"{r['train_rows']:,} labelled training rows")
        + ".",
        "",
        "| text mode | AUC-PR | recall@top10% | fit s | one record, ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode, m in r["median"].items():
        ms = r.get("latency_ms", {}).get(mode)
        lines.append(
            f"| {mode} | {m['auc_pr']:.4f} | {m['recall_top10']:.3f} | {m['fit_seconds']:.1f} | "
            f"{'-' if ms is None else f'{ms:.1f}'} |"
        )
    for run in r["runs"]:
        if "finetune" in run:
            f = run["finetune"]
            lines.append(
                f"\nFine-tuning, seed {run['seed']} ({run['mode']}): {f['epochs']} epochs (best "
                f"{f['best_epoch']}), validation loss {f['valid_loss_start']} -> {f['valid_loss']} on "
                f"{f['valid_texts']:,} held-out texts, {f['seconds']}s."
            )
    lines += [
        "",
        f"Embedding throughput: {th['distinct_embedded']:,} distinct reviews "
        f"(mean {th['mean_words']:.0f} words) in {th['cold_seconds']:.1f}s = "
        f"**{th['texts_per_second']:.1f} texts/s** with {th['torch_threads']} "
        f"torch threads; again from the cache in {th['cached_seconds']:.3f}s "
        f"(**{th['cache_speedup']:.0f}x**). "
        f"Model load {r['model_load_seconds']}s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
