"""Find more like these: rank the rows of any data by similarity to a few known high-value
examples, in the screener's embedding space (:mod:`winnow.similarity.embedding`).

A row's similarity is its **largest** cosine similarity to any example (not the mean): the
examples may be several different kinds of high-value record, and a row just like one of them
is what a user asks for, while the mean would favour rows halfway between kinds that are like
none. Each output row also names the example it is closest to.

Two ways to rank, same results (up to the index's recall):

exact, streamed (the default)
    Pass 1 reads the data in bounded batches, embeds each batch and keeps the ``top`` best rows
    (:class:`winnow.select.TopK`); pass 2 re-reads the data and writes those rows, ranked.
    Embedding the data is nearly all of the work (bench/RESULTS.md): the cosine products with a
    handful of examples cost ~1% of it, so an index would save nothing on a single query.
``index=PATH``
    The first run embeds the data once and saves an index of its embeddings
    (:class:`winnow.similarity.ann.VectorIndex`) at PATH; later runs with other examples only embed the
    examples, query the index and read back the chosen rows, skipping the embedding of the data.
    ``index_kind`` ``auto`` keeps the embeddings for exact search up to
    :data:`AUTO_EXACT_ROWS` rows and builds an approximate HNSW graph beyond: on 1M rows exact
    search with 10 examples takes under a second, while the graph takes minutes to build, so
    the graph only pays off on larger data or many examples (bench/RESULTS.md).

Rows whose id (the screener's id column) equals an example's id are left out unless
``include_examples`` is set, so the examples themselves do not fill the top places.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from winnow.artifact import dumps
from winnow.errors import ConfigError, DataError
from winnow.io.readers import DEFAULT_BATCH_ROWS, TableSource, open_source
from winnow.io.rejects import Reject, RejectsWriter
from winnow.select import TopK
from winnow.similarity.embedding import Embedder, embedder

if TYPE_CHECKING:
    from winnow.screener import Screener
    from winnow.similarity.ann import VectorIndex

Progress = Callable[[int, "int | None", str], None]
#: at most this many examples (each one is a query against every row)
MAX_EXAMPLES = 10_000
#: ``index_kind="auto"``: up to this many rows the index keeps the embeddings for exact search
AUTO_EXACT_ROWS = 5_000_000
INDEX_KINDS = ("auto", "exact", "hnsw")


@dataclass
class SimilarSummary:
    """Counts that account for every input record: read = ranked + rejected (+ excluded)."""

    rows_read: int = 0
    rows_ranked: int = 0
    rows_rejected: int = 0
    rows_excluded: int = 0
    rows_selected: int = 0
    examples: int = 0
    embedding: str = ""
    method: str = ""
    out: str | None = None
    rejects: str | None = None
    index: str | None = None
    seconds: float = 0.0
    reject_examples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SimilarResult:
    """``selected``: the ranked rows when they are kept in memory (no ``out``); ``head``: the
    best-ranked rows, always."""

    summary: SimilarSummary
    selected: pa.Table | None = None
    head: pa.Table | None = None


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero: similarity 0 to everything)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def embed_examples(screener: Screener, emb: Embedder, examples: Any) -> tuple[np.ndarray, list[Any]]:
    """(unit-length embeddings of the examples, their ids or []): every example must be usable."""
    source = open_source(examples)
    try:
        screener.check_columns(source.column_names())
    except DataError as e:
        raise DataError(f"the examples cannot be embedded: {e}", hint="Give them the data's columns.") from e
    rejects: list[Reject] = []
    parts, ids = [], []
    id_col = screener.id_column
    for _, batch, _, vectors in emb.batches(source, rejects=rejects):
        if rejects:
            r = rejects[0]
            raise DataError(
                f"example cannot be embedded: {r.reason}",
                record=r.row,
                column=r.column,
                hint="Fix or remove this example.",
            )
        parts.append(vectors)
        if id_col and id_col in batch.schema.names:
            ids.extend(batch.column(id_col).cast(pa.string()).to_pylist())
    x = np.concatenate(parts) if parts else np.zeros((0, emb.dim), np.float32)
    if not len(x):
        raise DataError("no examples", hint="Give at least one known high-value record in --examples.")
    if len(x) > MAX_EXAMPLES:
        raise ConfigError("--examples", f"{len(x):,} records", f"at most {MAX_EXAMPLES:,} examples")
    return normalise(x), [i for i in ids if i is not None]


def _excluded(batch: pa.RecordBatch | pa.Table, id_col: str | None, ids: pa.Array | None) -> np.ndarray:
    if ids is None or id_col is None or id_col not in batch.schema.names:
        return np.zeros(batch.num_rows, bool)
    hit = pc.is_in(batch.column(id_col).cast(pa.string()), value_set=ids)
    return np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), bool)


def screener_fingerprint(screener: Screener) -> str:
    """Identifies a fitted screener (its manifest: creation time, config, schema, metrics)."""
    body = dumps(screener.manifest(), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(body).hexdigest()


def find_similar(
    screener: Screener,
    data: Any,
    examples: Any,
    *,
    top: int = 100,
    out: str | Path | None = None,
    rejects: str | Path | None = None,
    index: str | Path | None = None,
    index_kind: str = "auto",
    embedding: str = "auto",
    include_examples: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> SimilarResult:
    """The ``top`` rows of ``data`` most similar to any of ``examples``, ranked.

    Parameters
    ----------
    screener : a fitted screener; its embedding (``embedding``: auto, deep or inputs) is the space.
    data, examples : paths (CSV, Parquet, JSON lines) or data frames with the screener's columns.
    top : rows to return.
    out : file to write (.parquet, .csv, .jsonl); None keeps the rows in memory.
    rejects : JSON-lines file for records that cannot be embedded.
    index : folder of a saved vector index of ``data``'s embeddings: built there on the first
        call, reused by later ones (see the module docstring).
    index_kind : a new index's kind: ``exact`` (stored embeddings, brute force), ``hnsw``
        (approximate graph) or ``auto`` (exact up to :data:`AUTO_EXACT_ROWS` rows).
    include_examples : also return rows whose id equals an example's id.

    Returns
    -------
    SimilarResult
        Output columns: ``rank``, ``row`` (0-based position in ``data``), ``similarity``
        (cosine, -1..1), ``example`` (0-based position of the closest example),
        ``example_<id>`` when the screener has an id column, then the row's own columns.
    """
    t0 = time.monotonic()
    if top < 1:
        raise ConfigError("--top", top, "an integer >= 1")
    if index_kind not in INDEX_KINDS:
        raise ConfigError("--index-kind", index_kind, "one of " + ", ".join(INDEX_KINDS))
    emb = embedder(screener, embedding)
    ex, ex_ids = embed_examples(screener, emb, examples)
    source = open_source(data)
    screener.check_columns(source.column_names())
    id_col = screener.id_column
    skip_ids = pa.array(ex_ids, pa.string()) if ex_ids and not include_examples else None
    summary = SimilarSummary(examples=len(ex), embedding=emb.describe(), out=str(out) if out else None)
    with RejectsWriter(Path(rejects) if rejects is not None else None) as rw:
        if index is None:
            summary.method = "exact cosine, streamed"
            rows, sims, closest = _rank_streamed(
                emb, source, ex, top, batch_rows, rw, summary, skip_ids, id_col, progress
            )
        else:
            rows, sims, closest = _rank_indexed(
                screener,
                emb,
                source,
                ex,
                top,
                Path(index),
                index_kind,
                batch_rows,
                rw,
                summary,
                skip_ids,
                progress,
            )
        table, head = _write_rows(
            screener,
            emb,
            source,
            ex,
            ex_ids,
            rows,
            sims,
            closest,
            top,
            out,
            batch_rows,
            skip_ids,
            summary,
            progress,
        )
        summary.rows_rejected += rw.count
        summary.reject_examples = [r.describe() for r in rw.examples[:5]]
    summary.rows_read = summary.rows_ranked + summary.rows_rejected + summary.rows_excluded
    summary.rejects = str(rejects) if rejects and rw.count else None
    summary.seconds = round(time.monotonic() - t0, 3)
    return SimilarResult(summary=summary, selected=table, head=head)


def _rank_streamed(
    emb: Embedder,
    source: TableSource,
    ex: np.ndarray,
    top: int,
    batch_rows: int,
    rw: RejectsWriter,
    summary: SimilarSummary,
    skip_ids: pa.Array | None,
    id_col: str | None,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    best = TopK(top)
    total = source.num_rows()
    pending: list[Reject] = []
    for row, batch, ok, e in emb.batches(source, batch_rows, rejects=pending):
        rw.add(pending)
        pending.clear()
        sims = np.full(batch.num_rows, np.nan)
        sims[ok] = (normalise(e) @ ex.T).max(axis=1)
        skip = _excluded(batch, id_col, skip_ids) & ok
        sims[skip] = np.nan
        summary.rows_excluded += int(skip.sum())
        summary.rows_ranked += int(ok.sum()) - int(skip.sum())
        best.add(row, sims)
        if progress:
            progress(row + batch.num_rows, total, "embedding and ranking (pass 1 of 2)")
    rw.add(pending)
    rows, sims = best.top(top)
    return rows, sims, None


def _index_meta(screener: Screener, emb: Embedder) -> dict[str, Any]:
    return {
        "screener": screener_fingerprint(screener),
        "embedding": emb.kind,
        "member": emb.member,
        "dim": emb.dim,
    }


def open_index(
    screener: Screener,
    emb: Embedder,
    source: TableSource,
    path: Path,
    kind: str = "auto",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    rw: RejectsWriter | None = None,
    progress: Progress | None = None,
) -> tuple[VectorIndex, bool]:
    """The saved index of ``source``'s embeddings at ``path`` (checked to belong to this screener
    and embedding), or a new one of ``kind`` built and saved there; returns (index, built)."""
    from winnow.similarity.ann import VectorIndex

    meta = _index_meta(screener, emb)
    if path.exists():
        vi = VectorIndex.load(path)
        got = {k: vi.meta.get(k) for k in meta}
        if got != meta:
            raise ConfigError(
                "--index",
                str(path),
                "an index built with this screener and embedding",
                f"It was built with {got}. Delete it to rebuild, or pass another path.",
            )
        n = source.num_rows()
        if n is not None and vi.meta.get("rows_read") not in (None, n):
            raise ConfigError(
                "--index",
                str(path),
                f"an index of this data ({n:,} rows)",
                f"It indexes data of {vi.meta['rows_read']:,} rows. Delete it to rebuild, "
                "or pass another path.",
            )
        return vi, False
    seed = screener.config.seed if screener.config else 0
    # embeddings are collected for exact search; "auto" turns them into a graph past the limit
    vi = VectorIndex(emb.dim, metric="cosine", exact=kind != "hnsw", seed=seed)
    total = source.num_rows()
    pending: list[Reject] = []
    rows_read = rejected = 0
    for row, batch, ok, e in emb.batches(source, batch_rows, rejects=pending):
        if rw is not None:
            rw.add(pending)
        rejected += len(pending)
        pending.clear()
        vi.add(e, row + np.flatnonzero(ok).astype(np.int64))
        rows_read = row + batch.num_rows
        if progress:
            progress(rows_read, total, "embedding and indexing")
    if rw is not None:
        rw.add(pending)
    rejected += len(pending)
    if kind == "auto" and len(vi) > AUTO_EXACT_ROWS:
        if progress:
            progress(rows_read, total, f"building the HNSW graph of {len(vi):,} rows")
        graph = VectorIndex(emb.dim, metric="cosine", seed=seed)
        graph.add(vi.vectors(), vi.ids())
        vi = graph
    vi.meta = {
        **meta,
        "rows_read": max(rows_read, len(vi) + rejected),
        "rows_indexed": len(vi),
        "rows_rejected": rejected,
        "data": source.name,
    }
    vi.save(path)
    return vi, True


def _rank_indexed(
    screener: Screener,
    emb: Embedder,
    source: TableSource,
    ex: np.ndarray,
    top: int,
    path: Path,
    kind: str,
    batch_rows: int,
    rw: RejectsWriter,
    summary: SimilarSummary,
    skip_ids: pa.Array | None,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vi, built = open_index(screener, emb, source, path, kind, batch_rows, rw, progress)
    summary.index = str(path)
    what = "exact" if vi.exact else "HNSW"
    summary.method = f"{what} vector index {'built at' if built else 'reused from'} {path}"
    if not built:
        # the rejects were written when the index was built: count them, do not repeat them
        summary.rows_rejected += int(vi.meta.get("rows_rejected", 0))
    # max over examples decomposes: every row of the true top k is in the top k of the
    # example it is closest to; extra places make room for rows excluded in pass 2
    k = top + (len(skip_ids) if skip_ids is not None else 0)
    ids, sims = vi.search(ex, min(k, max(len(vi), 1)))
    flat_ids, flat_sims = ids.ravel(), sims.ravel().astype(np.float64)
    flat_ex = np.repeat(np.arange(len(ex)), ids.shape[1])
    keep = flat_ids >= 0
    flat_ids, flat_sims, flat_ex = flat_ids[keep], flat_sims[keep], flat_ex[keep]
    # best example per row: sort by (row, -similarity, example) and keep each row's first
    order = np.lexsort((flat_ex, -flat_sims, flat_ids))
    flat_ids, flat_sims, flat_ex = flat_ids[order], flat_sims[order], flat_ex[order]
    first = np.ones(flat_ids.size, bool)
    first[1:] = flat_ids[1:] != flat_ids[:-1]
    rows, s, closest = flat_ids[first], flat_sims[first], flat_ex[first]
    order = np.lexsort((rows, -s))[:k]
    summary.rows_ranked = len(vi)
    return rows[order], s[order], closest[order]


def _write_rows(
    screener: Screener,
    emb: Embedder,
    source: TableSource,
    ex: np.ndarray,
    ex_ids: list[Any],
    rows: np.ndarray,
    sims: np.ndarray,
    closest: np.ndarray | None,
    top: int,
    out: str | Path | None,
    batch_rows: int,
    skip_ids: pa.Array | None,
    summary: SimilarSummary,
    progress: Progress | None,
) -> tuple[pa.Table | None, pa.Table | None]:
    """Pass 2: re-read the data and keep the chosen rows, ranked, with their own columns."""
    from winnow.engines.output import SPILL_ROWS, RankedOutput, finish_selected, plain_columns

    id_col = screener.id_column
    by_row = np.argsort(rows, kind="stable")
    rows_sorted = rows[by_row]
    found: list[pa.Table] = []
    total = source.num_rows()
    for row, batch in source.numbered_batches(batch_rows):
        lo, hi = np.searchsorted(rows_sorted, [row, row + batch.num_rows])
        if hi > lo:
            pos = by_row[lo:hi]
            local = rows[pos] - row
            raw = pa.Table.from_batches([batch]).take(pa.array(local))
            if closest is None:
                # the closest example of the few chosen rows (pass 1 kept only the best similarity)
                x, _ = screener.prepare(raw, first_row=row)
                near = np.argmax(normalise(emb(x)) @ ex.T, axis=1)
            else:
                near = closest[pos]
            cols: dict[str, Any] = {
                "rank": pa.array(np.zeros(len(pos), np.int64)),
                "row": pa.array(rows[pos], pa.int64()),
                "similarity": pa.array(sims[pos], pa.float64()),
                "example": pa.array(near, pa.int64()),
            }
            if id_col and len(ex_ids) == len(ex):
                cols[f"example_{id_col}"] = pa.array([ex_ids[i] for i in near], pa.string())
            for name, col in zip(raw.column_names, plain_columns(raw).columns, strict=True):
                cols.setdefault(name, col)
            part = pa.table(cols)
            skip = _excluded(raw, id_col, skip_ids)
            if closest is not None and skip.any():
                summary.rows_excluded += int(skip.sum())
                part = part.filter(pa.array(~skip))
            found.append(part)
        if progress:
            progress(row + batch.num_rows, total, "writing the most similar rows (pass 2 of 2)")
    if closest is not None:
        summary.rows_ranked -= summary.rows_excluded
    table = pa.concat_tables(found, promote_options="permissive") if found else None
    ranked = RankedOutput(SPILL_ROWS if out is not None else None)
    if table is not None and table.num_rows:
        order = np.lexsort((table.column("row").to_numpy(), -table.column("similarity").to_numpy()))[:top]
        table = table.take(pa.array(order))
        table = table.set_column(0, "rank", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
        ranked.add(table)
    summary.rows_selected = ranked.rows
    selected, head = finish_selected(ranked, out, empty_schema=EMPTY_SIMILAR)
    return selected, head


EMPTY_SIMILAR = pa.schema(
    [("rank", pa.int64()), ("row", pa.int64()), ("similarity", pa.float64()), ("example", pa.int64())]
)
