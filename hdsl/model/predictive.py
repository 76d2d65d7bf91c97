"""The one predictive kernel: per posterior (or prior) draw, the linear predictor, the mean, a response
draw or the pointwise log-likelihood at some data. Predictions, the posterior and prior predictive,
cross-validation scores, the stored log-likelihood and every figure go through :func:`predictive`."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable

import jax

from .density import family_args, mean_predictor, without_validation
from .lower import LoweredModel
from .params import ModelData, Params

__all__ = ["Kind", "predictive", "predictive_over_draws"]

Array = jax.Array


class Kind(enum.Enum):
    """What a prediction returns, per draw and row (brms: posterior_linpred, posterior_epred,
    posterior_predict, log_lik)."""

    LINPRED = "linpred"
    MEAN = "mean"
    RESPONSE = "response"
    LOG_LIK = "log_lik"


@without_validation
def predictive(model: LoweredModel, kind: Kind, params: Params, data: ModelData, key: Array | None = None) -> Array:
    """One draw's prediction of ``kind`` at ``data`` (``key`` for RESPONSE)."""
    eta = mean_predictor(model, params, data)
    if kind is Kind.LINPRED:
        return eta
    args = family_args(model, params, data)
    if kind is Kind.LOG_LIK:
        return model.family.log_lik_eta(data.y, eta, model.link, args)
    if kind is Kind.MEAN:
        return model.family.expected_eta(eta, model.link, args)
    return model.family.sample_eta(key, eta, model.link, args)


def predictive_over_draws(model: LoweredModel, kind: Kind) -> Callable[[Params, ModelData, Array], Array]:
    """``(params, data, keys) → values``: :func:`predictive` vmapped over draws (params and keys with a
    leading draw axis, data shared) and compiled."""
    one = functools.partial(predictive, model, kind)
    return jax.jit(jax.vmap(lambda p, d, k: one(p, d, k), in_axes=(0, None, 0)))
