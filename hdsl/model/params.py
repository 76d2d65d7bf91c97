"""The typed pieces that travel between the lowered model's functions: where each parameter block sits in
the flat unconstrained vector (:class:`Layout`, keyed by :class:`ParamKey`), the constrained parameters
(:class:`Params`) and the data a log-density or prediction reads (:class:`ModelData`). NamedTuples are JAX
pytrees, so all of them pass through ``jit`` and ``vmap``; ``None`` marks what a model does not have."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Slot", "ParamKey", "Block", "Layout", "PredictorParams", "BlockParams", "Params", "PredictorData",
           "SufficientStatistics", "ModelData"]

Array = jax.Array


class Slot(enum.Enum):
    """What a block of the unconstrained vector holds."""

    INTERCEPT = "Intercept"  # a predictor's intercept on the centered scale (thresholds: ordered reals)
    B = "b"  # a predictor's population-level coefficients
    SD = "sd"  # a group block's standard deviations
    Z = "z"  # a non-centered group block's standard-normal effects (levels × k)
    BETA = "beta"  # a centered group block's whole coefficients (levels × k)
    COR = "cor"  # a correlated group block's correlation Cholesky factor, as d(d−1)/2 reals
    AUX = "aux"  # one of the family's scalar parameters (sigma, nu, shape, ...)


@dataclass(frozen=True)
class ParamKey:
    """A block's identity: its slot, the predictor or group block it belongs to, or the family
    parameter's name."""

    slot: Slot
    index: int = 0
    name: str = ""

    def __str__(self) -> str:
        return self.name if self.slot is Slot.AUX else f"{self.slot.value}[{self.index}]"


@dataclass(frozen=True)
class Block:
    """A slice of the flat unconstrained vector."""

    key: ParamKey
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))


@dataclass(frozen=True)
class Layout:
    blocks: tuple[Block, ...]

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

    def unpack(self, flat: Array) -> dict[ParamKey, Array]:
        return {b.key: flat[b.offset : b.offset + b.size].reshape(b.shape) for b in self.blocks}

    def pack(self, parts: Mapping[ParamKey, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.reshape(np.asarray(parts[b.key], dtype=float), (-1,)) for b in self.blocks])

    @staticmethod
    def of(shapes: list[tuple[ParamKey, tuple[int, ...]]]) -> Layout:
        blocks, offset = [], 0
        for key, shape in shapes:
            blocks.append(Block(key, shape, offset))
            offset += blocks[-1].size
        return Layout(tuple(blocks))


class PredictorParams(NamedTuple):
    """One linear predictor's population-level parameters. ``intercept`` is on the user's scale (the value
    at x = 0, brms's ``b_Intercept``; a cumulative model's thresholds), ``intercept_centered`` on the
    sampler's (at x = x̄)."""

    intercept: Array | None
    intercept_centered: Array | None
    b: Array | None


class BlockParams(NamedTuple):
    """One group block: standard deviations (k,), the correlation Cholesky factor (k, k) where correlated,
    the effects r (levels, k), and the standard-normal z behind them where non-centered."""

    sd: Array
    cor_cholesky: Array | None
    r: Array
    z: Array | None


class Params(NamedTuple):
    """Every constrained parameter of a model; ``aux`` by the family's own parameter names."""

    predictors: tuple[PredictorParams, ...]
    blocks: tuple[BlockParams, ...]
    aux: dict[str, Array]


class PredictorData(NamedTuple):
    """What one linear predictor reads: the population columns centered with the training means, the
    offset, and per group term the level codes and the columns its effects multiply."""

    X: Array
    offset: Array | None
    codes: tuple[Array, ...]
    Z: tuple[Array, ...]


class SufficientStatistics(NamedTuple):
    """Per-level n, yᵀy, Wᵀy (q, G) and WᵀW (q, q, G) of a Gaussian identity-link model whose rows depend
    on one grouping factor's effects (see :func:`hdsl.model.lower.sufficient_statistics`)."""

    n: Array
    yy: Array
    wy: Array
    ww: Array


class ModelData(NamedTuple):
    """The data a log-density or prediction reads: training data or new data encoded as in training.
    ``predictors`` in the lowered model's order; ``additions`` by the family's addition names (trials, se,
    cens, ...); ``weights`` multiply each row's log-likelihood (cross-validation folds set held-out rows to
    0); ``suff`` holds the per-level sums where the likelihood can use them."""

    y: Array
    predictors: tuple[PredictorData, ...]
    additions: dict[str, Array]
    weights: Array | None = None
    suff: SufficientStatistics | None = None

    @property
    def n_rows(self) -> int:
        return int(self.y.shape[-1])

    def with_weights(self, weights: np.ndarray) -> ModelData:
        """The same data with row weights (row-wise likelihood: the per-level sums do not take weights)."""
        return self._replace(weights=jnp.asarray(weights, self.y.dtype))
