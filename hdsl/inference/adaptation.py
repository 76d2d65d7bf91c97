"""Stan's windowed adaptation as a per-step update driven by a schedule array.

BlackJAX's ``window_adaptation().run`` is one opaque scan; written as a step-wise update, warmup and
sampling become the *same* step function, so one compiled program serves both phases and runs in
blocks (progress between blocks, on the host, with no callback inside the loop). The pieces are
BlackJAX's own: dual averaging for the step size, Welford's algorithm for the mass matrix.

Stan's first 75 steps ("fast": step size only) run on the starting metric. On a unit metric that is
ruinous for large data: at 1M rows the log-sigma posterior sd is ~7e-4 while a group coefficient's is
~0.1, so every one of those steps builds a full depth-10 tree. Here the starting metric is
1/|∇log p(x0)| per coordinate, and that first buffer is cut into short "early" windows at whose ends the
metric becomes sqrt(Var x / Var ∇log p) over the window's draws — the diagonal that minimizes the
Fisher divergence of a Gaussian approximation (as nutpie does), which unlike Var x alone is
informative while the chain is still travelling to the typical set. Stan's slow windows then follow,
each shrunk toward 10⁻³ × the metric in force rather than Stan's absolute 10⁻³
(:func:`regularized_variance`). ``stan=True`` keeps Stan's warmup exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation, welford_algorithm
from blackjax.adaptation.staged_adaptation import build_schedule
from blackjax.adaptation.step_size import dual_averaging_adaptation

__all__ = ["AdaptationState", "Schedule", "make_schedule", "window_adapter", "FAST", "SLOW", "FROZEN", "EARLY",
           "gradient_metric", "fisher_metric", "regularized_variance",
           "ChEESSchedule", "make_chees_schedule", "EnsembleAdaptation", "chees_adapter", "reset_stragglers",
           "SlowDirection", "slow_direction_init", "slow_direction_update"]

FAST, SLOW, FROZEN, EARLY = 0, 1, 2, 3
EARLY_WINDOW_ENDS = (5, 10, 20, 35, 55)  # steps into the initial buffer where the early metric is updated
METRIC_BOUNDS = (1e-12, 1e6)  # an inverse-mass-matrix entry outside these is clipped


class AdaptationState(NamedTuple):
    ss_state: tuple
    mm_state: tuple
    step_size: jax.Array
    inverse_mass_matrix: jax.Array
    early: tuple  # BlackJAX Welford states of the positions and of the gradients in the early window


class Schedule(NamedTuple):
    """Per step: window kind, end of a slow window, last warmup step. Shared by all chains."""

    stage: np.ndarray
    window_end: np.ndarray
    last_warmup: np.ndarray


def make_schedule(warmup: int, draws: int, early: bool = True) -> Schedule:
    """Stan's warmup windows for ``warmup`` steps followed by ``draws`` frozen steps; with ``early``,
    the initial fast buffer is split into early windows ending at :data:`EARLY_WINDOW_ENDS` (those
    that fit in it)."""
    stages = np.full(warmup + draws, FROZEN, dtype=np.int32)
    ends = np.zeros(warmup + draws, dtype=bool)
    last = np.zeros(warmup + draws, dtype=bool)
    if warmup > 0:
        sched = build_schedule(warmup)
        stages[:warmup] = [int(s) for s, _ in sched]
        ends[:warmup] = [bool(e) for _, e in sched]
        last[warmup - 1] = True
        slow = np.flatnonzero(stages[:warmup] == SLOW)
        # no slow window (short warmup): no early windows either
        buffer = int(slow[0]) if slow.size and early else 0
        stages[:buffer] = EARLY
        for e in EARLY_WINDOW_ENDS:
            if e < buffer:
                ends[e - 1] = True
    return Schedule(stages, ends, last)


def gradient_metric(grad: jax.Array) -> jax.Array:
    """A starting inverse mass matrix from one gradient, 1/|∇log p(x0)| (nutpie's): coordinates the
    density is steep in get small steps from the first iteration on."""
    imm = jnp.clip(1.0 / jnp.abs(grad), *METRIC_BOUNDS)
    return jnp.where(jnp.isfinite(imm), imm, 1.0).astype(grad.dtype)


def fisher_metric(x_m2: jax.Array, g_m2: jax.Array, current: jax.Array) -> jax.Array:
    """sqrt(Var x / Var ∇log p) over the window, from the sums of squared deviations of the positions
    and of the gradients: exact for a Gaussian with diagonal covariance, and the Fisher-divergence-optimal
    diagonal otherwise. A coordinate that did not move keeps ``current``."""
    moved = (x_m2 > 0) & (g_m2 > 0)
    ratio = jnp.sqrt(jnp.where(moved, x_m2, 1.0) / jnp.where(moved, g_m2, 1.0))
    return jnp.where(moved, jnp.clip(ratio, *METRIC_BOUNDS), current).astype(current.dtype)


def regularized_variance(n: jax.Array, m2: jax.Array, current: jax.Array) -> jax.Array:
    """The window's variance, shrunk with Stan's weight 5/(n + 5) toward 10⁻³ × the metric in force.

    Stan (and BlackJAX) shrink toward the absolute 10⁻³: harmless at unit scale, but with 1M rows a
    log-sigma variance of ~5·10⁻⁷ comes out ~100× too large, forcing a 10× smaller step size and 10×
    longer trees. Relative to the metric in force (already scale-aware after the early windows) the
    shrinkage keeps its purpose — no zero or tiny variance from a short window — without the bias."""
    var = m2 / jnp.maximum(n - 1, 1)
    return (n / (n + 5)) * var + 1e-3 * (5 / (n + 5)) * current


def window_adapter(dim: int, target_accept: float, dtype, initial_step_size: float = 1.0, stan: bool = False,
                   pool_axis: str | None = None):
    """(init, update) for the windowed adaptation of step size and diagonal mass matrix; ``stan``:
    exactly Stan's (each slow window's variance shrunk toward the absolute 10⁻³).

    ``pool_axis``: the name of the vmapped chain axis; each window's metric is then estimated from the
    within-chain sums of squares of all chains together (their mean), not from each chain's alone, so every
    chain ends warmup with the same metric, estimated from chains × window draws (cross-chain warmup, as
    in Stan's "campfire" proposal). Vectorized chains run in lockstep, every NUTS step as long as the longest
    tree among them: one chain whose own noisy estimate gave it 4× longer trees slowed all of them 4×.
    Step sizes stay per chain."""
    mm_init, mm_update, mm_final = mass_matrix_adaptation(is_diagonal_matrix=True)
    da_init, da_update, da_final = dual_averaging_adaptation(target_accept)
    wc_init, wc_update, _ = welford_algorithm(is_diagonal_matrix=True)

    def pooled(x: jax.Array) -> jax.Array:
        """The mean over the chains (``pool_axis``), or ``x`` itself when each chain adapts alone."""
        return jax.lax.pmean(x, pool_axis) if pool_axis is not None else x

    def as_dtype(tree):
        return jax.tree.map(lambda x: jnp.asarray(x, dtype) if jnp.issubdtype(jnp.result_type(x), jnp.floating)
                            else x, tree)

    def early_init():
        return as_dtype((wc_init(dim), wc_init(dim)))

    def init(inverse_mass_matrix: jax.Array | None = None) -> AdaptationState:
        """Start from a unit inverse mass matrix, or from a guess (Pathfinder's) until the first slow
        window ends."""
        mm = as_dtype(mm_init(dim))
        if inverse_mass_matrix is not None:
            mm = mm._replace(inverse_mass_matrix=jnp.asarray(inverse_mass_matrix, dtype))
        ss = da_init(jnp.asarray(initial_step_size, dtype))
        return AdaptationState(ss, mm, jnp.asarray(initial_step_size, dtype), mm.inverse_mass_matrix,
                               early_init())

    def fast(a: AdaptationState, position, grad, acc) -> AdaptationState:
        ss = da_update(a.ss_state, acc)
        return a._replace(ss_state=ss, step_size=jnp.exp(ss.log_step_size).astype(dtype))

    def slow(a: AdaptationState, position, grad, acc) -> AdaptationState:
        a = fast(a, position, grad, acc)
        return a._replace(mm_state=mm_update(a.mm_state, position))

    def frozen(a: AdaptationState, position, grad, acc) -> AdaptationState:
        return a

    def early(a: AdaptationState, position, grad, acc) -> AdaptationState:
        a = fast(a, position, grad, acc)
        wx, wg = a.early
        return a._replace(early=(wc_update(wx, position), wc_update(wg, grad)))

    def restart_step_size(a: AdaptationState) -> AdaptationState:
        ss = da_init(da_final(a.ss_state))
        return a._replace(ss_state=ss, step_size=jnp.exp(ss.log_step_size).astype(dtype))

    def window_end(a: AdaptationState) -> AdaptationState:
        wc = a.mm_state.wc_state
        imm = regularized_variance(wc.sample_size, pooled(wc.m2),
                                   jnp.ones_like(wc.m2) if stan else a.inverse_mass_matrix)
        mm = mm_final(a.mm_state)  # resets the window's Welford statistics
        return restart_step_size(a._replace(mm_state=mm, inverse_mass_matrix=imm.astype(dtype)))

    def early_end(a: AdaptationState) -> AdaptationState:
        wx, wg = a.early
        imm = fisher_metric(pooled(wx.m2), pooled(wg.m2), pooled(a.inverse_mass_matrix))
        return restart_step_size(a._replace(inverse_mass_matrix=imm, early=early_init()))

    def finish(a: AdaptationState) -> AdaptationState:
        return a._replace(step_size=da_final(a.ss_state).astype(dtype))

    def update(a: AdaptationState, stage, is_window_end, is_last, position, grad, acc) -> AdaptationState:
        a = jax.lax.switch(stage, (fast, slow, frozen, early), a, position, grad, acc)
        a = jax.lax.cond(is_window_end, lambda x: jax.lax.cond(stage == EARLY, early_end, window_end, x),
                         lambda x: x, a)
        return jax.lax.cond(is_last, finish, lambda x: x, a)

    return init, update


# --- ChEES: one adaptation for the whole ensemble of chains ---------------------------------------------

CHEES_TARGET_ACCEPT = 0.651  # BlackJAX's default: optimal for (jittered) HMC


class ChEESSchedule(NamedTuple):
    """Per step: adapting at all, pooling positions into the mass-matrix estimate, last warmup step,
    moving stragglers (see :func:`reset_stragglers`)."""

    warm: np.ndarray
    in_window: np.ndarray
    last_warmup: np.ndarray
    reset: np.ndarray


def make_chees_schedule(warmup: int, draws: int, window_fraction: float = 0.5) -> ChEESSchedule:
    """Adapt for ``warmup`` steps; pool positions for the mass matrix over its last ``window_fraction``;
    move stragglers a quarter of the way in and where the window starts."""
    n = warmup + draws
    steps = np.arange(n)
    start = int(round((1 - window_fraction) * warmup))
    warm = steps < warmup
    in_window = warm & (steps >= start)
    last = np.zeros(n, dtype=bool)
    reset = np.zeros(n, dtype=bool)
    if warmup:
        last[warmup - 1] = True
        reset[[s for s in {warmup // 4, start} if 0 < s < warmup]] = True
    return ChEESSchedule(warm, in_window, last, reset)


def reset_stragglers(states, dim: int, tolerance: float = 8.0):
    """Warmup only: a chain whose log-density is more than ``tolerance`` typical-set widths
    (√(dim/2), the sd of the log-density of a dim-dimensional normal) below the chains' median is
    stuck (e.g. in the neck of a funnel) and is moved to the state of one of the better half of the
    chains. Warmup draws are discarded, so this only changes where sampling starts; a fixed-length
    HMC chain stuck there would not get out by itself (NUTS chains, each with its own step size, do).
    """
    lp = jnp.where(jnp.isfinite(states.logdensity), states.logdensity, -jnp.inf)
    n = lp.shape[0]
    stuck = lp < jnp.median(lp) - tolerance * np.sqrt(dim / 2)
    donors = jnp.argsort(-lp)[jnp.arange(n) % max(1, n // 2)]
    index = jnp.where(stuck, donors, jnp.arange(n))
    return jax.tree.map(lambda a: a[index], states)


class EnsembleAdaptation(NamedTuple):
    chees: tuple  # BlackJAX's ChEESAdaptationState (shared by all chains)
    count: jax.Array  # pooled Welford statistics of the positions of all chains in the window
    mean: jax.Array
    m2: jax.Array
    initial_imm: jax.Array
    step_size: jax.Array
    num_leapfrog: jax.Array  # trajectory length / step size, jittered by the kernel
    inverse_mass_matrix: jax.Array
    slow: SlowDirection


class SlowDirection(NamedTuple):
    """Streaming power iteration for the top eigenvalue of the chains' whitened covariance (see
    :func:`slow_direction_update`)."""

    direction: jax.Array  # unit vector, whitened coordinates
    sum_cv: jax.Array  # Σ over this batch's steps of Ĉ_t · direction
    steps: jax.Array
    eigenvalue: jax.Array  # 0 until a first batch is done: no floor


SLOW_BATCH = 16  # window steps per power-iteration step
LENGTH_FLOOR_FACTOR = np.pi / 2  # a quarter period of the slowest whitened direction


def slow_direction_init(dim: int, dtype) -> SlowDirection:
    return SlowDirection(jnp.full(dim, 1 / np.sqrt(dim), dtype), jnp.zeros(dim, dtype), jnp.zeros((), dtype),
                         jnp.zeros((), dtype))


def slow_direction_update(sd: SlowDirection, positions: jax.Array, mean: jax.Array, imm: jax.Array) -> SlowDirection:
    """One step of the chains (k, dim): add Ĉ_t v, Ĉ_t their covariance in coordinates whitened by the
    diagonal metric, O(k·dim) with no dim × dim matrix. Every :data:`SLOW_BATCH` steps the eigenvalue
    becomes vᵀ(mean Ĉ)v, with v from the batch before — an estimate that the batch's own noise does not
    inflate (choosing v from the same draws would, by ~(1 + √(dim/n))²) — and v moves to the batch's
    mean Ĉv (one power-iteration step)."""
    w = (positions - mean) / jnp.sqrt(imm)
    cv = w.T @ (w @ sd.direction) / positions.shape[0]
    sum_cv, steps = sd.sum_cv + cv, sd.steps + 1
    done = steps >= SLOW_BATCH
    mean_cv = sum_cv / steps
    norm = jnp.linalg.norm(mean_cv)
    direction = jnp.where(done & (norm > 0), mean_cv / jnp.where(norm > 0, norm, 1.0), sd.direction)
    return SlowDirection(direction, jnp.where(done, 0.0, sum_cv), jnp.where(done, 0.0, steps),
                         jnp.where(done, jnp.dot(sd.direction, mean_cv), sd.eigenvalue))


def chees_adapter(dim: int, jitter: Callable, max_leapfrog: int, dtype, *, learning_rate: float = 0.025,
                  target_accept: float = CHEES_TARGET_ACCEPT, decay_rate: float = 0.5):
    """(init, update) for ChEES (Hoffman, Radul & Sountsov 2021) as a per-step update over all chains.

    BlackJAX's ``chees_adaptation().run`` is one opaque scan; its cross-chain update (``base``: dual
    averaging of the step size on the harmonic-mean acceptance rate, Adam on the ChEES criterion for the
    trajectory length) is used here step by step, so warmup and sampling are one program run in blocks.
    The diagonal inverse mass matrix starts at ``initial_imm`` (Pathfinder's estimate, or ones) and,
    once enough positions are pooled in the window, is their variance across chains and steps, as
    BlackJAX's ``mass_matrix_estimation="diagonal"`` does. As in BlackJAX, the trajectory used is at
    least (π/2)·sqrt(λ_max) of the whitened covariance (a quarter period of its slowest direction), which
    ChEES's criterion, dominated by the many well-scaled directions, under-serves; λ_max comes from a
    streaming power iteration (:class:`SlowDirection`) instead of BlackJAX's dim × dim covariance, so it
    also works with 10⁴ group effects.
    """
    import optax
    from blackjax.adaptation.chees_adaptation import base

    optim = optax.adam(learning_rate)
    chees_init, chees_update = base(jitter, lambda i: i + 1, optim, target_accept, decay_rate, max_leapfrog)
    threshold = max(64, int(2 * np.sqrt(dim)))

    def init(initial_imm: jax.Array, step_size: float) -> EnsembleAdaptation:
        step = jnp.asarray(step_size, dtype)
        c = chees_init(jnp.asarray(0), step)
        return EnsembleAdaptation(c, jnp.zeros((), dtype), jnp.zeros(dim, dtype), jnp.zeros(dim, dtype),
                                  initial_imm, step, jnp.ones((), dtype), initial_imm,
                                  slow_direction_init(dim, dtype))

    def estimate(a: EnsembleAdaptation) -> jax.Array:
        var = regularized_variance(a.count, a.m2, jnp.ones_like(a.m2))  # Stan's: pooled n is large
        return jnp.where(a.count >= threshold, jnp.maximum(var, 1e-10), a.initial_imm).astype(dtype)

    def adapt(a: EnsembleAdaptation, in_window, start, proposal, momentum, acc, divergent, new_positions):
        c = chees_update(a.chees, proposal, momentum, start, acc, divergent, a.inverse_mass_matrix)
        # Chan et al.'s merge of this step's positions (all chains) into the pooled statistics
        k = new_positions.shape[0]
        bmean = new_positions.mean(axis=0)
        bm2 = jnp.sum((new_positions - bmean) ** 2, axis=0)
        n = a.count + k
        delta = bmean - a.mean
        pooled = (n, a.mean + delta * k / n, a.m2 + bm2 + delta**2 * a.count * k / n)
        count, mean, m2 = jax.tree.map(lambda new, old: jnp.where(in_window, new, old), pooled,
                                       (a.count, a.mean, a.m2))
        slow = jax.lax.cond(in_window, lambda sd: slow_direction_update(sd, new_positions, mean,
                                                                        a.inverse_mass_matrix),
                            lambda sd: sd, a.slow)
        a = a._replace(chees=c, count=count, mean=mean, m2=m2, slow=slow)
        return a._replace(step_size=c.step_size.astype(dtype),
                          num_leapfrog=leapfrog_steps(a, c.trajectory_length, c.step_size),
                          inverse_mass_matrix=estimate(a))

    def leapfrog_steps(a: EnsembleAdaptation, length, step_size) -> jax.Array:
        """ChEES's trajectory length, floored once the metric is estimated from the window."""
        floor = jnp.where(a.count >= threshold, LENGTH_FLOOR_FACTOR * jnp.sqrt(a.slow.eigenvalue), 0.0)
        return jnp.clip(jnp.maximum(length, floor) / step_size, 1, max_leapfrog).astype(dtype)

    def finish(a: EnsembleAdaptation) -> EnsembleAdaptation:
        """Sampling uses the moving averages of the warmup's step sizes and trajectory lengths."""
        c = a.chees
        step = jnp.exp(c.log_step_size_moving_average)
        return a._replace(step_size=step.astype(dtype),
                          num_leapfrog=leapfrog_steps(a, jnp.exp(c.log_trajectory_length_moving_average), step))

    def update(a: EnsembleAdaptation, warm, in_window, is_last, start, proposal, momentum, acc, divergent,
               new_positions) -> EnsembleAdaptation:
        a = jax.lax.cond(warm, lambda x: adapt(x, in_window, start, proposal, momentum, acc, divergent,
                                               new_positions), lambda x: x, a)
        return jax.lax.cond(is_last, finish, lambda x: x, a)

    return init, update
