"""Evaluating factors (columns and expressions of columns) against a DataFrame.

A numeric factor evaluates to columns (``x``, ``log(x)``, ``poly(x, 2)``); a categorical one (a
string, pandas categorical or boolean column, or ``C(x, …)`` / ``factor(x)``) to level codes that
:mod:`hdsl.design` turns into contrast or indicator columns, as the term structure requires. Each
comes with the state needed to evaluate it the same way on new data (the mean and sd of
``scale(x)``, the basis of ``poly``, the levels and contrast of a factor): a plain dict, computed
once on the training data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, did_you_mean
from ..language import syntax as s
from ..language.ir import Factor
from .coding import CONTRASTS, CategoricalColumn, encode_levels, fit_levels, level_label, poly_eval, poly_fit

__all__ = [
    "FactorColumns",
    "CategoricalColumn",
    "evaluate_factor",
    "evaluate_term_factor",
    "columns_used",
    "check_columns",
    "check_functions",
    "is_categorical",
    "KNOWN_FUNCTIONS",
]


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

_CATEGORICAL_CALLS = ("C", "factor", "as.factor")
_STATEFUL = ("scale", "center", "poly")
KNOWN_FUNCTIONS: tuple[str, ...] = ("I", *_ELEMENTWISE, *_STATEFUL, *_CATEGORICAL_CALLS)
_TRUE = ("TRUE", "True", "true", "T")
_KNOWN_HINT = "known functions: " + ", ".join(KNOWN_FUNCTIONS)


def columns_used(expr: s.Expr) -> list[s.Name]:
    """Every column name an expression refers to (function names and options excluded)."""
    match expr:
        case s.Name():
            return [expr]
        case s.Call(func=func, args=args) if func in _CATEGORICAL_CALLS or func == "poly":
            return columns_used(args[0]) if args else []
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
    for n in names:
        if n.name not in data.columns:
            raise FormulaError(f"unknown column '{n.name}'{did_you_mean(n.name, map(str, data.columns))}",
                               position=n.pos, text=text)


def check_functions(expr: s.Expr, text: str = "") -> None:
    """Every function is one hdsl knows, with arguments of the right form; else a FormulaError."""
    match expr:
        case s.Call(func=func, args=args, pos=pos):
            if func not in KNOWN_FUNCTIONS:
                raise FormulaError(f"unknown function '{func}'{did_you_mean(func, KNOWN_FUNCTIONS)}",
                                   position=pos, text=text, hint=_KNOWN_HINT)
            if func in _CATEGORICAL_CALLS:
                _categorical_options(expr, text)
            elif func == "poly":
                _poly_options(expr, text)
            elif len(args) != 1 or isinstance(args[0], s.Keyword):
                raise FormulaError(f"{func}() takes one argument, got '{_label(expr)}'",
                                   position=pos, text=text)
            else:
                check_functions(args[0], text)
        case s.BinOp(left=left, right=right):
            check_functions(left, text)
            check_functions(right, text)
        case s.Negate(operand=o) | s.Paren(inner=o):
            check_functions(o, text)


def _categorical_options(call: s.Call, text: str = "") -> tuple[s.Name, str, tuple[str, ...] | None]:
    """``C(x)``, ``C(x, sum)``, ``C(x, contr="sum")``, ``C(x, levels=["b", "a"])``.

    Returns the column, the contrast and the explicit levels (or None).
    """
    def fail(msg: str) -> FormulaError:
        return FormulaError(msg, position=call.pos, text=text,
                            hint='write C(x), C(x, sum), C(x, contr="sum") or C(x, levels=["b", "a"])')

    if not call.args or not isinstance(call.args[0], s.Name):
        raise fail(f"{call.func}() needs a column name as its first argument")
    contrast, levels = "treatment", None
    for arg in call.args[1:]:
        value = arg.value if isinstance(arg, s.Keyword) else arg
        key = arg.name if isinstance(arg, s.Keyword) else "contr"
        if key in ("contr", "contrasts", "contrast"):
            name = value.name if isinstance(value, s.Name) else \
                value.value if isinstance(value, s.String) else None
            if name not in CONTRASTS:
                raise fail(f"unknown contrast '{_label(value)}' in '{_label(call)}'; known: "
                           + ", ".join(dict.fromkeys(CONTRASTS)))
            contrast = CONTRASTS[name]
        elif key == "levels" and isinstance(value, s.ListExpr):
            levels = tuple(_constant_label(v, call, text) for v in value.items)
            if len(set(levels)) != len(levels) or not levels:
                raise fail(f"levels in '{_label(call)}' must be distinct and not empty")
        else:
            raise fail(f"unexpected argument '{_label(arg)}' in '{_label(call)}'")
    return call.args[0], contrast, levels


def _constant_label(e: s.Expr, call: s.Call, text: str) -> str:
    match e:
        case s.String(value=v):
            return v
        case s.Number(value=v):
            return level_label(v)
        case s.Name(name=n):
            return {"True": "TRUE", "False": "FALSE"}.get(n, n)
    raise FormulaError(f"a level must be a string or number, got '{_label(e)}'", position=call.pos, text=text)


def _poly_options(call: s.Call, text: str = "") -> tuple[s.Expr, int, bool]:
    """``poly(x, 2)``, ``poly(x, degree=2)``, ``poly(x, 2, raw=TRUE)``: argument, degree, raw."""
    args = [a for a in call.args if not isinstance(a, s.Keyword)]
    kw = {a.name: a.value for a in call.args if isinstance(a, s.Keyword)}
    degree_e = kw.pop("degree", args[1] if len(args) > 1 else None)
    raw_e = kw.pop("raw", args[2] if len(args) > 2 else None)
    if not args or kw or len(args) > 3 or not isinstance(degree_e, s.Number) or degree_e.value < 1 \
            or not float(degree_e.value).is_integer():
        raise FormulaError(f"cannot read '{_label(call)}'", position=call.pos, text=text,
                           hint="write poly(x, 2) or poly(x, 2, raw=TRUE), with a whole degree of at least 1")
    raw = isinstance(raw_e, s.Name) and raw_e.name in _TRUE
    check_functions(args[0], text)
    return args[0], int(degree_e.value), raw


def is_categorical(factor: Factor, data: pd.DataFrame) -> bool:
    """A string, pandas categorical or boolean column, or an explicit ``C(x)`` / ``factor(x)``."""
    match factor.expr:
        case s.Call(func=func) if func in _CATEGORICAL_CALLS:
            return True
        case s.Name(name=name):
            col = data[name]
            return pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col)
    return False


def _numeric_column(data: pd.DataFrame, name: str) -> np.ndarray:
    col = data[name]
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(col):
        bad = col[pd.to_numeric(col, errors="coerce").isna() & col.notna()]
        row = bad.index[0] if len(bad) else col.index[0]
        example = bad.iloc[0] if len(bad) else col.iloc[0]
        raise DataError(
            f"column '{name}' is not numeric (row {row!r} holds {example!r}), but it is used where a number "
            "is needed (the response, an offset, or inside a function or I())",
            column=name, hint=f"a categorical column can be a term ('{name}', '{name}:x') or C({name})",
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
        case s.Call(func=func, pos=pos):
            if func in KNOWN_FUNCTIONS:
                raise FormulaError(f"'{_label(expr)}' cannot be used inside another expression", position=pos)
            raise FormulaError(f"unknown function '{func}'{did_you_mean(func, KNOWN_FUNCTIONS)}",
                               position=pos, hint=_KNOWN_HINT)
    raise FormulaError(f"cannot evaluate '{_label(expr)}'", position=getattr(expr, "pos", None))


def _label(expr: s.Expr) -> str:
    from ..language.expand import unparse

    return unparse(expr)


def evaluate_factor(
    factor: Factor, data: pd.DataFrame, state: Mapping[str, Any] | None = None
) -> FactorColumns:
    """Evaluate a numeric factor; with ``state`` from a training fit, encode new data the same way."""
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
        case s.Call(func="poly"):
            arg, degree, raw = _poly_options(expr)
            x = _arith(arg, data)
            labels = tuple(f"{factor.label}{j}" for j in range(1, degree + 1))
            if raw:
                return FactorColumns(x[:, None] ** np.arange(1, degree + 1), labels, {})
            if state is None:
                state = poly_fit(x, degree, factor.label)
            return FactorColumns(poly_eval(x, state), labels, state)
        case s.Call(func=func) if func in _CATEGORICAL_CALLS:
            raise DataError(f"'{factor.label}' is categorical: it can be a term or part of an interaction, "
                            "not the response, an offset or part of an expression", column=factor.label)
    values = _arith(expr, data)
    return FactorColumns(values[:, None], (factor.label,), {})


def evaluate_term_factor(
    factor: Factor, data: pd.DataFrame, state: Mapping[str, Any] | None = None
) -> FactorColumns | CategoricalColumn:
    """Evaluate a factor of a term: categorical ones to level codes, numeric ones to columns."""
    if not is_categorical(factor, data):
        return evaluate_factor(factor, data, state)
    expr = factor.expr
    if isinstance(expr, s.Call):
        column, contrast, levels = _categorical_options(expr)
        name = column.name
    else:
        name, contrast, levels = factor.label, "treatment", None
    col = data[name]
    if state is None:
        levels = fit_levels(col, levels)
        if len(levels) < 2:
            raise DataError(f"column '{name}' has only one level ({', '.join(levels) or 'none'}); a factor "
                            "needs at least two to be a predictor", column=name)
        state = {"levels": levels, "contrast": contrast}
    codes = encode_levels(col, state["levels"], name)
    return CategoricalColumn(codes, state["levels"], state["contrast"], name, state)

