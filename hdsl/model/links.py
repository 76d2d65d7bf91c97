"""The numerics of the links named in :class:`hdsl.language.families.Link`: per link, its inverse in jnp.

Keyed by the link's name, which a ``Link`` (a ``str`` enum) is equal to, so that this module needs nothing
from the language at run time: ``Link.inverse``, kept for older callers, imports it from there without an
import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax.scipy.special import expit, ndtr

if TYPE_CHECKING:
    from ..language.families import Link

__all__ = ["inverse_link"]

Array = jax.Array

_INVERSE_LINKS: dict[str, Callable[[Array], Array]] = {
    "identity": lambda e: e,
    "log": jnp.exp,
    "logit": expit,
    "probit": ndtr,
    "cloglog": lambda e: -jnp.expm1(-jnp.exp(e)),
    "inverse": lambda e: 1.0 / e,
    "sqrt": jnp.square,
    "softplus": jax.nn.softplus,
    "logm1": lambda e: 1.0 + jnp.exp(e),  # nu > 1
}


def inverse_link(link: Link) -> Callable[[Array], Array]:
    """The function mapping a linear predictor to its parameter's scale."""
    return _INVERSE_LINKS[link]
