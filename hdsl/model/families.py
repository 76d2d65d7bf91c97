"""The numerics of the response families described in :mod:`hdsl.language.families`: per family its
likelihood, posterior-predictive draws, expected value, censoring terms and the check of the response's
values, found from the family's record with :func:`numerics_for`. Lowering asks them for these and never
tests which family it has. The pieces shared or self-contained live beside it: each link's inverse
(:mod:`~hdsl.model.links`), the categorical responses (:mod:`~hdsl.model.categorical`), the response checks
(:mod:`~hdsl.model.response_checks`), brms's data-scaled default priors (:mod:`~hdsl.model.default_priors`).

Parameterizations follow brms (``vignette("brms_families")``): every family is written in terms of its
mean ``mu`` (the inverse link of the linear predictor) plus named auxiliary parameters; a likelihood is a
NumPyro distribution, so ``log_lik`` is NumPyro's ``log_prob``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.scipy.special import betainc, betaln, gammainc, gammaincc, gammaln, log_ndtr
from numpyro.distributions.util import clamp_probs

from ..errors import FamilyError
from ..language import families as catalogue
from ..language.families import AuxParam, Link
from ..language.ir import DistributionSpec
from . import default_priors
from .categorical import categorical, check_category_codes, cumulative
from .default_priors import default_aux_prior, robust_scale
from .links import inverse_link
from .response_checks import check_binary, check_counts, check_positive, check_real, check_trials, check_unit_open

__all__ = ["FamilyNumerics", "FAMILY_NUMERICS", "numerics_for", "CENSORING_CODES",
           # compatibility, until lower.py, plots.py and the tests read spec.family, numerics_for and the
           # modules beside this one
           "robust_scale"]

Array = jax.Array
Aux = Mapping[str, Array]


def _no_additions(y: np.ndarray, additions: Mapping[str, np.ndarray], column: str) -> None:
    return None


@dataclass(frozen=True)
class FamilyNumerics:
    """How a family (``family``, the catalogue's record at its default link) computes.

    ``log_lik(y, mu, aux)`` and ``sample(key, mu, aux)`` take the mean ``mu`` (inverse link of the
    linear predictor) and ``aux``: the auxiliary parameters by name plus the response's addition
    terms (``trials`` from ``y | trials(n)``). ``eta_log_lik`` holds numerically safer forms on the
    linear-predictor scale for some links (``log_lik_eta`` falls back to ``log_lik``).
    ``log_cdf`` and ``log_sf`` (log P(Y ≤ y), log P(Y ≥ y), same arguments as ``log_lik``) are given
    by the continuous families that take ``cens()``: ``log_lik_eta`` uses them on censored rows.
    ``check_response`` and ``check_additions`` check the values of a bound response (DataError naming the
    column and the first bad row).
    """

    family: catalogue.Family
    log_lik: Callable[[Array, Array, Aux], Array]  # None (as sample) for the families written through eta
    sample: Callable[[Array, Array, Aux], Array]
    check_response: Callable[[np.ndarray, str], None]
    check_additions: Callable[[np.ndarray, Mapping[str, np.ndarray], str], None] = _no_additions
    eta_log_lik: Mapping[Link, Callable[[Array, Array, Aux], Array]] = field(default_factory=dict)
    expected: Callable[[Array, Aux], Array] = lambda mu, aux: mu  # E[y] (brms's posterior_epred) from mu
    log_cdf: Callable[[Array, Array, Aux], Array] | None = None
    log_sf: Callable[[Array, Array, Aux], Array] | None = None
    # families not written through mu (categorical responses): per link, (log_lik, sample, expected) taking eta
    on_eta: Callable[[Link], tuple[Callable, Callable, Callable]] | None = None

    # the metadata's fields, read through the numerics (the record is ``family``; stages read ``spec.family``)
    @property
    def name(self) -> str:
        return self.family.name

    @property
    def links(self) -> tuple[Link, ...]:
        return self.family.links

    @property
    def default_link(self) -> Link:
        return self.family.default_link

    @property
    def discrete(self) -> bool:
        return self.family.discrete

    @property
    def categories(self) -> catalogue.Categories | None:
        return self.family.categories

    @property
    def additions(self) -> tuple[catalogue.Addition, ...]:
        """The addition terms the family requires (binomial: trials)."""
        return self.family.required_additions

    @property
    def aux(self) -> tuple[_AuxWithDataPrior, ...]:
        return tuple(_AuxWithDataPrior(a) for a in self.family.aux)

    def default_scale(self, y: np.ndarray, link: Link) -> float:
        return default_priors.default_scale(self.family, y, link)

    def intercept_prior(self, y: np.ndarray, link: Link) -> DistributionSpec:
        return default_priors.intercept_prior(self.family, y, link)

    def response_scale(self, y: np.ndarray, link: Link) -> float:
        return default_priors.response_scale(self.family, y, link)

    def sample_eta(self, key: Array, eta: Array, link: Link, aux: Aux) -> Array:
        """Response draws from the linear predictor."""
        if self.on_eta is not None:
            return self.on_eta(link)[1](key, eta, aux)
        return self.sample(key, inverse_link(link)(eta), aux)

    def expected_eta(self, eta: Array, link: Link, aux: Aux) -> Array:
        """E[y] from the linear predictor (per-category probabilities for a categorical response)."""
        if self.on_eta is not None:
            return self.on_eta(link)[2](eta, aux)
        return self.expected(inverse_link(link)(eta), aux)

    def log_lik_eta(self, y: Array, eta: Array, link: Link, aux: Aux) -> Array:
        """Pointwise log-likelihood from the linear predictor (stable where a form is known)."""
        if self.on_eta is not None:
            return self.on_eta(link)[0](y, eta, aux)
        stable = self.eta_log_lik.get(link)
        ll = stable(y, eta, aux) if stable is not None else self.log_lik(y, inverse_link(link)(eta), aux)
        if "cens" in aux and self.log_cdf is not None and self.log_sf is not None:
            ll = _censored(ll, y, inverse_link(link)(eta), aux, self.log_cdf, self.log_sf)
        return ll

# ---------------------------------------------------------------------------------------------
# likelihoods: a builder (mu, aux) -> NumPyro distribution gives log_lik and sample


def _from_distribution(build: Callable[[Array, Aux], nd.Distribution]):
    def log_lik(y: Array, mu: Array, aux: Aux) -> Array:
        return build(mu, aux).log_prob(y)

    def sample(key: Array, mu: Array, aux: Aux) -> Array:
        draws = build(mu, aux).sample(key)
        return draws.astype(jnp.result_type(mu, float))

    return log_lik, sample


def _trials(aux: Aux) -> Array:
    if "trials" not in aux:
        raise FamilyError("the binomial family needs the number of trials: write 'y | trials(n)'")
    return aux["trials"]


def _weibull_scale(mu: Array, shape: Array) -> Array:
    # brms: mu is the mean, so scale = mu / Gamma(1 + 1/shape)
    return mu / jnp.exp(gammaln(1.0 + 1.0 / shape))


def _hurdle_poisson_log_lik(y: Array, mu: Array, aux: Aux) -> Array:
    hu = clamp_probs(aux["hu"])
    safe_y = jnp.where(y == 0, 1.0, y)
    positive = jnp.log1p(-hu) + nd.Poisson(mu).log_prob(safe_y) - jnp.log(-jnp.expm1(-mu))
    return jnp.where(y == 0, jnp.log(hu), positive)


def _zero_truncated_poisson(key: Array, mu: Array) -> Array:
    """Exact draw given at least one event: the first arrival time T of a rate-mu Poisson process on
    [0, 1] conditioned on T < 1, then 1 + Poisson(mu (1 - T)). No rejection loop, even for tiny mu."""
    k1, k2 = jax.random.split(key)
    u = jax.random.uniform(k1, jnp.shape(mu), dtype=jnp.result_type(mu, float))
    t = -jnp.log1p(u * jnp.expm1(-mu)) / mu
    return 1.0 + jax.random.poisson(k2, mu * (1.0 - t), jnp.shape(mu)).astype(u.dtype)


def _hurdle_poisson_sample(key: Array, mu: Array, aux: Aux) -> Array:
    k1, k2 = jax.random.split(key)
    shape = jnp.broadcast_shapes(jnp.shape(mu), jnp.shape(aux["hu"]))
    mu = jnp.broadcast_to(mu, shape)
    zero = jax.random.bernoulli(k1, aux["hu"], shape)
    return jnp.where(zero, 0.0, _zero_truncated_poisson(k2, mu))


def _sd(aux: Aux) -> Array:
    """The residual sd: sigma; with known standard errors ``se(s)`` the se itself, or with
    ``se(s, sigma = TRUE)`` sqrt(sigma² + se²) (brms)."""
    se = aux.get("se")
    if se is None:
        return aux["sigma"]
    sigma = aux.get("sigma")
    return se if sigma is None else jnp.sqrt(jnp.square(sigma) + jnp.square(se))


_gaussian = _from_distribution(lambda mu, a: nd.Normal(mu, _sd(a)))
_student = _from_distribution(lambda mu, a: nd.StudentT(a["nu"], mu, _sd(a)))
_bernoulli = _from_distribution(lambda mu, a: nd.BernoulliProbs(clamp_probs(mu)))
_binomial_log_lik = _from_distribution(lambda mu, a: nd.BinomialProbs(clamp_probs(mu), _trials(a)))[0]


def _binomial_sample(key: Array, mu: Array, aux: Aux) -> Array:
    n = jnp.round(_trials(aux)).astype(jnp.result_type(int))  # NumPyro's sampler indexes by the count
    return nd.BinomialProbs(clamp_probs(mu), n).sample(key).astype(jnp.result_type(mu, float))


_binomial = (_binomial_log_lik, _binomial_sample)
_poisson = _from_distribution(lambda mu, a: nd.Poisson(mu))
_negbinomial = _from_distribution(lambda mu, a: nd.NegativeBinomial2(mu, a["shape"]))
# brms's geometric: the negative binomial with shape 1, P(y) = (1 − p)^y p with mean mu = (1 − p) / p
_geometric = _from_distribution(lambda mu, a: nd.GeometricProbs(clamp_probs(1.0 / (1.0 + mu))))
_gamma = _from_distribution(lambda mu, a: nd.Gamma(a["shape"], a["shape"] / mu))
_lognormal = _from_distribution(lambda mu, a: nd.LogNormal(mu, a["sigma"]))
_beta = _from_distribution(lambda mu, a: nd.BetaProportion(clamp_probs(mu), a["phi"]))
_exponential = _from_distribution(lambda mu, a: nd.Exponential(1.0 / mu))
_weibull = _from_distribution(lambda mu, a: nd.Weibull(_weibull_scale(mu, a["shape"]), a["shape"]))
# zi and hu are clamped away from 0 and 1: a modelled zi (logit link) can round to exactly 1
_zip = _from_distribution(lambda mu, a: nd.ZeroInflatedPoisson(clamp_probs(a["zi"]), mu))
_zinb = _from_distribution(lambda mu, a: nd.ZeroInflatedNegativeBinomial2(mu, a["shape"], gate=clamp_probs(a["zi"])))

_logit_eta = {
    "bernoulli": lambda y, eta, a: nd.BernoulliLogits(eta).log_prob(y),
    "binomial": lambda y, eta, a: nd.BinomialLogits(eta, _trials(a)).log_prob(y),
}


def _poisson_log_eta(y: Array, eta: Array, aux: Aux) -> Array:
    return y * eta - jnp.exp(eta) - gammaln(y + 1.0)


# log-link forms on the linear-predictor scale: exp(eta) may overflow to inf or underflow to 0, which in
# the mean-scale forms gives inf - inf or 0 * inf (NaN); here such points give -inf (rejected by NUTS)


def _gamma_log_eta(y: Array, eta: Array, aux: Aux) -> Array:
    k = aux["shape"]  # Gamma(shape k, rate k / mu), log mu = eta
    return k * (jnp.log(k) - eta) + (k - 1.0) * jnp.log(y) - k * y * jnp.exp(-eta) - gammaln(k)


def _exponential_log_eta(y: Array, eta: Array, aux: Aux) -> Array:
    return -eta - y * jnp.exp(-eta)


def _weibull_log_eta(y: Array, eta: Array, aux: Aux) -> Array:
    k = aux["shape"]
    t = jnp.log(y) - (eta - gammaln(1.0 + 1.0 / k))  # log(y / scale)
    return jnp.log(k) - jnp.log(y) + k * t - jnp.exp(k * t)


def _zip_log_eta(y: Array, eta: Array, aux: Aux) -> Array:
    zi = clamp_probs(aux["zi"])
    positive = jnp.log1p(-zi) + _poisson_log_eta(y, eta, aux)
    return jnp.where(y == 0, jnp.logaddexp(jnp.log(zi), jnp.log1p(-zi) - jnp.exp(eta)), positive)


def _hurdle_poisson_log_eta(y: Array, eta: Array, aux: Aux) -> Array:
    hu = clamp_probs(aux["hu"])
    safe_y = jnp.where(y == 0, 1.0, y)
    # log P(y > 0) = log(1 - exp(-mu)), which is eta to within mu/2 for small mu (and exp(eta) may be 0)
    small = eta < -20.0
    log_p_pos = jnp.where(small, eta, jnp.log(-jnp.expm1(-jnp.exp(jnp.where(small, 0.0, eta)))))
    positive = jnp.log1p(-hu) + _poisson_log_eta(safe_y, eta, aux) - log_p_pos
    return jnp.where(y == 0, jnp.log(hu), positive)


# ---------------------------------------------------------------------------------------------
# censoring: log P(Y <= y) and log P(Y >= y) per family, written to stay finite far into the tails


CENSORING_CODES = {"left": -1, "none": 0, "right": 1, "interval": 2}


def _censored(ll: Array, y: Array, mu: Array, aux: Aux, log_cdf, log_sf) -> Array:
    """brms's censoring (codes -1 left, 0 none, 1 right, 2 interval with upper bound ``cens_upper``):
    a censored row contributes log F(y), log S(y) or log(F(y2) − F(y)) instead of the density.

    Every branch is evaluated on every row at finite points (rows outside the interval branch use y2 = y
    and a dummy difference), so the unused branches give finite gradients that ``where`` zeroes."""
    c = aux["cens"]
    lcdf, lsf = log_cdf(y, mu, aux), log_sf(y, mu, aux)
    out = jnp.where(c == -1, lcdf, jnp.where(c == 1, lsf, ll))
    if "cens_upper" not in aux:
        return out
    interval = c == 2
    y2 = jnp.where(interval, aux["cens_upper"], y)
    lcdf2, lsf2 = log_cdf(y2, mu, aux), log_sf(y2, mu, aux)
    lower = lcdf2 < math.log(0.5)  # both bounds in the lower tail: difference of CDFs, else of survivals
    d_cdf = jnp.where(interval & lower, lcdf - lcdf2, -1.0)
    d_sf = jnp.where(interval & ~lower, lsf2 - lsf, -1.0)
    between = jnp.where(lower, lcdf2 + jnp.log1p(-jnp.exp(d_cdf)), lsf + jnp.log1p(-jnp.exp(d_sf)))
    return jnp.where(interval, between, out)


@jax.custom_jvp
def _betainc(a: Array, b: Array, x: Array) -> Array:
    """The regularized incomplete beta function, differentiable in a and b too (JAX's is only in x)."""
    return betainc(a, b, x)


@_betainc.defjvp
def _betainc_jvp(primals, tangents):
    # central differences in a and b: HMC stays exact with an approximate gradient (the accept step
    # uses the exact density); the x derivative is the beta density
    a, b, x = primals
    da, db, dx = tangents
    h = jnp.finfo(jnp.result_type(a, b, x)).eps ** (1.0 / 3.0)
    ha, hb = h * a, h * b
    d_a = (betainc(a + ha, b, x) - betainc(a - ha, b, x)) / (2.0 * ha)
    d_b = (betainc(a, b + hb, x) - betainc(a, b - hb, x)) / (2.0 * hb)
    d_x = jnp.exp((a - 1.0) * jnp.log(x) + (b - 1.0) * jnp.log1p(-x) - betaln(a, b))
    return betainc(a, b, x), d_a * da + d_b * db + d_x * dx


def _gaussian_log_cdf(y: Array, mu: Array, aux: Aux) -> Array:
    return log_ndtr((y - mu) / _sd(aux))


def _gaussian_log_sf(y: Array, mu: Array, aux: Aux) -> Array:
    return log_ndtr((mu - y) / _sd(aux))


def _student_log_cdf_t(t: Array, nu: Array) -> Array:
    # F(t) = I_x(nu/2, 1/2) / 2 for t < 0 with x = nu / (nu + t²); 1 - the same for t > 0
    half = 0.5 * _betainc(0.5 * nu, jnp.full_like(t, 0.5), nu / (nu + t * t))
    return jnp.where(t < 0, jnp.log(half), jnp.log1p(-half))


def _student_log_cdf(y: Array, mu: Array, aux: Aux) -> Array:
    return _student_log_cdf_t((y - mu) / _sd(aux), aux["nu"])


def _student_log_sf(y: Array, mu: Array, aux: Aux) -> Array:
    return _student_log_cdf_t((mu - y) / _sd(aux), aux["nu"])


def _lognormal_log_cdf(y: Array, mu: Array, aux: Aux) -> Array:
    return log_ndtr((jnp.log(y) - mu) / aux["sigma"])


def _lognormal_log_sf(y: Array, mu: Array, aux: Aux) -> Array:
    return log_ndtr((mu - jnp.log(y)) / aux["sigma"])


def _gamma_log_cdf(y: Array, mu: Array, aux: Aux) -> Array:
    return jnp.log(gammainc(aux["shape"], aux["shape"] * y / mu))


def _gamma_log_sf(y: Array, mu: Array, aux: Aux) -> Array:
    return jnp.log(gammaincc(aux["shape"], aux["shape"] * y / mu))


def _log1m_exp_neg_exp(z: Array) -> Array:
    """log(1 − exp(−exp(z))), the log-CDF of a Weibull at z = k log(y / scale): z itself far left."""
    small = z < -20.0
    return jnp.where(small, z, jnp.log(-jnp.expm1(-jnp.exp(jnp.where(small, 0.0, z)))))


def _weibull_z(y: Array, mu: Array, aux: Aux) -> Array:
    k = aux["shape"]
    return k * (jnp.log(y) - jnp.log(_weibull_scale(mu, k)))


def _weibull_log_cdf(y: Array, mu: Array, aux: Aux) -> Array:
    return _log1m_exp_neg_exp(_weibull_z(y, mu, aux))


def _weibull_log_sf(y: Array, mu: Array, aux: Aux) -> Array:
    return -jnp.exp(_weibull_z(y, mu, aux))


def _exponential_log_cdf(y: Array, mu: Array, aux: Aux) -> Array:
    return _log1m_exp_neg_exp(jnp.log(y) - jnp.log(mu))


def _exponential_log_sf(y: Array, mu: Array, aux: Aux) -> Array:
    return -y / mu


def _beta_ab(mu: Array, aux: Aux) -> tuple[Array, Array]:
    mu = clamp_probs(mu)
    return mu * aux["phi"], (1.0 - mu) * aux["phi"]


def _beta_log_cdf(y: Array, mu: Array, aux: Aux) -> Array:
    a, b = _beta_ab(mu, aux)
    return jnp.log(_betainc(a, b, y))


def _beta_log_sf(y: Array, mu: Array, aux: Aux) -> Array:
    a, b = _beta_ab(mu, aux)
    return jnp.log(_betainc(b, a, 1.0 - y))  # I_{1-y}(b, a) = 1 − I_y(a, b), accurate in the upper tail


# ---------------------------------------------------------------------------------------------
# the families written through mu


def _numerics(name: str, pair, check, **kw) -> FamilyNumerics:
    log_lik, sample = pair
    return FamilyNumerics(catalogue.FAMILIES[name], log_lik, sample, check, **kw)


GAUSSIAN = _numerics("gaussian", _gaussian, check_real, log_cdf=_gaussian_log_cdf, log_sf=_gaussian_log_sf)
STUDENT = _numerics("student", _student, check_real, log_cdf=_student_log_cdf, log_sf=_student_log_sf)
BERNOULLI = _numerics("bernoulli", _bernoulli, check_binary, eta_log_lik={Link.LOGIT: _logit_eta["bernoulli"]})
BINOMIAL = _numerics("binomial", _binomial, check_counts, check_additions=check_trials,
                     expected=lambda mu, aux: mu * aux["trials"], eta_log_lik={Link.LOGIT: _logit_eta["binomial"]})
POISSON = _numerics("poisson", _poisson, check_counts, eta_log_lik={Link.LOG: _poisson_log_eta})
NEGBINOMIAL = _numerics("negbinomial", _negbinomial, check_counts)
GEOMETRIC = _numerics("geometric", _geometric, check_counts)
GAMMA = _numerics("gamma", _gamma, check_positive, eta_log_lik={Link.LOG: _gamma_log_eta}, log_cdf=_gamma_log_cdf,
                  log_sf=_gamma_log_sf)
LOGNORMAL = _numerics("lognormal", _lognormal, check_positive, log_cdf=_lognormal_log_cdf,
                      log_sf=_lognormal_log_sf)
BETA = _numerics("beta", _beta, check_unit_open, log_cdf=_beta_log_cdf, log_sf=_beta_log_sf)
EXPONENTIAL = _numerics("exponential", _exponential, check_positive, eta_log_lik={Link.LOG: _exponential_log_eta},
                        log_cdf=_exponential_log_cdf, log_sf=_exponential_log_sf)
WEIBULL = _numerics("weibull", _weibull, check_positive, eta_log_lik={Link.LOG: _weibull_log_eta},
                    log_cdf=_weibull_log_cdf, log_sf=_weibull_log_sf)
ZERO_INFLATED_POISSON = _numerics("zero_inflated_poisson", _zip, check_counts, eta_log_lik={Link.LOG: _zip_log_eta},
                                  expected=lambda mu, aux: (1.0 - aux["zi"]) * mu)
ZERO_INFLATED_NEGBINOMIAL = _numerics("zero_inflated_negbinomial", _zinb, check_counts,
                                      expected=lambda mu, aux: (1.0 - aux["zi"]) * mu)
HURDLE_POISSON = _numerics("hurdle_poisson", (_hurdle_poisson_log_lik, _hurdle_poisson_sample), check_counts,
                           eta_log_lik={Link.LOG: _hurdle_poisson_log_eta},
                           expected=lambda mu, aux: (1.0 - aux["hu"]) * mu / -jnp.expm1(-mu))

# categorical responses, coded 1..K by the binding: written through eta (on_eta), not through mu
_WRITTEN_ON_ETA = (None, None)
CUMULATIVE = _numerics("cumulative", _WRITTEN_ON_ETA, check_category_codes, on_eta=cumulative)
CATEGORICAL = _numerics("categorical", _WRITTEN_ON_ETA, check_category_codes, on_eta=categorical)

FAMILY_NUMERICS: Mapping[str, FamilyNumerics] = MappingProxyType({
    f.family.name: f
    for f in (GAUSSIAN, STUDENT, BERNOULLI, BINOMIAL, POISSON, NEGBINOMIAL, GEOMETRIC, GAMMA, LOGNORMAL, BETA,
              EXPONENTIAL, WEIBULL, ZERO_INFLATED_POISSON, ZERO_INFLATED_NEGBINOMIAL, HURDLE_POISSON, CUMULATIVE,
              CATEGORICAL)
})
"""Every family's numerics, by the name of its record in :data:`hdsl.language.families.FAMILIES`."""


def numerics_for(family: catalogue.Family) -> FamilyNumerics:
    """The numerics of a family record (``spec.family``), whatever its link."""
    return FAMILY_NUMERICS[family.name]


# ---------------------------------------------------------------------------------------------
# a family parameter with its default prior evaluated on a response (what FamilyNumerics.aux gives)


@dataclass(frozen=True)
class _AuxWithDataPrior:
    """A family parameter whose ``default_prior(y)`` is brms's, evaluated on a response."""

    param: AuxParam

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def lower(self) -> float:
        return self.param.lower

    @property
    def upper(self) -> float:
        return self.param.upper

    @property
    def link(self) -> Link:
        return self.param.link

    def default_prior(self, y: np.ndarray) -> DistributionSpec:
        return default_aux_prior(self.param, y)
