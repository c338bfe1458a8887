"""``winnow clean``: apply a cleaning policy and log every row it removes or changes.

The steps run in this order, each on what the previous left:

1. **unreadable** records (a CSV line that does not parse) are logged as dropped;
2. **invalid** values, that do not parse as their column's role (``"abc"`` in a numeric column):
   ``drop`` the row (default), ``null`` the value, or ``keep`` it;
3. **outliers** in numeric columns, beyond Tukey's far-out fences (``outlier_iqr`` IQRs past the
   quartiles, computed on the valid values): ``cap`` them at the fence (default), ``drop`` the
   row, or ``keep`` them;
4. **exact duplicates**, rows equal in every column: ``drop`` all but the first (default) or
   ``keep``;
5. **near-duplicates** (:mod:`winnow.quality.neardup`, on the columns ``fit`` would use):
   ``keep_first`` of each cluster (default) or ``keep`` all.

The cleaned rows are written in their input order; the log has one line per removed row and
per changed value: ``row`` (position in the input), ``action`` (``dropped``/``changed``),
``step``, ``column``, ``old``, ``new``, ``duplicate_of`` and ``reason``. Nothing disappears
without a line in the log.

The table is held in memory (near-duplicates compare every row with every other); for data
larger than memory, clean it in parts or profile a sample first.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from winnow.config import Role
from winnow.errors import ConfigError, DataError
from winnow.io.readers import open_source
from winnow.io.rejects import Reject
from winnow.io.writers import TableWriter
from winnow.quality.neardup import near_duplicates
from winnow.schema import EXPECTED, coerce_column, infer_schema

LOG_COLUMNS = ("row", "action", "step", "column", "old", "new", "duplicate_of", "reason")


class Policy(BaseModel):
    """What ``winnow clean`` does at each step (a TOML file, ``[clean]`` table or top level)."""

    model_config = ConfigDict(extra="forbid")

    invalid: Literal["drop", "null", "keep"] = "drop"
    outliers: Literal["cap", "drop", "keep"] = "cap"
    outlier_iqr: float = Field(default=3.0, gt=0)
    exact_duplicates: Literal["drop", "keep"] = "drop"
    near_duplicates: Literal["keep_first", "keep"] = "keep_first"
    #: near-duplicates: RMS difference of numeric columns, in standard deviations
    tolerance: float = Field(default=0.05, ge=0)
    #: near-duplicates: character 4-gram Jaccard similarity of text columns
    text_similarity: float = Field(default=0.7, gt=0, le=1)
    #: columns left as they are by the invalid and outlier steps (e.g. the label)
    protect: list[str] = Field(default_factory=list)
    seed: int = 0

    @classmethod
    def load(cls, path: Path | None, **overrides: Any) -> Policy:
        data: dict[str, Any] = {}
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    raw = tomllib.load(fh)
            except FileNotFoundError:
                raise ConfigError("--policy", str(path), "an existing TOML file") from None
            except tomllib.TOMLDecodeError as e:
                raise ConfigError("--policy", str(path), "valid TOML", str(e)) from e
            data.update(raw.get("clean", raw))
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "policy"
            raise ConfigError(f"policy {loc}", first.get("input"), first["msg"]) from e


@dataclass
class CleanResult:
    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    out: str | None = None
    log: str | None = None


class _Log:
    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {c: [] for c in LOG_COLUMNS}

    def add(
        self,
        rows: np.ndarray,
        action: str,
        step: str,
        reason: str | list[str],
        column: str | None = None,
        old: list[Any] | None = None,
        new: list[Any] | None = None,
        duplicate_of: np.ndarray | None = None,
    ) -> None:
        n = len(rows)
        if not n:
            return
        self.cols["row"] += [int(r) for r in rows]
        self.cols["action"] += [action] * n
        self.cols["step"] += [step] * n
        self.cols["column"] += [column] * n
        self.cols["old"] += [None if v is None else str(v) for v in (old or [None] * n)]
        self.cols["new"] += [None if v is None else str(v) for v in (new or [None] * n)]
        self.cols["duplicate_of"] += [None] * n if duplicate_of is None else [int(d) for d in duplicate_of]
        self.cols["reason"] += reason if isinstance(reason, list) else [reason] * n

    def table(self) -> pa.Table:
        types = {"row": pa.int64(), "duplicate_of": pa.int64()}
        return pa.table({c: pa.array(v, types.get(c, pa.string())) for c, v in self.cols.items()})


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _read(data: Any) -> tuple[pa.Table, np.ndarray, list[Reject]]:
    """The readable records, their input positions, and the unreadable ones."""
    source = open_source(data)
    rejects: list[Reject] = []
    parts, rows = [], []
    for first, batch in source.numbered_batches(rejects=rejects):
        parts.append(batch)
        rows.append(np.arange(first, first + batch.num_rows, dtype=np.int64))
    if not parts:
        raise DataError(f"{source.name!r} has no data rows", hint="Give a table with rows.")
    table = pa.Table.from_batches(parts)
    return table, np.concatenate(rows), rejects


#: the stages :func:`clean` announces, in order
STAGES = ("reading", "invalid values", "outliers", "exact duplicates", "near-duplicates", "writing")


def clean(
    data: Any,
    out: str | Path,
    *,
    policy: Policy | None = None,
    log: str | Path | None = None,
    id_column: str | None = None,
    target: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> CleanResult:
    """Clean ``data`` into ``out`` by ``policy``; the log goes to ``log`` (default ``NAME.log.csv``
    beside ``out``). ``on_stage`` hears each stage's name as it starts (the CLI's progress)."""
    stage = on_stage or (lambda _msg: None)
    stage("reading")
    policy = policy or Policy()
    out = Path(out)
    log_path = Path(log) if log is not None else out.with_name(out.name.split(".")[0] + ".log.csv")
    table, rows, unreadable = _read(data)
    names = table.column_names
    protect = set(policy.protect) | ({target} if target else set())
    unknown = [c for c in protect | ({id_column} if id_column else set()) if c not in names]
    if unknown:
        raise DataError(
            f"column {unknown[0]!r} named for clean is not in the data",
            column=unknown[0],
            hint="Available: " + ", ".join(names[:50]),
        )
    specs = infer_schema(table, target=target or "\0", id_column=id_column, drop=sorted(protect - {target}))
    logbook = _Log()
    for r in unreadable:
        logbook.add(np.array([r.row]), "dropped", "unreadable", r.reason)
    keep = np.ones(table.num_rows, dtype=bool)
    columns = {c: table.column(c) for c in names}
    used = [s for s in specs if s.used]
    typed: dict[str, np.ndarray | pa.Array] = {}

    # 2. invalid values
    stage("invalid values")
    for s in used:
        raw = table.column(s.name).combine_chunks()
        try:
            vals, bad = coerce_column(raw, s.role)
        except (TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                f"column holds no {EXPECTED[s.role]} at all ({raw.type})",
                column=s.name,
                hint="Protect it with the policy's `protect` list, or fix its type.",
            ) from None
        typed[s.name] = vals
        idx = np.flatnonzero(bad & keep)
        if not len(idx) or policy.invalid == "keep":
            continue
        old = pc.cast(raw.take(pa.array(idx)), pa.string()).to_pylist() if len(idx) else []
        reason = f"expected {EXPECTED[s.role]}"
        if policy.invalid == "drop":
            keep[idx] = False
            logbook.add(rows[idx], "dropped", "invalid", reason, s.name, old)
        else:
            mask = np.zeros(table.num_rows, bool)
            mask[idx] = True
            columns[s.name] = pc.if_else(pa.array(mask), pa.nulls(len(mask), raw.type), raw)
            logbook.add(
                rows[idx], "changed", "invalid", reason + ": set to missing", s.name, old, [None] * len(idx)
            )

    # 3. outliers
    stage("outliers")
    if policy.outliers != "keep":
        for s in used:
            if s.role != Role.NUMERIC:
                continue
            v = np.asarray(typed[s.name].to_numpy(zero_copy_only=False), dtype=np.float64)  # type: ignore[union-attr]
            ok = np.isfinite(v) & keep
            if ok.sum() < 20:
                continue
            q1, q3 = np.quantile(v[ok], [0.25, 0.75])
            iqr = q3 - q1
            if iqr <= 0:
                continue
            lo, hi = q1 - policy.outlier_iqr * iqr, q3 + policy.outlier_iqr * iqr
            out_mask = ok & ((v < lo) | (v > hi))
            idx = np.flatnonzero(out_mask)
            if not len(idx):
                continue
            reasons = [
                f"{'below' if v[i] < lo else 'above'} the far-out fence {_fmt(lo if v[i] < lo else hi)} "
                f"({policy.outlier_iqr:g} IQR past the quartiles)"
                for i in idx
            ]
            if policy.outliers == "drop":
                keep[idx] = False
                logbook.add(rows[idx], "dropped", "outlier", reasons, s.name, [_fmt(v[i]) for i in idx])
                continue
            raw_type = table.column(s.name).type
            capped = np.clip(v, lo, hi)
            if pa.types.is_integer(raw_type):
                capped = np.where(capped > v, np.ceil(capped), np.floor(capped))
            new_v = np.where(out_mask, capped, v)
            if pa.types.is_integer(raw_type) or pa.types.is_floating(raw_type):
                arr = pa.array(new_v, pa.float64(), mask=~np.isfinite(new_v) & ~np.isinf(new_v))
                columns[s.name] = pc.if_else(
                    pa.array(out_mask), arr.cast(raw_type, safe=False), table.column(s.name).combine_chunks()
                )
            else:  # numbers held as text: write the capped number as text
                text = pa.array([_fmt(x) for x in new_v], pa.string())
                columns[s.name] = pc.if_else(pa.array(out_mask), text, table.column(s.name).combine_chunks())
            typed[s.name] = pa.array(new_v, pa.float64())
            logbook.add(
                rows[idx],
                "changed",
                "outlier",
                [r + ": capped at the fence" for r in reasons],
                s.name,
                [_fmt(v[i]) for i in idx],
                [_fmt(new_v[i]) for i in idx],
            )

    # 4. exact duplicates (every column, as read)
    stage("exact duplicates")
    if policy.exact_duplicates == "drop":
        frame = table.to_pandas()
        try:
            h = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        except TypeError:
            h = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
        cand = np.flatnonzero(keep)
        _, first_pos, inverse = np.unique(h[cand], return_index=True, return_inverse=True)
        dup = cand[first_pos[inverse] != np.arange(len(cand))]
        first_of = cand[first_pos[inverse]]
        is_dup = first_pos[inverse] != np.arange(len(cand))
        keep[dup] = False
        logbook.add(
            rows[dup],
            "dropped",
            "exact_duplicate",
            "equal in every column to an earlier row",
            duplicate_of=rows[first_of[is_dup]],
        )

    # 5. near-duplicates among the rows left
    stage("near-duplicates")
    if policy.near_duplicates == "keep_first" and used:
        cand = np.flatnonzero(keep)
        sub = pa.table({s.name: typed[s.name] for s in used}).take(pa.array(cand))
        nd = near_duplicates(
            sub, used, tolerance=policy.tolerance, text_similarity=policy.text_similarity, seed=policy.seed
        )
        red = np.flatnonzero(nd.redundant)
        keep[cand[red]] = False
        logbook.add(
            rows[cand[red]],
            "dropped",
            "near_duplicate",
            f"a near-duplicate of an earlier row (numbers within {policy.tolerance:g} SD RMS, "
            f"text similarity >= {policy.text_similarity:g})",
            duplicate_of=rows[cand[nd.group[red]]],
        )

    stage("writing")
    cleaned = pa.table({c: columns[c] for c in names}).filter(pa.array(keep))
    with TableWriter(out) as w:
        w.write(cleaned)
    log_table = logbook.table()
    order = np.lexsort((np.arange(log_table.num_rows), log_table.column("row").to_numpy()))
    with TableWriter(log_path) as w:
        w.write(log_table.take(pa.array(order)) if log_table.num_rows else log_table)
    steps = log_table.column("step").to_pylist()
    actions = log_table.column("action").to_pylist()
    dropped: dict[str, int] = {}
    changed: dict[str, int] = {}
    for st, ac in zip(steps, actions, strict=True):
        bucket = dropped if ac == "dropped" else changed
        bucket[st] = bucket.get(st, 0) + 1
    return CleanResult(
        rows_in=table.num_rows + len(unreadable),
        rows_out=cleaned.num_rows,
        dropped=dropped,
        changed=changed,
        out=str(out),
        log=str(log_path),
    )
