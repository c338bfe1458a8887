"""Memory while scoring a large Parquet file batch by batch: process RSS and Arrow's allocation.

Reads ``DATA`` with winnow's reader (``open_source(...).numbered_batches``), scores every batch
with ``Screener.score_batch`` and records the process RSS and ``pyarrow.total_allocated_bytes()``
every 10 batches, up to ``--rows`` rows. Flat lines mean memory is bounded by the batch, not by
how much of the file has been read (or read ahead).

    python bench/reader_memory.py bench/out/flights_screener bench/out/flights_10000000.parquet --rows 2000000

(bench/throughput.py writes both inputs.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("artifact", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--batch-rows", type=int, default=65_536)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import psutil
    import pyarrow as pa

    from winnow import Screener
    from winnow.io.readers import open_source

    proc = psutil.Process()
    s = Screener.load(args.artifact)
    s.set_threads(2)
    n, t0, samples = 0, time.perf_counter(), []
    for i, (row, batch) in enumerate(open_source(args.data).numbered_batches(args.batch_rows)):
        s.score_batch(batch, first_row=row)
        n += batch.num_rows
        if i % 10 == 0:
            samples.append(
                {
                    "rows": n,
                    "rss_mib": round(proc.memory_info().rss / 2**20),
                    "arrow_mib": round(pa.total_allocated_bytes() / 2**20),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(samples[-1]), flush=True)
        if n >= args.rows:
            break
    rss = [x["rss_mib"] for x in samples]
    arrow = [x["arrow_mib"] for x in samples]
    print(f"rows {n:,}: RSS {min(rss)}-{max(rss)} MiB, Arrow {min(arrow)}-{max(arrow)} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
