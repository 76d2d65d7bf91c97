"""Prior distributions a spec may name, as metadata: arguments, which must be positive, support, an
example. Expand checks a prior statement against this table and the priors stage checks a prior's support
against its parameter's bounds, neither needing NumPyro; the densities are built from the same names in
:mod:`hdsl.model.distributions`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["Support", "DistributionSpec", "PriorDistribution", "PRIOR_DISTRIBUTIONS"]


class Support(enum.Enum):
    REAL = "real"
    POSITIVE = "positive"
    INTERVAL = "interval"
    CORR_CHOLESKY = "correlation"


@dataclass(frozen=True)
class DistributionSpec:
    """A prior distribution as written: name and numeric arguments."""

    name: str
    args: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(_fmt(a) for a in self.args)})"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:.4g}"


@dataclass(frozen=True)
class PriorDistribution:
    """A distribution's signature: its arguments in order, those that must be positive, its support, and
    ``ordered``: a pair of arguments where the first must be below the second (uniform's bounds)."""

    name: str
    params: tuple[str, ...]
    positive: tuple[str, ...]
    support: Support
    example: str = ""
    ordered: tuple[str, str] | None = None

    def signature(self) -> str:
        return f"{self.name}({', '.join(self.params)})"

    def argument_error(self, args: tuple[float, ...]) -> str | None:
        """What is wrong with these (as many as ``params``) arguments, naming the argument; None if nothing.
        The first problem only: a non-finite value, a value that must be positive, bounds in the wrong order."""
        for pname, v in zip(self.params, args, strict=True):
            if not math.isfinite(v):
                return f"{self.name}: {pname} must be a finite number, got {v}"
            if pname in self.positive and v <= 0:
                return f"{self.name}: {pname} must be positive, got {v:g}"
        if self.ordered is not None:
            lo, hi = (args[self.params.index(p)] for p in self.ordered)
            if not lo < hi:
                return f"{self.name}: {self.ordered[0]} ({lo:g}) must be below {self.ordered[1]} ({hi:g})"
        return None

    def accepts(self, spec: DistributionSpec) -> bool:
        """Whether ``spec`` names this distribution with valid arguments."""
        return spec.name == self.name and len(spec.args) == len(self.params) and self.argument_error(spec.args) is None


_ENTRIES = [
    PriorDistribution("normal", ("mu", "sigma"), ("sigma",), Support.REAL, "normal(0, 5)"),
    PriorDistribution("student_t", ("df", "mu", "sigma"), ("df", "sigma"), Support.REAL, "student_t(3, 0, 2.5)"),
    PriorDistribution("cauchy", ("mu", "sigma"), ("sigma",), Support.REAL, "cauchy(0, 5)"),
    PriorDistribution("logistic", ("mu", "sigma"), ("sigma",), Support.REAL, "logistic(0, 1)"),
    PriorDistribution("half_normal", ("sigma",), ("sigma",), Support.POSITIVE, "half_normal(5)"),
    PriorDistribution("half_cauchy", ("sigma",), ("sigma",), Support.POSITIVE, "half_cauchy(5)"),
    PriorDistribution("half_student_t", ("df", "sigma"), ("df", "sigma"), Support.POSITIVE, "half_student_t(3, 2.5)"),
    PriorDistribution("exponential", ("rate",), ("rate",), Support.POSITIVE, "exponential(1)"),
    PriorDistribution("gamma", ("shape", "rate"), ("shape", "rate"), Support.POSITIVE, "gamma(2, 0.1)"),
    PriorDistribution("inv_gamma", ("shape", "scale"), ("shape", "scale"), Support.POSITIVE, "inv_gamma(1, 1)"),
    PriorDistribution("lognormal", ("mu", "sigma"), ("sigma",), Support.POSITIVE, "lognormal(0, 1)"),
    PriorDistribution("uniform", ("lower", "upper"), (), Support.INTERVAL, "uniform(0, 100)",
                      ordered=("lower", "upper")),
    PriorDistribution("beta", ("alpha", "beta"), ("alpha", "beta"), Support.INTERVAL, "beta(2, 2)"),
    PriorDistribution("flat", (), (), Support.REAL, "flat()"),
    PriorDistribution("lkj", ("eta",), ("eta",), Support.CORR_CHOLESKY, "lkj(2)"),
]

PRIOR_DISTRIBUTIONS: dict[str, PriorDistribution] = {d.name: d for d in _ENTRIES}
