"""Stage 7: draws + design → ArviZ (1.x DataTree) with brms names, and the summary table.

ArviZ is used only here, so a change in its API touches one module.
"""

from __future__ import annotations

from collections.abc import Callable

import arviz as az
import jax
import numpy as np
import pandas as pd

from .design import BoundDesign, GroupDesign
from .families import get_family
from .sample import Draws

__all__ = ["parameter_names", "build_datatree", "summarize", "group_coef_dim", "compile_over_draws", "dims_and_coords"]


def group_coef_dim(group: str) -> str:
    return f"{group}__coef"


def _groups_by_name(design: BoundDesign) -> dict[str, list[tuple[int, GroupDesign]]]:
    out: dict[str, list[tuple[int, GroupDesign]]] = {}
    for i, g in enumerate(design.main.groups):
        out.setdefault(g.name, []).append((i, g))
    return out


def parameter_names(design: BoundDesign) -> list[str]:
    """brms-style names of the population-level, sd, cor and family parameters."""
    main = design.main
    names = (["b_Intercept"] if main.intercept else []) + [f"b_{c}" for c in main.coef_names]
    for g in main.groups:
        names += [f"sd_{g.name}__{c}" for c in g.coef_names]
    for g in main.groups:
        if g.term.correlated and len(g.coef_names) > 1:
            cs = g.coef_names
            names += [f"cor_{g.name}__{cs[a]}__{cs[b]}" for b in range(len(cs)) for a in range(b)]
    names += [a.name for a in get_family(design.spec.family.name).aux]
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
    main = design.main
    out: dict[str, np.ndarray] = {}
    if main.intercept:
        out["b_Intercept"] = params["b_Intercept"]
    for j, c in enumerate(main.coef_names):
        out[f"b_{c}"] = params["b"][..., j]
    for i, g in enumerate(main.groups):
        for j, c in enumerate(g.coef_names):
            out[f"sd_{g.name}__{c}"] = params[f"sd_{i}"][..., j]
    for i, g in enumerate(main.groups):
        if f"L_{i}" in params:
            L = params[f"L_{i}"]
            C = np.einsum("...ij,...kj->...ik", L, L)
            cs = g.coef_names
            for b in range(len(cs)):
                for a in range(b):
                    out[f"cor_{g.name}__{cs[a]}__{cs[b]}"] = C[..., a, b]
    for a in get_family(design.spec.family.name).aux:
        out[a.name] = params[a.name]
    for name, members in _groups_by_name(design).items():
        out[f"r_{name}"] = np.concatenate([params[f"r_{i}"] for i, _ in members], axis=-1)
    return out


def dims_and_coords(design: BoundDesign) -> tuple[dict[str, list[str]], dict[str, list]]:
    """Named dimensions: group levels and coefficients for ``r_<g>``, ``obs_id`` for the response."""
    dims: dict[str, list[str]] = {}
    coords: dict[str, list] = {}
    for name, members in _groups_by_name(design).items():
        cdim = group_coef_dim(name)
        dims[f"r_{name}"] = [name, cdim]
        coords[name] = list(members[0][1].levels)
        coords[cdim] = [c for _, g in members for c in g.coef_names]
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
