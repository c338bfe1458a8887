"""Column roles: inference at fit time, and typing/validation of every incoming batch.

A :class:`ColumnSpec` records the role winnow gave a column and, for used columns, the logical
type it must have when screening. :func:`coerce` turns any batch (typed Parquet or text from CSV
and JSON lines) into those types; a value that cannot be converted rejects its record with the
reason, a missing column or a column of an impossible type refuses the whole input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from winnow.config import Role
from winnow.errors import SchemaError
from winnow.io import images as image_io
from winnow.io.rejects import Reject

USED_ROLES = (Role.NUMERIC, Role.CATEGORICAL, Role.BOOLEAN, Role.DATETIME, Role.TEXT, Role.IMAGE)
#: text read as a boolean (lower-cased, stripped)
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
_ID_NAME = re.compile(r"(^|_|\b)(id|uuid|guid|key|number|no)$|^id_|_id$", re.IGNORECASE)
# share of non-null values that must parse for a text column to be typed as numbers/dates
_PARSE_SHARE = 0.98
# a column that fails to parse for more than this share of a batch is a schema error
_SCHEMA_FAIL_SHARE = 0.5


@dataclass
class ColumnSpec:
    """What winnow knows about one input column."""

    name: str
    role: Role
    reason: str = ""
    #: image columns: the folder relative paths resolve against (None: the working directory)
    root: str | None = None

    @property
    def used(self) -> bool:
        return self.role in USED_ROLES

    def to_json(self) -> dict[str, str]:
        d = {"name": self.name, "role": self.role.value, "reason": self.reason}
        if self.root is not None:
            d["root"] = self.root
        return d

    @classmethod
    def from_json(cls, d: dict[str, str]) -> ColumnSpec:
        return cls(name=d["name"], role=Role(d["role"]), reason=d.get("reason", ""), root=d.get("root"))


#: batches of at most this many rows are typed column by column without Arrow kernels
SMALL_BATCH = 16


@dataclass
class Coerced:
    """A batch typed to the schema, with the mask of usable rows and the rejects.

    ``columns`` holds the typed columns as numpy float64 (numeric, boolean, datetime seconds;
    NaN missing), Python lists (categorical text of a small batch, None missing) or Arrow
    arrays (text, and categorical text of a larger batch); ``table`` is built from them on
    first use (numbers as float64 with nulls for the missing values).
    """

    _table: pa.Table | None
    ok: np.ndarray
    rejects: list[Reject] = field(default_factory=list)
    columns: dict[str, np.ndarray | list | pa.Array] | None = None

    @property
    def table(self) -> pa.Table:
        if self._table is None:
            cols = self.columns or {}
            self._table = pa.table(
                {
                    name: v
                    if isinstance(v, pa.Array)
                    else pa.array(v, pa.string() if isinstance(v, list) else pa.float64(), from_pandas=True)
                    for name, v in cols.items()
                }
            )
        return self._table

    @property
    def names(self) -> list[str]:
        """The typed columns' names."""
        return list(self.columns) if self.columns is not None else self.table.column_names

    def values(self, name: str, rows: np.ndarray | None = None) -> list:
        """One typed column (or its ``rows``) as Python values: floats (NaN or None missing),
        text (None missing)."""
        col = self.column(name)
        if isinstance(col, np.ndarray):
            return (col if rows is None else col[rows]).tolist()
        if isinstance(col, list):
            return col if rows is None else [col[int(i)] for i in rows]
        return (col if rows is None else col.take(pa.array(rows))).to_pylist()

    def column(self, name: str) -> np.ndarray | list | pa.Array:
        """One typed column: a numpy array, a list or an Arrow array (see the class)."""
        if self.columns is not None:
            return self.columns[name]
        chunks = self.table.column(name)
        return chunks.chunk(0) if chunks.num_chunks == 1 else chunks.combine_chunks()


def _is_text_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)


def _as_str(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    if not _is_text_type(col.type):
        col = pc.cast(col, pa.string())
    return col


def _parse_numbers(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Text to float64; returns values and the mask of non-null values that did not parse."""
    s = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    stripped = s.str.strip()
    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64)
    present = s.notna().to_numpy() & (stripped != "").to_numpy()
    return values, present & np.isnan(values) & ~stripped.str.lower().isin(["nan"]).to_numpy()


def _parse_bools(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    s = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object).str.strip().str.lower()
    out = np.full(len(s), np.nan)
    out[s.isin(TRUE_WORDS).to_numpy()] = 1.0
    out[s.isin(FALSE_WORDS).to_numpy()] = 0.0
    bad = s.notna().to_numpy() & np.isnan(out) & (s != "").to_numpy()
    return out, bad


_ZONE = re.compile(r"[+-]\d\d:?\d\d$")


def _parse_datetimes(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Text to epoch seconds (float64, UTC); returns values and the unparsed mask.

    Arrow's ISO-8601 cast first (naive text is read as UTC, text with ``Z`` or an offset is
    converted to UTC): ~10x faster than pandas on a batch. Anything it refuses (a bad value,
    naive and zoned text mixed) goes through pandas, which finds the bad records."""
    valid = col.drop_null()
    first = str(valid[0].as_py()) if len(valid) else ""
    # a failed cast costs as much as a parse: try the form the first value has first
    zoned = first.endswith(("Z", "z")) or _ZONE.search(first) is not None
    targets = (pa.timestamp("us"), pa.timestamp("us", tz="UTC"))
    for target in targets[::-1] if zoned else targets:
        try:
            parsed = pc.cast(col, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return _temporal_seconds(parsed), np.zeros(len(col), dtype=bool)
    s = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    parsed = pd.to_datetime(s, errors="coerce", utc=True, format="ISO8601")
    secs = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)
    bad = s.notna().to_numpy() & np.isnan(secs) & (s.astype(str).str.strip() != "").to_numpy()
    return secs, bad


def _temporal_seconds(col: pa.Array) -> np.ndarray:
    if pa.types.is_date(col.type):
        col = pc.cast(col, pa.timestamp("s"))
    if pa.types.is_timestamp(col.type):
        if col.type.tz is not None:
            col = col.cast(pa.timestamp(col.type.unit))
        ints = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
        ints[~col.is_valid().to_numpy(zero_copy_only=False)] = np.nan
        scale = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[col.type.unit]
        return ints / scale
    raise TypeError(col.type)


def _numeric(col: pa.Array) -> np.ndarray:
    if pa.types.is_boolean(col.type):
        col = pc.cast(col, pa.int8())
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        # numpy's conversion (nulls become NaN) skips an Arrow cast kernel call per column, which
        # dominated typing one record (bench/RESULTS.md, "Fast by default")
        return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def coerce_column(col: pa.Array, role: Role, *, root: str | None = None) -> tuple[pa.Array, np.ndarray]:
    """Convert one column to its role's logical type; returns (values, bad-value mask).

    numeric/boolean/datetime become float64 (datetime: epoch seconds; missing null),
    categorical/text strings, image paths resolved paths (against ``root``) or bytes,
    unreadable images null.
    """
    vals, bad = typed_values(col, role, root=root)
    if isinstance(vals, np.ndarray):
        return pa.array(vals, pa.float64(), from_pandas=True), bad
    return vals, bad


def typed_values(
    col: pa.Array, role: Role, *, root: str | None = None
) -> tuple[np.ndarray | pa.Array, np.ndarray]:
    """:func:`coerce_column` with numeric, boolean and datetime values as numpy float64 (NaN
    missing), the form the preprocessor reads: no round trip through Arrow."""
    if role == Role.IMAGE:
        vals, reasons = image_io.check_images(col, root)
        return vals, np.array([r is not None for r in reasons], dtype=bool)
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    n = len(col)
    t = col.type
    none = np.zeros(n, dtype=bool)
    if role in (Role.CATEGORICAL, Role.TEXT):
        if pa.types.is_floating(t):
            # 1.0 and 1 must be the same category whether the file was CSV or Parquet
            vals = col.to_numpy(zero_copy_only=False)
            as_text = [
                None if v is None or v != v else (str(int(v)) if float(v).is_integer() else str(v))
                for v in vals
            ]
            return pa.array(as_text, pa.string()), none
        return _as_str(col), none
    if role == Role.NUMERIC:
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            vals = _numeric(col)
            bad = np.isinf(vals)
        elif _is_text_type(t):
            vals, bad = _parse_numbers(_as_str(col))
            bad |= np.isinf(vals)
        elif pa.types.is_decimal(t) or pa.types.is_null(t):
            vals, bad = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), none
        else:
            raise TypeError(t)
        return vals, bad
    if role == Role.BOOLEAN:
        if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
            vals = _numeric(col)
            bad = ~np.isnan(vals) & ~np.isin(vals, (0.0, 1.0))
        elif _is_text_type(t):
            vals, bad = _parse_bools(_as_str(col))
        elif pa.types.is_null(t):
            vals, bad = np.full(n, np.nan), none
        else:
            raise TypeError(t)
        return vals, bad
    if role == Role.DATETIME:
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            vals, bad = _temporal_seconds(col), none
        elif _is_text_type(t):
            vals, bad = _parse_datetimes(_as_str(col))
        elif pa.types.is_null(t):
            vals, bad = np.full(n, np.nan), none
        else:
            raise TypeError(t)
        return vals, bad
    raise ValueError(f"role {role} has no logical type")


#: what each role accepts, in the words of every error winnow shows: of a column (batch typing,
#: cleaning, schema errors) and of one value (a record's field in the service, the stream
#: worker and ``Screener.score_one``)
EXPECTED = {
    Role.NUMERIC: "numbers",
    Role.BOOLEAN: "true/false or 0/1",
    Role.DATETIME: "dates or timestamps (ISO 8601)",
    Role.CATEGORICAL: "text or numbers",
    Role.TEXT: "text",
    Role.IMAGE: "image file paths or encoded image bytes",
}
EXPECTED_VALUE = {
    Role.NUMERIC: "a finite number",
    Role.BOOLEAN: "true/false or 0/1",
    Role.DATETIME: "an ISO 8601 date/time string or epoch seconds",
    Role.CATEGORICAL: "a string or number",
    Role.TEXT: "a string",
    Role.IMAGE: "an image file path (string)",
}


def check_columns(names: list[str], specs: list[ColumnSpec]) -> None:
    """Refuse an input that lacks a column the screener uses, naming every missing one."""
    missing = [s.name for s in specs if s.used and s.name not in names]
    if missing:
        raise SchemaError(
            "the input does not have the columns the screener was fitted on;",
            missing=missing,
            hint="Add them (values may be empty) or refit without them.",
        )


def coerce(table: pa.Table | pa.RecordBatch, specs: list[ColumnSpec], first_row: int = 0) -> Coerced:
    """Type a batch to the used columns of ``specs``.

    Raises :class:`SchemaError` when a used column is missing or cannot hold its type at all;
    records with single bad values are rejected with their reason and left out of ``ok``.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    used = [s for s in specs if s.used]
    n = table.num_rows
    if n <= SMALL_BATCH:
        small = _coerce_small(table, used)
        if small is not None:
            return small
    check_columns(table.column_names, specs)
    ok = np.ones(n, dtype=bool)
    rejects: list[Reject] = []
    out: dict[str, np.ndarray | list | pa.Array] = {}
    wrong: list[tuple[str, str, str]] = []
    for s in used:
        col = table.column(s.name)
        reasons: list[str | None] | None = None
        try:
            if s.role == Role.IMAGE:
                vals, reasons = image_io.check_images(col, s.root)
                bad = np.array([r is not None for r in reasons], dtype=bool)
            else:
                vals, bad = typed_values(col, s.role)
        except (TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            wrong.append((s.name, EXPECTED[s.role], str(col.type)))
            continue
        nbad = int(np.count_nonzero(bad))
        if nbad:
            present = n - col.null_count
            first_bad = int(np.flatnonzero(bad)[0])
            if present and nbad / present > _SCHEMA_FAIL_SHARE and n >= 20:
                if reasons is not None:
                    wrong.append(
                        (
                            s.name,
                            EXPECTED[s.role],
                            f"{nbad} of {present} unreadable, e.g. "
                            f"record {first_row + first_bad}: {reasons[first_bad]}",
                        )
                    )
                else:
                    sample = _as_str(col).filter(pa.array(bad)).slice(0, 3).to_pylist()
                    wrong.append((s.name, EXPECTED[s.role], f"values like {sample}"))
                continue
            raw = _as_str(col) if reasons is None else None
            for i in np.flatnonzero(bad):
                if ok[i]:
                    if reasons is not None:
                        value = col[int(i)].as_py()
                        shown = value if isinstance(value, str) else f"<{len(value)} bytes>"
                        reason = reasons[int(i)] or ""
                    else:
                        assert raw is not None
                        shown = raw[int(i)].as_py()
                        reason = f"expected {EXPECTED_VALUE[s.role]}, received {shown!r}"
                    rejects.append(
                        Reject(
                            row=first_row + int(i),
                            column=s.name,
                            reason=reason,
                            value=str(shown)[:200],
                            expected=EXPECTED_VALUE[s.role],
                        )
                    )
            ok &= ~bad
        out[s.name] = vals
    if wrong:
        raise SchemaError(
            "columns have the wrong type;",
            wrong_type=wrong,
            hint="Convert them, or refit with --config roles to type them differently.",
        )
    # numbers stay numpy (the preprocessor's form); the table is built if someone asks for it
    return Coerced(None, ok=ok, rejects=rejects, columns=out)


_NUMBER_TYPES = frozenset(
    t.id for t in (pa.float64(), pa.float32(), pa.float16(), pa.int64(), pa.int32(), pa.int16(), pa.int8())
)
_NUMBER_TYPES |= {t.id for t in (pa.uint64(), pa.uint32(), pa.uint16(), pa.uint8())}
_STRING_TYPES = frozenset((pa.string().id, pa.large_string().id))
_NUMBERS_BELOW: list = []


def _coerce_small(table: pa.Table, used: list[ColumnSpec]) -> Coerced | None:
    """:func:`coerce` for a few rows, when no value is refused.

    Number and text columns become Python lists (one cheap call each; an Arrow kernel or numpy
    conversion per column took most of the time of scoring one record) and the numbers one
    float64 block; other columns go through :func:`coerce_column`. None when a column is
    missing or a value is refused, so that the general path names the columns, records and
    values.
    """
    pos = {name: i for i, name in enumerate(table.schema.names)}
    columns = table.columns
    cols: dict[str, np.ndarray | list | pa.Array] = {}
    numbers: list[str] = []
    values: list[list] = []
    for s in used:
        j = pos.get(s.name)
        if j is None:
            return None
        chunks = columns[j]
        tid = chunks.type.id
        role = s.role
        if role is Role.NUMERIC and tid in _NUMBER_TYPES:
            numbers.append(s.name)
            values.append(chunks.to_pylist())  # None (null) becomes NaN below
            cols[s.name] = _NUMBERS_BELOW  # keeps the columns in the specs' order
            continue
        if role is Role.CATEGORICAL and tid in _STRING_TYPES:
            cols[s.name] = chunks.to_pylist()
            continue
        if role is Role.IMAGE:
            return None
        col = chunks.chunk(0) if chunks.num_chunks == 1 else chunks.combine_chunks()
        try:
            vals, bad = typed_values(col, role)
        except (TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if bad.any():
            return None
        cols[s.name] = vals.to_pylist() if role is Role.CATEGORICAL and isinstance(vals, pa.Array) else vals
    if numbers:
        block = np.array(values, dtype=np.float64)
        if np.isinf(block).any():
            return None
        for name, row in zip(numbers, block, strict=True):
            cols[name] = row
    return Coerced(None, ok=np.ones(table.num_rows, dtype=bool), columns=cols)


def _looks_like_text(s: pd.Series) -> bool:
    sample = s.dropna().astype(str)
    if sample.empty:
        return False
    sample = sample.sample(min(len(sample), 2000), random_state=0)
    words = sample.str.count(r"\s+") + 1
    return bool(sample.str.len().mean() >= 30 and words.mean() >= 5 and sample.nunique() / len(sample) >= 0.3)


def _infer_image(values: pa.Array, root: str | None) -> tuple[Role, str] | None:
    """IMAGE for paths to image files (most of a sample exist) or image bytes; None otherwise."""
    values = values.drop_null()
    if not len(values):
        return None
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(values), min(len(values), image_io.SAMPLE), replace=False))
    sample = values.take(pa.array(pick)).to_pylist()
    if all(isinstance(v, bytes) for v in sample):
        if image_io.decodable_share(sample) >= 0.9:  # type: ignore[arg-type]
            return Role.IMAGE, "encoded image bytes"
        return None
    texts = [str(v) for v in sample]
    if not image_io.looks_like_paths(texts):
        return None
    found = image_io.found_share(texts, root)
    if found >= 0.8:
        return Role.IMAGE, "image file paths"
    return (
        Role.IGNORE,
        f"image paths, but only {found:.0%} of a sample of {len(texts)} exist relative to "
        f"{image_io.root_description(root)}: set image_root, or use absolute paths",
    )


def infer_role(name: str, col: pa.ChunkedArray, *, image_root: str | None = None) -> tuple[Role, str]:
    """Guess a column's role from its type and values; returns (role, reason).

    ``image_root``: the folder relative image paths resolve against (None: the working directory).
    """
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    nonnull = n - arr.null_count
    if nonnull == 0:
        return Role.IGNORE, "constant: every value is missing"
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(pa.string()), pa.string()
    if pa.types.is_floating(t):
        vals = arr.to_numpy(zero_copy_only=False)
        finite = vals[np.isfinite(vals)]
        if len(np.unique(finite)) <= 1 and arr.null_count == 0:
            return Role.IGNORE, "constant: a single value"
        return Role.NUMERIC, "float column"
    if pa.types.is_integer(t):
        distinct = pc.count_distinct(arr).as_py()
        if distinct <= 1 and arr.null_count == 0:
            return Role.IGNORE, "constant: a single value"
        if distinct == nonnull and nonnull >= 50 and _ID_NAME.search(name):
            return Role.ID, "ID-like: unique integer per row with an id-like name"
        return Role.NUMERIC, "integer column"
    if pa.types.is_boolean(t):
        if pc.count_distinct(arr).as_py() <= 1 and arr.null_count == 0:
            return Role.IGNORE, "constant: a single value"
        return Role.BOOLEAN, "boolean column"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return Role.DATETIME, "date/time column"
    if image_io.is_binary(t):
        found = _infer_image(arr, image_root)
        return found if found is not None else (Role.IGNORE, f"unsupported type {t} (not image bytes)")
    if not _is_text_type(t):
        return Role.IGNORE, f"unsupported type {t}"
    s = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)
    present = s.dropna()
    present = present[present.astype(str).str.strip() != ""]
    if present.empty:
        return Role.IGNORE, "constant: every value is missing"
    distinct = present.nunique()
    if distinct <= 1 and len(present) == n:
        return Role.IGNORE, "constant: a single value"
    sample = present.sample(min(len(present), 5000), random_state=0)
    sample_arr = pa.array(sample.astype(str).tolist(), pa.string())
    nums, bad = _parse_numbers(sample_arr)
    if 1 - bad.mean() >= _PARSE_SHARE and np.isfinite(nums).any():
        return Role.NUMERIC, "text column of numbers"
    _, badb = _parse_bools(sample_arr)
    if not badb.any():
        return Role.BOOLEAN, "text column of true/false values"
    if sample.astype(str).str.contains(r"^\d{4}-\d{2}-\d{2}", regex=True).mean() >= _PARSE_SHARE:
        _, badd = _parse_datetimes(sample_arr)
        if 1 - badd.mean() >= _PARSE_SHARE:
            return Role.DATETIME, "text column of ISO dates"
    image = _infer_image(sample_arr, image_root)
    if image is not None:
        return image
    if _looks_like_text(present):
        return Role.TEXT, "free text (long, many words, mostly distinct)"
    if distinct / len(present) >= 0.9 and len(present) >= 50:
        return Role.ID, "ID-like: a distinct value on (almost) every row"
    return Role.CATEGORICAL, f"text column with {distinct} distinct values"


def infer_schema(
    table: pa.Table,
    *,
    target: str,
    id_column: str | None = None,
    drop: list[str] | None = None,
    overrides: dict[str, Role] | None = None,
    image_root: str | None = None,
) -> list[ColumnSpec]:
    """Roles for every column but the target, honouring the user's id, drops and overrides.

    ``image_root`` is recorded on image columns: relative paths resolve against it when batches
    are typed (None: against the working directory)."""
    drop = drop or []
    overrides = overrides or {}
    for name in [*drop, *overrides, *([id_column] if id_column else [])]:
        if name not in table.column_names:
            raise SchemaError(
                f"column {name!r} named in the configuration is not in the data;",
                missing=[name],
                hint="Available: " + ", ".join(table.column_names[:50]),
            )
    specs = []
    for name in table.column_names:
        if name == target:
            continue
        if name == id_column:
            specs.append(ColumnSpec(name, Role.ID, "named as the id column"))
        elif name in drop:
            specs.append(ColumnSpec(name, Role.IGNORE, "dropped by the configuration"))
        elif name in overrides:
            specs.append(ColumnSpec(name, overrides[name], "set by the configuration"))
        else:
            role, reason = infer_role(name, table.column(name), image_root=image_root)
            specs.append(ColumnSpec(name, role, reason))
    for s in specs:
        if s.role == Role.IMAGE:
            s.root = image_root
    return specs
