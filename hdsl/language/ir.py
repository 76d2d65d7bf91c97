"""The model IR: what the model is, with no data in it.

Frozen dataclasses with tuples inside. Positions are kept for messages and excluded from equality,
so ``a*b`` and ``a + b + a:b`` expand to equal IR. Changed only by :func:`dataclasses.replace`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..errors import Position
from . import syntax as s
from .distributions import DistributionSpec
from .families import AuxParam, Family

__all__ = [
    "ParamClass",
    "Factor",
    "Term",
    "GroupTerm",
    "LinearPredictor",
    "Response",
    "DistributionSpec",
    "PriorTarget",
    "PriorStatement",
    "ModelSpec",
]


class ParamClass(enum.Enum):
    """brms's parameter classes, the first part of a prior target."""

    INTERCEPT = "Intercept"
    B = "b"
    SD = "sd"
    COR = "cor"
    AUX = "aux"  # a family's auxiliary parameter, named by PriorTarget.dpar (sigma, nu, phi, ...)


@dataclass(frozen=True)
class Factor:
    """One variable of a term: a column or an expression of columns (``log(x)``, ``I(x^2)``)."""

    label: str
    expr: s.Expr = field(compare=False, repr=False)


@dataclass(frozen=True)
class Term:
    """A product of factors; the empty product is the intercept."""

    factors: tuple[Factor, ...]

    @property
    def label(self) -> str:
        return ":".join(f.label for f in self.factors) if self.factors else "Intercept"

    @property
    def order(self) -> int:
        return len(self.factors)


@dataclass(frozen=True)
class GroupTerm:
    """``(intercept + terms | group)``: effects that vary by the levels of ``group``."""

    intercept: bool
    terms: tuple[Term, ...]
    group: tuple[str, ...]
    correlated: bool
    id: str | None = None
    pos: Position | None = field(default=None, compare=False, repr=False)

    @property
    def group_label(self) -> str:
        return ":".join(self.group)

    @property
    def coef_labels(self) -> tuple[str, ...]:
        return (("Intercept",) if self.intercept else ()) + tuple(t.label for t in self.terms)


@dataclass(frozen=True)
class LinearPredictor:
    """The right-hand side of one formula line."""

    intercept: bool
    terms: tuple[Term, ...]
    groups: tuple[GroupTerm, ...]
    offsets: tuple[Factor, ...] = ()


@dataclass(frozen=True)
class Response:
    """The left-hand side: the response expression and brms addition terms (``| trials(n)``).

    ``cens(c, y2)`` gives two entries, ``cens`` and ``cens_upper``; ``se_sigma`` is brms's
    ``se(s, sigma = TRUE)``: the residual sd is estimated besides the known standard errors."""

    factor: Factor
    additions: tuple[tuple[str, Factor], ...] = ()
    se_sigma: bool = False

    @property
    def label(self) -> str:
        return self.factor.label


@dataclass(frozen=True)
class PriorTarget:
    """A typed prior key: class, optional group, optional coefficient, optional dpar."""

    cls: ParamClass
    group: str | None = None
    coef: str | None = None
    dpar: str | None = None

    def __str__(self) -> str:
        """As written in a spec: ``sigma``, ``Intercept``, ``b[x]``, ``sd[g, x]``; the coefficients of a
        modelled family parameter carry its name: ``Intercept_sigma``, ``b_sigma[x]``, ``sd_sigma[g]``."""
        if self.cls is ParamClass.AUX:
            return str(self.dpar)
        head = self.cls.value + (f"_{self.dpar}" if self.dpar else "")
        parts = [p for p in (self.group, self.coef) if p is not None]
        return head + (f"[{', '.join(parts)}]" if parts else "")


@dataclass(frozen=True)
class PriorStatement:
    target: PriorTarget
    distribution: DistributionSpec
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ModelSpec:
    """A whole model: response, predictor, family, distributional predictors and priors. ``family`` is
    resolved (the catalogue's record, with the link in use): later stages read it, not the family's name."""

    response: Response
    predictor: LinearPredictor
    family: Family
    priors: tuple[PriorStatement, ...] = ()
    dpars: tuple[tuple[str, LinearPredictor], ...] = ()
    text: str = field(default="", compare=False, repr=False)

    @property
    def scalar_aux(self) -> tuple[AuxParam, ...]:
        """The family parameters this model estimates as one scalar each: those without a formula of their
        own (``sigma ~ x`` makes sigma a per-row predicted parameter instead), and not sigma where known
        standard errors ``se(s)`` stand in for it (brms; ``se(s, sigma = TRUE)`` estimates it too)."""
        modelled = {name for name, _ in self.dpars}
        if any(name == "se" for name, _ in self.response.additions) and not self.response.se_sigma:
            modelled.add("sigma")
        return tuple(a for a in self.family.aux if a.name not in modelled)
