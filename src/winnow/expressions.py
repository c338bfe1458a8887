"""Safe expressions over a record's columns, e.g. ``past_spend`` or ``log1p(amount) * 2``.

Used for the user's own baseline rule (``--baseline``) and for named rules. Only arithmetic,
comparisons, boolean logic, column names, literals and a few numeric functions are allowed:
parsing rejects anything else, so an expression can never run code.
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
                    "arithmetic, comparisons, and/or/not, "
                    "column names and the functions " + ", ".join(_FUNCS),
                    f"{type(sub).__name__} is not allowed.",
                )
            if isinstance(sub, ast.Call):
                if not isinstance(sub.func, ast.Name) or sub.func.id not in _FUNCS or sub.keywords:
                    raise ConfigError(option, self.text, "functions among " + ", ".join(_FUNCS))
            elif isinstance(sub, ast.Name) and sub.id not in _FUNCS and sub.id not in self.names:
                self.names.append(sub.id)
            if isinstance(sub, ast.BinOp) and type(sub.op) not in _BIN:
                raise ConfigError(option, self.text, "operators + - * / ** %")

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
            return _BIN[type(node.op)](self._eval(node.left, cols), self._eval(node.right, cols))
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, cols)
            if isinstance(node.op, ast.Not):
                return np.logical_not(v)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BoolOp):
            vals = [self._eval(v, cols) for v in node.values]
            fn = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = vals[0]
            for v in vals[1:]:
                out = fn(out, v)
            return out
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, cols)
            out = True
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self._eval(right_node, cols)
                if type(op) not in _CMP:
                    raise ConfigError("expression", self.text, "comparisons == != < <= > >=")
                out = np.logical_and(out, _CMP[type(op)](left, right))
                left = right
            return out
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return _FUNCS[node.func.id](*[self._eval(a, cols) for a in node.args])
        raise ConfigError("expression", self.text, "a supported expression")  # pragma: no cover
