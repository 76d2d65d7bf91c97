"""Hand-written BlackJAX program for the imm10 seed model: the baseline hdsl is measured against.

It is deliberately textbook and independent of hdsl (nothing is imported from it), so that the
comparison in ``seed.py`` measures what hdsl adds or costs over writing the sampler by hand:

    math_i ~ Normal(a[school_i] + b[school_i] * homework_i, sigma)
    a_j = mu_a + sd_a * z_a_j,   b_j = mu_b + sd_b * z_b_j,   z ~ Normal(0, 1)   (non-centered)
    mu_a ~ Normal(40, 50), mu_b ~ Normal(0, 10),
    sd_a ~ HalfNormal(50), sd_b ~ HalfNormal(5), sigma ~ HalfCauchy(5)

Sampling runs on a flat unconstrained float64 vector (log transforms plus Jacobian for the scales);
all chains are one jitted ``jax.vmap`` program of window adaptation followed by a ``lax.scan`` of NUTS.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import blackjax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PARAMS: tuple[str, ...] = ("mu_a", "mu_b", "sd_a", "sd_b", "sigma")
"""Population-level parameters reported (the group-level ``z`` are sampled but not returned)."""

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "imm10" / "imm10.csv"

_LOG_2PI = float(np.log(2.0 * np.pi))


def _normal_lpdf(x: jax.Array, loc: float, scale: float) -> jax.Array:
    z = (x - loc) / scale
    return -0.5 * z * z - jnp.log(scale) - 0.5 * _LOG_2PI


def _half_normal_lpdf(x: jax.Array, scale: float) -> jax.Array:
    return jnp.log(2.0) + _normal_lpdf(x, 0.0, scale)


def _half_cauchy_lpdf(x: jax.Array, scale: float) -> jax.Array:
    return jnp.log(2.0 / (jnp.pi * scale)) - jnp.log1p((x / scale) ** 2)


def make_logdensity(
    y: jax.Array, x: jax.Array, group: jax.Array, n_groups: int
) -> Callable[[jax.Array], jax.Array]:
    """Log posterior on the unconstrained vector
    ``[mu_a, mu_b, log sd_a, log sd_b, log sigma, z_a (J), z_b (J)]``."""

    def logdensity(theta: jax.Array) -> jax.Array:
        mu_a, mu_b = theta[0], theta[1]
        log_sd_a, log_sd_b, log_sigma = theta[2], theta[3], theta[4]
        z_a = theta[5 : 5 + n_groups]
        z_b = theta[5 + n_groups : 5 + 2 * n_groups]
        sd_a, sd_b, sigma = jnp.exp(log_sd_a), jnp.exp(log_sd_b), jnp.exp(log_sigma)

        lp = _normal_lpdf(mu_a, 40.0, 50.0) + _normal_lpdf(mu_b, 0.0, 10.0)
        lp += _half_normal_lpdf(sd_a, 50.0) + _half_normal_lpdf(sd_b, 5.0) + _half_cauchy_lpdf(sigma, 5.0)
        lp += log_sd_a + log_sd_b + log_sigma  # Jacobian of the exp transforms
        lp += jnp.sum(_normal_lpdf(z_a, 0.0, 1.0)) + jnp.sum(_normal_lpdf(z_b, 0.0, 1.0))

        a = mu_a + sd_a * z_a
        b = mu_b + sd_b * z_b
        mean = a[group] + b[group] * x
        lp += jnp.sum(_normal_lpdf(y, mean, sigma))
        return lp

    return logdensity


def _constrain(theta: jax.Array) -> dict[str, jax.Array]:
    """Map unconstrained draws (..., dim) to the reported parameters (...)."""
    return {
        "mu_a": theta[..., 0],
        "mu_b": theta[..., 1],
        "sd_a": jnp.exp(theta[..., 2]),
        "sd_b": jnp.exp(theta[..., 3]),
        "sigma": jnp.exp(theta[..., 4]),
    }


def make_one_chain(logdensity: Callable[[jax.Array], jax.Array], warmup: int, draws: int) -> Callable:
    """The textbook BlackJAX program for one chain: window adaptation, then a ``lax.scan`` of NUTS steps.
    Returns positions, divergence flags, leapfrog steps per draw and the adapted step size."""

    def one_chain(key: jax.Array, init: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        warm_key, sample_key = jax.random.split(key)
        (state, params), _ = blackjax.window_adaptation(blackjax.nuts, logdensity).run(
            warm_key, init, num_steps=warmup
        )
        kernel = blackjax.nuts(logdensity, **params)

        def step(state: Any, k: jax.Array) -> tuple[Any, tuple[jax.Array, jax.Array, jax.Array]]:
            state, info = kernel.step(k, state)
            return state, (state.position, info.is_divergent, info.num_integration_steps)

        _, (positions, divergent, n_steps) = jax.lax.scan(step, state, jax.random.split(sample_key, draws))
        return positions, divergent, n_steps, params["step_size"]

    return one_chain


def run_chains(
    logdensity: Callable[[jax.Array], jax.Array], dim: int, chains: int, warmup: int, draws: int, seed: int,
    dtype: str = "float64",
) -> tuple[float, float, tuple[jax.Array, ...]]:
    """All chains in one ``jit(vmap(one_chain))`` program from Stan-style inits (uniform(-2, 2) on the
    unconstrained scale, in ``dtype``): compile seconds, run seconds, and the program's outputs."""
    one_chain = make_one_chain(logdensity, warmup, draws)
    init_key, chain_key = jax.random.split(jax.random.key(seed))
    inits = jax.random.uniform(init_key, (chains, dim), minval=-2.0, maxval=2.0, dtype=dtype)
    keys = jax.random.split(chain_key, chains)
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(one_chain)).lower(keys, inits).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outputs = jax.block_until_ready(compiled(keys, inits))
    return compile_s, time.perf_counter() - t0, outputs


def run_handwritten(
    df: pd.DataFrame, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 1
) -> dict[str, Any]:
    """Fit the seed model; return timings, constrained draws and the divergence count.

    Returns a dict with ``compile_s`` (``jit(...).lower(...).compile()``), ``sample_s`` (running the
    compiled program until ``block_until_ready``: warmup + sampling), ``total_s`` (wall time of this
    whole call, data preparation included), ``draws`` (``{name: ndarray (chains, draws)}`` for
    ``PARAMS``), ``divergences`` (int, post-warmup), ``step_size`` and ``mean_steps`` (per chain).
    """
    t_start = time.perf_counter()
    codes, levels = pd.factorize(df["schid"], sort=True)
    n_groups = len(levels)
    y = jnp.asarray(df["math"].to_numpy(), dtype=jnp.float64)
    x = jnp.asarray(df["homework"].to_numpy(), dtype=jnp.float64)
    group = jnp.asarray(codes, dtype=jnp.int32)
    logdensity = make_logdensity(y, x, group, n_groups)
    dim = 5 + 2 * n_groups

    compile_s, sample_s, (positions, divergent, n_steps, step_size) = run_chains(
        logdensity, dim, chains, warmup, draws, seed)

    out_draws = {name: np.asarray(v) for name, v in _constrain(positions).items()}
    total_s = time.perf_counter() - t_start
    return {
        "compile_s": compile_s,
        "sample_s": sample_s,
        "total_s": total_s,
        "draws": out_draws,
        "divergences": int(np.sum(np.asarray(divergent))),
        "step_size": np.asarray(step_size),
        "mean_steps": np.asarray(n_steps).mean(axis=1),
    }


def main() -> None:
    """Run the hand-written program alone and print timings and posterior summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    res = run_handwritten(pd.read_csv(args.data.resolve()), args.chains, args.warmup, args.draws, args.seed)
    print(
        f"compile {res['compile_s']:.2f} s, sample {res['sample_s']:.2f} s, total {res['total_s']:.2f} s, "
        f"divergences {res['divergences']}"
    )
    for name in PARAMS:
        d = res["draws"][name]
        print(f"{name:>6}: {d.mean():8.3f} ± {d.std(ddof=1):.3f}")


if __name__ == "__main__":
    main()
