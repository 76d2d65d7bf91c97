"""Prior lines → :class:`~hdsl.language.ir.PriorStatement`: the typed target (class, group, coefficient,
family parameter) and the distribution, checked against its signature, with its constant arguments
evaluated. Whether the target exists in the model is the priors stage's question (it needs the data).
"""

from __future__ import annotations

import re

from ..errors import PriorError, did_you_mean
from . import syntax as s
from .distributions import PRIOR_DISTRIBUTIONS, DistributionSpec
from .ir import ParamClass, PriorStatement, PriorTarget
from .unparse import unparse

__all__ = ["prior_statement", "constant_value"]


def constant_value(e: s.Expr, text: str) -> float:
    """Evaluate a numeric constant written in the spec (``-1``, ``2.5e3``, ``1/2``)."""
    match e:
        case s.Number(value=v):
            return v
        case s.Negate(operand=o):
            return -constant_value(o, text)
        case s.Paren(inner=i):
            return constant_value(i, text)
        case s.BinOp(op=op, left=a, right=b) if op in "+-*/^":
            x, y = constant_value(a, text), constant_value(b, text)
            try:
                results: dict[str, float] = {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else float("nan"),
                                             "^": x**y}
                return results[op]
            except OverflowError:
                return float("inf")
    raise PriorError(f"expected a number, got '{unparse(e)}'", position=getattr(e, "pos", None), text=text)


_CLASS_NAMES = {
    "Intercept": ParamClass.INTERCEPT,
    "b": ParamClass.B,
    "sd": ParamClass.SD,
    "cor": ParamClass.COR,
}


def prior_statement(line: s.PriorLine, aux_names: tuple[str, ...], text: str) -> PriorStatement:
    """A prior line's meaning: its target (class, group, coefficient, the family parameter it belongs to;
    ``aux_names``: the family's parameters) and its distribution with constant arguments."""
    cls = _CLASS_NAMES.get(line.cls)
    args = line.target_args
    dpar = None
    if cls is None and line.cls in aux_names:
        cls = ParamClass.AUX
    if cls is None and "_" in line.cls:
        # the coefficients of a modelled family parameter: Intercept_sigma, b_sigma[x], sd_sigma[g]
        head, _, tail = line.cls.partition("_")
        if head in _CLASS_NAMES and head != "cor" and (tail in aux_names or re.fullmatch(r"mu\d+", tail)):
            cls, dpar = _CLASS_NAMES[head], tail
    if cls is None:
        valid = sorted(_CLASS_NAMES) + list(aux_names)
        raise PriorError(
            f"unknown prior class '{line.cls}'{did_you_mean(line.cls, valid)}",
            position=line.pos,
            text=text,
            hint=f"valid classes: {', '.join(valid)}",
        )
    max_args = {
        ParamClass.INTERCEPT: 0,
        ParamClass.B: 1,
        ParamClass.SD: 2,
        ParamClass.COR: 1,
        ParamClass.AUX: 0,
    }
    if len(args) > max_args[cls]:
        forms = {
            ParamClass.INTERCEPT: "Intercept",
            ParamClass.B: "b or b[coef]",
            ParamClass.SD: "sd, sd[group] or sd[group, coef]",
            ParamClass.COR: "cor or cor[group]",
            ParamClass.AUX: line.cls,
        }
        raise PriorError(
            f"too many indices for '{line.cls}': {len(args)} given, at most {max_args[cls]} allowed",
            position=line.index_pos or line.pos,
            text=text,
            hint=f"write {forms[cls]}",
        )
    if any(a == "" for a in args):
        raise PriorError(
            f"empty index in the prior target '{line.cls}[{', '.join(args)}]'",
            position=line.index_pos or line.pos,
            text=text,
            hint=f"leave out the brackets to set a prior on every '{line.cls}'",
        )
    for a in args:
        if "|" in a or "~" in a:
            raise PriorError(
                f"'{a}' is not a group or coefficient name",
                position=line.index_pos or line.pos,
                text=text,
                hint="a prior target names a group and a coefficient, not a formula: "
                "write sd[g] or sd[g, x], not sd[x || g]",
            )
    if cls is ParamClass.B:
        target = PriorTarget(cls, coef=args[0] if args else None, dpar=dpar)
    elif cls in (ParamClass.SD, ParamClass.COR):
        target = PriorTarget(cls, group=args[0] if args else None, coef=args[1] if len(args) > 1 else None,
                             dpar=dpar)
    elif cls is ParamClass.AUX:
        target = PriorTarget(cls, dpar=line.cls)
    else:
        target = PriorTarget(cls, dpar=dpar)
    return PriorStatement(target, _distribution(line.distribution, text), pos=line.pos)


def _distribution(call: s.Call, text: str) -> DistributionSpec:
    dist = PRIOR_DISTRIBUTIONS.get(call.func)
    if dist is None:
        raise PriorError(
            f"unknown prior distribution '{call.func}'{did_you_mean(call.func, PRIOR_DISTRIBUTIONS)}",
            position=call.pos,
            text=text,
            hint="known: " + ", ".join(d.signature() for d in PRIOR_DISTRIBUTIONS.values()),
        )
    if len(call.args) != len(dist.params):
        raise PriorError(
            f"{dist.name} takes {len(dist.params)} argument{'s' if len(dist.params) != 1 else ''} "
            f"({', '.join(dist.params)}), got {len(call.args)}",
            position=call.pos,
            text=text,
            hint=f"for example {dist.example}",
        )
    values = tuple(constant_value(a, text) for a in call.args)
    problem = dist.argument_error(values)
    if problem is not None:
        raise PriorError(problem, position=call.pos, text=text)
    return DistributionSpec(dist.name, values)
