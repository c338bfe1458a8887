"""AutoGluon baseline for ``bench/quality.py``, run in its own virtual environment.

Reads the splits written by ``python bench/quality.py --export-splits DIR --methods`` (one folder
per task and seed with ``train.parquet``, ``test.parquet`` and ``meta.json``), fits

    TabularPredictor(label="__label__", eval_metric="average_precision", problem_type="binary")
        .fit(train, presets="medium_quality", time_limit=T)

on the train part, scores the test part and writes a JSON file keyed by task and seed that
``bench/quality.py --automl-results FILE`` merges. AUC-PR, recall in the top 10% and the
latencies are computed with quality.py's own functions (``score_metrics``, ``timed_scoring``),
imported from it, so every method is measured the same way: fit seconds = wall-clock of the fit
call; batch latency = median of 3 passes over the test part, seconds per row; single record =
median of 50 one-row ``predict_proba`` calls after a warm-up call.

    bench/.automl-venv/bin/python bench/automl/run_autogluon.py /tmp/splits \\
        --time-limit 60 --out bench/out/automl.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import score_metrics, timed_scoring  # bench/quality.py: the same metrics

PRESET = "medium_quality"


def fit_one(d: Path, time_limit: float, work: Path, num_cpus: int | None) -> dict[str, Any]:
    from autogluon.tabular import TabularPredictor

    meta = json.loads((d / "meta.json").read_text())
    label, features = meta["label"], meta["features"]
    train = pd.read_parquet(d / "train.parquet")
    test = pd.read_parquet(d / "test.parquet")
    y_te = test[label].to_numpy(dtype=np.int64)
    x_te = test[features]
    path = work / f"{meta['task']}-seed{meta['seed']}"
    entry: dict[str, Any] = {
        "split_id": meta.get("split_id"),
        "test_rows": len(test),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }
    try:
        t0 = time.perf_counter()
        predictor = TabularPredictor(
            label=label,
            eval_metric="average_precision",
            problem_type="binary",
            path=str(path),
            verbosity=1,
        ).fit(
            train[[*features, label]],
            presets=PRESET,
            time_limit=time_limit,
            **({"num_cpus": num_cpus} if num_cpus is not None else {}),
        )
        fit_seconds = time.perf_counter() - t0
        if predictor.positive_class != 1:
            raise RuntimeError(f"positive class is {predictor.positive_class!r}, expected 1")

        def predict(frame: pd.DataFrame) -> np.ndarray:
            return predictor.predict_proba(frame, as_multiclass=False).to_numpy(dtype=np.float64)

        scores, latency = timed_scoring(predict, x_te)
        board = predictor.leaderboard(silent=True)
        entry.update(
            {
                **score_metrics(y_te, scores),
                "fit_seconds": round(fit_seconds, 2),
                **latency,
                "model_best": predictor.model_best,
                "models": len(board),
                "leaderboard": board[["model", "score_val", "fit_time", "pred_time_val"]]
                .round(4)
                .to_dict(orient="records"),
            }
        )
    except Exception as e:  # a failure is a result too
        entry.update({"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AutoGluon medium_quality on quality.py's exported splits")
    parser.add_argument("splits", type=Path, help="folder written by quality.py --export-splits")
    parser.add_argument("--time-limit", type=float, default=60.0, help="fit time limit in seconds (60)")
    parser.add_argument("--out", type=Path, required=True, help="results JSON (merged by quality.py)")
    parser.add_argument("--tasks", nargs="+", default=None, help="only these tasks (default: all found)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="only these seeds (default: all)")
    parser.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="TabularPredictor.fit(num_cpus=...); default: AutoGluon's (all cores)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the entries already in --out that have no error"
    )
    args = parser.parse_args(argv)

    import autogluon.tabular

    t_start = time.perf_counter()
    report: dict[str, Any] = {"meta": {}, "results": {}}
    if args.resume and args.out.exists():
        report = json.loads(args.out.read_text())
        if report["meta"].get("time_limit") != args.time_limit:
            parser.error(f"--resume: the previous run used --time-limit {report['meta'].get('time_limit')}")
        if report["meta"].get("num_cpus") != args.num_cpus:
            parser.error(f"--resume: the previous run used --num-cpus {report['meta'].get('num_cpus')}")
    previous_commands = [
        *report["meta"].get("previous_commands", []),
        *([report["meta"]["command"]] if "command" in report["meta"] else []),
    ]
    report["meta"] = {
        "framework": "autogluon.tabular",
        "version": autogluon.tabular.__version__,
        "label": f"AutoGluon {PRESET}",
        "fit_call": 'TabularPredictor(label="__label__", eval_metric="average_precision", '
        f'problem_type="binary").fit(train, presets="{PRESET}", time_limit={args.time_limit:g}'
        + (f", num_cpus={args.num_cpus})" if args.num_cpus is not None else ")"),
        "command": "bench/.automl-venv/bin/python bench/automl/run_autogluon.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "previous_commands": previous_commands,
        "time_limit": args.time_limit,
        "num_cpus": args.num_cpus,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "versions": {"pandas": pd.__version__, "numpy": np.__version__},
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    folders = sorted(p.parent for p in args.splits.glob("*/seed*/meta.json"))
    work = Path(tempfile.mkdtemp(prefix="winnow-bench-autogluon-"))
    try:
        for d in folders:
            task, seed = d.parent.name, int(d.name.removeprefix("seed"))
            if (args.tasks and task not in args.tasks) or (args.seeds is not None and seed not in args.seeds):
                continue
            old = report["results"].get(task, {}).get(str(seed))
            if old is not None and "error" not in old:
                print(f"[{task}] seed {seed}: kept from the previous run", file=sys.stderr, flush=True)
                continue
            entry = fit_one(d, args.time_limit, work, args.num_cpus)
            report["results"].setdefault(task, {})[str(seed)] = entry
            if "error" in entry:
                msg = f"FAILED: {entry['error']}"
            else:
                msg = (
                    f"AUC-PR {entry['auc_pr']:.4f} recall@10% {entry['recall_top10']:.3f} "
                    f"fit {entry['fit_seconds']:.1f}s batch {entry['batch_seconds_per_row'] * 1e6:.1f}us/row "
                    f"single {entry['single_record_seconds'] * 1e3:.2f}ms best {entry['model_best']}"
                )
            print(
                f"{time.perf_counter() - t_start:8.1f}s [{task}] seed {seed} {msg}",
                file=sys.stderr,
                flush=True,
            )
            report["meta"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
            report["meta"]["total_seconds"] = round(time.perf_counter() - t_start, 1)
            args.out.write_text(json.dumps(report, indent=2, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["meta"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    report["meta"]["total_seconds"] = round(time.perf_counter() - t_start, 1)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
