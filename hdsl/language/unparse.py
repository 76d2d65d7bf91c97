"""Canonical text of a syntax tree expression: a factor's label (``log(x + 1)``), and how messages quote
what a spec wrote."""

from __future__ import annotations

from ..errors import FormulaError
from . import syntax as s

__all__ = ["unparse"]

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, ":": 3, "^": 5}


def unparse(expr: s.Expr) -> str:
    """Canonical text of an expression: the label of a factor (``log(x + 1)``)."""
    return _unparse(expr, 0)


def _unparse(e: s.Expr, parent: int) -> str:
    match e:
        case s.Name(name=name):
            return name
        case s.Number(text=text):
            return text
        case s.String(value=value):
            return f'"{value}"'
        case s.Keyword(name=name, value=value):
            return f"{name}={_unparse(value, 0)}"
        case s.ListExpr(items=items):
            return "[" + ", ".join(_unparse(i, 0) for i in items) + "]"
        case s.Call(func=func, args=args):
            return f"{func}({', '.join(_unparse(a, 0) for a in args)})"
        case s.Paren(inner=inner):
            return _unparse(inner, parent)
        case s.Negate(operand=operand):
            return "-" + _unparse(operand, 4)
        case s.BinOp(op=op, left=left, right=right):
            prec = _PRECEDENCE[op]
            spaced = op in "+-*/"
            text = _unparse(left, prec) + (f" {op} " if spaced else op) + _unparse(right, prec + 1)
            return f"({text})" if prec < parent else text
        case s.Group(terms=terms, bar=bar, group=group):
            return f"({_unparse(terms, 0)} {bar} {_unparse(group, 0)})"
    raise FormulaError(f"cannot use {type(e).__name__} here")
