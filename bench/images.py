"""Image columns: a CNN's features vs no image vs the pixels as numbers, on scikit-learn's digits.

Task: "the digit is a 3" (~10% of 1,797 images) from scikit-learn's bundled 8x8 digits, written
as 32x32 PNG files; every table also has two weak numeric columns (``ink``, the mean pixel, and
``noise``). Per seed, a stratified 75/25 split; winnow fits LightGBM + linear (3 folds, 1 thread)
on the 75% and is scored on the 25% (AUC-PR, recall in the top 10%). Variants:

* ``no image``: ink and noise only;
* ``pixels as numbers``: the 64 original pixel intensities as numeric columns (the information
  the PNG holds, handed over directly: a ceiling for this easy data set, not something a real
  image table offers);
* ``image: small CNN``: the PNG path column, embedded by the CNN winnow trains on the labels;
* ``image: ResNet-18 (random weights)``: the user-weights path, with a randomly initialised
  ResNet-18 saved to safetensors (no pretrained file is available offline here), frozen.

Throughput: embedding all images with the fitted CNN (decode + resize + forward, 1 and 2 torch
threads), the decode check typing does, and the ResNet-18 at 224x224.

    python bench/images.py
    python bench/images.py --seeds 0 --variants "no image" "image: small CNN"
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
OUT = ROOT / "bench" / "out"
VARIANTS = ["no image", "pixels as numbers", "image: small CNN", "image: ResNet-18 (random weights)"]
FAST = {"models": ["lightgbm", "linear"], "folds": 3, "threads": 1}


def digits_table(folder: Path, size: int = 32) -> tuple[pd.DataFrame, np.ndarray]:
    """The digits as PNG paths plus ink/noise, and the 64 original pixels (n, 64)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(d.images):
        pixels = (img * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        path = folder / f"digit_{i:04d}.png"
        Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.NEAREST).save(path)
        paths.append(str(path))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "image": paths,
            "ink": d.images.reshape(len(d.images), -1).mean(axis=1),
            "noise": rng.normal(size=len(d.images)),
            "label": np.where(d.target == 3, "yes", "no"),
        }
    )
    return frame, d.data.astype(np.float64)


def score_metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score

    k = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-s, kind="stable")[:k]
    return {"auc_pr": float(average_precision_score(y, s)), "recall_top10": float(y[top].sum() / y.sum())}


def variant_frame(name: str, frame: pd.DataFrame, pixels: np.ndarray) -> pd.DataFrame:
    if name == "no image":
        return frame.drop(columns=["image"])
    if name == "pixels as numbers":
        px = pd.DataFrame(pixels, columns=[f"p{j}" for j in range(pixels.shape[1])])
        return pd.concat([frame.drop(columns=["image"]), px], axis=1)
    return frame


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=VARIANTS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import pyarrow as pa
    import torch
    from safetensors.torch import save_file
    from sklearn.model_selection import train_test_split

    from winnow import Screener
    from winnow.config import Role
    from winnow.prep.image import ImageEmbedder, resnet18
    from winnow.schema import ColumnSpec, coerce

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="winnow-bench-images-"))
    frame, pixels = digits_table(work / "png")
    y_all = (frame["label"] == "yes").to_numpy().astype(int)
    torch.manual_seed(0)
    weights = work / "resnet18-random.safetensors"
    save_file({k: v.contiguous() for k, v in resnet18().state_dict().items()}, str(weights))
    report: dict[str, Any] = {
        "command": "python bench/images.py " + " ".join(sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "rows": len(frame),
        "positive_rate": float(y_all.mean()),
    }
    runs = []
    fitted: Screener | None = None
    for seed in args.seeds:
        tr, te = train_test_split(np.arange(len(frame)), test_size=0.25, stratify=y_all, random_state=seed)
        for name in args.variants:
            table = variant_frame(name, frame, pixels)
            train, test = table.iloc[tr].reset_index(drop=True), table.iloc[te].reset_index(drop=True)
            opts: dict[str, Any] = {"target": "label", "positive": "yes", "seed": seed, **FAST}
            if name.startswith("image: ResNet"):
                opts.update(image_weights=str(weights), image_size=32)
            t = time.perf_counter()
            s = Screener().fit(train, **opts)
            fit_s = time.perf_counter() - t
            m = score_metrics(y_all[te], s.score(test.drop(columns=["label"])))
            extra = s.metrics_.get("images", {}).get("image", {}).get("history", {})
            runs.append({"seed": seed, "variant": name, **m, "fit_seconds": round(fit_s, 1), "cnn": extra})
            if name == "image: small CNN" and fitted is None:
                fitted = s
            print(f"seed {seed} {name:34s} AUC-PR {m['auc_pr']:.4f} fit {fit_s:.1f}s {extra}",
                  file=sys.stderr, flush=True)  # fmt: skip
    report["runs"] = runs
    report["median"] = {
        name: {
            k: float(np.median([r[k] for r in runs if r["variant"] == name]))
            for k in ("auc_pr", "recall_top10", "fit_seconds")
        }
        for name in args.variants
    }

    # throughput: typing (decode check), the fitted CNN, the ResNet-18 at its native 224x224
    col = pa.array(frame["image"].tolist())
    thr: dict[str, Any] = {"images": len(frame)}
    t = time.perf_counter()
    typed = coerce(pa.table({"image": col}), [ColumnSpec("image", Role.IMAGE)])
    thr["typing_images_per_s"] = round(len(frame) / (time.perf_counter() - t), 1)
    col = typed.table.column("image")
    cnn = fitted.prep_.images_["image"] if fitted is not None else None
    if cnn is None:
        y = y_all.astype(np.int64)
        cnn = ImageEmbedder().fit(col, y, seed=0, threads=1)
    for threads in (1, 2):
        cnn.threads = threads
        t = time.perf_counter()
        cnn.transform(col)
        thr[f"cnn_images_per_s_{threads}_threads"] = round(len(frame) / (time.perf_counter() - t), 1)
    res = ImageEmbedder(weights=weights).fit(col, None, threads=2)
    n_res = 256
    t = time.perf_counter()
    res.transform(col.slice(0, n_res))
    thr["resnet18_224_images_per_s_2_threads"] = round(n_res / (time.perf_counter() - t), 1)
    report["throughput"] = thr
    report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "images.json").write_text(json.dumps(report, indent=2))
    md = markdown(report, args.seeds)
    (args.out / "images.md").write_text(md)
    print(md)
    return 0


def markdown(r: dict[str, Any], seeds: list[int]) -> str:
    th = r["throughput"]
    lines = [
        "# Image columns: CNN features vs no image vs pixels as numbers (digits as PNG)",
        "",
        f"Command: `{r['command'].strip()}`",
        "",
        f"Run {r['started']} on {r['machine']}; total {r['total_seconds']:.0f}s; load average "
        f"{r['load_average_start']} at the start, {r['load_average_end']} at the end (shared machine). "
        f"{r['rows']:,} images ({r['positive_rate']:.1%} are a 3), seeds {', '.join(map(str, seeds))}, "
        "medians on the 25% held out.",
        "",
        "| variant | AUC-PR | recall@top10% | fit s |",
        "|---|---:|---:|---:|",
    ]
    for name, m in r["median"].items():
        lines.append(f"| {name} | {m['auc_pr']:.4f} | {m['recall_top10']:.3f} | {m['fit_seconds']:.1f} |")
    lines += [
        "",
        f"Throughput on {th['images']:,} 32x32 PNG files: typing (decode check) "
        f"**{th['typing_images_per_s']:,.0f} images/s**; fitted CNN embedding (decode, resize, forward) "
        f"**{th['cnn_images_per_s_1_threads']:,.0f} images/s** with 1 torch thread, "
        f"**{th['cnn_images_per_s_2_threads']:,.0f}** with 2; ResNet-18 at 224x224 "
        f"**{th['resnet18_224_images_per_s_2_threads']:,.1f} images/s** with 2 threads.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
