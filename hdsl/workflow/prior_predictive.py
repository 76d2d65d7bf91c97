"""Prior predictive sampling: parameters drawn from the prior table, data drawn from the family.

Parameters are drawn on the host by inverse-CDF sampling (SciPy), truncated to each parameter's
bounds exactly as the log-density truncates them; correlation matrices come from NumPyro's
``LKJCholesky``. The draws are mapped through the compiled model's own functions, so the prior
predictive sees the model the sampler sees.
"""

from __future__ import annotations

import functools
import math

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from scipy import stats

from ..errors import PriorError
from ..language.ir import DistributionSpec, ParamClass, PriorTarget
from ..model.density import constrain, unconstrain
from ..model.params import BlockParams, Params, PredictorParams
from ..model.predictive import Kind, predictive_over_draws
from ..model.priors import ParamPrior, sd_targets
from .protocols import CompiledModel
from .results import constrained_draws

__all__ = ["sample_prior"]



def _scipy(dist: DistributionSpec):
    a = dist.args
    return {
        "normal": lambda: stats.norm(a[0], a[1]),
        "student_t": lambda: stats.t(a[0], a[1], a[2]),
        "cauchy": lambda: stats.cauchy(a[0], a[1]),
        "logistic": lambda: stats.logistic(a[0], a[1]),
        "half_normal": lambda: stats.halfnorm(scale=a[0]),
        "half_cauchy": lambda: stats.halfcauchy(scale=a[0]),
        "half_student_t": lambda: stats.t(a[0], 0.0, a[1]),  # folded below
        "exponential": lambda: stats.expon(scale=1.0 / a[0]),
        "gamma": lambda: stats.gamma(a[0], scale=1.0 / a[1]),
        "inv_gamma": lambda: stats.invgamma(a[0], scale=a[1]),
        "lognormal": lambda: stats.lognorm(s=a[1], scale=math.exp(a[0])),
        "uniform": lambda: stats.uniform(a[0], a[1] - a[0]),
        "beta": lambda: stats.beta(a[0], a[1]),
    }[dist.name]()


def _draw(prior: ParamPrior, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws of one parameter from its prior, restricted to the parameter's bounds."""
    if prior.distribution.name == "flat":
        raise PriorError(f"'{prior.target}' has an improper flat() prior; prior predictive sampling needs "
                         "proper priors")
    d = _scipy(prior.distribution)
    lower = 0.0 if prior.distribution.name == "half_student_t" else prior.lower
    lo, hi = d.cdf(lower), d.cdf(prior.upper)
    u = rng.uniform(lo, hi, size=n)
    return d.ppf(u)


def sample_prior(model: CompiledModel, draws: int = 500, seed: int = 0):
    """Draws from the prior and the prior predictive, as an ArviZ DataTree (groups prior,
    prior_predictive, observed_data)."""
    if not isinstance(draws, int) or draws < 1:
        raise PriorError(f"draws must be a positive whole number, got {draws!r}")
    design, priors, lowered = model.design, model.priors, model.lowered
    rng = np.random.default_rng(seed)
    predictors = []
    for dpar, pred in design.predictors:
        d = None if dpar == "mu" else dpar
        b0 = None
        if pred.intercept:
            t = PriorTarget(ParamClass.INTERCEPT, dpar=d)
            k = design.n_thresholds if dpar == "mu" else 0
            b0 = (np.sort(np.stack([_draw(priors[t], draws, rng) for _ in range(k)], axis=-1), axis=-1) if k
                  else _draw(priors[t], draws, rng))
        b = (np.stack([_draw(priors[PriorTarget(ParamClass.B, coef=c, dpar=d)], draws, rng) for c in pred.coef_names],
                      axis=-1) if pred.coef_names else np.zeros((draws, 0)))
        predictors.append(PredictorParams(b0, None, b))
    key = jax.random.key(seed)
    blocks = []
    for blk in lowered.blocks:
        sd = np.stack([_draw(priors[t], draws, rng) for t in sd_targets(design, blk)], axis=-1)
        z = rng.standard_normal((draws, blk.n_levels, blk.k))
        L = None
        if blk.correlated:
            eta = priors[PriorTarget(ParamClass.COR, group=blk.name)].distribution.args[0]
            key, sub = jax.random.split(key)
            L = np.asarray(nd.LKJCholesky(blk.k, eta).sample(sub, (draws,)))
            r = np.einsum("dlj,dkj->dlk", z, L) * sd[:, None, :]
        else:
            r = z * sd[:, None, :]
        blocks.append(BlockParams(sd, L, r, z))
    aux = {a.name: _draw(priors[PriorTarget(ParamClass.AUX, dpar=a.name)], draws, rng) for a in lowered.aux}
    values = Params(tuple(predictors), tuple(blocks), aux)
    flat = np.stack([unconstrain(lowered, jax.tree.map(lambda v, d=d: v[d], values)) for d in range(draws)])
    constrain_all = jax.jit(jax.vmap(functools.partial(constrain, lowered)))
    prior = constrained_draws(constrain_all, flat[None], model.naming)
    keys = jax.random.split(jax.random.fold_in(key, 1), draws)
    params = constrain_all(jnp.asarray(flat, dtype=lowered.dtype))
    y_rep = np.asarray(predictive_over_draws(lowered, Kind.RESPONSE)(params, lowered.data, keys))
    response = design.spec.response.label
    dims, coords = model.naming.dims_and_coords()
    return az.from_dict(
        {"prior": prior, "prior_predictive": {response: y_rep[None]}, "observed_data": {response: design.y}},
        dims=dims, coords=coords,
    )
