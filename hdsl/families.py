"""Response families: each owns its likelihood, links, auxiliary parameters, default priors and
posterior-predictive draws. Lowering asks a family for these; it never tests which family it has.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.scipy.special import expit, ndtr

from .errors import DataError, FamilyError, did_you_mean
from .ir import DistributionSpec

__all__ = ["Link", "AuxParam", "Family", "FAMILIES", "get_family", "robust_scale"]


class Link(enum.Enum):
    IDENTITY = "identity"
    LOG = "log"
    LOGIT = "logit"
    PROBIT = "probit"
    CLOGLOG = "cloglog"
    INVERSE = "inverse"
    SQRT = "sqrt"
    SOFTPLUS = "softplus"

    def inverse(self, eta: jax.Array) -> jax.Array:
        """Map the linear predictor to the parameter's scale."""
        return _INVERSE_LINKS[self](eta)


_INVERSE_LINKS: dict[Link, Callable[[jax.Array], jax.Array]] = {
    Link.IDENTITY: lambda e: e,
    Link.LOG: jnp.exp,
    Link.LOGIT: expit,
    Link.PROBIT: ndtr,
    Link.CLOGLOG: lambda e: -jnp.expm1(-jnp.exp(e)),
    Link.INVERSE: lambda e: 1.0 / e,
    Link.SQRT: jnp.square,
    Link.SOFTPLUS: jax.nn.softplus,
}


def robust_scale(y: np.ndarray) -> float:
    """brms's default scale: the normalized MAD of the response, at least 2.5."""
    y = np.asarray(y, dtype=float)
    mad = 1.4826 * float(np.median(np.abs(y - np.median(y)))) if y.size else 0.0
    return max(2.5, round(mad, 1))


@dataclass(frozen=True)
class AuxParam:
    """A family parameter besides the mean (sigma, nu, phi, ...)."""

    name: str
    lower: float = 0.0
    upper: float = math.inf
    link: Link = Link.LOG
    default_prior: Callable[[np.ndarray], DistributionSpec] = (
        lambda y: DistributionSpec("student_t", (3.0, 0.0, robust_scale(y)))
    )


@dataclass(frozen=True)
class Family:
    """A response distribution with the parameters hdsl models."""

    name: str
    links: tuple[Link, ...]
    aux: tuple[AuxParam, ...]
    log_lik: Callable[[jax.Array, jax.Array, Mapping[str, jax.Array]], jax.Array]
    sample: Callable[[jax.Array, jax.Array, Mapping[str, jax.Array]], jax.Array]
    check_response: Callable[[np.ndarray, str], None]
    discrete: bool = False

    @property
    def default_link(self) -> Link:
        return self.links[0]

    def intercept_prior(self, y: np.ndarray, link: Link) -> DistributionSpec:
        """brms's default: student_t(3, location, scale) on the link scale."""
        if link is Link.IDENTITY:
            return DistributionSpec("student_t", (3.0, round(float(np.median(y)), 1), robust_scale(y)))
        return DistributionSpec("student_t", (3.0, 0.0, 2.5))

    def response_scale(self, y: np.ndarray, link: Link) -> float:
        """Scale of the response on the link scale, used to scale default slope and sd priors."""
        if link is Link.IDENTITY:
            return max(float(np.std(y)), 1e-8) if y.size > 1 else 1.0
        return 1.0


def _check_real(y: np.ndarray, column: str) -> None:
    bad = ~np.isfinite(y)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"response '{column}' has a non-finite value at row {row}: {y[row]!r}", column=column,
                        row=row)


def _gaussian_log_lik(y, mu, aux):
    return nd.Normal(mu, aux["sigma"]).log_prob(y)


def _gaussian_sample(key, mu, aux):
    return mu + aux["sigma"] * jax.random.normal(key, jnp.shape(mu), dtype=jnp.result_type(mu))


GAUSSIAN = Family(
    name="gaussian",
    links=(Link.IDENTITY, Link.LOG, Link.INVERSE),
    aux=(AuxParam("sigma"),),
    log_lik=_gaussian_log_lik,
    sample=_gaussian_sample,
    check_response=_check_real,
)

FAMILIES: dict[str, Family] = {f.name: f for f in (GAUSSIAN,)}
_ALIASES = {"normal": "gaussian"}


def get_family(name: str) -> Family:
    key = _ALIASES.get(name, name)
    if key not in FAMILIES:
        raise FamilyError(
            f"unknown family '{name}'{did_you_mean(name, FAMILIES)}; known families: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[key]
