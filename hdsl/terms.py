"""Evaluating factors (columns and expressions of columns) against a DataFrame.

A factor evaluates to numeric columns plus the state needed to evaluate it the same way on new data
(the mean and sd of ``scale(x)``, say). State is a plain dict, computed once on the training data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import syntax as s
from .errors import DataError, FormulaError, did_you_mean
from .ir import Factor

__all__ = ["FactorColumns", "evaluate_factor", "columns_used", "check_columns"]


@dataclass(frozen=True)
class FactorColumns:
    """A factor's numeric columns (n × k), their labels, and the state for new data."""

    values: np.ndarray
    labels: tuple[str, ...]
    state: Mapping[str, Any]


_ELEMENTWISE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": np.log,
    "log1p": np.log1p,
    "log2": np.log2,
    "log10": np.log10,
    "exp": np.exp,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "tanh": np.tanh,
    "inv_logit": lambda x: 1.0 / (1.0 + np.exp(-x)),
}

_ARITH: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "^": np.power,
    ":": np.multiply,
}


def columns_used(expr: s.Expr) -> list[s.Name]:
    """Every column name an expression refers to (function names excluded)."""
    match expr:
        case s.Name():
            return [expr]
        case s.Call(args=args):
            return [n for a in args for n in columns_used(a)]
        case s.Keyword():
            return []
        case s.BinOp(left=left, right=right):
            return columns_used(left) + columns_used(right)
        case s.Negate(operand=o) | s.Paren(inner=o):
            return columns_used(o)
        case s.Group(terms=t, group=g):
            return columns_used(t) + columns_used(g)
    return []


def check_columns(names: list[s.Name], data: pd.DataFrame, text: str) -> None:
    """Every referenced column exists; else name it, where it is, and the closest column."""
    from .errors import FormulaError as _FE

    for n in names:
        if n.name not in data.columns:
            raise _FE(f"unknown column '{n.name}'{did_you_mean(n.name, map(str, data.columns))}",
                      position=n.pos, text=text)


def _numeric_column(data: pd.DataFrame, name: str) -> np.ndarray:
    col = data[name]
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(col):
        bad = col[pd.to_numeric(col, errors="coerce").isna() & col.notna()]
        example = bad.iloc[0] if len(bad) else col.iloc[0]
        raise DataError(
            f"column '{name}' is not numeric (row {bad.index[0] if len(bad) else 0} holds {example!r}); "
            f"categorical predictors are not supported in this position",
            column=name,
        )
    return col.to_numpy(dtype=float)


def _arith(expr: s.Expr, data: pd.DataFrame) -> np.ndarray:
    """Arithmetic inside I(), log(), ...: numbers, columns, operators, elementwise functions."""
    match expr:
        case s.Number(value=v):
            return np.full(len(data), v)
        case s.Name(name=name):
            return _numeric_column(data, name)
        case s.Paren(inner=inner):
            return _arith(inner, data)
        case s.Negate(operand=o):
            return -_arith(o, data)
        case s.BinOp(op=op, left=left, right=right):
            with np.errstate(all="ignore"):
                return _ARITH[op](_arith(left, data), _arith(right, data))
        case s.Call(func=func, args=(arg,)) if func in _ELEMENTWISE:
            with np.errstate(all="ignore"):
                return _ELEMENTWISE[func](_arith(arg, data))
        case s.Call(func="I", args=(arg,)):
            return _arith(arg, data)
    raise FormulaError(f"unknown function or expression '{_label(expr)}'", position=getattr(expr, "pos", None))


def _label(expr: s.Expr) -> str:
    from .expand import unparse

    return unparse(expr)


def evaluate_factor(factor: Factor, data: pd.DataFrame, state: Mapping[str, Any] | None = None) -> FactorColumns:
    """Evaluate a factor; with ``state`` from a training fit, encode new data the same way."""
    expr = factor.expr
    match expr:
        case s.Call(func="scale" | "center" as func, args=(arg,)):
            x = _arith(arg, data)
            if state is None:
                mean = float(np.nanmean(x))
                sd = float(np.nanstd(x, ddof=1)) if func == "scale" else 1.0
                if not sd > 0:
                    raise DataError(f"cannot scale '{factor.label}': it is constant", column=factor.label)
                state = {"mean": mean, "sd": sd}
            values = (x - state["mean"]) / state["sd"]
            return FactorColumns(values[:, None], (factor.label,), state)
    values = _arith(expr, data)
    return FactorColumns(values[:, None], (factor.label,), {})
