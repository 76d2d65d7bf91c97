"""Centered or non-centered group effects, per group block: the data decide ('auto'), or the user does.

The centered form samples better where each level's data inform its effects (many rows per level compared
with the spread of levels), the non-centered one where they do not (NOTES.md: the funnel either way).
"""

from __future__ import annotations

import numpy as np

from ..errors import HdslError
from .design import BoundDesign, group_blocks

__all__ = ["choose_parameterization"]


def _information_ratio(y: np.ndarray, codes: np.ndarray, n_levels: int) -> float:
    """How much the data say about each level relative to the spread of levels: n̄·τ²/σ² from a
    one-way analysis of variance of the response. Above 1, the centered form samples better."""
    counts = np.bincount(codes, minlength=n_levels).astype(float)
    if n_levels < 2 or np.any(counts == 0) or len(y) <= n_levels:
        return 0.0
    means = np.bincount(codes, weights=y, minlength=n_levels) / counts
    within = float(np.sum((y - means[codes]) ** 2) / (len(y) - n_levels))
    n_bar = float(np.mean(counts))
    between = float(np.var(means, ddof=1)) - within / n_bar
    if within <= 0:
        return np.inf
    return n_bar * max(between, 0.0) / within


def choose_parameterization(design: BoundDesign, choice: str | dict[str, str]) -> tuple[bool, ...]:
    """Per group block (``design.group_blocks``): True for centered. ``choice``: 'auto', 'centered',
    'noncentered', or a dict from grouping factor to one of them. 'auto' centers a term of the first
    formula whose levels are informed by the data (information ratio above 1, or at least 20 rows per
    level where the family is not gaussian); effects on a family parameter's formula stay non-centered."""
    blocks = group_blocks(design.predictors)
    options = ("auto", "centered", "noncentered")
    if isinstance(choice, str):
        choice = {b.name: choice for b in blocks}
    for name, value in choice.items():
        if value not in options:
            raise HdslError(f"parameterization for '{name}' must be one of {options}, got {value!r}")
        if name not in {b.name for b in blocks}:
            raise HdslError(f"parameterization names '{name}', which is not a grouping factor of this model")
    gaussian = design.spec.family.linear_gaussian
    out = []
    for b in blocks:
        value = choice.get(b.name, "auto")
        if value == "auto":
            if any(j != 0 for j, _ in b.members):
                centered = False
            elif gaussian:
                codes = design.main.groups[b.members[0][1]].codes
                centered = _information_ratio(design.y, codes, b.n_levels) > 1.0
            else:
                centered = design.n_rows / b.n_levels >= 20
        else:
            centered = value == "centered"
        out.append(centered)
    return tuple(out)
