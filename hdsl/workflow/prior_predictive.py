"""Prior predictive sampling: parameters drawn from the prior table, data drawn from the family.

Parameters are drawn on the host by inverse-CDF sampling (SciPy), truncated to each parameter's
bounds exactly as the log-density truncates them; correlation matrices come from NumPyro's
``LKJCholesky``. The draws are mapped through the compiled model's own functions, so the prior
predictive sees the model the sampler sees.
"""

from __future__ import annotations

import math

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from scipy import stats

from ..errors import PriorError
from ..language.ir import DistributionSpec, ParamClass, PriorTarget
from ..model.families import get_family, scalar_aux
from ..model.lower import CompiledModel, param_key
from ..model.priors import ParamPrior, PriorTable, sd_targets
from .results import constrained_draws, dims_and_coords

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


def sample_prior(
    compiled: CompiledModel, priors: PriorTable, design, draws: int = 500, seed: int = 0
):
    """Draws from the prior and the prior predictive, as an ArviZ DataTree (groups prior,
    prior_predictive, observed_data)."""
    if not isinstance(draws, int) or draws < 1:
        raise PriorError(f"draws must be a positive whole number, got {draws!r}")
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for dpar, pred in design.predictors:
        d = None if dpar == "mu" else dpar
        if pred.intercept:
            t = PriorTarget(ParamClass.INTERCEPT, dpar=d)
            k = design.n_thresholds if dpar == "mu" else 0
            values[param_key(dpar, "b_Intercept")] = (
                np.sort(np.stack([_draw(priors[t], draws, rng) for _ in range(k)], axis=-1), axis=-1) if k
                else _draw(priors[t], draws, rng))
        values[param_key(dpar, "b")] = (
            np.stack([_draw(priors[PriorTarget(ParamClass.B, coef=c, dpar=d)], draws, rng) for c in pred.coef_names],
                     axis=-1) if pred.coef_names else np.zeros((draws, 0)))
    key = jax.random.key(seed)
    for b, blk in enumerate(compiled.blocks):
        sd = np.stack([_draw(priors[t], draws, rng) for t in sd_targets(design, blk)], axis=-1)
        z = rng.standard_normal((draws, blk.n_levels, blk.k))
        values[f"sd_{b}"], values[f"z_{b}"] = sd, z
        if blk.correlated:
            eta = priors[PriorTarget(ParamClass.COR, group=blk.name)].distribution.args[0]
            key, sub = jax.random.split(key)
            L = np.asarray(nd.LKJCholesky(blk.k, eta).sample(sub, (draws,)))
            values[f"L_{b}"] = L
            values[f"r_{b}"] = np.einsum("dlj,dkj->dlk", z, L) * sd[:, None, :]
        else:
            values[f"r_{b}"] = z * sd[:, None, :]
    family = get_family(design.spec.family.name)
    for a in scalar_aux(design.spec):
        values[a.name] = _draw(priors[PriorTarget(ParamClass.AUX, dpar=a.name)], draws, rng)
    flat = np.stack([compiled.unconstrain({k: v[d] for k, v in values.items()}) for d in range(draws)])
    prior = constrained_draws(jax.jit(jax.vmap(compiled.constrain)), flat[None], design)

    data = compiled.data

    def predict(key, x):
        params = compiled.constrain(x)
        eta = compiled.eta_from_params(params, data)
        return family.sample_eta(key, eta, compiled.link, compiled.aux_from_params(params, data))

    keys = jax.random.split(jax.random.fold_in(key, 1), draws)
    y_rep = np.asarray(jax.jit(jax.vmap(predict))(keys, jnp.asarray(flat, dtype=compiled.dtype)))
    response = design.spec.response.label
    dims, coords = dims_and_coords(design)
    return az.from_dict(
        {"prior": prior, "prior_predictive": {response: y_rep[None]}, "observed_data": {response: design.y}},
        dims=dims, coords=coords,
    )
