"""A few rows (one record in the service, a short stream batch) take a shortcut through typing,
the preprocessor and the text hasher; every shortcut must give what the batch path gives."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from winnow.config import Role
from winnow.prep.preprocessor import Preprocessor
from winnow.prep.text import TextHasher
from winnow.schema import SMALL_BATCH, ColumnSpec, coerce

SPECS = [
    ColumnSpec("n_float", Role.NUMERIC),
    ColumnSpec("n_int", Role.NUMERIC),
    ColumnSpec("n_text", Role.NUMERIC),
    ColumnSpec("n_bool", Role.NUMERIC),
    ColumnSpec("c_text", Role.CATEGORICAL),
    ColumnSpec("c_int", Role.CATEGORICAL),
    ColumnSpec("c_float", Role.CATEGORICAL),
    ColumnSpec("c_dict", Role.CATEGORICAL),
    ColumnSpec("b", Role.BOOLEAN),
    ColumnSpec("b_text", Role.BOOLEAN),
    ColumnSpec("d", Role.DATETIME),
    ColumnSpec("d_text", Role.DATETIME),
    ColumnSpec("t", Role.TEXT),
    ColumnSpec("ignored", Role.ID),
]
N = 60


def _table(n: int = N) -> pa.Table:
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "great", "awful", "ok"]
    base = dt.datetime(2024, 1, 1, 6, 30)

    def maybe(i: int, v):
        return None if i % 7 == 3 else v

    return pa.table(
        {
            "n_float": pa.array([maybe(i, rng.normal()) if i % 11 else float("nan") for i in range(n)]),
            "n_int": pa.array([maybe(i, int(rng.integers(-5, 2**40))) for i in range(n)], pa.int64()),
            "n_text": pa.array([maybe(i, f" {rng.normal():.3f}") for i in range(n)], pa.large_string()),
            "n_bool": pa.array([maybe(i, bool(i % 2)) for i in range(n)]),
            "c_text": pa.array([maybe(i, words[i % 4]) for i in range(n)], pa.large_string()),
            "c_int": pa.array([maybe(i, i % 3) for i in range(n)], pa.int32()),
            "c_float": pa.array([maybe(i, float(i % 3) + (0.5 if i % 5 == 0 else 0.0)) for i in range(n)]),
            "c_dict": pa.array([words[i % 3] for i in range(n)]).dictionary_encode(),
            "b": pa.array([maybe(i, i % 3 == 0) for i in range(n)]),
            "b_text": pa.array([maybe(i, ["yes", "no", "T", "0"][i % 4]) for i in range(n)]),
            "d": pa.array([maybe(i, base + dt.timedelta(hours=17 * i)) for i in range(n)], pa.timestamp("s")),
            "d_text": pa.array(
                [maybe(i, (base + dt.timedelta(days=i)).strftime("%Y-%m-%d")) for i in range(n)]
            ),
            "t": pa.array([maybe(i, " ".join(words[(i + j) % 6] for j in range(i % 9))) for i in range(n)]),
            "ignored": pa.array([f"id{i}" for i in range(n)]),
        }
    )


def test_small_batches_type_like_the_batch_path():
    table = _table()
    whole = coerce(table, SPECS)
    assert whole.columns is not None and whole.ok.all()
    # the batch path: numbers as numpy (what the preprocessor reads), categories as Arrow text
    assert isinstance(whole.columns["n_int"], np.ndarray) and isinstance(whole.columns["c_text"], pa.Array)
    for start, size in [(i, 1) for i in range(N)] + [(0, SMALL_BATCH), (20, 5)]:
        part = coerce(table.slice(start, size), SPECS)
        assert part.columns is not None and isinstance(part.columns["c_text"], list)  # the shortcut
        expected = whole.table.slice(start, size)
        assert part.table.column_names == expected.column_names
        for name in expected.column_names:
            got, want = part.table.column(name).to_pylist(), expected.column(name).to_pylist()
            assert got == want, (name, start, got, want)


def test_small_batches_prepare_like_the_batch_path():
    table = _table()
    typed = coerce(table, SPECS)
    prep = Preprocessor(min_category_count=2).fit(typed.table, SPECS)
    whole = prep.transform(typed.table, SPECS)
    for i in range(N):
        part = prep.transform(coerce(table.slice(i, 1), SPECS), SPECS)
        np.testing.assert_array_equal(part.num, whole.num[i : i + 1])
        np.testing.assert_array_equal(part.cat, whole.cat[i : i + 1])
        np.testing.assert_array_equal(prep.dense(part), prep.dense(whole)[i : i + 1])
        assert part.text is not None and whole.text is not None
        np.testing.assert_array_equal(part.text.toarray(), whole.text[i : i + 1].toarray())


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("n_float", float("inf"), "expected a finite number"),
        ("n_text", "twelve", "expected a finite number"),
        ("b_text", "maybe", "expected true/false"),
        ("d_text", "not a date", "expected an ISO 8601 date"),
    ],
)
def test_a_refused_value_in_a_small_batch_is_rejected_as_in_a_large_one(column, value, reason):
    table = _table(3)
    col = table.column(column).to_pylist()
    col[1] = value
    field = table.schema.field(column)
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(col, field.type))
    out = coerce(table, SPECS)
    assert out.ok.tolist() == [True, False, True]
    assert [(r.row, r.column) for r in out.rejects] == [(1, column)]
    assert reason in out.rejects[0].reason


def test_a_missing_column_in_a_small_batch_names_it():
    from winnow.errors import SchemaError

    with pytest.raises(SchemaError, match="n_int"):
        coerce(_table(1).drop_columns(["n_int"]), SPECS)


def _scipy_tfidf(hasher: TextHasher, col: pa.Array) -> sp.csr_matrix:
    """The formula the hasher had before it worked on the CSR arrays directly."""
    x = hasher._vectorizer().transform(hasher._docs(col)).tocsr()
    x.data = (1.0 + np.log(x.data)) * hasher.idf_[x.indices]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ x, dtype=np.float32)


@pytest.mark.parametrize("n", [1, 3, 200])
def test_tfidf_rows_are_the_scipy_formula_to_the_last_bit(n):
    rng = np.random.default_rng(n)
    vocab = ["the", "cat", "sat", "on", "mat", "très", "bien", "x1", "don't"]
    docs = [" ".join(rng.choice(vocab, size=int(rng.integers(0, 40)))) for _ in range(n)]
    docs[0] = "Cat cat CAT sat"
    if n > 2:
        docs[1], docs[2] = None, "   "
    hasher = TextHasher(n_features=1 << 10).fit(pa.array(docs * 3))
    got, want = hasher.transform(pa.array(docs)), _scipy_tfidf(hasher, pa.array(docs))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)  # same entry order, same sums
    np.testing.assert_array_equal(got.data, want.data)


def test_text_lengths_and_words_of_a_few_texts_equal_arrows() -> None:
    """A few ASCII texts are measured with Python's string methods; a batch with Arrow's
    kernels. Every ASCII character as a separator, missing and empty texts, non-ASCII text."""
    from winnow.prep.preprocessor import _text_parts
    from winnow.schema import SMALL_BATCH

    texts = ["", None, "   ", " a ", "one two  three", "a\t\tb\n c\r\nd", "Ünïcödé  text", "x"]
    texts += [f"{chr(i)}w{chr(i)}{chr(i)}v {chr(i)}" for i in range(128)]
    batch = _text_parts(pa.array(texts * (SMALL_BATCH // len(texts) + 1), pa.string()))
    for i, text in enumerate(texts):
        one = _text_parts(pa.array([text], pa.string()))
        for part in ("length", "words"):
            np.testing.assert_array_equal(one[part], batch[part][i : i + 1], err_msg=f"{part} of {text!r}")


def test_tfidf_without_scikit_learns_hashing_kernel_is_the_same():
    """Where the hashing kernel cannot be imported, the public HashingVectorizer gives the rows."""
    docs = pa.array(["Cat cat CAT sat", None, "on the mat, très bien", ""])
    hasher = TextHasher(n_features=1 << 10).fit(docs)
    fast = hasher.transform(docs)
    hasher._counts(["x"])  # builds the vectorizer, then the kernel is taken away
    hasher._hashing = None
    slow = hasher.transform(docs)
    for a, b in ((fast.indptr, slow.indptr), (fast.indices, slow.indices), (fast.data, slow.data)):
        np.testing.assert_array_equal(a, b)
    assert hasher.transform(pa.array([], type=pa.string())).shape == (0, 1 << 10)


def test_unseen_and_missing_categories_code_alike_in_small_and_large_batches():
    """The batch path's codes (one Arrow call, numpy arithmetic) equal the few-row path's dict."""
    table = _table()
    prep = Preprocessor(min_category_count=2).fit(coerce(table, SPECS).table, SPECS)
    texts = table.column("c_text").to_pylist()
    changed = table.set_column(
        table.column_names.index("c_text"),
        "c_text",
        pa.array([("never seen" if i % 5 == 1 else v) for i, v in enumerate(texts)], pa.large_string()),
    )
    whole = prep.transform(coerce(changed, SPECS).table, SPECS)
    assert {0, 1} <= set(whole.cat[:, 0].tolist())  # missing and rare codes both occur
    for i in range(N):
        part = prep.transform(coerce(changed.slice(i, 1), SPECS), SPECS)
        np.testing.assert_array_equal(part.cat, whole.cat[i : i + 1])


def test_tfidf_n_grams_are_the_vectorizers():
    """The analyzer the hasher uses gives the n-grams scikit-learn's does, in the same order."""
    from winnow.prep.text import _grams

    analyze = TextHasher()._vectorizer().build_analyzer()
    rng = np.random.default_rng(5)
    pieces = ["Très", "bien!", "don't", "x1", "ÉTÉ", "a_b", "--", "42.5", "naïve", "ǅ", " ", "\t", "İ"]
    docs = ["", "   ", "one", "One two", "Cat cat CAT sat"] + [
        " ".join(rng.choice(pieces, size=int(rng.integers(1, 30)))) for _ in range(200)
    ]
    for d in docs:
        assert _grams(d) == analyze(d), d
