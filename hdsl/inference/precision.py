"""The floating-point precision of a model: float64 on CPU, float32 on accelerators, unless asked."""

from __future__ import annotations

import jax

from ..errors import HdslError

__all__ = ["default_dtype", "resolve_dtype"]


def default_dtype() -> str:
    """float64 on CPU (exact and no slower there), float32 on accelerators."""
    return "float64" if jax.default_backend() == "cpu" else "float32"


def resolve_dtype(dtype: str | None) -> str:
    """The dtype asked for, or the backend's default; float64 turns on JAX's 64-bit mode."""
    dtype = dtype or default_dtype()
    if dtype not in ("float32", "float64"):
        raise HdslError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    return dtype
