"""Prior distributions a spec may name, as data: arguments, support, and how to build them.

Each entry builds a NumPyro distribution, so the log-density uses NumPyro's ``log_prob``. A
distribution with real support placed on a positive parameter is truncated at zero, as in brms
(``sd ~ normal(0, 5)`` is a half-normal); the truncation constant is computed once, on the host.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpyro.distributions as nd
from scipy import stats

__all__ = ["Support", "PriorDistribution", "PRIOR_DISTRIBUTIONS", "truncation_log_mass"]


class Support(enum.Enum):
    REAL = "real"
    POSITIVE = "positive"
    INTERVAL = "interval"
    CORR_CHOLESKY = "correlation"


@dataclass(frozen=True)
class PriorDistribution:
    name: str
    params: tuple[str, ...]
    positive: tuple[str, ...]
    support: Support
    build: Callable[..., nd.Distribution] | None
    cdf: Callable[..., float] | None = None
    example: str = ""

    def signature(self) -> str:
        return f"{self.name}({', '.join(self.params)})"


def _t_cdf(x, df, mu, sigma):
    return stats.t.cdf(x, df, loc=mu, scale=sigma)


_ENTRIES = [
    PriorDistribution(
        "normal", ("mu", "sigma"), ("sigma",), Support.REAL, nd.Normal,
        lambda x, mu, s: stats.norm.cdf(x, mu, s), "normal(0, 5)",
    ),
    PriorDistribution(
        "student_t", ("df", "mu", "sigma"), ("df", "sigma"), Support.REAL, nd.StudentT, _t_cdf,
        "student_t(3, 0, 2.5)",
    ),
    PriorDistribution(
        "cauchy", ("mu", "sigma"), ("sigma",), Support.REAL, nd.Cauchy,
        lambda x, mu, s: stats.cauchy.cdf(x, mu, s), "cauchy(0, 5)",
    ),
    PriorDistribution(
        "logistic", ("mu", "sigma"), ("sigma",), Support.REAL, nd.Logistic,
        lambda x, mu, s: stats.logistic.cdf(x, mu, s), "logistic(0, 1)",
    ),
    PriorDistribution("half_normal", ("sigma",), ("sigma",), Support.POSITIVE, nd.HalfNormal, None,
                      "half_normal(5)"),
    PriorDistribution("half_cauchy", ("sigma",), ("sigma",), Support.POSITIVE, nd.HalfCauchy, None,
                      "half_cauchy(5)"),
    PriorDistribution(
        "half_student_t", ("df", "sigma"), ("df", "sigma"), Support.POSITIVE,
        lambda df, s: nd.FoldedDistribution(nd.StudentT(df, 0.0, s)), None, "half_student_t(3, 2.5)",
    ),
    PriorDistribution("exponential", ("rate",), ("rate",), Support.POSITIVE, nd.Exponential, None,
                      "exponential(1)"),
    PriorDistribution("gamma", ("shape", "rate"), ("shape", "rate"), Support.POSITIVE, nd.Gamma, None,
                      "gamma(2, 0.1)"),
    PriorDistribution("inv_gamma", ("shape", "scale"), ("shape", "scale"), Support.POSITIVE, nd.InverseGamma,
                      None, "inv_gamma(1, 1)"),
    PriorDistribution("lognormal", ("mu", "sigma"), ("sigma",), Support.POSITIVE, nd.LogNormal, None,
                      "lognormal(0, 1)"),
    PriorDistribution("uniform", ("lower", "upper"), (), Support.INTERVAL, nd.Uniform, None,
                      "uniform(0, 100)"),
    PriorDistribution("beta", ("alpha", "beta"), ("alpha", "beta"), Support.INTERVAL, nd.Beta, None,
                      "beta(2, 2)"),
    PriorDistribution("flat", (), (), Support.REAL, None, None, "flat()"),
    PriorDistribution("lkj", ("eta",), ("eta",), Support.CORR_CHOLESKY, None, None, "lkj(2)"),
]

PRIOR_DISTRIBUTIONS: dict[str, PriorDistribution] = {d.name: d for d in _ENTRIES}


def truncation_log_mass(dist: PriorDistribution, args: tuple[float, ...], lower: float, upper: float) -> float:
    """log P(lower < X < upper) for a real-support prior restricted to a parameter's bounds."""
    if dist.support is not Support.REAL or dist.cdf is None:
        return 0.0
    hi = 1.0 if math.isinf(upper) else float(dist.cdf(upper, *args))
    lo = 0.0 if math.isinf(lower) else float(dist.cdf(lower, *args))
    mass = hi - lo
    if mass <= 0.0:
        return -math.inf
    return math.log(mass)
