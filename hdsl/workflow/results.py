"""Stage 7: draws + design → ArviZ (1.x DataTree) with brms names, and the summary table.

ArviZ is used only here, so a change in its API touches one module.
"""

from __future__ import annotations

from collections.abc import Callable

import arviz as az
import jax
import numpy as np
import pandas as pd

from ..model.design import BoundDesign
from ..model.naming import NamingTable

__all__ = ["build_datatree", "summarize", "compile_over_draws", "NamedDraws", "draws_per_chunk",
           "worst_diagnostics", "constrained_draws"]


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


class NamedDraws:
    """The named posterior variables (and the pointwise log-likelihood), filled as the sampler hands over
    blocks of unconstrained draws: a fit's unconstrained draws are never all in memory at once.

    ``constrain`` and ``pointwise_log_lik`` take a (rows, dim) array of draws (compiled for that shape by
    :func:`compile_over_draws`; see :func:`draws_per_chunk`), or are futures of such functions, resolved
    at the first block (they compile while the sampler warms up)."""

    def __init__(self, naming: NamingTable, constrain, pointwise_log_lik=None, *, chains: int, draws: int,
                 rows: int | None = None):
        self.naming = naming
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
        response = self.naming.response
        groups = [g for g in ("posterior", "log_likelihood") if self._fns[g] is not None]
        fns = {g: self._fn(g) for g in groups}
        # one pass over the chunks for both programs: each chunk goes to the device once
        for rows, outs in over_draw_chunks(lambda x: {g: fn(x) for g, fn in fns.items()}, positions, self.rows):
            for group, out in outs.items():
                into = self.groups.setdefault(group, {})
                named = self.naming.named(out) if group == "posterior" else {response: out}
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
    constrain: Callable, positions: np.ndarray, naming: NamingTable, rows: int | None = None
) -> dict[str, np.ndarray]:
    """Map unconstrained draws (chain, draw, dim) to named posterior variables, ``rows`` draws at a time."""
    named = NamedDraws(naming, constrain, chains=positions.shape[0], draws=positions.shape[1], rows=rows)
    named(positions, 0)
    return named.result()["posterior"]


def build_datatree(
    design: BoundDesign,
    naming: NamingTable,
    named: dict[str, dict[str, np.ndarray]],
    stats: dict[str, np.ndarray],
    *,
    attrs: dict | None = None,
):
    """The ArviZ object: posterior and log_likelihood (``named``, from :class:`NamedDraws`), sample_stats,
    observed_data."""
    dims, coords = naming.dims_and_coords()
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
