"""Maps from the sampler's unconstrained reals to a parameter's support, chosen from the support in one
place (:func:`bijector_for`, as NumPyro's ``biject_to``): each returns the constrained value and the log
absolute Jacobian determinant, and inverts on the host (starting points, prior draws)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, cast, overload

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions.transforms import CorrCholeskyTransform

__all__ = ["Constraint", "ElementwiseBounds", "OrderedVector", "CorrCholesky", "bijector_for"]

Array = jax.Array


class Constraint(enum.Enum):
    """What values a block of parameters takes."""

    BOUNDED = "bounded"  # per element: real, (lower, ∞), (−∞, upper) or (lower, upper)
    ORDERED = "ordered"  # increasing reals (a cumulative model's thresholds)
    CORR_CHOLESKY = "corr_cholesky"  # the Cholesky factor of a correlation matrix


@dataclass(frozen=True, eq=False)
class ElementwiseBounds:
    """Static per-element bounds of a block, classified once on the host: exp for one bound, a scaled
    logistic for two, the identity for none."""

    lower: np.ndarray
    upper: np.ndarray

    def forward(self, u: Array) -> tuple[Array, Array]:
        """Unconstrained → constrained, and the log-Jacobian (summed)."""
        lo_f, hi_f = np.isfinite(self.lower), np.isfinite(self.upper)
        if not lo_f.any() and not hi_f.any():
            return u, jnp.zeros((), u.dtype)
        if lo_f.all() and not hi_f.any():
            return jnp.asarray(self.lower, u.dtype) + jnp.exp(u), jnp.sum(u)
        lo = np.where(lo_f, self.lower, 0.0)
        hi = np.where(hi_f, self.upper, 1.0)
        both, lo_only, hi_only = lo_f & hi_f, lo_f & ~hi_f, hi_f & ~lo_f
        width = hi - lo
        x_both = lo + width * jax.nn.sigmoid(u)
        x = jnp.where(both, x_both, jnp.where(lo_only, lo + jnp.exp(u), jnp.where(hi_only, hi - jnp.exp(u), u)))
        lj_both = np.log(width) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)
        lj = jnp.where(both, lj_both, jnp.where(lo_only | hi_only, u, 0.0))
        return x.astype(u.dtype), jnp.sum(lj).astype(u.dtype)

    def inverse(self, x: np.ndarray | Array) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        lo_f, hi_f = np.isfinite(self.lower), np.isfinite(self.upper)
        lo = np.where(lo_f, self.lower, 0.0)
        hi = np.where(hi_f, self.upper, 1.0)
        with np.errstate(all="ignore"):
            frac = (x - lo) / (hi - lo)
            both = np.log(frac) - np.log1p(-frac)
            return np.where(lo_f & hi_f, both,
                            np.where(lo_f, np.log(x - lo), np.where(hi_f, np.log(hi - x), x)))


class OrderedVector:
    """c_1 = u_1, c_k = c_(k−1) + exp(u_k): increasing thresholds, log-Jacobian Σ_(k≥2) u_k."""

    def forward(self, u: Array) -> tuple[Array, Array]:
        return jnp.cumsum(jnp.concatenate([u[:1], jnp.exp(u[1:])])), jnp.sum(u[1:])

    def inverse(self, c: np.ndarray | Array) -> np.ndarray:
        c = np.asarray(c, dtype=float)
        return np.concatenate([c[:1], np.log(np.diff(c))])


class CorrCholesky:
    """NumPyro's map from d(d-1)/2 reals to a correlation Cholesky factor (signed stick-breaking), in the
    dtype of its input. NumPyro places the reals into the matrix with a scatter onto ``jnp.zeros`` of the
    default dtype, which fails for a float32 model once a float64 one has turned on ``jax_enable_x64``
    in the same process; here the matrix is a gather from the padded vector, the same numbers in the same
    places. The Jacobian and the inverse are NumPyro's."""

    _numpyro = CorrCholeskyTransform()

    def __call__(self, x: Array) -> Array:
        t = jnp.tanh(x)
        eps = np.finfo(t.dtype).eps
        t = jnp.clip(t, -1 + eps, 1 - eps)
        k = round((1 + (1 + 8 * t.shape[-1]) ** 0.5) / 2)
        index = np.zeros((k, k), dtype=np.int32)  # 0 picks the padding zero; row-major below the diagonal
        index[np.tril_indices(k, -1)] = np.arange(1, t.shape[-1] + 1)
        padded = jnp.concatenate([jnp.zeros(t.shape[:-1] + (1,), t.dtype), t], axis=-1)
        r = padded[..., index]
        z1m_cumprod_sqrt = jnp.cumprod(jnp.sqrt(1 - r**2), axis=-1)
        shifted = jnp.concatenate([jnp.ones(r.shape[:-1] + (1,), t.dtype), z1m_cumprod_sqrt[..., :-1]], axis=-1)
        return (r + jnp.eye(k, dtype=t.dtype)) * shifted

    def log_abs_det_jacobian(self, u: Array, L: Array) -> Array:
        return cast(Array, self._numpyro.log_abs_det_jacobian(u, L))

    def inv(self, L: Array) -> Array:
        return cast(Array, self._numpyro.inv(L))

    def forward(self, u: Array) -> tuple[Array, Array]:
        L = self(u)
        return L, self.log_abs_det_jacobian(u, L)

    def inverse(self, L: np.ndarray | Array) -> np.ndarray:
        return np.asarray(self.inv(jnp.asarray(L)))


Bijector = ElementwiseBounds | OrderedVector | CorrCholesky


@overload
def bijector_for(support: Literal[Constraint.BOUNDED], lower: np.ndarray, upper: np.ndarray) -> ElementwiseBounds: ...
@overload
def bijector_for(support: Literal[Constraint.ORDERED]) -> OrderedVector: ...
@overload
def bijector_for(support: Literal[Constraint.CORR_CHOLESKY]) -> CorrCholesky: ...
def bijector_for(support: Constraint, lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> Bijector:
    """The bijector of a block of parameters with this support (``lower``/``upper`` per element for
    BOUNDED)."""
    if support is Constraint.BOUNDED:
        return ElementwiseBounds(np.asarray(lower, dtype=float), np.asarray(upper, dtype=float))
    if support is Constraint.ORDERED:
        return OrderedVector()
    return CorrCholesky()
