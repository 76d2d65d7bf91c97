"""Starting points for the chains: Pathfinder from random points, one path per chain.

Random points uniform on (-2, 2) are far from the typical set of most hierarchical posteriors; NUTS's
doubling trajectories find their way in during warmup, but fixed-length trajectories (ChEES) and short
warmups do not. Pathfinder (Zhang et al. 2022) runs L-BFGS on the log-density from each random point,
fits a normal approximation (the L-BFGS inverse Hessian) at every point of the optimisation path and
keeps the one with the best ELBO; one path per chain. The chains' starts are then drawn from the pooled
draws of all paths by importance resampling (multi-path Pathfinder), so they are spread like the
posterior, not all at one mode, and each carries its path's diagonal inverse Hessian, a first guess at
the inverse mass matrix.

The pieces are BlackJAX's (``blackjax.optimizers.lbfgs``); the loop over path points is written here so
that the ELBO draws are evaluated one path point at a time (``lax.map``), which keeps memory at
``num_elbo_draws`` log-density evaluations per chain rather than ``(maxiter + 1) × num_elbo_draws``.
Everything is a pure function of keys and points, so it runs under ``jax.vmap`` over chains (and
folds), and a chain left without a usable draw (every path failed: non-finite points or inverse
Hessians) keeps its random start (:func:`fallback`).

Known limit: the optimisation is mode-seeking. In a *centered* hierarchical model started far from
the data's scale, L-BFGS can run into the funnel's neck (group sd → 0, residual sd large) and every
path ends far from the typical set; the starts are then no better than random ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from blackjax.optimizers.lbfgs import _minimize_lbfgs, bfgs_sample, lbfgs_inverse_hessian_factors

__all__ = ["PathfinderConfig", "PathfinderPath", "PathfinderInit", "pathfinder_one", "choose_starts", "fallback"]


class PathfinderConfig(NamedTuple):
    maxiter: int = 50
    maxcor: int = 6
    num_elbo_draws: int = 25
    num_draws: int = 4  # draws per path offered to the resampling across paths
    ftol: float = 1e-6
    gtol: float = 1e-8
    maxls: int = 100


class PathfinderPath(NamedTuple):
    """One path's result: draws of its best approximation with their log-densities under the model
    (``logp``) and the approximation (``logq``), its diagonal inverse Hessian, and whether it is usable."""

    draws: jax.Array
    logp: jax.Array
    logq: jax.Array
    inverse_mass_matrix: jax.Array
    ok: jax.Array


class PathfinderInit(NamedTuple):
    """Per chain: a starting point, a diagonal inverse mass matrix, and whether it came from Pathfinder
    (else it is the random start, with a unit matrix)."""

    position: jax.Array
    inverse_mass_matrix: jax.Array
    ok: jax.Array


def pathfinder_one(
    key: jax.Array, start: jax.Array, logdensity: Callable[[jax.Array], jax.Array],
    config: PathfinderConfig | None = None,
) -> PathfinderPath:
    """Single-path Pathfinder from ``start``: draws of the best (highest-ELBO) normal approximation
    along the L-BFGS path. Pure and traceable: vmap it over chains."""
    config = config or PathfinderConfig()
    maxiter, maxcor = config.maxiter, config.maxcor

    def objective(x):
        return -logdensity(x)

    (_, status), history = _minimize_lbfgs(objective, start, maxiter, maxcor, config.gtol, config.ftol,
                                           config.maxls)
    s = jnp.where(history.update_mask[1:], jnp.diff(history.x, axis=0), 0.0)
    z = jnp.where(history.update_mask[1:], jnp.diff(history.g, axis=0), 0.0)
    s = jnp.pad(s, ((maxcor, 0), (0, 0)))
    z = jnp.pad(z, ((maxcor, 0), (0, 0)))
    k_elbo, k_draw = jax.random.split(key)

    def factors(i):
        window = i + jnp.arange(maxcor)
        return lbfgs_inverse_hessian_factors(s[window].T, z[window].T, history.alpha[i])

    def draw(k, i, n):
        beta, gamma = factors(i)
        phi, logq = bfgs_sample(k, n, history.x[i], history.g[i], history.alpha[i], beta, gamma)
        logp = jax.vmap(logdensity)(phi)
        return phi, jnp.where(jnp.isnan(logp), -jnp.inf, logp), logq

    def elbo(args):
        i, k = args
        _, logp, logq = draw(k, i, config.num_elbo_draws)
        value = jnp.mean(logp - logq)
        return jnp.where(jnp.isfinite(value), value, -jnp.inf)

    path = jnp.arange(maxiter + 1)
    elbos = jax.lax.map(elbo, (path, jax.random.split(k_elbo, maxiter + 1)))
    # the first point (the random start) has no curvature yet; points past convergence repeat the last
    elbos = jnp.where((path >= 1) & (path <= status.iter_num), elbos, -jnp.inf)
    best = jnp.argmax(elbos)
    points, logp, logq = draw(k_draw, best, config.num_draws)
    beta, gamma = factors(best)
    diag = history.alpha[best] + jnp.einsum("ij,jk,ik->i", beta, gamma, beta)
    ok = jnp.isfinite(elbos[best]) & jnp.all(jnp.isfinite(diag)) & jnp.all(diag > 0)
    return PathfinderPath(points, logp, logq, jnp.clip(diag, 1e-4, 1e4), ok)


def choose_starts(key: jax.Array, paths: PathfinderPath, starts: jax.Array) -> PathfinderInit:
    """Multi-path Pathfinder's last step for one set of chains (leading axis: chains): importance
    resampling, without replacement, of the draws of all paths (weights p/q), so that a path stuck
    far from the posterior gives way to the others. A chain is given a draw (and the inverse mass
    matrix of the draw's path) while there are usable draws — finite, from a usable path — and keeps
    its random start and a unit matrix after that.
    """
    chains, m, dim = paths.draws.shape
    usable = paths.ok[:, None] & jnp.isfinite(paths.logp) & jnp.all(jnp.isfinite(paths.draws), axis=-1)
    logw = jnp.where(usable, paths.logp - paths.logq, -jnp.inf).reshape(-1)
    gumbel = jax.random.gumbel(key, logw.shape, dtype=paths.draws.dtype)
    score = jnp.where(jnp.isfinite(logw), logw + gumbel, -jnp.inf)
    top_score, top = jax.lax.top_k(score, chains)  # Gumbel-top-k: sampling without replacement ∝ w
    found = PathfinderInit(paths.draws.reshape(-1, dim)[top], paths.inverse_mass_matrix[top // m],
                           jnp.isfinite(top_score))
    return fallback(found, starts)


def fallback(found: PathfinderInit, starts: jax.Array) -> PathfinderInit:
    """Per chain: the Pathfinder start where ``ok``, the random start and a unit inverse mass matrix
    where not. Works on any leading (batch, chain) axes."""
    ok = found.ok
    return PathfinderInit(
        jnp.where(ok[..., None], found.position, starts),
        jnp.where(ok[..., None], found.inverse_mass_matrix, jnp.ones_like(starts)),
        ok,
    )
