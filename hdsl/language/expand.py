"""Stage 2: syntax tree → model IR (:class:`~hdsl.ir.ModelSpec`). No data is looked at here.

Formula algebra follows R: ``a*b`` = ``a + b + a:b``, ``(a+b)^2`` = all terms up to order 2,
``a/b`` = ``a + a:b``, ``-`` removes a term, ``0``/``-1`` drop the intercept. Group terms
``(… | g)`` and ``(… || g)`` are collected apart; ``(… | a/b)`` nests into ``a`` and ``a:b``.
"""

from __future__ import annotations

import itertools
import re

from ..errors import FamilyError, FormulaError, PriorError, did_you_mean
from . import syntax as s
from .families import FAMILIES, Addition, Categories, Family, Link, families_accepting, family_named
from .ir import Factor, GroupTerm, LinearPredictor, ModelSpec, ParamClass, PriorStatement, PriorTarget, Response, Term
from .prior_statements import prior_statement
from .unparse import unparse

__all__ = ["expand_spec", "unparse"]


class _Expansion:
    """Terms of one side of a formula: intercept flag, ordered unique terms, group terms, offsets."""

    def __init__(self, text: str):
        self.text = text
        self.intercept: bool | None = None
        self.terms: list[Term] = []
        self.groups: list[GroupTerm] = []
        self.offsets: list[Factor] = []

    # each method returns the list of terms an expression denotes; intercept handled by side effect
    def terms_of(self, e: s.Expr) -> list[Term]:
        match e:
            case s.Number(value=v, pos=pos):
                if v == 1:
                    self.intercept = True
                    return []
                if v == 0:
                    self.intercept = False
                    return []
                raise FormulaError(
                    f"a number ({unparse(e)}) cannot be a term",
                    position=pos,
                    text=self.text,
                    hint=f"write 1 or 0 for the intercept, or I({unparse(e)}) for a constant column",
                )
            case s.Name():
                return [Term((Factor(unparse(e), e),))]
            case s.Call(func="offset", args=args, pos=pos):
                if len(args) != 1:
                    raise FormulaError("offset() takes one argument", position=pos, text=self.text)
                self.offsets.append(Factor(unparse(args[0]), args[0]))
                return []
            case s.Call():
                return [Term((Factor(unparse(e), e),))]
            case s.Paren(inner=inner):
                return self.terms_of(inner)
            case s.Negate(operand=s.Number(value=1)):
                self.intercept = False
                return []
            case s.Negate(pos=pos):
                raise FormulaError(
                    f"cannot remove '{unparse(e.operand)}' here: nothing to remove it from",
                    position=pos,
                    text=self.text,
                )
            case s.Group():
                self.groups.extend(self.group_terms(e))
                return []
            case s.BinOp(op="+" | "-"):
                return self.sum_terms(e)
            case s.BinOp(op=":", left=left, right=right):
                return self.interact(self.sub_terms(left), self.sub_terms(right))
            case s.BinOp(op="*", left=left, right=right):
                a, b = self.sub_terms(left), self.sub_terms(right)
                return _unique(a + b + self.interact(a, b))
            case s.BinOp(op="/", left=left, right=right):
                a, b = self.sub_terms(left), self.sub_terms(right)
                outer = Term(tuple(_unique_factors([f for t in a for f in t.factors])))
                return _unique(a + self.interact([outer], b))
            case s.BinOp(op="^", left=left, right=s.Number(value=n)) if float(n).is_integer() and n >= 1:
                base = self.sub_terms(left)
                out: list[Term] = []
                for k in range(1, int(n) + 1):
                    for combo in itertools.combinations(base, k):
                        out.append(Term(tuple(_unique_factors([f for t in combo for f in t.factors]))))
                return _unique(out)
            case s.BinOp(op="^", pos=pos):
                raise FormulaError(
                    "'^' in a formula needs a positive whole number on its right: (a + b)^2 means all "
                    "terms up to two-way interactions",
                    position=pos,
                    text=self.text,
                    hint="for a power of a variable write I(x^2)",
                )
            case s.ListExpr(pos=pos) | s.String(pos=pos) | s.Keyword(pos=pos):
                raise FormulaError(f"'{unparse(e)}' cannot be a term", position=pos, text=self.text)
        raise FormulaError(f"cannot use '{unparse(e)}' as a term")  # pragma: no cover

    def sum_terms(self, e: s.BinOp) -> list[Term]:
        """Terms of ``a + b - c + …``, left to right in a loop: a formula may list any number of terms,
        and the parser nests such a chain one level per operator."""
        chain, first = [e], e.left
        while isinstance(first, s.BinOp) and first.op in ("+", "-"):
            chain.append(first)
            first = first.left
        kept = dict.fromkeys(self.terms_of(first))
        for op in reversed(chain):
            right = op.right
            if op.op == "+":
                kept.update(dict.fromkeys(self.terms_of(right)))
            elif isinstance(right, s.Number) and right.value in (0, 1):
                if right.value == 1:
                    self.intercept = False
            else:
                for t in self.sub_terms(right):
                    kept.pop(t, None)
        return list(kept)

    def sub_terms(self, e: s.Expr) -> list[Term]:
        """Terms of an operand of ':' '*' '/' '^' '-': intercepts and groups are not allowed inside."""
        if isinstance(e, s.Group):
            raise FormulaError(
                "a group term cannot be combined with an operator other than '+'",
                position=e.pos,
                text=self.text,
            )
        saved = self.intercept
        terms = self.terms_of(e)
        self.intercept = saved
        return terms

    @staticmethod
    def interact(a: list[Term], b: list[Term]) -> list[Term]:
        return _unique(
            [Term(tuple(_unique_factors(list(x.factors) + list(y.factors)))) for x in a for y in b]
        )

    def group_terms(self, g: s.Group) -> list[GroupTerm]:
        inner = _Expansion(self.text)
        inner.intercept = None
        terms = inner.terms_of(g.terms)
        if inner.groups:
            raise FormulaError(
                "group terms cannot be nested inside another group term", position=g.pos, text=self.text
            )
        if inner.offsets:
            raise FormulaError(
                "offset() belongs in the population-level part of the formula", position=g.pos, text=self.text
            )
        intercept = True if inner.intercept is None else inner.intercept
        terms = sorted(terms, key=lambda t: t.order)
        if not intercept and not terms:
            raise FormulaError(f"group term '{unparse(g)}' has no terms", position=g.pos, text=self.text)
        gid = None
        if g.id is not None:
            gid = unparse(g.id)
        out = []
        for grouping in self.grouping_factors(g.group, g):
            out.append(GroupTerm(intercept, tuple(terms), grouping, g.bar == "|", gid, pos=g.pos))
        return out

    def grouping_factors(self, e: s.Expr, g: s.Group) -> list[tuple[str, ...]]:
        """``g`` → [(g,)]; ``a:b`` → [(a, b)]; ``a/b`` → [(a,), (a, b)]; ``a + b`` → [(a,), (b,)]."""
        match e:
            case s.Name(name=name):
                return [(name,)]
            case s.Paren(inner=inner):
                return self.grouping_factors(inner, g)
            case s.BinOp(op=":", left=left, right=right):
                return [
                    lhs + rhs
                    for lhs in self.grouping_factors(left, g)
                    for rhs in self.grouping_factors(right, g)
                ]
            case s.BinOp(op="/", left=left, right=right):
                outer = self.grouping_factors(left, g)
                full = outer[-1]
                return outer + [full + r for r in self.grouping_factors(right, g)]
            case s.BinOp(op="+", left=left, right=right):
                return self.grouping_factors(left, g) + self.grouping_factors(right, g)
        raise FormulaError(
            f"'{unparse(e)}' cannot be a grouping factor; use a column name, a:b or a/b",
            position=getattr(e, "pos", None) or g.pos,
            text=self.text,
        )


def _unique(terms: list[Term]) -> list[Term]:
    seen: dict[Term, None] = {}
    for t in terms:
        seen.setdefault(t, None)
    return list(seen)


def _unique_factors(factors: list[Factor]) -> list[Factor]:
    seen: dict[Factor, None] = {}
    for f in factors:
        seen.setdefault(f, None)
    return list(seen)


def _predictor(rhs: s.Expr, text: str) -> LinearPredictor:
    exp = _Expansion(text)
    terms = exp.terms_of(rhs)
    terms = sorted(terms, key=lambda t: t.order)  # stable: R's order, main effects first
    intercept = True if exp.intercept is None else exp.intercept
    return LinearPredictor(intercept, tuple(terms), tuple(exp.groups), tuple(exp.offsets))


_ADDITIONS: dict[str, Addition] = {a.value: a for a in Addition}  # by the name a spec writes
_TRUE = ("TRUE", "True", "true", "T")
_FALSE = ("FALSE", "False", "false", "F")


def _addition_args(term: s.Call, text: str) -> tuple[s.Expr, dict[str, s.Expr]]:
    """The first argument of an addition term and its named extra ones (positional or ``name = value``)."""
    allowed = Addition(term.func).extra_args
    signature = f"{term.func}({', '.join(('x', *(f'{a} = ...' for a in allowed)))})"
    first, *rest = term.args
    if isinstance(first, s.Keyword):
        raise FormulaError(f"{term.func}() takes a column first, not '{unparse(first)}'; write {signature}",
                           position=first.pos or term.pos, text=text)
    extra: dict[str, s.Expr] = {}
    for i, arg in enumerate(rest):
        name = arg.name if isinstance(arg, s.Keyword) else (allowed[i] if i < len(allowed) else None)
        if name is None or name not in allowed:
            raise FormulaError(f"unexpected argument '{unparse(arg)}' of {term.func}(); write {signature}",
                               position=getattr(arg, "pos", None) or term.pos, text=text)
        if name in extra:
            raise FormulaError(f"{term.func}(): '{name}' is given twice", position=arg.pos or term.pos, text=text)
        extra[name] = arg.value if isinstance(arg, s.Keyword) else arg
    return first, extra


def _flag(e: s.Expr, what: str, text: str) -> bool:
    if isinstance(e, s.Name) and e.name in _TRUE + _FALSE:
        return e.name in _TRUE
    raise FormulaError(f"{what} must be TRUE or FALSE, got '{unparse(e)}'", position=getattr(e, "pos", None),
                       text=text)


def _response(line: s.FormulaLine, text: str, family: Family) -> Response:
    resp = line.response
    if isinstance(resp, s.Paren):
        resp = resp.inner
    if isinstance(resp, s.Group | s.ListExpr | s.Number):
        raise FormulaError(f"'{unparse(resp)}' cannot be a response", position=line.pos, text=text)
    additions: list[tuple[str, Factor]] = []
    se_sigma = False
    if isinstance(resp, s.Call) and resp.func == "cbind":
        # lme4's cbind(successes, failures): binomial with trials = successes + failures
        if len(resp.args) != 2:
            raise FormulaError("cbind() takes two columns: cbind(successes, failures)", position=resp.pos, text=text)
        if not family.accepts(Addition.TRIALS):
            raise FormulaError(f"cbind(successes, failures) is a binomial response; add 'family: binomial' "
                               f"(the family is {family.name})", position=resp.pos, text=text)
        successes, failures = resp.args
        total = s.BinOp("+", successes, failures, pos=resp.pos)
        additions.append(("trials", Factor(unparse(total), total)))
        resp = successes
    if line.addition is not None:
        for term in _split_plus(line.addition):
            if not isinstance(term, s.Call) or len(term.args) < 1:
                raise FormulaError(
                    f"'{unparse(term)}' is not an addition term; write e.g. y | trials(n) or y | weights(w)",
                    position=getattr(term, "pos", line.pos),
                    text=text,
                )
            addition = _ADDITIONS.get(term.func)
            if addition is None:
                raise FormulaError(
                    f"unknown addition term '{term.func}'{did_you_mean(term.func, _ADDITIONS)}; "
                    f"known: {', '.join(_ADDITIONS)}", position=term.pos, text=text)
            if not family.accepts(addition):
                families = ", ".join(families_accepting(addition))
                if addition is Addition.CENS:
                    message = (f"cens() is not supported for the {family.name} family: censoring is available "
                               f"for {families}")
                else:
                    message = f"{term.func}() applies to the {families} family, not {family.name}"
                raise FormulaError(message, position=term.pos, text=text)
            if any(name == term.func for name, _ in additions):
                raise FormulaError(f"{term.func}() is given twice", position=term.pos, text=text)
            first, extra = _addition_args(term, text)
            additions.append((term.func, Factor(unparse(first), first)))
            if "y2" in extra:
                additions.append(("cens_upper", Factor(unparse(extra["y2"]), extra["y2"])))
            if "sigma" in extra:
                se_sigma = _flag(extra["sigma"], "se(): sigma", text)
    return Response(Factor(unparse(resp), resp), tuple(additions), se_sigma)


def _check_se_sigma(response: Response, dpars: list, priors: tuple[PriorStatement, ...],
                    lines: list[s.FormulaLine], text: str) -> None:
    """With ``se(s)`` and no ``sigma = TRUE`` the residual sd is not a parameter: no formula, no prior."""
    if response.se_sigma or not any(name == "se" for name, _ in response.additions):
        return
    hint = "write se(s, sigma = TRUE) to estimate sigma besides the known standard errors"
    for (name, _), line in zip(dpars, lines, strict=True):
        if name == "sigma":
            raise FormulaError("sigma is not a parameter of this model: se() without sigma = TRUE fixes the "
                               "residual sd to the known standard errors", position=line.pos, text=text, hint=hint)
    for p in priors:
        if p.target.cls is ParamClass.AUX and p.target.dpar == "sigma":
            raise PriorError("sigma is not a parameter of this model: se() without sigma = TRUE fixes the "
                             "residual sd to the known standard errors", position=p.pos, text=text, hint=hint)


def _split_plus(e: s.Expr) -> list[s.Expr]:
    if isinstance(e, s.BinOp) and e.op == "+":
        return _split_plus(e.left) + _split_plus(e.right)
    return [e]


def _family(tree: s.SpecTree) -> Family:
    """The family line resolved once: the catalogue's record, with the link it names (else the default)."""
    if len(tree.families) > 1:
        second = tree.families[1]
        raise FamilyError("only one family line is allowed", position=second.pos, text=tree.text)
    if not tree.families:
        return FAMILIES["gaussian"]
    line = tree.families[0]
    try:
        family = family_named(line.name)
    except FamilyError:
        suggestion = did_you_mean(line.name, FAMILIES)
        raise FamilyError(
            f"unknown family '{line.name}'{suggestion}",
            position=line.pos,
            text=tree.text,
            hint=None if suggestion else f"known families: {', '.join(sorted(FAMILIES))}",
        ) from None
    link = None
    link_pos = line.pos
    allowed = [lk.value for lk in family.links]
    for arg in line.args:
        value = arg.value if isinstance(arg, s.Keyword) and arg.name == "link" else arg
        if isinstance(value, s.Name | s.String) and link is None:
            link = value.name if isinstance(value, s.Name) else value.value
            link_pos = value.pos or line.pos
        else:
            raise FamilyError(
                f"unexpected family argument '{unparse(arg)}'",
                position=getattr(arg, "pos", None) or line.pos,
                text=tree.text,
                hint=f"the only argument is the link: family: {family.name}({allowed[0]})",
            )
    if link is not None and link not in allowed:
        known = [lk.value for lk in Link]
        if link in known:
            raise FamilyError(
                f"the {family.name} family does not allow the link '{link}'",
                position=link_pos,
                text=tree.text,
                hint=f"{family.name} allows: {', '.join(allowed)}",
            )
        raise FamilyError(
            f"unknown link '{link}'{did_you_mean(link, allowed)}",
            position=link_pos,
            text=tree.text,
            hint=f"{family.name} allows: {', '.join(allowed)}",
        )
    return family if link is None else family.with_link(Link(link))


def expand_spec(tree: s.SpecTree) -> ModelSpec:
    """Give the syntax its meaning: the model IR. Raises FormulaError / FamilyError / PriorError."""
    text = tree.text
    if not tree.formulas:
        raise FormulaError("the spec has no formula; write e.g. 'y ~ x + (1 | g)'")
    family = _family(tree)
    aux_names = family.aux_names
    main, *rest = tree.formulas
    response = _response(main, text, family)
    predictor = _predictor(main.rhs, text)
    dpars: list[tuple[str, LinearPredictor]] = []
    for line in rest:
        name = line.response.name if isinstance(line.response, s.Name) else unparse(line.response)
        category_formula = family.categories is Categories.NOMINAL and re.fullmatch(r"mu([2-9]|[1-9]\d+)", name)
        if name not in aux_names and not category_formula:
            raise FormulaError(
                f"'{name}' is not a parameter of the {family.name} family, so it cannot have a formula",
                position=getattr(line.response, "pos", None) or line.pos,
                text=text,
                hint=(
                    f"a formula after the first models a parameter of the family; {family.name} has: "
                    f"{', '.join(aux_names)}"
                )
                if aux_names
                else "a category's own formula is named mu2, mu3, ... (the first category is the reference)"
                if family.categories is Categories.NOMINAL
                else f"the {family.name} family has no other parameters",
            )
        if any(d == name for d, _ in dpars):
            raise FormulaError(f"'{name}' is modelled twice", position=line.pos, text=text)
        dpars.append((name, _predictor(line.rhs, text)))
    if family.categories is Categories.ORDERED and not predictor.intercept:
        raise FormulaError(f"the {family.name} family estimates thresholds in place of the intercept, so the "
                           "formula cannot remove it", position=main.pos, text=text, hint="remove '0 +' or '- 1'")
    priors = tuple(prior_statement(p, aux_names, text) for p in tree.priors)
    _check_se_sigma(response, dpars, priors, rest, text)
    seen: dict[PriorTarget, PriorStatement] = {}
    for p in priors:
        if p.target in seen:
            first = seen[p.target].pos
            where = f" (the first is on line {first.line})" if first is not None else ""
            raise PriorError(
                f"a second prior for '{p.target}'{where}",
                position=p.pos,
                text=text,
                hint="keep one prior per parameter",
            )
        seen[p.target] = p
    return ModelSpec(response, predictor, family, priors, tuple(dpars), text=text)
