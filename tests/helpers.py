"""Small synthetic tables and fast fitting options shared by the tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

# Options that keep a fit to a second or two on 2 cores: two fast learners, 3 folds, one thread
# (LightGBM with several threads is very slow when other processes compete for the cores).
FAST: dict[str, Any] = {
    "models": ["lightgbm", "linear"],
    "folds": 3,
    "threads": 1,
    "seed": 0,
}

REGIONS = ["north", "south", "east", "west"]


def make_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Customers with a learnable label ``churn`` ("yes" for ~20%) and a numeric ``future_spend``.

    Columns cover every role: an id, numbers with missing values, a count, a categorical, a
    boolean and a date.
    """
    rng = np.random.default_rng(seed)
    spend = rng.lognormal(3, 1, n)
    visits = rng.poisson(3, n)
    region = rng.choice(REGIONS, n, p=[0.4, 0.3, 0.2, 0.1])
    member = rng.random(n) < 0.5
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    z = 0.8 * np.log(spend) + 0.3 * visits + (region == "east") * 1.0 + member * 0.5 + rng.normal(0, 1, n)
    churn = np.where(z > np.quantile(z, 0.8), "yes", "no")
    spend_with_nan = spend.copy()
    spend_with_nan[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + n),
            "spend": spend_with_nan,
            "visits": visits,
            "region": region,
            "member": member,
            "signup": signup,
            "churn": churn,
            "future_spend": np.round(np.exp(z), 2),
        }
    )


def fit_options(**extra: Any) -> dict[str, Any]:
    """Fast options for the synthetic churn task."""
    return {
        "target": "churn",
        "positive": "yes",
        "id": "customer_id",
        "drop": ["future_spend"],
        **FAST,
        **extra,
    }


def fast_toml(path, **extra: Any) -> Any:
    """Write a TOML config with the fast options (for the CLI, which has no --models/--threads)."""
    lines = ["[winnow]"]
    for key, value in {**FAST, **extra}.items():
        if isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        elif isinstance(value, list):
            lines.append(f"{key} = [" + ", ".join(f'"{v}"' for v in value) + "]")
        else:
            lines.append(f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def learner_inputs(n: int = 400, seed: int = 0):
    """(train Inputs, valid Inputs, cardinalities) built through the real preprocessing."""
    from winnow.models.base import Inputs
    from winnow.prep.preprocessor import Preprocessor
    from winnow.schema import coerce, infer_schema
    from winnow.target import make_labels

    frame = make_frame(n, seed).drop(columns=["future_spend"])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    y = make_labels(table, "churn", positive=["yes"]).y.astype(np.int64)
    specs = infer_schema(table, target="churn", id_column="customer_id")
    typed = coerce(table, specs)
    cut = int(n * 0.75)
    prep = Preprocessor().fit(typed.table.slice(0, cut), specs)
    m = prep.transform(typed.table, specs)
    x = Inputs(m=m, dense=prep.dense(m), y=y)
    idx = np.arange(n)
    return x.take(idx[:cut]), x.take(idx[cut:]), tuple(prep.cardinalities())


def digits_frame(folder, size: int = 32, n: int | None = None, positive_digit: int = 3) -> pd.DataFrame:
    """scikit-learn's bundled 8x8 digits written as PNG files (upscaled to ``size``) in ``folder``.

    Columns: ``image`` (absolute path), ``ink`` (mean pixel, a weak numeric feature), ``noise``
    and ``label`` ("yes" when the digit is ``positive_digit``, ~10% of rows).
    """
    from pathlib import Path

    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, target = digits.images, digits.target
    if n is not None:
        images, target = images[:n], target[:n]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        pixels = (img * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        path = folder / f"digit_{i:04d}.png"
        Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.NEAREST).save(path)
        paths.append(str(path))
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "image": paths,
            "ink": images.reshape(len(images), -1).mean(axis=1),
            "noise": rng.normal(size=len(images)),
            "label": np.where(target == positive_digit, "yes", "no"),
        }
    )
