"""``winnow profile``: what a table holds and what is wrong with it, before anything is fitted.

One bounded pass over the input counts, exactly, the rows, the missing values of every column and
the exact duplicate rows (a 64-bit hash per row, 8 bytes a row), and keeps a seeded uniform
sample of at most ``sample_rows`` rows (the whole input when it is smaller). The sample gives
the rest:

* per column: role (as ``fit`` would infer it), invalid values, distinct values, a distribution
  summary and far-out outliers (beyond Tukey's fences, 3 IQR past the quartiles);
* near-duplicate clusters (:mod:`winnow.quality.neardup`);
* with a target: the class balance and leakage suspects, columns that alone separate the classes
  (single-column ROC-AUC on held-out rows of at least 0.98);
* drift: each column's PSI between the input's files (a folder of files) or, for one file with a
  datetime column, between its earlier and later half in time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from winnow.config import Role
from winnow.errors import DataError
from winnow.io.readers import DEFAULT_BATCH_ROWS, TableSource, open_source
from winnow.monitor import PSI_MAJOR, PSI_MODERATE, num_shares, psi, quantile_edges
from winnow.quality.neardup import NUMERIC_ROLES, near_duplicates
from winnow.schema import ColumnSpec, coerce_column, infer_schema

DEFAULT_SAMPLE_ROWS = 1_000_000
TUKEY_FAR = 3.0
LEAK_AUC = 0.98
TOP_VALUES = 5
DISTINCT_CAP = 100_000


@dataclass
class ColumnProfile:
    name: str
    role: str
    reason: str
    arrow_type: str
    missing: int
    missing_rate: float
    #: values that do not parse as the column's role (in the sample)
    invalid: int
    distinct: int
    #: False when ``distinct`` hit the cap and is a lower bound
    distinct_exact: bool
    summary: dict[str, Any] = field(default_factory=dict)
    outliers: int | None = None
    outlier_rate: float | None = None


@dataclass
class Profile:
    source: str
    rows: int
    sample_rows: int
    columns: list[ColumnProfile]
    exact_duplicates: int
    near_duplicates: dict[str, Any]
    unreadable: int = 0
    target: dict[str, Any] | None = None
    leakage: list[dict[str, Any]] = field(default_factory=list)
    drift: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return _clean(asdict(self))


def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class _Pass:
    """The exact counts and the reservoir sample of one pass over the input."""

    def __init__(self, names: list[str], sample_rows: int, seed: int) -> None:
        self.names = names
        self.rows = 0
        self.missing = dict.fromkeys(names, 0)
        self.hashes: list[np.ndarray] = []
        self.distinct: dict[str, np.ndarray] = {c: np.zeros(0, np.uint64) for c in names}
        self.capped = dict.fromkeys(names, False)
        self.capacity = sample_rows
        self.rng = np.random.default_rng(seed)
        self.parts: list[pa.Table] = []
        self.keys: list[np.ndarray] = []
        self.held = 0

    def add(self, batch: pa.RecordBatch, segment: int, first: int) -> None:
        """Count ``batch``, whose first record is input record ``first``."""
        n = batch.num_rows
        self.rows += n
        frame = batch.to_pandas()
        for c in self.names:
            col = batch.column(c)
            self.missing[c] += col.null_count
            if not self.capped[c]:
                try:
                    h = pd.util.hash_pandas_object(frame[c], index=False).to_numpy()
                except TypeError:
                    h = pd.util.hash_pandas_object(frame[c].astype(str), index=False).to_numpy()
                u = np.union1d(self.distinct[c], h)
                if len(u) > DISTINCT_CAP:
                    self.capped[c] = True
                    u = u[:DISTINCT_CAP]
                self.distinct[c] = u
        try:
            rh = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        except TypeError:
            rh = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
        self.hashes.append(rh)
        table = pa.Table.from_batches([batch]).append_column(
            "__row", pa.array(np.arange(first, first + n, dtype=np.int64))
        )
        table = table.append_column("__segment", pa.array(np.full(n, segment, dtype=np.int32)))
        self.parts.append(table)
        self.keys.append(self.rng.random(n))
        self.held += n
        if self.held > 2 * self.capacity:
            self._prune()

    def _prune(self) -> None:
        keys = np.concatenate(self.keys)
        table = pa.concat_tables(self.parts, promote_options="permissive")
        if len(keys) > self.capacity:
            keep = np.sort(np.argpartition(keys, self.capacity - 1)[: self.capacity])
            table, keys = table.take(pa.array(keep)), keys[keep]
        self.parts, self.keys, self.held = [table], [keys], table.num_rows

    def sample(self) -> pa.Table:
        self._prune()
        return self.parts[0]

    def exact_duplicates(self) -> int:
        h = np.concatenate(self.hashes) if self.hashes else np.zeros(0, np.uint64)
        return int(len(h) - len(np.unique(h)))


def _segments(data: Any) -> list[tuple[str, TableSource]]:
    """One source per file for a folder of data files, else the input as one segment."""
    if isinstance(data, str | Path) and Path(data).is_dir():
        files = sorted(p for p in Path(data).iterdir() if p.is_file() and not p.name.startswith((".", "_")))
        if len(files) > 1:
            return [(p.name, open_source(p)) for p in files]
    src = open_source(data)
    return [(src.name, src)]


def _numeric_summary(v: np.ndarray) -> tuple[dict[str, Any], int | None]:
    x = v[np.isfinite(v)]
    if not len(x):
        return {}, None
    q = np.quantile(x, [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0])
    iqr = q[4] - q[2]
    lo, hi = q[2] - TUKEY_FAR * iqr, q[4] + TUKEY_FAR * iqr
    outliers = int(((x < lo) | (x > hi)).sum()) if iqr > 0 else 0
    keys = ["min", "p01", "p25", "median", "p75", "p99", "max"]
    summary = {k: float(val) for k, val in zip(keys, q, strict=True)}
    summary.update(mean=float(x.mean()), std=float(x.std()), fence_low=float(lo), fence_high=float(hi))
    return summary, outliers


def _top_values(col: pa.Array) -> list[list[Any]]:
    counts = pc.value_counts(col.drop_null()).to_pylist()
    counts.sort(key=lambda d: (-d["counts"], str(d["values"])))
    return [[str(d["values"]), int(d["counts"])] for d in counts[:TOP_VALUES]]


def _column(
    spec: ColumnSpec, raw: pa.ChunkedArray, passed: _Pass, sample_n: int
) -> tuple[ColumnProfile, np.ndarray | None]:
    """The column's profile, and its typed values (numeric roles) for the drift check."""
    name = spec.name
    missing = passed.missing[name]
    prof = ColumnProfile(
        name=name,
        role=spec.role.value,
        reason=spec.reason,
        arrow_type=str(raw.type),
        missing=int(missing),
        missing_rate=missing / max(passed.rows, 1),
        invalid=0,
        distinct=len(passed.distinct[name]),
        distinct_exact=not passed.capped[name],
    )
    values: np.ndarray | None = None
    role: Role | None = spec.role
    if role in (Role.ID, Role.IGNORE):
        role = Role.NUMERIC if (pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type)) else None
    if role is None:
        return prof, None
    try:
        typed, bad = coerce_column(raw.combine_chunks(), role)
    except (TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return prof, None
    prof.invalid = int(bad.sum())
    if role in NUMERIC_ROLES:
        values = np.asarray(typed.to_numpy(zero_copy_only=False), dtype=np.float64)
        values = np.where(bad, np.nan, values)
        prof.summary, out = _numeric_summary(values)
        if role == Role.DATETIME and prof.summary:
            for k in ("min", "median", "max"):
                prof.summary[k] = pd.Timestamp(prof.summary[k], unit="s").isoformat()
            for k in ("p01", "p25", "p75", "p99", "mean", "std", "fence_low", "fence_high"):
                prof.summary.pop(k, None)
            out = None
        if role == Role.BOOLEAN:
            x = values[np.isfinite(values)]
            prof.summary = {"true_share": float(x.mean()) if len(x) else None}
            out = None
        if out is not None and spec.role not in (Role.ID, Role.IGNORE):
            prof.outliers = out
            prof.outlier_rate = out / max(sample_n, 1)
    elif role == Role.CATEGORICAL:
        prof.summary = {"top": _top_values(typed)}
    elif role == Role.TEXT:
        lengths = pc.utf8_length(typed).to_numpy(zero_copy_only=False).astype(np.float64)
        lengths = lengths[np.isfinite(lengths)]
        if len(lengths):
            prof.summary = {
                "length_median": float(np.median(lengths)),
                "length_p99": float(np.quantile(lengths, 0.99)),
                "length_max": float(lengths.max()),
            }
    return prof, values


def _psi_numeric(a: np.ndarray, b: np.ndarray) -> float | None:
    """PSI of ``b`` against ``a`` over deciles of both together (a constant ``a`` still bins)."""
    if len(a) < 50 or len(b) < 50:
        return None
    both = np.concatenate([a, b])
    edges = quantile_edges(both[np.isfinite(both)])
    return psi(num_shares(b, edges), num_shares(a, edges))


def _psi_categorical(a: pa.Array, b: pa.Array) -> float | None:
    if len(a) < 50 or len(b) < 50:
        return None
    top = [v for v, _ in _top_values_all(a)[:30]]

    def shares(col: pa.Array) -> np.ndarray:
        vals = col.to_pylist()
        index = {v: i for i, v in enumerate(top)}
        codes = np.array([index.get(v, len(top)) if v is not None else len(top) + 1 for v in vals])
        return np.bincount(codes, minlength=len(top) + 2) / max(len(codes), 1)

    return psi(shares(b), shares(a))


def _top_values_all(col: pa.Array) -> list[tuple[Any, int]]:
    counts = pc.value_counts(col.drop_null()).to_pylist()
    counts.sort(key=lambda d: -d["counts"])
    return [(d["values"], d["counts"]) for d in counts]


def _drift(
    sample: pa.Table, specs: list[ColumnSpec], segment_names: list[str], typed: dict[str, np.ndarray]
) -> dict[str, Any] | None:
    seg = sample.column("__segment").to_numpy()
    dt = None
    if len(segment_names) > 1:
        first, last = seg == 0, seg == len(segment_names) - 1
        by = f"files: {segment_names[0]} -> {segment_names[-1]}"
    else:
        dt = next((s for s in specs if s.role == Role.DATETIME and s.name in typed), None)
        if dt is None:
            return None
        t = typed[dt.name]
        if np.isfinite(t).sum() < 100:
            return None
        cut = float(np.nanmedian(t))
        first, last = t < cut, t >= cut
        by = f"time: {dt.name} before / from {pd.Timestamp(cut, unit='s').isoformat()}"
    out: list[dict[str, Any]] = []
    for s in specs:
        if not s.used or (len(segment_names) == 1 and dt is not None and s.name == dt.name):
            continue
        if s.name in typed:
            value = _psi_numeric(typed[s.name][first], typed[s.name][last])
        elif s.role == Role.CATEGORICAL:
            col = sample.column(s.name).combine_chunks().cast(pa.string())
            value = _psi_categorical(col.filter(pa.array(first)), col.filter(pa.array(last)))
        else:
            continue
        if value is None:
            continue
        status = "major" if value > PSI_MAJOR else "moderate" if value > PSI_MODERATE else "stable"
        out.append({"column": s.name, "psi": round(value, 4), "status": status})
    out.sort(key=lambda d: -d["psi"])
    return {"by": by, "rows": [int(first.sum()), int(last.sum())], "columns": out}


def _leakage(
    sample: pa.Table, specs: list[ColumnSpec], y: np.ndarray, known: np.ndarray, seed: int
) -> list[dict]:
    from sklearn.model_selection import train_test_split

    from winnow.models.base import Inputs
    from winnow.prep.leakage import single_column_auc
    from winnow.prep.preprocessor import Preprocessor
    from winnow.schema import coerce

    idx = np.flatnonzero(known)
    if len(idx) < 40 or y[idx].min() == y[idx].max() or min(y[idx].sum(), len(idx) - y[idx].sum()) < 4:
        return []
    used = [s for s in specs if s.used]
    if not used:
        return []
    typed = coerce(sample.take(pa.array(idx)), used)
    a, b = train_test_split(np.arange(len(idx)), test_size=0.5, stratify=y[idx], random_state=seed)
    prep = Preprocessor(text="tfidf").fit(typed.table.take(pa.array(a)), used)
    m = prep.transform(typed.table, used)
    x = Inputs(m=m, dense=np.zeros((len(idx), 0)), y=y[idx].astype(np.int64))
    aucs = single_column_auc(prep, x.take(a), x.take(b))
    return [
        {"column": c, "auc": round(v, 4), "suspect": v >= LEAK_AUC}
        for c, v in sorted(aucs.items(), key=lambda kv: -kv[1])
    ]


def profile(
    data: Any,
    *,
    target: str | None = None,
    positive: list[str] | None = None,
    top_fraction: float | None = None,
    id_column: str | None = None,
    drop: list[str] | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Callable[[int, int | None, str], None] | None = None,
) -> Profile:
    """Profile ``data`` (a path, a folder of files, a DataFrame or an Arrow table)."""
    from winnow.target import make_labels

    if target is not None and (positive is None) == (top_fraction is None):
        raise DataError(
            "a target needs exactly one of --positive or --top-fraction to say what is high-value",
            column=target,
            hint="e.g. --positive yes, or --top-fraction 0.1 for a numeric target.",
        )
    segments = _segments(data)
    names = segments[0][1].column_names()
    if target is not None and target not in names:
        raise DataError(
            f"target column {target!r} is not in the data",
            column=target,
            hint="Available columns: " + ", ".join(names[:50]),
        )
    passed = _Pass(names, sample_rows, seed)
    unreadable: list[Any] = []
    offset = 0
    for k, (_, src) in enumerate(segments):
        read_rejects: list[Any] = []
        end = 0
        for first, batch in src.numbered_batches(batch_rows, read_rejects):
            batch = batch.select(names) if batch.schema.names != names else batch
            passed.add(batch, k, offset + first)
            end = first + batch.num_rows
            if progress is not None:
                progress(passed.rows, None, "profiling")
        unreadable += read_rejects
        offset += max([end] + [r.row + 1 for r in read_rejects])
    if passed.rows == 0:
        raise DataError(f"{segments[0][1].name!r} has no data rows", hint="Give a table with rows.")
    sample = passed.sample()
    warnings: list[str] = []
    if sample.num_rows < passed.rows:
        warnings.append(
            f"distributions, outliers, near-duplicates, leakage and drift come from a uniform sample "
            f"of {sample.num_rows:,} of {passed.rows:,} rows (--sample-rows)"
        )
    data_cols = sample.select(names)
    specs = infer_schema(data_cols, target=target or "\0", id_column=id_column, drop=drop or [])
    columns, typed_numeric = [], {}
    for s in specs:
        prof, values = _column(s, data_cols.column(s.name), passed, sample.num_rows)
        columns.append(prof)
        if values is not None and s.used:
            typed_numeric[s.name] = values
    if target is not None:
        t_prof, _ = _column(
            ColumnSpec(target, Role.IGNORE, "the target"), data_cols.column(target), passed, 0
        )
        t_prof.role, t_prof.reason = "target", "the target"
        columns.append(t_prof)

    # near-duplicates on the used columns, typed as fit would type them
    used = [s for s in specs if s.used]
    nd_json: dict[str, Any] = {"rows": 0, "clusters": 0, "redundant_rows": 0, "examples": []}
    if used:
        from winnow.schema import coerce

        typed = coerce(data_cols, used)
        nd = near_duplicates(typed.table, used, seed=seed)
        rows = sample.column("__row").to_numpy()
        sizes = nd.cluster_sizes()
        heads = np.flatnonzero((nd.group >= 0) & (nd.group == np.arange(len(nd.group))))
        heads = heads[np.argsort(-sizes[heads], kind="stable")][:5]
        nd_json = {
            "rows": int(nd.in_cluster.sum()),
            "clusters": nd.clusters,
            "redundant_rows": int(nd.redundant.sum()),
            "columns": nd.columns,
            "examples": [[int(r) for r in rows[np.flatnonzero(nd.group == h)][:10]] for h in heads],
        }

    target_json = None
    leakage: list[dict] = []
    if target is not None:
        labels = make_labels(data_cols, target, positive=positive, top_fraction=top_fraction)
        known = labels.known.astype(bool)
        pos = int(labels.y[known].sum())
        target_json = {
            "column": target,
            "rule": labels.description,
            "labelled": int(known.sum()),
            "high_value": pos,
            "rate": pos / max(int(known.sum()), 1),
        }
        leakage = _leakage(data_cols, specs, labels.y.astype(np.int64), known, seed)

    drift = _drift(sample, specs, [n for n, _ in segments], typed_numeric)
    exact = passed.exact_duplicates()
    for c in columns:
        if c.role == "target":
            continue
        if c.missing_rate >= 0.5:
            warnings.append(f"column {c.name!r} is {c.missing_rate:.0%} missing")
        if c.invalid:
            warnings.append(f"column {c.name!r} has {c.invalid:,} values that are not {c.role}")
        if c.role in ("id", "ignore") and c.reason:
            warnings.append(f"column {c.name!r} is not used by fit: {c.reason}")
    if unreadable:
        warnings.append(f"{len(unreadable):,} records could not be read, e.g. {unreadable[0].describe()}")
    if exact:
        warnings.append(f"{exact:,} exact duplicate rows")
    for leak in leakage:
        if leak["suspect"]:
            warnings.append(
                f"column {leak['column']!r} alone separates the classes (ROC-AUC {leak['auc']:.3f}): "
                "is it known before the outcome? If not, --drop it"
            )
    for d in (drift or {}).get("columns", []):
        if d["status"] == "major":
            warnings.append(f"column {d['column']!r} drifts ({drift['by']}): PSI {d['psi']:.2f}")  # type: ignore[index]
    return Profile(
        source=segments[0][1].name if len(segments) == 1 else str(data),
        rows=passed.rows,
        sample_rows=sample.num_rows,
        columns=columns,
        exact_duplicates=exact,
        near_duplicates=nd_json,
        unreadable=len(unreadable),
        target=target_json,
        leakage=leakage,
        drift=drift,
        warnings=warnings,
    )
