"""The numerics of a :class:`~hdsl.model.lower.LoweredModel`, as pure functions of the model, a flat
unconstrained vector or the constrained :class:`~hdsl.model.params.Params`, and the data: constrain (with
the log prior, term by term), the linear predictors, the family's arguments, the log-likelihood and the
log-density, and the inverse map to the unconstrained vector. Bind the model with ``functools.partial``
before ``jit``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from numpyro.distributions.distribution import validation_enabled

from .bijectors import Constraint, bijector_for
from .links import inverse_link
from .lower import LoweredModel, PredictorLowering
from .params import (
    BlockParams,
    ModelData,
    ParamKey,
    Params,
    PredictorData,
    PredictorParams,
    Slot,
    SufficientStatistics,
)

__all__ = ["without_validation", "constrain", "constrain_with_prior_terms", "log_prior", "effects_from_standard_normal",
           "linear_predictor", "mean_predictor", "family_args", "pointwise_log_lik", "pointwise_log_lik_at",
           "log_density", "log_density_terms", "unconstrain"]

Array = jax.Array

_CORR = bijector_for(Constraint.CORR_CHOLESKY)
_ORDERED = bijector_for(Constraint.ORDERED)


def without_validation[**P, R](fn: Callable[P, R]) -> Callable[P, R]:
    """NumPyro validates distribution arguments and values by default; that adds comparisons on
    every row to the hot path. Validation is finished before lowering, so trace without it."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with validation_enabled(False):
            return fn(*args, **kwargs)

    return wrapper


def _dot_columns(weights: Sequence[Any], cols: Sequence[Any]) -> Array:
    """Σ_j weights[j] · cols[j] over the first ``len(weights)`` columns (weights scalars or vectors, cols
    vectors of one length or scalars), elementwise."""
    return cast(Array, functools.reduce(jnp.add, (w * c for w, c in zip(weights, cols, strict=False))))


def _mvn_rows_log_prob(r: Array, scale_tril: Array) -> Array:
    """Σ_j log N(r_j | 0, S Sᵀ) over the J rows of r, S a small k × k lower-triangular factor.

    Inverting S once and multiplying (J × k by k × k) keeps the gradient cheap; a triangular solve with
    J right-hand sides (what MultivariateNormal.log_prob does) was much slower on CPU at J = 1000."""
    k = scale_tril.shape[0]
    s_inv = jax.scipy.linalg.solve_triangular(scale_tril, jnp.eye(k, dtype=r.dtype), lower=True)
    # w = r S⁻ᵀ column by column (S⁻¹ is lower-triangular), elementwise over the J levels: vmapped over
    # chains, a (J × k)(k × k) product becomes a batched matrix product that XLA's CPU backend runs slowly
    cols = [r[:, j] for j in range(k)]
    quad = sum(_dot_columns([s_inv[i, j] for j in range(i + 1)], cols) ** 2 for i in range(k))
    J = r.shape[0]
    return (-0.5 * jnp.sum(quad) - J * jnp.sum(jnp.log(jnp.diagonal(scale_tril)))
            - 0.5 * J * k * jnp.log(2.0 * jnp.pi))


@without_validation
def constrain_with_prior_terms(model: LoweredModel, flat: Array) -> tuple[Params, dict[str, Array]]:
    """The parameters, and the log prior (Jacobians included) term by term, named as the user knows them."""
    u = model.layout.unpack(flat)
    terms: dict[str, Array] = {}

    def add(name: str, value: Array) -> None:
        terms[name] = terms[name] + value if name in terms else value

    pop_parts = []
    predictors = []
    for j, pl in enumerate(model.predictors):
        b = None
        if pl.b_prior is not None:  # the predictor has population-level columns
            b, lj = pl.b_prior.bounds.forward(u[ParamKey(Slot.B, j)])
            add(f"prior of b{pl.label}", lj + pl.b_prior(b))
        b0 = jnp.zeros((), flat.dtype)
        intercept = centered = None
        if pl.intercept_prior is not None:  # the predictor has an intercept
            c = u[ParamKey(Slot.INTERCEPT, j)]
            if pl.n_thresholds:
                c, lj = _ORDERED.forward(c)
                add("prior of Intercept", lj)
            # to the user's scale (x = 0); thresholds enter as θ − η, so they shift the other way
            shift = jnp.dot(jnp.asarray(pl.xbar, flat.dtype), b) if b is not None else 0.0
            intercept = c + shift if pl.n_thresholds else c - shift
            add(f"prior of Intercept{pl.label}", pl.intercept_prior(jnp.reshape(intercept, (-1,))))
            centered = c
            b0 = jnp.zeros((), flat.dtype) if pl.n_thresholds else intercept
        pop_parts += [jnp.reshape(b0, (1,)), b if b is not None else jnp.zeros((0,), flat.dtype)]
        predictors.append(PredictorParams(intercept, centered, b))
    pop = jnp.concatenate(pop_parts)
    blocks = []
    for g in model.groups:
        sd, lj = g.sd_prior.bounds.forward(u[ParamKey(Slot.SD, g.index)])
        add(f"prior of sd[{g.name}]", lj + g.sd_prior(sd))
        L = None
        if g.correlated:
            L, lj = _CORR.forward(u[ParamKey(Slot.COR, g.index)])
            add(f"prior of cor[{g.name}]", lj + nd.LKJCholesky(g.k, jnp.asarray(g.lkj_eta, L.dtype)).log_prob(L))
        z = None
        if g.centered:
            # the level's whole coefficient, centered on the population coefficient it varies around
            beta = u[ParamKey(Slot.BETA, g.index)]
            m = jnp.where(g.pop_index >= 0, pop[np.maximum(g.pop_index, 0)], 0.0)
            r = beta - m
            if L is None:
                add(f"group effects of {g.name}", jnp.sum(nd.Normal(jnp.zeros((), r.dtype), sd).log_prob(r)))
            else:
                add(f"group effects of {g.name}", _mvn_rows_log_prob(r, sd[:, None] * L))
        else:
            z = u[ParamKey(Slot.Z, g.index)]
            add(f"group effects of {g.name}",
                jnp.sum(nd.Normal(jnp.zeros((), z.dtype), jnp.ones((), z.dtype)).log_prob(z)))
            r = effects_from_standard_normal(z, sd, L)
        blocks.append(BlockParams(sd, L, r, z))
    aux = {}
    for a in model.aux:
        val, lj = a.prior.bounds.forward(jnp.reshape(u[ParamKey(Slot.AUX, name=a.name)], (1,)))
        add(f"prior of {a.name}", lj + a.prior(val))
        aux[a.name] = val[0]
    return Params(tuple(predictors), tuple(blocks), aux), terms


def effects_from_standard_normal(z: Array, sd: Array, L: Array | None) -> Array:
    """r = z · Lᵀ · diag(sd) (levels × k): the non-centered effects, and new levels' effects drawn from
    the population distribution. Column by column, elementwise over levels (see _mvn_rows_log_prob)."""
    if L is None:
        return z * sd
    k = sd.shape[-1]
    zc = [z[..., j] for j in range(k)]
    return jnp.stack([sd[i] * _dot_columns([L[i, j] for j in range(i + 1)], zc) for i in range(k)], axis=-1)


def constrain(model: LoweredModel, flat: Array) -> Params:
    return constrain_with_prior_terms(model, flat)[0]


def log_prior(model: LoweredModel, flat: Array) -> tuple[Params, Array]:
    params, terms = constrain_with_prior_terms(model, flat)
    return params, sum(terms.values(), jnp.zeros((), flat.dtype))


def _predictor_eta(pl: PredictorLowering, pp: PredictorParams, blocks: tuple[BlockParams, ...],
                   data: PredictorData, y: Array) -> Array:
    eta = data.offset if data.offset is not None else jnp.zeros(y.shape, y.dtype)
    if pp.intercept_centered is not None and not pl.n_thresholds:
        eta = eta + pp.intercept_centered
    if pp.b is not None:
        eta = eta + data.X @ pp.b
    for t, codes, Z in zip(pl.terms, data.codes, data.Z, strict=True):
        r = blocks[t.block].r
        for j in range(t.stop - t.start):
            # one 1-D gather per coefficient: codes are valid by construction (bind checks them)
            rj = r[:, t.start + j].at[codes].get(mode="promise_in_bounds")
            eta = eta + (rj if t.ones[j] else rj * Z[:, j])
    return eta


def linear_predictor(model: LoweredModel, params: Params, data: ModelData, index: int) -> Array:
    """Predictor ``index``'s linear predictor per row."""
    return _predictor_eta(model.predictors[index], params.predictors[index], params.blocks,
                          data.predictors[index], data.y)


def mean_predictor(model: LoweredModel, params: Params, data: ModelData) -> Array:
    """mu's linear predictor; for a categorical response, all K − 1 of them, (n, K − 1)."""
    if model.stacked:
        return jnp.stack([linear_predictor(model, params, data, j) for j in range(len(model.predictors))],
                         axis=-1)
    return linear_predictor(model, params, data, 0)


def family_args(model: LoweredModel, params: Params, data: ModelData) -> dict[str, Array]:
    """The family's other parameters (scalars, or per row where modelled), a cumulative model's thresholds
    and the addition terms: what the family's log_lik, sample and expected take besides mu's predictor."""
    args = dict(params.aux)
    if not model.stacked:
        for j, pl in enumerate(model.predictors[1:], start=1):
            args[pl.dpar] = inverse_link(pl.link)(linear_predictor(model, params, data, j))
    thresholds = params.predictors[0].intercept_centered if params.predictors else None
    if thresholds is not None and model.predictors[0].n_thresholds:
        args["thresholds"] = thresholds
    args.update(data.additions)
    return args


def pointwise_log_lik(model: LoweredModel, params: Params, data: ModelData) -> Array:
    return model.family.log_lik_eta(data.y, mean_predictor(model, params, data), model.link,
                                    family_args(model, params, data))


def _summed_gaussian_log_lik(model: LoweredModel, params: Params, suff: SufficientStatistics) -> Array:
    """Σ_g Σ_i log N(y_i | w_iᵀθ_g, σ) from per-group sums, θ_g = [Intercept, b, r_g]."""
    pl, pp = model.predictors[0], params.predictors[0]
    # θ's columns: scalars (Intercept, b) or one value per level (group effects)
    theta: list[Array] = [pp.intercept_centered] if pp.intercept_centered is not None else []
    theta += [pp.b[j] for j in range(pl.p)] if pp.b is not None else []
    theta += [params.blocks[t.block].r[:, j] for t in pl.terms for j in range(t.start, t.stop)]
    ww, wy = suff.ww, suff.wy
    # Σ_ij θ_i θ_j WᵀW_ij per level, the upper triangle twice
    quad = sum(theta[i] * _dot_columns([(1.0 if i == j else 2.0) * ww[i, j] for j in range(i, len(theta))],
                                       theta[i:]) for i in range(len(theta)))
    ss = suff.yy - 2.0 * _dot_columns(list(wy), theta) + quad
    sigma = params.aux["sigma"]
    n_total = jnp.sum(suff.n)
    return -0.5 * n_total * jnp.log(2.0 * jnp.pi * sigma**2) - 0.5 * jnp.sum(ss) / sigma**2


@without_validation
def log_density(model: LoweredModel, flat: Array, data: ModelData) -> Array:
    """Log posterior density (up to a constant) at an unconstrained point, Jacobians included."""
    params, lp = log_prior(model, flat)
    if data.suff is not None and data.weights is None:
        return lp + _summed_gaussian_log_lik(model, params, data.suff)
    ll = pointwise_log_lik(model, params, data)
    return lp + jnp.sum(data.weights * ll if data.weights is not None else ll)


@without_validation
def pointwise_log_lik_at(model: LoweredModel, flat: Array, data: ModelData) -> Array:
    """Each row's log-likelihood at an unconstrained point."""
    return pointwise_log_lik(model, constrain(model, flat), data)


def log_density_terms(model: LoweredModel, flat: Array) -> dict[str, float]:
    """Each piece of the log-density at one point of the training data, to say which one is not finite."""
    params, terms = constrain_with_prior_terms(model, flat)
    out = {k: float(v) for k, v in terms.items()}
    with validation_enabled(False):
        out["likelihood"] = float(jnp.sum(pointwise_log_lik(model, params, model.data)))
    return out


def unconstrain(model: LoweredModel, params: Params) -> np.ndarray:
    """The inverse of :func:`constrain`: from each predictor's intercept (user's scale) and b, each block's
    sd, cor_cholesky and z (or r where centered), and the family's parameters."""
    parts: dict[ParamKey, np.ndarray] = {}
    pop_parts = []
    for j, (pl, pp) in enumerate(zip(model.predictors, params.predictors, strict=True)):
        b = np.asarray(pp.b if pp.b is not None else np.zeros(pl.p), dtype=float)
        if pl.b_prior is not None:
            parts[ParamKey(Slot.B, j)] = pl.b_prior.bounds.inverse(b)
        b0 = np.asarray(pp.intercept, dtype=float) if pl.intercept else np.zeros(())
        if pl.intercept:
            if pl.n_thresholds:  # the inverse of the ordered transform, thresholds shifted the other way
                c = _ORDERED.inverse(b0 - float(np.dot(pl.xbar, b)))
                b0 = np.zeros(())
            else:
                c = b0 + float(np.dot(pl.xbar, b))
            parts[ParamKey(Slot.INTERCEPT, j)] = c
        pop_parts += [np.reshape(b0, (1,)), b]
    pop = np.concatenate(pop_parts)
    for g, bp in zip(model.groups, params.blocks, strict=True):
        parts[ParamKey(Slot.SD, g.index)] = g.sd_prior.bounds.inverse(bp.sd)
        if g.centered:
            m = np.where(g.pop_index >= 0, pop[np.maximum(g.pop_index, 0)], 0.0)
            parts[ParamKey(Slot.BETA, g.index)] = np.asarray(bp.r, dtype=float) + m
        else:
            parts[ParamKey(Slot.Z, g.index)] = np.asarray(bp.z, dtype=float)
        if bp.cor_cholesky is not None:
            parts[ParamKey(Slot.COR, g.index)] = _CORR.inverse(bp.cor_cholesky)
    for a in model.aux:
        parts[ParamKey(Slot.AUX, name=a.name)] = a.prior.bounds.inverse(np.reshape(params.aux[a.name], (1,)))[0]
    return model.layout.pack(parts)
