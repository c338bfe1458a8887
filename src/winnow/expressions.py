"""Safe expressions over a record's columns, e.g. ``past_spend`` or ``log1p(amount) * 2``.

Used for the user's own baseline rule (``--baseline``) and for named rules. Allowed: arithmetic,
comparisons, ``and``/``or``/``not``, column names, literals, IN lists (``country in ("US",
"CA")``, ``not in``), null tests (``x is None``, ``x is not None``), CASE as Python's
conditional (``a if cond else b``), numeric functions (log, log1p, exp, sqrt, abs, min, max)
and text functions (lower, upper, length, contains, startswith, endswith). Parsing rejects
anything else, so an expression can never run code.

Evaluation is total: a missing value makes a comparison false (as SQL's NULL does) and text
read where a number is wanted counts as missing unless it is number text. :meth:`check_types`
refuses, before anything runs, an expression whose column types cannot work (text in
arithmetic, a number compared with text, a condition that is not one).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.errors import ConfigError

_FUNCS: dict[str, Callable[..., Any]] = {
    "log": np.log,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "min": np.minimum,
    "max": np.maximum,
}
_BIN = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
    ast.Mod: np.mod,
}
_CMP = {
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
}


_TEXT_FUNCS: dict[str, tuple[int, Callable[..., Any]]] = {
    "lower": (1, str.lower),
    "upper": (1, str.upper),
    "length": (1, len),
    "contains": (2, lambda s, sub: sub in s),
    "startswith": (2, str.startswith),
    "endswith": (2, str.endswith),
}
_ALL_FUNCS = [*_FUNCS, *_TEXT_FUNCS]
NUMBER, TEXT, BOOL, NULL, ANY = "number", "text", "boolean", "null", "any"


class Expression:
    """A parsed, validated expression; :meth:`evaluate` runs it on columns (arrays)."""

    def __init__(self, text: str, option: str = "--baseline") -> None:
        self.text = text
        try:
            self.tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise ConfigError(
                option, text, "a column name or an expression over columns", f"Syntax error: {e.msg}."
            ) from e
        self.names: list[str] = []
        self._check(self.tree.body, option)

    def _check(self, node: ast.AST, option: str) -> None:
        ok = (
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.BoolOp,
            ast.Name,
            ast.Constant,
            ast.Call,
            ast.IfExp,
            ast.Tuple,
            ast.List,
            ast.Load,
            ast.operator,
            ast.unaryop,
            ast.cmpop,
            ast.boolop,
        )
        for sub in ast.walk(node):
            if not isinstance(sub, ok):
                raise ConfigError(
                    option,
                    self.text,
                    "arithmetic, comparisons, and/or/not, in (...), is None, a if c else b, "
                    "column names and the functions " + ", ".join(_ALL_FUNCS),
                    f"{type(sub).__name__} is not allowed.",
                )
            if isinstance(sub, ast.Call):
                name = sub.func.id if isinstance(sub.func, ast.Name) else None
                if (name not in _FUNCS and name not in _TEXT_FUNCS) or sub.keywords:
                    raise ConfigError(option, self.text, "functions among " + ", ".join(_ALL_FUNCS))
                want = _TEXT_FUNCS[name][0] if name in _TEXT_FUNCS else None
                if want is not None and len(sub.args) != want:
                    raise ConfigError(option, self.text, f"{name}() with {want} argument(s)")
            elif isinstance(sub, ast.Compare):
                self._check_compare(sub, option)
            elif isinstance(sub, ast.Tuple | ast.List) and not getattr(sub, "_in_list", False):
                raise ConfigError(option, self.text, "a list only after `in` / `not in`")
            elif isinstance(sub, ast.Name) and sub.id not in _ALL_FUNCS and sub.id not in self.names:
                self.names.append(sub.id)
            if isinstance(sub, ast.BinOp) and type(sub.op) not in _BIN:
                raise ConfigError(option, self.text, "operators + - * / ** %")

    def _check_compare(self, node: ast.Compare, option: str) -> None:
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right, ast.Tuple | ast.List) or not all(
                    isinstance(e, ast.Constant) for e in right.elts
                ):
                    raise ConfigError(option, self.text, "`in` / `not in` followed by a list of literals")
                right._in_list = True  # type: ignore[union-attr]
            elif isinstance(op, ast.Is | ast.IsNot):
                if not (isinstance(right, ast.Constant) and right.value is None):
                    raise ConfigError(option, self.text, "`is None` or `is not None`")
            elif type(op) not in _CMP:
                raise ConfigError(option, self.text, "comparisons == != < <= > >=")

    def check_types(self, types: Mapping[str, str], option: str) -> str:
        """The expression's type given column types (:data:`NUMBER`, :data:`TEXT`, :data:`BOOL`;
        a column not listed may hold anything); raises ConfigError where they cannot work."""

        def refuse(why: str) -> ConfigError:
            return ConfigError(option, self.text, "an expression whose column types fit", why)

        def t(node: ast.AST) -> str:
            if isinstance(node, ast.Constant):
                v = node.value
                return (
                    NULL
                    if v is None
                    else BOOL
                    if isinstance(v, bool)
                    else TEXT
                    if isinstance(v, str)
                    else NUMBER
                )
            if isinstance(node, ast.Name):
                return types.get(node.id, ANY)
            if isinstance(node, ast.BinOp | ast.UnaryOp):
                operands = [node.left, node.right] if isinstance(node, ast.BinOp) else [node.operand]
                if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                    return BOOL
                for o in operands:
                    if t(o) == TEXT:
                        raise refuse(f"{ast.unparse(o)} is text; arithmetic needs numbers")
                return NUMBER
            if isinstance(node, ast.BoolOp):
                for operand in node.values:
                    t(operand)
                return BOOL
            if isinstance(node, ast.Compare):
                items = [node.left, *node.comparators]
                for op, a, b in zip(node.ops, items, items[1:], strict=False):
                    ta = t(a)
                    if isinstance(op, ast.In | ast.NotIn):
                        tb = {t(e) for e in b.elts} - {NULL}  # type: ignore[attr-defined]
                        if len(tb) > 1:
                            raise refuse(f"the list {ast.unparse(b)} mixes types")
                        tb_one = tb.pop() if tb else ANY
                    elif isinstance(op, ast.Is | ast.IsNot):
                        continue
                    else:
                        tb_one = t(b)
                    if {ta, tb_one} == {NUMBER, TEXT}:
                        raise refuse(f"{ast.unparse(a)} ({ta}) is compared with {ast.unparse(b)} ({tb_one})")
                return BOOL
            if isinstance(node, ast.IfExp):
                t(node.test)
                branches = {t(node.body), t(node.orelse)} - {NULL, ANY}
                if len(branches) > 1:
                    raise refuse(f"the branches of {ast.unparse(node)} have different types")
                return branches.pop() if branches else ANY
            if isinstance(node, ast.Call):
                name = node.func.id  # type: ignore[attr-defined]
                want = NUMBER if name in _FUNCS else TEXT
                for a in node.args:
                    if {t(a), want} == {NUMBER, TEXT}:
                        raise refuse(f"{name}() takes {want}, not {ast.unparse(a)}")
                return (
                    TEXT
                    if name in ("lower", "upper")
                    else BOOL
                    if name in _TEXT_FUNCS and name != "length"
                    else NUMBER
                )
            return ANY  # pragma: no cover

        return t(self.tree.body)

    def evaluate_table(self, table: pa.Table) -> np.ndarray:
        """Evaluate on the columns of an Arrow table: numbers/booleans as float64, the rest as
        Python objects (strings compare with ``==``); names the table lacks are an error."""
        cols: dict[str, np.ndarray] = {}
        for name in self.names:
            if name not in table.column_names:
                continue
            col = table.column(name).combine_chunks()
            t = col.type
            if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
                cols[name] = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
            else:
                cols[name] = np.asarray(col.to_pylist(), dtype=object)
        return self.evaluate(cols)

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ConfigError(
                "expression", self.text, "names of existing columns", f"Unknown: {', '.join(missing)}."
            )
        with np.errstate(all="ignore"):
            return np.asarray(self._eval(self.tree.body, columns))

    def _eval(self, node: ast.AST, cols: Mapping[str, np.ndarray]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return cols[node.id]
        if isinstance(node, ast.BinOp):
            left, right = _numbers(self._eval(node.left, cols)), _numbers(self._eval(node.right, cols))
            return _BIN[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, cols)
            if isinstance(node.op, ast.Not):
                return np.logical_not(_truth(v))
            return -_numbers(v) if isinstance(node.op, ast.USub) else _numbers(v)
        if isinstance(node, ast.IfExp):
            test = _truth(self._eval(node.test, cols))
            body, orelse = self._eval(node.body, cols), self._eval(node.orelse, cols)
            if _is_text(body) or _is_text(orelse):  # text stays text (None where missing)
                body, orelse = np.asarray(body, dtype=object), np.asarray(orelse, dtype=object)
            return np.where(test, body, orelse)
        if isinstance(node, ast.BoolOp):
            vals = [_truth(self._eval(v, cols)) for v in node.values]
            fn = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = vals[0]
            for v in vals[1:]:
                out = fn(out, v)
            return out
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, cols)
            out = True
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.Is | ast.IsNot):
                    missing = _missing(left)
                    out = np.logical_and(out, missing if isinstance(op, ast.Is) else ~missing)
                    continue
                if isinstance(op, ast.In | ast.NotIn):
                    values = [e.value for e in right_node.elts if e.value is not None]  # type: ignore[attr-defined]
                    hit = _isin(left, values)
                    out = np.logical_and(out, hit if isinstance(op, ast.In) else ~hit & ~_missing(left))
                    continue
                right = self._eval(right_node, cols)
                out = np.logical_and(out, _compare(type(op), left, right))
                left = right
            return out
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            args = [self._eval(a, cols) for a in node.args]
            if node.func.id in _TEXT_FUNCS:
                return _text_call(_TEXT_FUNCS[node.func.id][1], args)
            return _FUNCS[node.func.id](*[_numbers(a) for a in args])
        raise ConfigError("expression", self.text, "a supported expression")  # pragma: no cover


def _is_text(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype.kind in "OU")


def _as_number(v: Any) -> float:
    if v is None or isinstance(v, bool):
        return np.nan if v is None else float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan  # text that is not a number counts as missing


def _numbers(v: Any) -> Any:
    """``v`` as numbers: text is read as a number where it is one, else it is missing."""
    if isinstance(v, np.ndarray) and v.dtype.kind in "OU":
        return np.array([_as_number(x) for x in v], dtype=np.float64)
    if isinstance(v, str) or v is None:
        return _as_number(v)
    return v


def _per_distinct(v: np.ndarray, fn: Callable[[Any], Any], missing: Any, dtype: Any) -> np.ndarray:
    """``fn`` of each element of the object array ``v`` (``missing`` where it is None), computed
    once per distinct value: columns of text repeat their values, so this is what keeps rules
    over text at a small share of scoring."""
    import pandas as pd

    codes, uniques = pd.factorize(v.ravel(), use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=dtype)
    table[:-1] = [fn(u) for u in uniques]
    table[-1] = missing  # code -1 (None) indexes the last slot
    return table[codes].reshape(v.shape)


def _truth(v: Any) -> Any:
    """A condition's value: missing (NaN / None) is false."""
    if isinstance(v, np.ndarray) and v.dtype.kind in "OU":
        return _per_distinct(np.asarray(v, dtype=object), bool, False, bool)
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        return np.nan_to_num(v, nan=0.0) != 0
    return v if not isinstance(v, float) or v == v else False


def _missing(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            return np.array([x is None for x in v], dtype=bool)
        return np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, dtype=bool)
    return v is None or (isinstance(v, float) and v != v)


def _isin(v: Any, values: list[Any]) -> Any:
    if _is_text(v) and all(isinstance(x, str) for x in values):
        members = set(values)
        return _per_distinct(np.asarray(np.atleast_1d(v), dtype=object), members.__contains__, False, bool)
    return np.isin(_numbers(v), [_as_number(x) for x in values])


def _compare(op: type[ast.cmpop], left: Any, right: Any) -> Any:
    """A comparison that is never an error: missing on either side is false; text against a
    number reads the text as a number (missing when it is not one)."""
    fn = _CMP[op]
    if _is_text(left) and _is_text(right):
        for col, const, swap in ((left, right, False), (right, left, True)):
            if isinstance(col, np.ndarray) and col.ndim and isinstance(const, str):  # column vs text

                def one(x: Any, c: str = const, swap: bool = swap) -> bool:
                    return bool(fn(c, x)) if swap else bool(fn(x, c))

                return _per_distinct(np.asarray(col, dtype=object), one, False, bool)
        a, b = np.broadcast_arrays(np.asarray(left, dtype=object), np.asarray(right, dtype=object))
        pairs = zip(a.ravel(), b.ravel(), strict=True)
        hits = [x is not None and y is not None and bool(fn(x, y)) for x, y in pairs]
        return np.array(hits, dtype=bool).reshape(a.shape)
    x = np.asarray(_numbers(left), dtype=np.float64)
    y = np.asarray(_numbers(right), dtype=np.float64)
    return np.asarray(fn(x, y), dtype=bool) & ~np.isnan(x) & ~np.isnan(y)


def _text_call(fn: Callable[..., Any], args: list[Any]) -> Any:
    """A text function over columns: missing in, missing out."""
    cols = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.ndim]
    if len(cols) == 1 and all(a is not None for i, a in enumerate(args) if i != cols[0]):
        k, consts = cols[0], [str(a) for a in args]

        def one(x: Any) -> Any:
            return fn(*[str(x) if i == k else c for i, c in enumerate(consts)])

        return _per_distinct(np.asarray(args[k], dtype=object), one, None, object)
    arrays = np.broadcast_arrays(*[np.asarray(a, dtype=object) for a in args])
    out = [
        None if any(x is None for x in row) else fn(*[str(x) for x in row])
        for row in zip(*[a.ravel() for a in arrays], strict=True)
    ]
    return np.array(out, dtype=object).reshape(arrays[0].shape)
