"""Predictions from a posterior: the linear predictor, the mean and response draws, for the training data
or new data encoded exactly as in training (factor levels, transforms, centering), with or without the
group-level effects, and new group levels drawn from the fitted population distribution (brms's
``sample_new_levels = "gaussian"``).

Everything is computed from the constrained posterior draws stored in the ArviZ object (not from the
sampler's unconstrained positions), so a fit read back with ``hdsl.load(path, data=df)`` predicts the same
as the original. Every kind goes through the model's one predictive kernel (:mod:`hdsl.model.predictive`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from ..errors import HdslError
from ..language.expand import expand_spec
from ..language.parse import parse_spec
from ..model.bind import bind_new_data
from ..model.coding import brms_name
from ..model.density import effects_from_standard_normal
from ..model.design import Codebook, NewLevels, PredictorDesign, bind_predictor
from ..model.lower import model_data
from ..model.params import Params
from ..model.predictive import Kind, predictive_over_draws
from .protocols import CompiledModel, Posterior

__all__ = ["predict", "posterior_predictive", "log_likelihood", "draw_index"]

PredictKind = Literal["mean", "linpred", "response"]
KINDS = ("mean", "linpred", "response")
OBS_DIM = "obs_id"


def _model_of(fit: Posterior) -> CompiledModel:
    if fit.model is None:
        raise HdslError("this fit has no model attached (it was loaded without its data), so it cannot encode "
                        "data for predictions",
                        hint="load it with hdsl.load(path, data=training_df) to rebuild the model")
    return fit.model


def draw_index(n_chains: int, n_draws: int, draws: int | None) -> np.ndarray:
    """Indices of the draws kept in every chain: all, or about ``draws / n_chains`` evenly spaced per chain
    (exactly ``draws`` in total when it is a multiple of the number of chains)."""
    if draws is None or draws >= n_chains * n_draws:
        return np.arange(n_draws)
    if draws < 1:
        raise HdslError(f"draws must be a positive number, got {draws}")
    per_chain = -(-int(draws) // n_chains)
    return np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))


def posterior_params(model: CompiledModel, posterior: xr.Dataset) -> Params:
    """The constrained parameters, one row per draw (draws flattened over chains), from the named
    posterior variables through the model's naming table."""
    missing = [n for n in model.parameter_names if n not in posterior.data_vars]
    if missing:
        raise HdslError(f"the posterior does not match this model: missing {', '.join(missing)}",
                        hint="load the fit with the spec and data it was fitted to")
    for v in model.naming.effects:
        levels = [str(x) for x in posterior[v.name][v.group].values]
        if tuple(levels) != tuple(model.lowered.blocks[v.parts[0][0]].levels):
            raise HdslError(f"the levels of '{v.group}' in the posterior differ from those in the data",
                            hint="load the fit with the data it was fitted to")

    def flat(name: str) -> np.ndarray:
        v = posterior[name].transpose("chain", "draw", ...).values
        return np.asarray(v, dtype=float).reshape((-1,) + v.shape[2:])

    return model.naming.params({v.name: flat(v.name) for v in model.naming.variables})


def _re_masks(model: CompiledModel, re_formula: str | None, newdata: pd.DataFrame | None) -> list[list[np.ndarray]]:
    """Per predictor and group term, which of its coefficients enter the prediction (``re_formula`` as in
    brms). On a family parameter's formula a term is kept whole where ``re_formula`` names its group."""
    preds = model.design.predictors
    groups = model.design.main.groups
    if re_formula is None:
        return [[np.ones(len(g.coef_names), bool) for g in pred.groups] for _, pred in preds]
    text = str(re_formula).strip()
    rhs = text[1:].strip() if text.startswith("~") else text
    if text.upper() == "NA" or rhs in ("0", "-1", "1", "1 + 0", "0 + 1"):
        return [[np.zeros(len(g.coef_names), bool) for g in pred.groups] for _, pred in preds]
    try:
        wanted = expand_spec(parse_spec(f"hdsl_response__ ~ {rhs}")).predictor.groups
    except HdslError as exc:
        raise HdslError(f"cannot read re_formula {re_formula!r}: {exc.message}",
                        hint="write e.g. '~ (1 | g)', or '~0' for no group-level effects") from None
    names = {g.name for _, pred in preds for g in pred.groups}
    masks = [np.zeros(len(g.coef_names), bool) for g in groups]
    for term in wanted:
        if term.group_label not in names:
            raise HdslError(f"re_formula names the grouping factor '{term.group_label}', which is not in the "
                            f"model; its grouping factors are: {', '.join(sorted(names))}")
        members = [i for i, g in enumerate(groups) if g.name == term.group_label]
        coefs = {brms_name(c) for c in term.coef_labels}
        if newdata is not None and term.terms:
            # bind the term to learn its coefficient names (a categorical term has one per level)
            stub = dataclasses.replace(model.spec.predictor, intercept=False, terms=(), groups=(term,), offsets=())
            bound = bind_predictor(stub, newdata, Codebook(model.design.encoding), NewLevels.APPEND)
            coefs = set(bound.groups[0].coef_names)
        found: set[str] = set()
        for i in members:
            hit = np.array([c in coefs for c in groups[i].coef_names])
            masks[i] |= hit
            found |= {c for c, h in zip(groups[i].coef_names, hit, strict=True) if h}
        if members and coefs - found:
            have = [c for i in members for c in groups[i].coef_names]
            raise HdslError(f"re_formula asks for {', '.join(sorted(coefs - found))} varying by "
                            f"'{term.group_label}', which the model does not have; it has: {', '.join(have)}")
    named = {t.group_label for t in wanted}
    return [masks] + [[np.full(len(g.coef_names), g.name in named) for g in pred.groups] for _, pred in preds[1:]]


@dataclasses.dataclass(frozen=True)
class _Bound:
    preds: dict[str, PredictorDesign]  # by dpar, mu first
    additions: dict[str, np.ndarray]
    masks: list[list[np.ndarray]]  # per predictor, per group term
    y: np.ndarray | None


#: The addition terms each kind of prediction needs in new data (the log-likelihood needs them all).
_NEEDED = {"linpred": frozenset(), "mean": frozenset({"trials"}), "response": frozenset({"trials", "se"}),
           "loglik": frozenset()}


def _bind(model: CompiledModel, newdata: pd.DataFrame | None, re_formula: str | None, allow_new_levels: bool,
          kind: str) -> _Bound:
    design = model.design
    masks = _re_masks(model, re_formula, newdata)
    if newdata is None:
        return _Bound(dict(design.predictors), {k: v for k, v in design.additions.items() if k != "weights"},
                      masks, design.y if kind == "loglik" else None)
    kept = tuple(tuple(bool(m.any()) for m in ms) for ms in masks)
    bound = bind_new_data(design, newdata, kept=kept, response=kind == "loglik", additions_needed=_NEEDED[kind],
                          new_levels=NewLevels.APPEND if allow_new_levels else NewLevels.ERROR)
    return _Bound(bound.predictors, bound.additions, masks, bound.y)


def _effects_with_new_levels(model: CompiledModel, params: Params, bound: _Bound, key: jax.Array) -> Params:
    """Mask the left-out coefficients and append, per draw, effects for new levels drawn from the
    population distribution: r_new = z · Lᵀ · diag(sd), z ~ N(0, I) (the lowering's convention)."""
    preds = list(bound.preds.values())
    blocks = []
    for b, (blk, bp) in enumerate(zip(model.lowered.blocks, params.blocks, strict=True)):
        r = bp.r
        n_new = max(preds[j].groups[i].n_levels for j, i in blk.members) - blk.n_levels
        if n_new > 0:
            z = jax.random.normal(jax.random.fold_in(key, b), (r.shape[0], n_new, r.shape[2]))
            r_new = np.asarray(jax.vmap(effects_from_standard_normal)(z, jnp.asarray(bp.sd, z.dtype),
                                                            None if bp.cor_cholesky is None
                                                            else jnp.asarray(bp.cor_cholesky, z.dtype)))
            r = np.concatenate([r, r_new], axis=1)
        mask = np.concatenate([bound.masks[j][i] for j, i in blk.members])
        blocks.append(bp._replace(r=r * mask))
    return params._replace(blocks=tuple(blocks))


_KINDS = {"linpred": Kind.LINPRED, "mean": Kind.MEAN, "response": Kind.RESPONSE, "loglik": Kind.LOG_LIK}


def _compute(fit: Posterior, newdata, kind: str, draws: int | None, allow_new_levels: bool, re_formula,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    model = _model_of(fit)
    posterior = fit.idata["posterior"].to_dataset()
    idx = draw_index(posterior.sizes["chain"], posterior.sizes["draw"], draws)
    posterior = posterior.isel(draw=idx)
    bound = _bind(model, newdata, re_formula, allow_new_levels, kind)
    key = jax.random.key(seed)
    k_levels, k_draws = jax.random.split(key)
    params = _effects_with_new_levels(model, posterior_params(model, posterior), bound, k_levels)
    lowered = model.lowered
    data = model_data(lowered, bound.preds, bound.y, bound.additions)
    params = jax.tree.map(lambda v: jnp.asarray(v, dtype=lowered.dtype), params)
    n = posterior.sizes["chain"] * len(idx)
    values = np.asarray(predictive_over_draws(lowered, _KINDS[kind])(params, data, jax.random.split(k_draws, n)))
    chains = posterior.sizes["chain"]
    return values.reshape((chains, len(idx)) + values.shape[1:]), posterior["draw"].values


def _tree(group: str, name: str, values: np.ndarray, draw_coord: np.ndarray, attrs: dict,
          categories: tuple[str, ...] = ()):
    """A categorical response's mean (K probabilities) and linear predictors (K − 1) have a category dim."""
    coords = {OBS_DIM: np.arange(values.shape[2]), "draw": draw_coord}
    dims = {name: [OBS_DIM]}
    if values.ndim == 4:
        dims[name].append("category")
        coords["category"] = list(categories[len(categories) - values.shape[3]:])
    tree = az.from_dict({group: {name: values}}, dims=dims, coords=coords, pred_dims=dims, pred_coords=coords)
    tree.attrs.update(attrs)
    return tree


def predict(fit: Posterior, newdata: pd.DataFrame | None = None, kind: PredictKind = "mean", draws: int | None = None,
            allow_new_levels: bool = False, re_formula: str | None = None, seed: int = 0):
    """Posterior predictions as a DataTree with a ``predictions`` group: the response's name holding a
    (chain, draw, obs_id) array, with a last ``category`` dim for a categorical response's probabilities
    (kind="mean") and linear predictors. See :meth:`hdsl.Fit.predict`."""
    if kind not in KINDS:
        raise HdslError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    values, draw_coord = _compute(fit, newdata, kind, draws, allow_new_levels, re_formula, seed)
    name = _model_of(fit).spec.response.label
    attrs = {"hdsl_kind": kind, "hdsl_re_formula": "all" if re_formula is None else str(re_formula),
             "hdsl_seed": int(seed)}
    return _tree("predictions", name, values, draw_coord, attrs, _model_of(fit).design.categories)


def posterior_predictive(fit: Posterior, seed: int = 0):
    """Response draws at the training data, added to ``fit.idata`` as ``posterior_predictive``."""
    values, draw_coord = _compute(fit, None, "response", None, False, None, seed)
    name = _model_of(fit).spec.response.label
    tree = _tree("posterior_predictive", name, values, draw_coord, {})
    fit.idata["posterior_predictive"] = tree["posterior_predictive"]
    return fit.idata


def log_likelihood(fit: Posterior, newdata: pd.DataFrame, allow_new_levels: bool = False, seed: int = 0,
                   draws: int | None = None) -> xr.DataArray:
    """Pointwise log-likelihood of ``newdata`` (which must hold the response), (chain, draw, obs_id)."""
    if newdata is None:
        raise HdslError("log_likelihood needs newdata holding the response; the training data's "
                        "pointwise log-likelihood is fit.idata['log_likelihood']")
    values, draw_coord = _compute(fit, newdata, "loglik", draws, allow_new_levels, None, seed)
    name = _model_of(fit).spec.response.label
    return xr.DataArray(values, dims=("chain", "draw", OBS_DIM), name=name,
                        coords={"chain": np.arange(values.shape[0]), "draw": draw_coord,
                                OBS_DIM: np.arange(values.shape[-1])})
