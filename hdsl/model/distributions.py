"""The numerics of the prior distributions named in :mod:`hdsl.language.distributions`: per name, a builder
of the NumPyro distribution (so the log-density uses NumPyro's ``log_prob``) and, for real-support
priors, the CDF. A distribution with real support placed on a positive parameter is truncated at zero, as
in brms (``sd ~ normal(0, 5)`` is a half-normal); the truncation constant is computed once, on the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpyro.distributions as nd
from scipy import stats

from ..language.distributions import PRIOR_DISTRIBUTIONS as _CATALOGUE
from ..language.distributions import PriorDistribution, Support

__all__ = ["PriorNumerics", "PRIOR_NUMERICS", "prior_numerics", "truncation_log_mass",
           # compatibility, until model/lower.py reads PRIOR_NUMERICS
           "Support", "PriorDistribution", "PRIOR_DISTRIBUTIONS"]


@dataclass(frozen=True)
class PriorNumerics:
    """How a prior distribution computes: ``build(*args)`` → NumPyro distribution (None: flat, or lkj, which
    the group blocks build themselves), and ``cdf(x, *args)`` for truncating a real-support prior."""

    distribution: PriorDistribution
    build: Callable[..., nd.Distribution] | None
    cdf: Callable[..., float] | None = None

    # the metadata's fields, for code written against the record that held both
    @property
    def name(self) -> str:
        return self.distribution.name

    @property
    def support(self) -> Support:
        return self.distribution.support


def _t_cdf(x: float, df: float, mu: float, sigma: float) -> float:
    return float(stats.t.cdf(x, df, loc=mu, scale=sigma))


_BUILDERS: dict[str, tuple[Callable[..., nd.Distribution] | None, Callable[..., float] | None]] = {
    "normal": (nd.Normal, lambda x, mu, s: stats.norm.cdf(x, mu, s)),
    "student_t": (nd.StudentT, _t_cdf),
    "cauchy": (nd.Cauchy, lambda x, mu, s: stats.cauchy.cdf(x, mu, s)),
    "logistic": (nd.Logistic, lambda x, mu, s: stats.logistic.cdf(x, mu, s)),
    "half_normal": (nd.HalfNormal, None),
    "half_cauchy": (nd.HalfCauchy, None),
    "half_student_t": (lambda df, s: nd.FoldedDistribution(nd.StudentT(df, 0.0, s)), None),
    "exponential": (nd.Exponential, None),
    "gamma": (nd.Gamma, None),
    "inv_gamma": (nd.InverseGamma, None),
    "lognormal": (nd.LogNormal, None),
    "uniform": (nd.Uniform, None),
    "beta": (nd.Beta, None),
    "flat": (None, None),
    "lkj": (None, None),
}

PRIOR_NUMERICS: Mapping[str, PriorNumerics] = MappingProxyType(
    {name: PriorNumerics(d, *_BUILDERS[name]) for name, d in _CATALOGUE.items()})


def prior_numerics(distribution: PriorDistribution) -> PriorNumerics:
    return PRIOR_NUMERICS[distribution.name]


def truncation_log_mass(dist: PriorDistribution | PriorNumerics, args: tuple[float, ...], lower: float,
                        upper: float) -> float:
    """log P(lower < X < upper) for a real-support prior restricted to a parameter's bounds."""
    cdf = PRIOR_NUMERICS[dist.name].cdf
    if dist.support is not Support.REAL or cdf is None:
        return 0.0
    hi = 1.0 if math.isinf(upper) else float(cdf(upper, *args))
    lo = 0.0 if math.isinf(lower) else float(cdf(lower, *args))
    mass = hi - lo
    if mass <= 0.0:
        return -math.inf
    return math.log(mass)


PRIOR_DISTRIBUTIONS: Mapping[str, PriorNumerics] = PRIOR_NUMERICS
"""Compatibility: the name model/lower.py reads (``.build``, and the record passed to
:func:`truncation_log_mass`)."""
