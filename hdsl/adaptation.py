"""Stan's windowed adaptation as a per-step update driven by a schedule array.

BlackJAX's ``window_adaptation().run`` is one opaque scan; written as a step-wise update, warmup and
sampling become the *same* step function, so one compiled program serves both phases and runs in
blocks (progress between blocks, on the host, with no callback inside the loop). The pieces are
BlackJAX's own: dual averaging for the step size, Welford's algorithm for the mass matrix.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
from blackjax.adaptation.staged_adaptation import build_schedule
from blackjax.adaptation.step_size import dual_averaging_adaptation

__all__ = ["AdaptationState", "Schedule", "make_schedule", "window_adapter", "FAST", "SLOW", "FROZEN"]

FAST, SLOW, FROZEN = 0, 1, 2


class AdaptationState(NamedTuple):
    ss_state: tuple
    mm_state: tuple
    step_size: jax.Array
    inverse_mass_matrix: jax.Array


class Schedule(NamedTuple):
    """Per step: window kind, end of a slow window, last warmup step. Shared by all chains."""

    stage: np.ndarray
    window_end: np.ndarray
    last_warmup: np.ndarray


def make_schedule(warmup: int, draws: int) -> Schedule:
    """Stan's warmup windows for ``warmup`` steps followed by ``draws`` frozen steps."""
    stages = np.full(warmup + draws, FROZEN, dtype=np.int32)
    ends = np.zeros(warmup + draws, dtype=bool)
    last = np.zeros(warmup + draws, dtype=bool)
    if warmup > 0:
        sched = build_schedule(warmup)
        stages[:warmup] = [int(s) for s, _ in sched]
        ends[:warmup] = [bool(e) for _, e in sched]
        last[warmup - 1] = True
    return Schedule(stages, ends, last)


def window_adapter(dim: int, target_accept: float, dtype, initial_step_size: float = 1.0):
    """(init, update) for the windowed adaptation of step size and diagonal mass matrix."""
    mm_init, mm_update, mm_final = mass_matrix_adaptation(is_diagonal_matrix=True)
    da_init, da_update, da_final = dual_averaging_adaptation(target_accept)

    def init() -> AdaptationState:
        mm = mm_init(dim)
        mm = jax.tree.map(lambda x: jnp.asarray(x, dtype) if jnp.issubdtype(jnp.result_type(x), jnp.floating)
                          else x, mm)
        ss = da_init(jnp.asarray(initial_step_size, dtype))
        return AdaptationState(ss, mm, jnp.asarray(initial_step_size, dtype), mm.inverse_mass_matrix)

    def fast(a: AdaptationState, position, acc) -> AdaptationState:
        ss = da_update(a.ss_state, acc)
        return AdaptationState(ss, a.mm_state, jnp.exp(ss.log_step_size).astype(dtype), a.inverse_mass_matrix)

    def slow(a: AdaptationState, position, acc) -> AdaptationState:
        ss = da_update(a.ss_state, acc)
        mm = mm_update(a.mm_state, position)
        return AdaptationState(ss, mm, jnp.exp(ss.log_step_size).astype(dtype), a.inverse_mass_matrix)

    def frozen(a: AdaptationState, position, acc) -> AdaptationState:
        return a

    def window_end(a: AdaptationState) -> AdaptationState:
        mm = mm_final(a.mm_state)
        ss = da_init(da_final(a.ss_state))
        return AdaptationState(ss, mm, jnp.exp(ss.log_step_size).astype(dtype),
                               mm.inverse_mass_matrix.astype(dtype))

    def finish(a: AdaptationState) -> AdaptationState:
        return a._replace(step_size=da_final(a.ss_state).astype(dtype))

    def update(a: AdaptationState, stage, is_window_end, is_last, position, acc) -> AdaptationState:
        a = jax.lax.switch(stage, (fast, slow, frozen), a, position, acc)
        a = jax.lax.cond(is_window_end, window_end, lambda x: x, a)
        return jax.lax.cond(is_last, finish, lambda x: x, a)

    return init, update
