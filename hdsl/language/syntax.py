"""Syntax nodes: what the spec text says, before any meaning is given to it.

The parser builds these frozen dataclasses; :mod:`hdsl.expand` interprets them. Positions are kept
for error messages but excluded from equality, so two texts that say the same thing compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Position

__all__ = [
    "Expr",
    "Name",
    "Number",
    "String",
    "Call",
    "BinOp",
    "Negate",
    "Paren",
    "Group",
    "ListExpr",
    "Keyword",
    "FormulaLine",
    "FamilyLine",
    "PriorLine",
    "SpecTree",
]


@dataclass(frozen=True)
class Expr:
    """Base of every expression node."""


@dataclass(frozen=True)
class Name(Expr):
    name: str
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Number(Expr):
    value: float
    text: str
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class String(Expr):
    value: str
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Keyword(Expr):
    name: str
    value: Expr
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Call(Expr):
    func: str
    args: tuple[Expr, ...]
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Negate(Expr):
    operand: Expr
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Paren(Expr):
    inner: Expr
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Group(Expr):
    """`(terms | group)`, `(terms || group)` or brms's `(terms | ID | group)`."""

    terms: Expr
    bar: str
    group: Expr
    id: Expr | None = None
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class FormulaLine:
    response: Expr
    addition: Expr | None
    rhs: Expr
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class FamilyLine:
    name: str
    args: tuple[Expr, ...]
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PriorLine:
    """``cls[target_args] ~ distribution``; ``index_pos`` is where the ``[...]`` starts."""

    cls: str
    target_args: tuple[str, ...]
    distribution: Call
    pos: Position | None = field(default=None, compare=False, repr=False)
    index_pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SpecTree:
    formulas: tuple[FormulaLine, ...]
    families: tuple[FamilyLine, ...]
    priors: tuple[PriorLine, ...]
    text: str = field(default="", compare=False, repr=False)
