"""Stage 7: draws + design → ArviZ (1.x DataTree) with brms names, and the summary table.

ArviZ is used only here, so a change in its API touches one module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import arviz as az
import jax
import numpy as np
import pandas as pd

from .design import BoundDesign, GroupBlock, PredictorDesign, dpar_prefix, group_blocks
from .families import scalar_aux
from .lower import param_key
from .sample import Draws

__all__ = ["parameter_names", "effects_variables", "population_names", "cor_names", "build_datatree", "summarize",
           "group_coef_dim", "compile_over_draws", "dims_and_coords"]


def group_coef_dim(group: str, dpar: str = "mu") -> str:
    return f"{group}__coef" if dpar == "mu" else f"{group}__{dpar}__coef"


@dataclass(frozen=True)
class EffectsVariable:
    """A posterior variable ``r_<g>`` (mu's effects) or ``r_<g>__<dpar>``: every term of one formula on one
    grouping factor, (levels, coefs); its columns are ``parts`` = (block index, start, stop) of the
    lowered blocks' effects ``r_<b>``, in order."""

    name: str
    group: str
    dpar: str
    coef_names: tuple[str, ...]
    parts: tuple[tuple[int, int, int], ...]

    @property
    def coef_dim(self) -> str:
        return group_coef_dim(self.group, self.dpar)


def effects_variables(design: BoundDesign) -> list[EffectsVariable]:
    blocks = group_blocks(design.predictors)
    out: dict[tuple[str, str], EffectsVariable] = {}
    for j, (dpar, pred) in enumerate(design.predictors):
        for i, g in enumerate(pred.groups):
            b = next(b for b, blk in enumerate(blocks) if (j, i) in blk.members)
            start, stop = blocks[b].slices[blocks[b].members.index((j, i))]
            name = f"r_{g.name}" if dpar == "mu" else f"r_{g.name}__{dpar}"
            prev = out.get((g.name, dpar), EffectsVariable(name, g.name, dpar, (), ()))
            out[(g.name, dpar)] = EffectsVariable(name, g.name, dpar, prev.coef_names + tuple(g.coef_names),
                                                  prev.parts + ((b, start, stop),))
    return list(out.values())


def population_names(dpar: str, pred: PredictorDesign) -> list[str]:
    """brms's names of a predictor's population-level coefficients: b_Intercept, b_x, b_sigma_x."""
    prefix = dpar_prefix(dpar)
    return ([f"b_{prefix}Intercept"] if pred.intercept else []) + [f"b_{prefix}{c}" for c in pred.coef_names]


def cor_names(block: GroupBlock) -> list[tuple[int, int, str]]:
    cs = block.coef_names
    return [(a, b, f"cor_{block.name}__{cs[a]}__{cs[b]}") for b in range(len(cs)) for a in range(b)]


def parameter_names(design: BoundDesign) -> list[str]:
    """brms-style names of the population-level, sd, cor and family parameters."""
    names = [n for dpar, pred in design.predictors for n in population_names(dpar, pred)]
    blocks = group_blocks(design.predictors)
    names += [f"sd_{b.name}__{c}" for b in blocks for c in b.coef_names]
    names += [n for b in blocks if b.correlated for _, _, n in cor_names(b)]
    names += [a.name for a in scalar_aux(design.spec)]
    return names


def compile_over_draws(fn: Callable, n_draws: int, dim: int, dtype) -> Callable:
    """``fn`` vectorized over a (n_draws, dim) array of draws, compiled ahead of time."""
    return jax.jit(jax.vmap(fn)).lower(jax.ShapeDtypeStruct((n_draws, dim), dtype)).compile()


def constrained_draws(
    constrain: Callable, positions: np.ndarray, design: BoundDesign
) -> dict[str, np.ndarray]:
    """Map unconstrained draws to named posterior variables, (chain, draw, ...)."""
    chains, draws, dim = positions.shape
    flat = jax.numpy.asarray(positions.reshape(chains * draws, dim))
    params = constrain(flat)
    params = {k: np.asarray(v).reshape((chains, draws) + tuple(v.shape[1:])) for k, v in params.items()}
    out: dict[str, np.ndarray] = {}
    for dpar, pred in design.predictors:
        names = population_names(dpar, pred)
        if pred.intercept:
            out[names.pop(0)] = params[param_key(dpar, "b_Intercept")]
        for j, n in enumerate(names):
            out[n] = params[param_key(dpar, "b")][..., j]
    blocks = group_blocks(design.predictors)
    for b, blk in enumerate(blocks):
        for j, c in enumerate(blk.coef_names):
            out[f"sd_{blk.name}__{c}"] = params[f"sd_{b}"][..., j]
    for b, blk in enumerate(blocks):
        if blk.correlated:
            L = params[f"L_{b}"]
            C = np.einsum("...ij,...kj->...ik", L, L)
            for i, j, n in cor_names(blk):
                out[n] = C[..., i, j]
    for a in scalar_aux(design.spec):
        out[a.name] = params[a.name]
    for v in effects_variables(design):
        out[v.name] = np.concatenate([params[f"r_{b}"][..., start:stop] for b, start, stop in v.parts], axis=-1)
    return out


def dims_and_coords(design: BoundDesign) -> tuple[dict[str, list[str]], dict[str, list]]:
    """Named dimensions: group levels and coefficients for ``r_<g>``, ``obs_id`` for the response."""
    dims: dict[str, list[str]] = {}
    coords: dict[str, list] = {}
    levels = {g.name: g.levels for _, pred in design.predictors for g in pred.groups}
    for v in effects_variables(design):
        dims[v.name] = [v.group, v.coef_dim]
        coords[v.group] = list(levels[v.group])
        coords[v.coef_dim] = list(v.coef_names)
    if design.n_thresholds:
        dims["b_Intercept"] = ["threshold"]
        coords["threshold"] = list(range(1, design.n_thresholds + 1))
    dims[design.spec.response.label] = ["obs_id"]
    coords["obs_id"] = list(np.arange(design.n_rows))
    return dims, coords


def build_datatree(
    design: BoundDesign,
    draws: Draws,
    constrain: Callable,
    pointwise_log_lik: Callable | None,
    *,
    attrs: dict | None = None,
):
    """The ArviZ object: posterior, sample_stats, log_likelihood, observed_data.

    ``constrain`` and ``pointwise_log_lik`` take a (draws, dim) array (see :func:`compile_over_draws`).
    """
    posterior = constrained_draws(constrain, draws.positions, design)
    dims, coords = dims_and_coords(design)
    response = design.spec.response.label
    stats = dict(draws.stats)
    stats["tree_depth"] = stats["tree_depth"].astype(np.int64)
    stats["n_steps"] = stats["n_steps"].astype(np.int64)
    groups: dict[str, dict[str, np.ndarray]] = {
        "posterior": posterior,
        "sample_stats": stats,
        "observed_data": {response: design.y},
    }
    if pointwise_log_lik is not None:
        c, d, dim = draws.positions.shape
        ll = pointwise_log_lik(jax.numpy.asarray(draws.positions.reshape(c * d, dim)))
        groups["log_likelihood"] = {response: np.asarray(ll).reshape(c, d, -1)}
    tree = az.from_dict(groups, dims=dims, coords=coords)
    tree.attrs.update(attrs or {})
    return tree


def _brms_label(label: str) -> str:
    return label.replace(", ", ",")


def summarize(idata, names: list[str] | None = None, prob: float = 0.95) -> pd.DataFrame:
    """mean, sd, equal-tailed interval, ess_bulk, ess_tail, r_hat for every posterior variable."""
    s = az.summary(idata, ci_prob=prob, ci_kind="eti", round_to="none")
    lo, hi = (1 - prob) / 2 * 100, (1 + prob) / 2 * 100
    lb = next(c for c in s.columns if c.endswith("_lb"))
    ub = next(c for c in s.columns if c.endswith("_ub"))
    s = pd.DataFrame(s).rename(columns={lb: f"{lo:g}%", ub: f"{hi:g}%"})
    s.index = [_brms_label(str(i)) for i in s.index]
    if names is not None:
        first = [n for n in names if n in s.index]
        s = s.loc[first + [i for i in s.index if i not in set(first)]]
    return s
