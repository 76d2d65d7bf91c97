"""The numerics of categorical responses, coded 1..K by the binding: brms's cumulative (ordinal) model,
whose thresholds take the place of mu's intercept, and the categorical (multinomial logit) model, with one
linear predictor per category after the first. Both are written on the linear predictor's scale: per link,
``(log_lik, sample, expected)`` taking eta itself (``FamilyNumerics.on_eta``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr

from ..language.families import Link

__all__ = ["cumulative", "categorical", "check_category_codes"]

Array = jax.Array
Aux = Mapping[str, Array]
OnEta = tuple[Callable[[Array, Array, Aux], Array], Callable[[Array, Array, Aux], Array], Callable[[Array, Aux], Array]]
"""Per link: ``(log_lik(y, eta, aux), sample(key, eta, aux), expected(eta, aux))``."""



def _log1mexp(x: Array) -> Array:
    """log(1 − exp(x)) for x < 0, accurate at both ends. Each branch sees only inputs it is finite at, so
    the branch not taken cannot put a NaN into the gradient."""
    near = x > -math.log(2.0)
    x_near, x_far = jnp.where(near, x, -1.0), jnp.where(near, -1.0, x)
    return jnp.where(near, jnp.log(-jnp.expm1(x_near)), jnp.log1p(-jnp.exp(x_far)))


def _cloglog_log_cdf(x: Array) -> Array:
    """log(1 − exp(−exp(x))): ≈ x far left (where exp(x) underflows), 0 far right."""
    small = x < -20.0
    x_small, x_big = jnp.where(small, x, 0.0), jnp.where(small, 0.0, jnp.minimum(x, 40.0))
    return jnp.where(small, x_small - 0.5 * jnp.exp(x_small), _log1mexp(-jnp.exp(x_big)))


_LOG_CDF: dict[Link, Callable[[Array], Array]] = {
    Link.LOGIT: jax.nn.log_sigmoid,
    Link.PROBIT: log_ndtr,
    Link.CLOGLOG: _cloglog_log_cdf,
}
_LOG_SF: dict[Link, Callable[[Array], Array]] = {
    Link.LOGIT: lambda x: jax.nn.log_sigmoid(-x),
    Link.PROBIT: lambda x: log_ndtr(-x),
    Link.CLOGLOG: lambda x: -jnp.exp(x),
}


def _pick(log_p: Array, y: Array) -> Array:
    idx = (jnp.round(y) - 1).astype(jnp.int32)
    return jnp.take_along_axis(log_p, idx[..., None], axis=-1)[..., 0]


def _draw_category(key: Array, log_p: Array) -> Array:
    return (jax.random.categorical(key, log_p, axis=-1) + 1).astype(log_p.dtype)


def _category_mean(log_p: Array) -> Array:
    k = jnp.arange(1, log_p.shape[-1] + 1, dtype=log_p.dtype)
    return jnp.sum(jnp.exp(log_p) * k, axis=-1)


def cumulative(link: Link) -> OnEta:
    """brms's cumulative model: P(y ≤ k) = F(θ_k − η), thresholds θ_1 < … < θ_{K−1} in aux["thresholds"].
    E[y] is the mean category number Σ k·P(y = k)."""
    log_cdf, log_sf = _LOG_CDF[link], _LOG_SF[link]

    def log_probs(eta: Array, aux: Aux) -> Array:
        d = aux["thresholds"] - eta[..., None]
        lc, ls = log_cdf(d), log_sf(d)
        # P(θ_(k-1) < · < θ_k): from the CDF in the lower tail, from the survival function in the upper
        # one (where log F ≈ 0 has lost the digits); arguments kept < 0 so no branch has an infinite slope
        tiny = jnp.finfo(d.dtype).tiny  # type: ignore[no-untyped-call]
        by_cdf = lc[..., 1:] + _log1mexp(jnp.minimum(lc[..., :-1] - lc[..., 1:], -tiny))
        by_sf = ls[..., :-1] + _log1mexp(jnp.minimum(ls[..., 1:] - ls[..., :-1], -tiny))
        middle = jnp.where(d[..., :-1] > 0, by_sf, by_cdf)
        return jnp.concatenate([lc[..., :1], middle, ls[..., -1:]], axis=-1)

    return (lambda y, eta, aux: _pick(log_probs(eta, aux), y),
            lambda key, eta, aux: _draw_category(key, log_probs(eta, aux)),
            lambda eta, aux: _category_mean(log_probs(eta, aux)))


def _softmax_log_probs(eta: Array) -> Array:
    """Category 1 is the reference: logits (0, η_2, …, η_K)."""
    return jax.nn.log_softmax(jnp.concatenate([jnp.zeros_like(eta[..., :1]), eta], axis=-1), axis=-1)


def categorical(link: Link) -> OnEta:
    """One linear predictor per category after the first (eta is (…, K−1)); E[y]: the K probabilities."""
    return (lambda y, eta, aux: _pick(_softmax_log_probs(eta), y),
            lambda key, eta, aux: _draw_category(key, _softmax_log_probs(eta)),
            lambda eta, aux: jnp.exp(_softmax_log_probs(eta)))


def check_category_codes(y: np.ndarray, column: str) -> None:
    """The design stage codes the categories 1..K; nothing else can reach here."""
    return None
