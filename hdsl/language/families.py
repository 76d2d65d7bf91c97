"""Response families as metadata: per family its links, auxiliary parameters with their supports and brms's
default priors, the addition terms it takes, and whether its response is discrete or categorical.

This is what the language needs to check a spec, and what later stages read from the expanded model
(``spec.family``) instead of looking a family up by name again; it imports no JAX. Each family's numerics
(likelihood, draws, expected value, inverse links, checks of the response's values) are in
:mod:`hdsl.model.families`, found from the record with ``numerics_for(family)``.

Names, links, parameters and default priors follow brms (``vignette("brms_families")``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import FamilyError, did_you_mean
from .distributions import DistributionSpec

__all__ = ["Link", "Categories", "Addition", "PriorScale", "AuxParam", "Family", "FAMILIES", "ALIASES",
           "family_named", "families_accepting"]


class Link(enum.StrEnum):
    """A link function, by the name a spec writes (``family: poisson(sqrt)``). A ``str`` enum so that the
    name compares equal to the member (``spec.family.link == "log"``). Its inverse, a JAX function, is
    ``hdsl.model.links.inverse_link(link)``."""

    IDENTITY = "identity"
    LOG = "log"
    LOGIT = "logit"
    PROBIT = "probit"
    CLOGLOG = "cloglog"
    INVERSE = "inverse"
    SQRT = "sqrt"
    SOFTPLUS = "softplus"
    LOGM1 = "logm1"  # log(x − 1): brms's link for student's nu (> 1) when it has a formula


class Categories(enum.StrEnum):
    """A categorical response, coded 1..K by the binding: ordered (cumulative: thresholds take the place of
    mu's intercept) or nominal (categorical: one linear predictor per category after the first)."""

    ORDERED = "ordered"
    NOMINAL = "nominal"


class Addition(enum.StrEnum):
    """brms's addition terms (``y | trials(n) ~ ...``), by the name a spec writes."""

    WEIGHTS = "weights"
    TRIALS = "trials"
    SE = "se"
    CENS = "cens"

    @property
    def extra_args(self) -> tuple[str, ...]:
        """The arguments after the column, positional or ``name = value``: ``se(s, sigma = TRUE)``,
        ``cens(c, y2)``."""
        return {Addition.SE: ("sigma",), Addition.CENS: ("y2",)}.get(self, ())


class PriorScale(enum.Enum):
    """Where a default prior's scale (its last argument) comes from: as written, or brms's
    ``max(2.5, mad(y))`` of the response or of its log (lognormal's sigma, mu being on log y)."""

    FIXED = "fixed"
    RESPONSE = "response"
    LOG_RESPONSE = "log response"


@dataclass(frozen=True)
class AuxParam:
    """A family parameter besides the mean (sigma, nu, shape, zi, ...): its support, the link of its own
    formula (``sigma ~ x``), and brms's default prior, whose scale may come from the response."""

    name: str
    lower: float = 0.0
    upper: float = math.inf
    link: Link = Link.LOG
    default_prior: DistributionSpec = DistributionSpec("student_t", (3.0, 0.0, 2.5))
    prior_scale: PriorScale = PriorScale.RESPONSE


@dataclass(frozen=True)
class Family:
    """A response family, with ``link`` the one a model uses (the default, ``links[0]``, in the catalogue;
    another by :meth:`with_link`). Expand resolves the family line to one of these and it travels on the
    IR as ``ModelSpec.family``.

    ``additions``: the addition terms the family accepts (``cens`` where it has a differentiable CDF),
    ``required_additions`` those it needs (binomial: trials, checked when the data are bound).
    ``prior_link``: the scale brms computes default priors on when mu lives on a transformed scale of the
    response (lognormal: log). ``gaussian_noise``: the response is its mean plus normal noise, which (with
    the identity link) admits per-level sufficient statistics."""

    name: str
    links: tuple[Link, ...]
    link: Link
    aux: tuple[AuxParam, ...] = ()
    discrete: bool = False
    categories: Categories | None = None
    additions: tuple[Addition, ...] = (Addition.WEIGHTS,)
    required_additions: tuple[Addition, ...] = ()
    prior_link: Link | None = None
    gaussian_noise: bool = False

    @property
    def default_link(self) -> Link:
        return self.links[0]

    @property
    def aux_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.aux)

    @property
    def linear_gaussian(self) -> bool:
        """The response is the linear predictor plus normal noise (gaussian family, identity link)."""
        return self.gaussian_noise and self.link is Link.IDENTITY

    def with_link(self, link: Link) -> Family:
        if link not in self.links:
            raise ValueError(f"the {self.name} family does not allow the link '{link}'")
        return dataclasses.replace(self, link=link)

    def accepts(self, addition: Addition) -> bool:
        return addition in self.additions


_SIGMA = AuxParam("sigma")
_NU = AuxParam("nu", lower=1.0, link=Link.LOGM1, default_prior=DistributionSpec("gamma", (2.0, 0.1)),
               prior_scale=PriorScale.FIXED)
_SHAPE_NB = AuxParam("shape", default_prior=DistributionSpec("inv_gamma", (0.4, 0.3)), prior_scale=PriorScale.FIXED)
_SHAPE = AuxParam("shape", default_prior=DistributionSpec("gamma", (0.01, 0.01)), prior_scale=PriorScale.FIXED)
_PHI = AuxParam("phi", default_prior=DistributionSpec("gamma", (0.01, 0.01)), prior_scale=PriorScale.FIXED)
_ZI = AuxParam("zi", lower=0.0, upper=1.0, link=Link.LOGIT, default_prior=DistributionSpec("beta", (1.0, 1.0)),
               prior_scale=PriorScale.FIXED)
_HU = AuxParam("hu", lower=0.0, upper=1.0, link=Link.LOGIT, default_prior=DistributionSpec("beta", (1.0, 1.0)),
               prior_scale=PriorScale.FIXED)
_SIGMA_LOG = AuxParam("sigma", prior_scale=PriorScale.LOG_RESPONSE)

_BINARY_LINKS = (Link.LOGIT, Link.PROBIT, Link.CLOGLOG)
_REAL_LINKS = (Link.IDENTITY, Link.LOG, Link.INVERSE)
_COUNT_LINKS = (Link.LOG, Link.IDENTITY, Link.SQRT)
_CENSORED = (Addition.WEIGHTS, Addition.CENS)


def _entry(name: str, links: tuple[Link, ...], aux: tuple[AuxParam, ...] = (), **kw: Any) -> Family:
    return Family(name, links, links[0], aux, **kw)


_ENTRIES = (
    _entry("gaussian", _REAL_LINKS, (_SIGMA,), additions=(Addition.WEIGHTS, Addition.SE, Addition.CENS),
           gaussian_noise=True),
    _entry("student", _REAL_LINKS, (_NU, _SIGMA), additions=(Addition.WEIGHTS, Addition.SE, Addition.CENS)),
    _entry("bernoulli", _BINARY_LINKS, discrete=True),
    _entry("binomial", _BINARY_LINKS, discrete=True, additions=(Addition.WEIGHTS, Addition.TRIALS),
           required_additions=(Addition.TRIALS,)),
    _entry("poisson", _COUNT_LINKS, discrete=True),
    _entry("negbinomial", _COUNT_LINKS, (_SHAPE_NB,), discrete=True),
    _entry("geometric", _COUNT_LINKS, discrete=True),
    _entry("gamma", (Link.LOG, Link.INVERSE, Link.IDENTITY), (_SHAPE,), additions=_CENSORED),
    _entry("lognormal", (Link.IDENTITY,), (_SIGMA_LOG,), additions=_CENSORED, prior_link=Link.LOG),
    _entry("beta", _BINARY_LINKS, (_PHI,), additions=_CENSORED),
    _entry("exponential", (Link.LOG, Link.IDENTITY, Link.INVERSE), additions=_CENSORED),
    _entry("weibull", (Link.LOG, Link.IDENTITY), (_SHAPE,), additions=_CENSORED),
    _entry("zero_inflated_poisson", _COUNT_LINKS, (_ZI,), discrete=True),
    _entry("zero_inflated_negbinomial", _COUNT_LINKS, (_SHAPE_NB, _ZI), discrete=True),
    _entry("hurdle_poisson", (Link.LOG,), (_HU,), discrete=True),
    _entry("cumulative", _BINARY_LINKS, discrete=True, categories=Categories.ORDERED),
    _entry("categorical", (Link.LOGIT,), discrete=True, categories=Categories.NOMINAL),
)

FAMILIES: Mapping[str, Family] = MappingProxyType({f.name: f for f in _ENTRIES})
"""Every family by name, at its default link, in the order the documentation lists them."""

ALIASES: Mapping[str, str] = MappingProxyType({
    "normal": "gaussian",
    "student_t": "student",
    "negative_binomial": "negbinomial",
    "negbin": "negbinomial",
    "beta_proportion": "beta",
    "zip": "zero_inflated_poisson",
    "zinb": "zero_inflated_negbinomial",
    "zero_inflated_negative_binomial": "zero_inflated_negbinomial",
    "ordinal": "cumulative",
    "multinomial_logit": "categorical",
})
"""Other names a spec may give a family (brms's, lme4's, NumPyro's)."""


def family_named(name: str) -> Family:
    """The family a name or alias stands for, at its default link. FamilyError (with a suggestion) for
    any other name."""
    key = ALIASES.get(name, name)
    if key not in FAMILIES:
        raise FamilyError(
            f"unknown family '{name}'{did_you_mean(name, [*FAMILIES, *ALIASES])}; "
            f"known families: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[key]


def families_accepting(addition: Addition) -> tuple[str, ...]:
    """The names of the families that take an addition term, in catalogue order."""
    return tuple(name for name, f in FAMILIES.items() if f.accepts(addition))
