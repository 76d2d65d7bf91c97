"""The numerics of the links named in :class:`hdsl.language.families.Link`: per link, its inverse in jnp."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import expit, ndtr

from ..language.families import Link

__all__ = ["inverse_link"]

Array = jax.Array

_INVERSE_LINKS: dict[Link, Callable[[Array], Array]] = {
    Link.IDENTITY: lambda e: e,
    Link.LOG: jnp.exp,
    Link.LOGIT: expit,
    Link.PROBIT: ndtr,
    Link.CLOGLOG: lambda e: -jnp.expm1(-jnp.exp(e)),
    Link.INVERSE: lambda e: 1.0 / e,
    Link.SQRT: jnp.square,
    Link.SOFTPLUS: jax.nn.softplus,
    Link.LOGM1: lambda e: 1.0 + jnp.exp(e),  # nu > 1
}


def inverse_link(link: Link) -> Callable[[Array], Array]:
    """The function mapping a linear predictor to its parameter's scale."""
    return _INVERSE_LINKS[link]
