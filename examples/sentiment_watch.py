"""A sentiment watch: a stream of reviews in, the most negative ones screened, a digest out.

Fits a screener of "not great" fine-food reviews on the shared data's train split, starts a
throwaway Redis server, streams the other reviews through it, lets the stream worker screen them
into a DuckDB sink (every scored review audited) and offer the selected ones and a sample of the
rest for review, then writes the digest of what was screened:

    python examples/sentiment_watch.py --out watch/      # needs redis-server on PATH
    # then: watch/digest.html, watch/digest.md; review with
    winnow serve watch/screener --review duckdb:watch/reviews.duckdb   # http://127.0.0.1:8000/review
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fine_food_reviews.parquet"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("watch"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--budget", type=float, default=0.05, help="share of reviews screened out")
    ap.add_argument("--preset", default="balanced", help="winnow's preset (fast: a quick look)")
    args = ap.parse_args()

    import redis

    from winnow import Screener
    from winnow.io.readers import open_source
    from winnow.io.sinks import DuckDBSink
    from winnow.online import OnlineScorer
    from winnow.report.digest import build_digest
    from winnow.report.digest_page import digest_html, digest_markdown
    from winnow.review.store import ReviewStore
    from winnow.stream.source import RedisSource
    from winnow.stream.worker import StreamWorker

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_parquet(args.data)
    train, stream = df[df["split"] == "train"], df[df["split"] != "train"]
    print(f"fitting on {len(train):,} reviews (high-value = score 'other': not great)")
    screener = Screener().fit(
        train.drop(columns="split"),
        target="score",
        positive="other",
        drop=["product"],
        budget=args.budget,
        seed=0,
    )
    art = screener.save(out / "screener")

    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found: apt-get install redis-server")
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="winnow-watch-redis-")
    server = subprocess.Popen(
        [exe, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        rows = stream.drop(columns=["split", "score"]).reset_index(drop=True)
        pipe = r.pipeline(transaction=False)
        for i, rec in enumerate(rows.to_dict("records")):
            pipe.xadd(
                "reviews", {"id": f"review-{i}", **{k: "" if v is None else str(v) for k, v in rec.items()}}
            )
        pipe.execute()
        print(f"streaming {len(rows):,} reviews")
        sink = out / "sink.duckdb"
        worker = StreamWorker(
            OnlineScorer(Screener.load(art)),
            RedisSource(f"redis://127.0.0.1:{port}/0", "reviews", "winnow", "w1", dead_letter="reviews:dead"),
            DuckDBSink(sink, "negative", audit=True),
            audit=True,
            review=ReviewStore(f"duckdb:{out / 'reviews.duckdb'}").open(),
            review_sample=0.05,
        )
        t = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
        t.start()
        while worker.metrics.counts.processed < len(rows):
            time.sleep(0.2)
        worker.stop()
        t.join(30)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)

    audit = open_source(f"duckdb:{sink}?table=negative_scored").read_all()
    d = build_digest(audit, screener, reviews=f"duckdb:{out / 'reviews.duckdb'}")
    (out / "digest.html").write_text(digest_html(d), encoding="utf-8")
    (out / "digest.md").write_text(digest_markdown(d), encoding="utf-8")
    print(f"{d['scored']:,} reviews screened, {d['selected']:,} selected, {len(d['themes'])} themes")
    print(
        f"digest: {out / 'digest.html'}; review: winnow serve {art} --review duckdb:{out / 'reviews.duckdb'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
