"""Stage 6: log-density → draws. BlackJAX window adaptation + NUTS, all chains in one ``jax.vmap``-ed,
jitted program; draws are taken in ``lax.scan`` blocks of equal length so that the host can report
progress (and keep what is done on Ctrl-C) between blocks, with no host callback inside the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

from .adaptation import make_schedule, window_adapter
from .errors import SamplingError

__all__ = ["SamplerConfig", "Draws", "sample_nuts", "check_config"]

ProgressFn = Callable[[str, int, int], None]
INIT_TRIES = 20


@dataclass(frozen=True)
class SamplerConfig:
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    seed: int = 0
    target_accept: float = 0.8
    max_tree_depth: int = 10
    blocks: int = 10
    init_radius: float = 2.0


def check_config(config: SamplerConfig) -> None:
    """Reject settings the sampler cannot run, before anything is compiled."""
    for name in ("chains", "draws"):
        v = getattr(config, name)
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise SamplingError(f"{name} must be a positive whole number, got {v!r}")
    if not isinstance(config.warmup, int | np.integer) or isinstance(config.warmup, bool) or config.warmup < 0:
        raise SamplingError(f"warmup must be a whole number ≥ 0, got {config.warmup!r}")
    if not 0.0 < config.target_accept < 1.0:
        raise SamplingError(f"target_accept must be between 0 and 1, got {config.target_accept!r}")
    if not isinstance(config.max_tree_depth, int) or not 1 <= config.max_tree_depth <= 20:
        raise SamplingError(f"max_tree_depth must be a whole number from 1 to 20, got {config.max_tree_depth!r}")
    if not isinstance(config.seed, int | np.integer) or isinstance(config.seed, bool):
        raise SamplingError(f"seed must be a whole number, got {config.seed!r}")


@dataclass(frozen=True, eq=False)
class Draws:
    """Unconstrained positions (chains, draws, dim) and per-draw sampler statistics."""

    positions: np.ndarray
    stats: dict[str, np.ndarray]
    step_size: np.ndarray
    inverse_mass_matrix: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


def _choose_initial(
    candidates: np.ndarray, log_densities: np.ndarray, explain: Callable[[np.ndarray], str] | None = None
) -> np.ndarray:
    """First candidate per chain with a finite log-density; a clear error where none is, naming the
    part of the model at fault when ``explain`` can tell."""
    ok = np.isfinite(log_densities)
    if not ok.any(axis=1).all():
        bad = int(np.argmin(ok.any(axis=1)))
        culprit = explain(candidates[bad, 0]) if explain is not None else ""
        raise SamplingError(
            f"the model cannot start: no finite log-density at {INIT_TRIES} random starting points"
            + (f"; {culprit}" if culprit else ""),
            hint="check the priors and the data scale (a response in the millions needs a matching prior)",
        )
    first = ok.argmax(axis=1)
    return candidates[np.arange(candidates.shape[0]), first]


def _chain_sharding(leading: int):
    """Chains (or folds) split across all devices when there are several and they divide evenly:
    XLA partitions the vmapped program, each device running its share. One device: no sharding."""
    devices = jax.devices()
    if len(devices) < 2 or leading % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.array(devices), ("chains",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("chains"))


def _block_length(warmup: int, draws: int, blocks: int) -> int:
    """Steps per block: a divisor of both phases near (warmup + draws) / blocks, so no step is wasted."""
    total = warmup + draws
    target = max(1, total // max(1, blocks))
    common = math.gcd(warmup, draws) if warmup else draws
    divisors = [d for d in range(1, common + 1) if common % d == 0 and d <= target]
    best = max(divisors)
    return best if best * 4 >= target else target  # else pad the last block


def sample_nuts(
    log_density: Callable[[jax.Array, object], jax.Array],
    dim: int,
    config: SamplerConfig,
    data: object = None,
    *,
    batch: int | None = None,
    dtype=jnp.float64,
    progress: ProgressFn | None = None,
    explain: Callable[[np.ndarray], str] | None = None,
) -> Draws:
    """Warmup and sampling for all chains in one compiled program, run block by block.

    ``log_density(x, data)`` reads its data as an argument. With ``batch=B``, ``data`` carries a
    leading axis of B data sets (cross-validation folds: same shapes, other row weights) and B × chains
    chains run in the same program; the outputs then have a leading batch axis.
    """
    check_config(config)
    timings: dict[str, float] = {}
    key = jax.random.key(config.seed)
    k_init, k_run = jax.random.split(key)
    kernel = blackjax.mcmc.nuts.build_kernel()
    adapt_init, adapt_update = window_adapter(dim, config.target_accept, dtype)

    block_len = _block_length(config.warmup, config.draws, config.blocks * 2)
    total = config.warmup + config.draws
    n_blocks = math.ceil(total / block_len)
    schedule = make_schedule(config.warmup, n_blocks * block_len - config.warmup)
    lead = (config.chains,) if batch is None else (batch, config.chains)

    def init_one(x, d):
        return blackjax.nuts.init(x, lambda v: log_density(v, d)), adapt_init()

    def block_one(key, carry, sched, d):
        """``block_len`` NUTS steps of one chain, adapting where the schedule says so."""
        logdensity = lambda v: log_density(v, d)  # noqa: E731

        def step(c, xs):
            state, adapt = c
            k, stage, is_end, is_last = xs
            state, info = kernel(k, state, logdensity, adapt.step_size, adapt.inverse_mass_matrix,
                                 max_num_doublings=config.max_tree_depth)
            adapt = adapt_update(adapt, stage, is_end, is_last, state.position, info.acceptance_rate)
            out = (state.position, {
                "lp": state.logdensity,
                "diverging": info.is_divergent,
                "n_steps": info.num_integration_steps,
                "tree_depth": info.num_trajectory_expansions,
                "acceptance_rate": info.acceptance_rate,
                "energy": info.energy,
                "step_size": adapt.step_size,
            })
            return (state, adapt), out

        return jax.lax.scan(step, carry, (jax.random.split(key, block_len),) + tuple(sched))

    def over_chains(fn, per_chain: int, shared: int = 0):
        """vmap ``fn(*per_chain_args, *shared_args, data)`` over chains (data shared), then over the
        batch (data per batch) if batched."""
        f = jax.vmap(fn, in_axes=(0,) * per_chain + (None,) * shared + (None,))
        if batch is not None:
            f = jax.vmap(f, in_axes=(0,) * per_chain + (None,) * shared + (0,))
        return f

    init_all = over_chains(init_one, 1)
    block_all = over_chains(block_one, 2, shared=1)
    eval_all = over_chains(lambda xs, d: jax.vmap(lambda v: log_density(v, d))(xs), 1)

    spread = _chain_sharding(lead[0])
    t0 = time.perf_counter()
    candidates = jax.random.uniform(k_init, lead + (INIT_TRIES, dim), dtype=dtype, minval=-config.init_radius,
                                    maxval=config.init_radius)
    carry_shape = jax.eval_shape(init_all, candidates[..., 0, :], data)
    keys_shape = jax.ShapeDtypeStruct(lead, jax.random.key(0).dtype)
    sched_shape = tuple(jax.ShapeDtypeStruct((block_len,), a.dtype) for a in schedule)
    # XLA compiles off the GIL: the small programs compile while the big one does
    with ThreadPoolExecutor(2) as pool:
        init_job = pool.submit(lambda: jax.jit(eval_all).lower(candidates, data).compile())
        block = (jax.jit(block_all, in_shardings=(spread, spread, None, None), out_shardings=(spread, spread))
                 .lower(keys_shape, carry_shape, sched_shape, data).compile())
        init_eval = init_job.result()
    timings["compile_s"] = time.perf_counter() - t0
    cand = np.asarray(candidates)
    lp0 = np.asarray(init_eval(candidates, data))
    chosen = _choose_initial(cand.reshape(-1, INIT_TRIES, dim), lp0.reshape(-1, INIT_TRIES),
                             explain).reshape(lead + (dim,))
    carry = jax.jit(init_all, out_shardings=spread)(jnp.asarray(chosen), data)

    carry, positions_np, stats_np, interrupted = _run_blocks(
        block, carry, schedule, data, lead, k_run, block_len, n_blocks, config.warmup, config.draws, progress,
        timings)
    state, adapt = carry
    return Draws(positions_np, stats_np, np.asarray(adapt.step_size), np.asarray(adapt.inverse_mass_matrix),
                 timings, interrupted)


def _run_blocks(block, carry, schedule, data, lead, k_run, block_len, n_blocks, warmup, draws, progress,
                timings):
    """Call the compiled block program until warmup + draws steps are done; keep the draws after
    warmup on the host; report progress between blocks; on Ctrl-C keep what is finished."""
    total = warmup + draws
    t1 = time.perf_counter()
    chunks_pos: list[np.ndarray] = []
    chunks_stats: list[dict[str, np.ndarray]] = []
    interrupted = False
    done = 0
    axis = len(lead)  # the draw axis of block outputs
    if progress and warmup:
        progress("warmup", 0, warmup)
    try:
        for b in range(n_blocks):
            keys = jax.random.split(jax.random.fold_in(k_run, b), int(np.prod(lead))).reshape(lead)
            sl = slice(b * block_len, (b + 1) * block_len)
            carry, (pos, stats) = block(keys, carry, tuple(a[sl] for a in schedule), data)
            lo = b * block_len
            start = max(0, warmup - lo)
            if start < block_len:
                take = (slice(None),) * axis + (slice(start, block_len),)
                chunks_pos.append(np.asarray(pos[take]))
                chunks_stats.append({k: np.asarray(v[take]) for k, v in stats.items()})
            else:
                jax.block_until_ready(pos)
            done = min(total, done + block_len)
            if progress:
                if done <= warmup:
                    progress("warmup", done, warmup)
                else:
                    progress("sampling", done - warmup, draws)
            if lo < warmup <= done:
                timings["warmup_s"] = time.perf_counter() - t1
    except KeyboardInterrupt:
        interrupted = True
        if not chunks_pos:
            raise
    timings.setdefault("warmup_s", 0.0)
    timings["sample_s"] = time.perf_counter() - t1 - timings["warmup_s"]
    cut = (slice(None),) * axis + (slice(0, draws),)
    positions_np = np.concatenate(chunks_pos, axis=axis)[cut]
    stats_np = {k: np.concatenate([c[k] for c in chunks_stats], axis=axis)[cut] for k in chunks_stats[0]}
    return carry, positions_np, stats_np, interrupted
