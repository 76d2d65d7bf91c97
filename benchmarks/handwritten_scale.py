"""Hand-written BlackJAX program for the scale benchmark's model, the baseline hdsl is measured against.

Textbook and independent of hdsl (nothing is imported from it): correlated group intercepts and slopes,
non-centered as in brms and the Stan user's guide,

    y_i ~ Normal(b0 + b1 x_i + r[g_i, 0] + r[g_i, 1] x_i, sigma)
    r_j = diag(sd) L z_j,   z_j ~ Normal(0, I_2),   L ~ LKJCholesky(2, eta=2)
    b0, b1 ~ Normal(0, 5),   sd_0, sd_1, sigma ~ HalfNormal(2)

on one flat unconstrained float64 vector ``[b0, b1, log sd (2), L (1, via NumPyro's
biject_to(corr_cholesky)), log sigma, z (J x 2)]`` with the Jacobians added by hand. All chains are
one ``jax.jit(jax.vmap(one_chain))`` program: BlackJAX window adaptation, then a ``lax.scan`` of NUTS.
``dtype="float32"`` (for a GPU, like hdsl's default there) keeps data, starting points and so the whole
program in float32; the caller turns ``jax_enable_x64`` off first (``scale.py --dtype float32`` does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as nd  # noqa: E402
import pandas as pd  # noqa: E402
from handwritten import run_chains  # noqa: E402  (benchmarks/ is on sys.path when run)
from numpyro.distributions import constraints  # noqa: E402
from numpyro.distributions.transforms import biject_to  # noqa: E402

PARAMS: tuple[str, ...] = ("b0", "b1", "sd0", "sd1", "cor", "sigma")
"""Population-level parameters reported (the group-level ``z`` are sampled but not returned)."""

LKJ_ETA = 2.0
_LOG_2PI = float(np.log(2.0 * np.pi))
_CORR = biject_to(constraints.corr_cholesky)


def _normal_lpdf(x: jax.Array, loc: float, scale: float) -> jax.Array:
    z = (x - loc) / scale
    return -0.5 * z * z - jnp.log(scale) - 0.5 * _LOG_2PI


def _half_normal_lpdf(x: jax.Array, scale: float) -> jax.Array:
    return jnp.log(2.0) + _normal_lpdf(x, 0.0, scale)


def make_logdensity(
    y: jax.Array, x: jax.Array, group: jax.Array, n_groups: int
) -> Callable[[jax.Array], jax.Array]:
    """Log posterior (up to a constant) on the unconstrained vector described in the module docstring."""

    def logdensity(theta: jax.Array) -> jax.Array:
        b0, b1 = theta[0], theta[1]
        log_sd, u_l, log_sigma = theta[2:4], theta[4:5], theta[5]
        z = theta[6:].reshape(n_groups, 2)
        sd, sigma = jnp.exp(log_sd), jnp.exp(log_sigma)
        L = _CORR(u_l)

        lp = _normal_lpdf(b0, 0.0, 5.0) + _normal_lpdf(b1, 0.0, 5.0)
        lp += jnp.sum(_half_normal_lpdf(sd, 2.0)) + _half_normal_lpdf(sigma, 2.0)
        lp += jnp.sum(log_sd) + log_sigma  # Jacobian of the exp transforms
        lp += nd.LKJCholesky(2, LKJ_ETA).log_prob(L) + _CORR.log_abs_det_jacobian(u_l, L)
        lp += jnp.sum(_normal_lpdf(z, 0.0, 1.0))

        r = (z @ L.T) * sd  # (J, 2): row j is diag(sd) L z_j
        mean = b0 + b1 * x + r[group, 0] + r[group, 1] * x
        lp += jnp.sum(_normal_lpdf(y, mean, sigma))
        return lp

    return logdensity


def _constrain(theta: jax.Array) -> dict[str, jax.Array]:
    """Map unconstrained draws (..., dim) to the reported parameters (...)."""
    L = _CORR(theta[..., 4:5])
    return {
        "b0": theta[..., 0],
        "b1": theta[..., 1],
        "sd0": jnp.exp(theta[..., 2]),
        "sd1": jnp.exp(theta[..., 3]),
        "cor": L[..., 1, 0],
        "sigma": jnp.exp(theta[..., 5]),
    }


def prepare(df: pd.DataFrame, dtype: str = "float64") -> tuple[Callable[[jax.Array], jax.Array], int]:
    """The log-density over ``df`` (columns y, x, g) and the length of its parameter vector."""
    codes, levels = pd.factorize(df["g"], sort=True)
    y = jnp.asarray(df["y"].to_numpy(), dtype=dtype)
    x = jnp.asarray(df["x"].to_numpy(), dtype=dtype)
    group = jnp.asarray(codes, dtype=jnp.int32)
    return make_logdensity(y, x, group, len(levels)), 6 + 2 * len(levels)


def run_handwritten(
    df: pd.DataFrame, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 1,
    dtype: str = "float64",
) -> dict[str, Any]:
    """Fit the model; return ``compile_s``, ``sample_s`` (warmup + sampling), ``total_s``, ``draws``
    (``{name: ndarray (chains, draws)}`` for ``PARAMS``), ``divergences`` and ``mean_steps``."""
    t_start = time.perf_counter()
    logdensity, dim = prepare(df, dtype)

    compile_s, sample_s, (positions, divergent, n_steps, _) = run_chains(
        logdensity, dim, chains, warmup, draws, seed, dtype)

    out_draws = {name: np.asarray(v) for name, v in _constrain(positions).items()}
    return {
        "compile_s": compile_s,
        "sample_s": sample_s,
        "total_s": time.perf_counter() - t_start,
        "draws": out_draws,
        "divergences": int(np.sum(np.asarray(divergent))),
        "mean_steps": float(np.asarray(n_steps).mean()),
    }
