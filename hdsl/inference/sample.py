"""Stage 6: log-density → draws. BlackJAX window adaptation + NUTS, all chains in one ``jax.vmap``-ed,
jitted program; draws are taken in ``lax.scan`` blocks of equal length so that the host can report
progress (and keep what is done on Ctrl-C) between blocks, with no host callback inside the loop.

Options: ``init="pathfinder"`` starts each chain from a draw of a Pathfinder approximation (:mod:`.init`)
instead of a random point; ``adaptation="chees"`` adapts one step size, trajectory length and diagonal
mass matrix across all chains (ChEES, :func:`.adaptation.chees_adapter`) and samples with BlackJAX's
jittered dynamic HMC, whose chains all take the same number of leapfrog steps — no chain waits for
another's longer tree, which is what makes thousands of chains cheap on an accelerator.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import SamplingError
from .adaptation import (
    chees_adapter,
    gradient_metric,
    make_chees_schedule,
    make_schedule,
    reset_stragglers,
    window_adapter,
)
from .init import PathfinderConfig, choose_starts, pathfinder_one
from .memory import release_free_memory
from .options import SamplerOptions

__all__ = ["Draws", "sample_nuts"]

ProgressFn = Callable[[str, int, int], None]
INIT_TRIES = 20
INIT_RADIUS = 2.0  # random starting points are uniform on (-INIT_RADIUS, INIT_RADIUS), as Stan's
CHAIN_AXIS = "chains"  # the vmapped axis of chains: cross-chain adaptation pools over it
BLOCKS = 10  # the host hears from the sampler about 2 × BLOCKS times (progress, Ctrl-C)


@dataclass(frozen=True, eq=False)
class Draws:
    """Unconstrained positions (chains, draws, dim) and per-draw sampler statistics."""

    positions: np.ndarray | None  # None where the draws went to ``sample_nuts(..., keep=...)``
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
    """Chains (or folds) split across this process's devices when there are several and they divide
    evenly: XLA partitions the vmapped program, each device running its share. One device: no sharding."""
    devices = jax.local_devices()
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


def _traced_at(dtype):
    """Trace a float32 sampler with ``jax_enable_x64`` off. Once a float64 model has turned x64 on in the
    process, BlackJAX's NUTS builds its trajectory's first proposal weight from a Python float, which x64
    makes float64, and its ``lax.cond`` then refuses the float32 weight of the other branch. The setting is
    per thread: every thread that traces enters this."""
    if jnp.dtype(dtype) == jnp.float32 and jax.config.jax_enable_x64:
        return jax.enable_x64(False)
    return contextlib.nullcontext()


def sample_nuts(
    log_density: Callable[[jax.Array, object], jax.Array],
    dim: int,
    options: SamplerOptions,
    data: object = None,
    *,
    batch: int | None = None,
    dtype=jnp.float64,
    blocks: int = BLOCKS,
    progress: ProgressFn | None = None,
    explain: Callable[[np.ndarray], str] | None = None,
    keep: Callable[[np.ndarray, int], None] | None = None,
) -> Draws:
    """Warmup and sampling for all chains in one compiled program, run block by block (about ``2 × blocks``
    of them: between blocks the host reports ``progress`` and can be interrupted; the number of blocks
    changes the random stream, so the same seed gives the same draws only with the same ``blocks``).

    With ``keep``, the draws are not stored: each block's are handed to ``keep(positions, first)`` as they
    come ((chains, n, dim), draws ``first`` onwards; all chains of all processes at the end where several
    processes share a fit), and ``Draws.positions`` is None.

    ``log_density(x, data)`` reads its data as an argument. With ``batch=B``, ``data`` carries a
    leading axis of B data sets (cross-validation folds: same shapes, other row weights) and B × chains
    chains run in the same program; the outputs then have a leading batch axis.
    """
    with _traced_at(dtype):
        return _sample_traced_at(log_density, dim, options, data, batch, dtype, blocks, progress, explain, keep)


def _sample_traced_at(log_density, dim, options: SamplerOptions, data, batch, dtype, blocks, progress, explain,
                      keep) -> Draws:
    """:func:`sample_nuts`, inside the precision its programs are traced at (``_traced_at``)."""
    timings: dict[str, float] = {}
    # several processes (jax.distributed, one per host): each runs its share of the chains on its own
    # devices from its own keys, and the draws are gathered so that every process holds all of them
    processes = jax.process_count() if batch is None else 1
    if options.chains % processes:
        raise SamplingError(f"chains={options.chains} cannot be split evenly over {processes} processes",
                            hint=f"use a multiple of {processes} chains")
    key = jax.random.key(options.seed)
    if processes > 1:
        key = jax.random.fold_in(key, jax.process_index())
    k_init, k_run = jax.random.split(key)
    chees = options.adaptation == "chees"
    block_len = _block_length(options.warmup, options.draws, blocks * 2)
    total = options.warmup + options.draws
    n_blocks = math.ceil(total / block_len)
    lead = (options.chains // processes,) if batch is None else (batch, options.chains)
    if chees:
        schedule = make_chees_schedule(options.warmup, n_blocks * block_len - options.warmup)
        init_one, block_one = _chees_program(log_density, dim, options, dtype, block_len, n_blocks * block_len)
    else:
        schedule = make_schedule(options.warmup, n_blocks * block_len - options.warmup,
                                 early=options.adaptation == "window")
        init_one, block_one = _nuts_program(log_density, dim, options, dtype, block_len)

    init_all, block_all, eval_all, pf_all = _vectorized(log_density, init_one, block_one, chees, batch)

    spread = _chain_sharding(lead[0])
    t0 = time.perf_counter()
    candidates = jax.random.uniform(k_init, lead + (INIT_TRIES, dim), dtype=dtype, minval=-INIT_RADIUS,
                                    maxval=INIT_RADIUS)
    start_shape = jax.ShapeDtypeStruct(lead + (dim,), dtype)
    keys_shape = jax.ShapeDtypeStruct(lead, jax.random.key(0).dtype)
    carry_shape = jax.eval_shape(init_all, start_shape, start_shape, data)
    carry_spread = _carry_sharding(carry_shape, lead, spread)
    sched_shape = tuple(jax.ShapeDtypeStruct((block_len,), a.dtype) for a in schedule)
    use_pathfinder = options.effective_init == "pathfinder"
    # XLA compiles off the GIL: the small programs compile while the big one does
    with ThreadPoolExecutor(2) as pool:
        def compile_at(fn, *args):
            with _traced_at(dtype):  # this thread's own setting
                return jax.jit(fn).lower(*args).compile()

        init_job = pool.submit(compile_at, eval_all, candidates, data)
        pf_key = jax.ShapeDtypeStruct(lead[:-1], jax.random.key(0).dtype)
        pf_job = pool.submit(compile_at, pf_all, pf_key, start_shape, data) if use_pathfinder else None
        block = (jax.jit(block_all, in_shardings=(spread, carry_spread, None, None),
                         out_shardings=(carry_spread, spread))
                 .lower(keys_shape, carry_shape, sched_shape, data).compile())
        init_eval = init_job.result()
        pathfinder = pf_job.result() if pf_job is not None else None
    timings["compile_s"] = time.perf_counter() - t0
    release_free_memory()  # what XLA's compilers freed (hundreds of MiB), before the draws take room
    cand = np.asarray(candidates)
    lp0 = np.asarray(init_eval(candidates, data))
    pick = _choose_initial(cand.reshape(-1, INIT_TRIES, dim), lp0.reshape(-1, INIT_TRIES), explain)
    chosen = jnp.asarray(pick.reshape(lead + (dim,)))
    imm = jnp.ones(lead + (dim,), dtype)
    if pathfinder is not None:
        t1 = time.perf_counter()
        k_pf = jax.random.fold_in(k_init, 1)
        found = pathfinder(k_pf if batch is None else jax.random.split(k_pf, batch), chosen, data)
        chosen, imm = jax.block_until_ready((found.position, found.inverse_mass_matrix))
        timings["pathfinder_s"] = time.perf_counter() - t1
        timings["pathfinder_failed"] = float(np.size(found.ok) - np.asarray(found.ok).sum())
    carry = jax.jit(init_all, out_shardings=carry_spread)(chosen, imm, data)
    del candidates, cand, lp0
    release_free_memory()

    if keep is not None and batch is not None:
        raise ValueError("keep= takes one data set's draws, not a batch")
    carry, positions_np, stats_np, interrupted = _run_blocks(
        block, carry, schedule, data, lead, k_run, block_len, n_blocks, options.warmup, options.draws, progress,
        timings, keep if processes == 1 else None)
    adapt = carry[1]
    step_size = np.broadcast_to(np.asarray(adapt.step_size)[..., None] if chees and batch is not None
                                else np.asarray(adapt.step_size), lead)
    imm_out = np.broadcast_to(np.asarray(adapt.inverse_mass_matrix)[..., None, :] if chees
                              else np.asarray(adapt.inverse_mass_matrix), lead + (dim,))
    if processes > 1:
        positions_np, stats_np, step_size, imm_out = _gather_processes((positions_np, stats_np, step_size, imm_out))
        if keep is not None:
            keep(positions_np, 0)
            positions_np = None
    return Draws(positions_np, stats_np, np.array(step_size), np.array(imm_out), timings, interrupted)


def _vectorized(log_density, init_one, block_one, chees: bool, batch: int | None):
    """One chain's programs made programs of all chains (and of every data set of a batch): warmup's
    start, a block of steps, the log-density at candidate starts, and Pathfinder from every chain's start."""

    def over_chains(fn, per_chain: int, shared: int = 0):
        """vmap ``fn(*per_chain_args, *shared_args, data)`` over chains (data shared), then over the
        batch (data per batch) if batched."""
        f = jax.vmap(fn, in_axes=(0,) * per_chain + (None,) * shared + (None,), axis_name=CHAIN_AXIS)
        if batch is not None:
            f = jax.vmap(f, in_axes=(0,) * per_chain + (None,) * shared + (0,))
        return f

    def over_batch(fn, n_args: int, shared: int = 0):
        """``fn`` already works on all chains at once (ChEES): vmap it over the batch only."""
        if batch is None:
            return fn
        return jax.vmap(fn, in_axes=(0,) * n_args + (None,) * shared + (0,))

    if chees:
        init_all = over_batch(init_one, 2)
        block_all = over_batch(block_one, 2, shared=1)
    else:
        init_all = over_chains(init_one, 2)
        block_all = over_chains(block_one, 2, shared=1)
    eval_all = over_chains(lambda xs, d: jax.vmap(lambda v: log_density(v, d))(xs), 1)

    def pathfinder_chains(key, starts, d):
        """Pathfinder from every chain's random start, then importance resampling across the paths."""
        k_paths, k_pick = jax.random.split(key)
        keys = jax.random.split(k_paths, starts.shape[0])
        paths = jax.vmap(lambda k, x: pathfinder_one(k, x, lambda v: log_density(v, d), PathfinderConfig()))(
            keys, starts)
        return choose_starts(k_pick, paths, starts)

    pf_all = over_batch(pathfinder_chains, 2)
    return init_all, block_all, eval_all, pf_all


def _gather_processes(tree):
    """Every process's chains, concatenated in process order along the chain axis (the first)."""
    from jax.experimental import multihost_utils

    return jax.tree.map(lambda a: np.asarray(multihost_utils.process_allgather(np.asarray(a), tiled=True)), tree)


def _carry_sharding(carry_shape, lead: tuple[int, ...], spread):
    """Arrays with the chain (or batch) axis first are split across devices; shared ones (ChEES's
    adaptation state) are replicated."""
    if spread is None:
        return None
    whole = jax.sharding.NamedSharding(spread.mesh, jax.sharding.PartitionSpec())
    return jax.tree.map(lambda a: spread if a.ndim and a.shape[0] == lead[0] else whole, carry_shape)


def _nuts_program(log_density, dim: int, options: SamplerOptions, dtype, block_len: int):
    """(init, block) of one chain: windowed adaptation (hdsl's or Stan's) driving NUTS."""
    kernel = blackjax.mcmc.nuts.build_kernel()
    stan = options.adaptation == "stan"
    adapt_init, adapt_update = window_adapter(dim, options.target_accept, dtype, stan=stan,
                                              pool_axis=CHAIN_AXIS if options.effective_pool_adaptation else None)
    from_gradient = options.effective_init == "random" and not stan  # Pathfinder's starts come with a metric

    def init_one(x, imm, d):
        state = blackjax.nuts.init(x, lambda v: log_density(v, d))
        return state, adapt_init(gradient_metric(state.logdensity_grad) if from_gradient else imm)

    def block_one(key, carry, sched, d):
        """``block_len`` NUTS steps of one chain, adapting where the schedule says so."""
        logdensity = lambda v: log_density(v, d)  # noqa: E731

        def step(c, xs):
            state, adapt = c
            k, stage, is_end, is_last = xs
            state, info = kernel(k, state, logdensity, adapt.step_size, adapt.inverse_mass_matrix,
                                 max_num_doublings=options.max_tree_depth)
            adapt = adapt_update(adapt, stage, is_end, is_last, state.position, state.logdensity_grad,
                                 info.acceptance_rate)
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

    return init_one, block_one


def _chees_program(log_density, dim: int, options: SamplerOptions, dtype, block_len: int, total: int):
    """(init, block) of the whole ensemble of chains: ChEES adaptation driving jittered dynamic HMC.

    The number of leapfrog steps is the adapted trajectory length / step size times a Halton jitter
    in (0, 1] shared by all chains (BlackJAX's choice), so the chains move in lockstep with no waiting.
    ``tree_depth`` is reported as 0: there is no tree, and the maximum number of leapfrog steps is
    ``2 ** max_tree_depth``, NUTS's own bound.
    """
    from blackjax.mcmc import dynamic_hmc

    max_bits = max(1, math.ceil(math.log2(total + 1)))
    max_leapfrog = 2**options.max_tree_depth

    def jitter(i):
        return dynamic_hmc.halton_sequence(i, max_bits)

    kernel = dynamic_hmc.build_kernel(
        next_random_arg_fn=lambda i: i + 1,
        integration_steps_fn=lambda i, n: jnp.clip(jnp.ceil(jitter(i) * n), 1, max_leapfrog).astype(jnp.int32),
    )
    adapt_init, adapt_update = chees_adapter(dim, jitter, max_leapfrog, dtype)

    def init_one(xs, imms, d):
        """All chains; the starting inverse mass matrix is the chains' median guess."""
        logdensity = lambda v: log_density(v, d)  # noqa: E731
        states = jax.vmap(lambda x: dynamic_hmc.init(x, logdensity, jnp.asarray(0)))(xs)
        return states, adapt_init(jnp.median(imms, axis=0), 0.1)

    def block_one(keys, carry, sched, d):
        logdensity = lambda v: log_density(v, d)  # noqa: E731
        step_keys = jnp.swapaxes(jax.vmap(lambda k: jax.random.split(k, block_len))(keys), 0, 1)

        def step(c, xs):
            states, adapt = c
            ks, warm, in_window, is_last, reset = xs
            states = jax.lax.cond(reset, lambda st: reset_stragglers(st, dim), lambda st: st, states)
            new, info = jax.vmap(lambda k, s: kernel(k, s, logdensity, adapt.step_size, adapt.inverse_mass_matrix,
                                                     (adapt.num_leapfrog,)))(ks, states)
            nxt = adapt_update(adapt, warm, in_window, is_last, states.position, info.proposal.position,
                               info.proposal.momentum, info.acceptance_rate, info.is_divergent, new.position)
            # the Hamiltonian of the state kept: the proposal's if accepted, else the start's
            start_energy = -states.logdensity + 0.5 * jnp.sum(adapt.inverse_mass_matrix * info.momentum**2, axis=-1)
            n = new.position.shape[0]
            out = (new.position, {
                "lp": new.logdensity,
                "diverging": info.is_divergent,
                "n_steps": info.num_integration_steps * jnp.ones(n, jnp.int32),
                "tree_depth": jnp.zeros(n, jnp.int32),
                "acceptance_rate": info.acceptance_rate,
                "energy": jnp.where(info.is_accepted, info.energy, start_energy),
                "step_size": jnp.broadcast_to(nxt.step_size, (n,)),
            })
            return (new, nxt), out

        carry, out = jax.lax.scan(step, carry, (step_keys,) + tuple(sched))
        return carry, jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), out)

    return init_one, block_one


def _run_blocks(block, carry, schedule, data, lead, k_run, block_len, n_blocks, warmup, draws, progress,
                timings, keep=None):
    """Call the compiled block program until warmup + draws steps are done; keep the draws after
    warmup on the host (or hand them to ``keep``); report progress between blocks; on Ctrl-C keep what
    is finished."""
    total = warmup + draws
    t1 = time.perf_counter()
    # the draws are written into arrays allocated once: concatenating blocks would hold them twice
    positions_np: np.ndarray | None = None
    stats_np: dict[str, np.ndarray] = {}
    interrupted = False
    done = 0
    kept = 0  # draws written so far
    kept_s = 0.0  # time in ``keep``: not sampling
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
            stop = min(block_len, warmup + draws - lo)
            if start < stop:
                take = (slice(None),) * axis + (slice(start, stop),)
                into = (slice(None),) * axis + (slice(kept, kept + stop - start),)
                for k, v in stats.items():
                    v = np.asarray(v)[take]
                    if k not in stats_np:
                        stats_np[k] = np.empty(lead + (draws,) + v.shape[axis + 1:], v.dtype)
                    stats_np[k][into] = v
                block_pos = np.asarray(pos)[take]
                if keep is not None:
                    t_keep = time.perf_counter()
                    keep(block_pos, kept)
                    kept_s += time.perf_counter() - t_keep
                else:
                    if positions_np is None:
                        positions_np = np.empty(lead + (draws,) + block_pos.shape[axis + 1:], block_pos.dtype)
                    positions_np[into] = block_pos
                kept += stop - start  # only once the block's draws are all written
                del block_pos, pos, stats
                release_free_memory()  # the block's outputs and the naming's temporaries
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
        if not kept:
            raise
    timings.setdefault("warmup_s", 0.0)
    timings["sample_s"] = time.perf_counter() - t1 - timings["warmup_s"] - kept_s
    timings["named_draws_s"] = kept_s
    if kept < draws:  # interrupted: only the draws done
        cut = (slice(None),) * axis + (slice(0, kept),)
        positions_np = positions_np[cut].copy() if positions_np is not None else None
        stats_np = {k: v[cut].copy() for k, v in stats_np.items()}
    return carry, positions_np, stats_np, interrupted
