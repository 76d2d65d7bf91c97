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

from ..model.design import BoundDesign, GroupBlock, PredictorDesign, dpar_prefix, group_blocks
from ..model.families import scalar_aux
from ..model.lower import param_key

__all__ = ["parameter_names", "effects_variables", "population_names", "cor_names", "build_datatree", "summarize",
           "group_coef_dim", "compile_over_draws", "NamedDraws", "draws_per_chunk", "dims_and_coords",
           "worst_diagnostics"]


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


CHUNK_BYTES = 16 * 2**20
"""Draws are turned into named variables (and log-likelihoods) a few hundred at a time, so that the
unconstrained draws, the named ones and one chunk's temporaries are all that is in memory at once."""


def draws_per_chunk(n_draws: int, width: int, itemsize: int = 8) -> int:
    """How many draws of ``width`` numbers fit in :data:`CHUNK_BYTES` (at least 1, at most ``n_draws``)."""
    return max(1, min(n_draws, CHUNK_BYTES // max(1, width * itemsize)))


def compile_over_draws(fn: Callable, n_draws: int, dim: int, dtype) -> Callable:
    """``fn`` vectorized over a (n_draws, dim) array of draws, compiled ahead of time."""
    return jax.jit(jax.vmap(fn)).lower(jax.ShapeDtypeStruct((n_draws, dim), dtype)).compile()


def over_draw_chunks(fn: Callable, positions: np.ndarray, rows: int | None = None):
    """Yield ``(draw slice, fn(those draws))`` over chunks of ``rows`` of the (chains × draws) draws, all at
    once by default; ``fn`` takes a (rows, dim) array (the last chunk is padded to that shape)."""
    chains, draws, dim = positions.shape
    flat = positions.reshape(chains * draws, dim)
    rows = rows or flat.shape[0]
    for r0 in range(0, flat.shape[0], rows):
        part = flat[r0:r0 + rows]
        k = part.shape[0]
        if k < rows:
            part = np.concatenate([part, np.repeat(part[-1:], rows - k, axis=0)])
        out = fn(jax.numpy.asarray(part))
        yield slice(r0, r0 + k), jax.tree.map(lambda v, k=k: np.asarray(v)[:k], out)


def named_variables(params: dict[str, np.ndarray], design: BoundDesign) -> dict[str, np.ndarray]:
    """The constrained parameters (leading axes: draws) as the named posterior variables."""
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


class NamedDraws:
    """The named posterior variables (and the pointwise log-likelihood), filled as the sampler hands over
    blocks of unconstrained draws: a fit's unconstrained draws are never all in memory at once.

    ``constrain`` and ``pointwise_log_lik`` take a (rows, dim) array of draws (compiled for that shape by
    :func:`compile_over_draws`; see :func:`draws_per_chunk`), or are futures of such functions, resolved
    at the first block (they compile while the sampler warms up)."""

    def __init__(self, design: BoundDesign, constrain, pointwise_log_lik=None, *, chains: int, draws: int,
                 rows: int | None = None):
        self.design = design
        self._fns = {"posterior": constrain, "log_likelihood": pointwise_log_lik}
        self.shape = (chains, draws)
        self.rows = rows
        self.kept = 0
        self.groups: dict[str, dict[str, np.ndarray]] = {}

    def _fn(self, group: str):
        fn = self._fns[group]
        if hasattr(fn, "result"):  # a Future
            fn = self._fns[group] = fn.result()
        return fn

    def __call__(self, positions: np.ndarray, first: int) -> None:
        """Take draws ``first, first + 1, ...`` of every chain: ``positions`` is (chains, n, dim)."""
        chains, n, _ = positions.shape
        response = self.design.spec.response.label
        groups = [g for g in ("posterior", "log_likelihood") if self._fns[g] is not None]
        fns = {g: self._fn(g) for g in groups}
        # one pass over the chunks for both programs: each chunk goes to the device once
        for rows, outs in over_draw_chunks(lambda x: {g: fn(x) for g, fn in fns.items()}, positions, self.rows):
            for group, out in outs.items():
                into = self.groups.setdefault(group, {})
                named = named_variables(out, self.design) if group == "posterior" else {response: out}
                for k, v in named.items():
                    if k not in into:
                        into[k] = np.empty(self.shape + v.shape[1:], v.dtype)
                    # the chunk's rows run chain by chain (row r is chain r // n, draw first + r % n)
                    for c in range(rows.start // n, (rows.stop - 1) // n + 1):
                        lo, hi = max(rows.start, c * n), min(rows.stop, (c + 1) * n)
                        into[k][c, first + lo - c * n:first + hi - c * n] = v[lo - rows.start:hi - rows.start]
        self.kept = max(self.kept, first + n)

    def result(self, n_draws: int | None = None) -> dict[str, dict[str, np.ndarray]]:
        """{'posterior': ..., 'log_likelihood': ...}, (chain, draw, ...): the first ``n_draws`` draws (by
        default all those taken; fewer than asked when sampling was interrupted)."""
        n = self.kept if n_draws is None else min(n_draws, self.kept)
        if n == self.shape[1]:
            return self.groups
        return {g: {k: v[:, :n].copy() for k, v in d.items()} for g, d in self.groups.items()}


def constrained_draws(
    constrain: Callable, positions: np.ndarray, design: BoundDesign, rows: int | None = None
) -> dict[str, np.ndarray]:
    """Map unconstrained draws (chain, draw, dim) to named posterior variables, ``rows`` draws at a time."""
    named = NamedDraws(design, constrain, chains=positions.shape[0], draws=positions.shape[1], rows=rows)
    named(positions, 0)
    return named.result()["posterior"]


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
    named: dict[str, dict[str, np.ndarray]],
    stats: dict[str, np.ndarray],
    *,
    attrs: dict | None = None,
):
    """The ArviZ object: posterior and log_likelihood (``named``, from :class:`NamedDraws`), sample_stats,
    observed_data."""
    dims, coords = dims_and_coords(design)
    stats = dict(stats)
    stats["tree_depth"] = stats["tree_depth"].astype(np.int64)
    stats["n_steps"] = stats["n_steps"].astype(np.int64)
    groups: dict[str, dict[str, np.ndarray]] = {
        "posterior": named["posterior"],
        "sample_stats": stats,
        "observed_data": {design.spec.response.label: design.y},
    }
    if "log_likelihood" in named:
        groups["log_likelihood"] = named["log_likelihood"]
    tree = az.from_dict(groups, dims=dims, coords=coords)
    tree.attrs.update(attrs or {})
    return tree


def worst_diagnostics(posterior, chunk_bytes: int = CHUNK_BYTES) -> dict[str, float]:
    """The largest r_hat and smallest bulk and tail ESS over every posterior variable, as ``summarize``
    computes them, a slice of a variable at a time: the summary of 20,000 group effects holds several
    copies of their draws at once."""
    import arviz_stats

    worst = {"max_r_hat": -np.inf, "min_ess_bulk": np.inf, "min_ess_tail": np.inf}
    for da in posterior.data_vars.values():
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if extra:  # slices along the first non-sample dimension (group levels for r_<g>)
            dim, size = extra[0], da.sizes[extra[0]]
            step = max(1, chunk_bytes // max(1, da.nbytes // size))
            parts = [da.isel({dim: slice(start, start + step)}) for start in range(0, size, step)]
        else:
            parts = [da]
        for part in parts:
            worst["max_r_hat"] = max(worst["max_r_hat"], float(arviz_stats.rhat(part).max()))
            worst["min_ess_bulk"] = min(worst["min_ess_bulk"], float(arviz_stats.ess(part, method="bulk").min()))
            worst["min_ess_tail"] = min(worst["min_ess_tail"], float(arviz_stats.ess(part, method="tail").min()))
    return worst


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
