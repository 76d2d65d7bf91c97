"""Stage 5: bound design + prior table → :class:`LoweredModel`, a frozen, typed description of the model:
the parameter layout (typed keys), one record per linear predictor and per group block, the family, the
priors and the training data. The numerics are pure functions over it in :mod:`hdsl.model.density`.

Inside: population-level columns are centered (the intercept is sampled on the centered scale and
mapped back, a shift with unit Jacobian, so the ``Intercept`` prior stays on the user's scale);
group effects are non-centered, ``r = z · diag(sd) · Lᵀ``, or centered where the data inform each level,
gathered per row by level code.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import DTypeLike

from ..language.families import Categories, Link
from ..language.ir import ParamClass, PriorTarget
from .bijectors import Constraint, bijector_for
from .design import BoundDesign, GroupBlock, PredictorDesign, group_blocks
from .distributions import PRIOR_NUMERICS, truncation_log_mass
from .families import FamilyNumerics, numerics_for
from .params import Layout, ModelData, ParamKey, PredictorData, Slot, SufficientStatistics
from .priors import ParamPrior, PriorTable, sd_targets

__all__ = ["BlockPrior", "TermSlice", "PredictorLowering", "GroupLowering", "AuxLowering", "LoweredModel",
           "lower_model", "model_data", "sufficient_statistics"]

Array = jax.Array


class BlockPrior:
    """Log prior of a vector of elements, one vectorized call per distribution name, and the bijector
    from the elements' bounds."""

    def __init__(self, entries: list[ParamPrior]):
        self.groups: list[tuple[str, np.ndarray, tuple[np.ndarray, ...]]] = []
        self.constant = 0.0
        names = sorted({e.distribution.name for e in entries})
        for name in names:
            idx = np.array([i for i, e in enumerate(entries) if e.distribution.name == name])
            args = tuple(np.array([entries[i].distribution.args[a] for i in idx])
                         for a in range(len(entries[idx[0]].distribution.args)))
            self.groups.append((name, idx, args))
        for e in entries:
            dist = PRIOR_NUMERICS[e.distribution.name]
            self.constant -= truncation_log_mass(dist, e.distribution.args, e.lower, e.upper)
        self.bounds = bijector_for(
            Constraint.BOUNDED, np.array([e.lower for e in entries], dtype=float),
            np.array([e.upper for e in entries], dtype=float))

    def __call__(self, x: Array) -> Array:
        total = jnp.asarray(self.constant, x.dtype)
        for name, idx, args in self.groups:
            dist = PRIOR_NUMERICS[name]
            if dist.build is None:  # flat
                continue
            d = dist.build(*(jnp.asarray(a, x.dtype) for a in args))
            total = total + jnp.sum(d.log_prob(x[idx]))
        return total


@dataclass(frozen=True)
class TermSlice:
    """One group term of a predictor: the columns ``start:stop`` of group block ``block``'s effects;
    ``ones[j]`` where column j multiplies a column of ones (the intercept: no product needed)."""

    block: int
    start: int
    stop: int
    ones: tuple[bool, ...]


@dataclass(frozen=True, eq=False)
class PredictorLowering:
    """One linear predictor: mu's (the first formula), a family parameter's (``sigma ~ ...``), or one
    category's of a categorical response (mu2, mu3, ...)."""

    dpar: str
    link: Link
    intercept: bool
    p: int
    xbar: np.ndarray  # the training column means the columns are centered with
    intercept_prior: BlockPrior | None
    b_prior: BlockPrior | None
    terms: tuple[TermSlice, ...]
    n_thresholds: int = 0  # cumulative family: ordered thresholds in place of the intercept

    @property
    def label(self) -> str:
        """How log-density terms name this predictor: nothing for mu, `` (sigma)`` for sigma's formula."""
        return "" if self.dpar == "mu" else f" ({self.dpar})"


@dataclass(frozen=True, eq=False)
class GroupLowering:
    """One group block (see ``design.GroupBlock``): its effects r (levels × k) are sampled together."""

    index: int
    name: str
    n_levels: int
    k: int
    correlated: bool
    centered: bool
    pop_index: np.ndarray  # per column: index into the concatenated population coefficients, or -1
    sd_prior: BlockPrior
    lkj_eta: float


@dataclass(frozen=True, eq=False)
class AuxLowering:
    """A family parameter estimated as one scalar (sigma, nu, shape, ...)."""

    name: str
    prior: BlockPrior


@dataclass(frozen=True, eq=False)
class LoweredModel:
    """Everything the log-density, the constrain map and the predictive kernel read; no closures."""

    layout: Layout
    predictors: tuple[PredictorLowering, ...]
    groups: tuple[GroupLowering, ...]
    aux: tuple[AuxLowering, ...]
    family: FamilyNumerics  # its metadata record is family.family (the spec's)
    link: Link
    dtype: np.dtype
    data: ModelData  # the training data
    blocks: tuple[GroupBlock, ...]  # the design's group blocks: names, levels, members

    @property
    def dim(self) -> int:
        """Length of the unconstrained parameter vector."""
        return self.layout.size

    @property
    def stacked(self) -> bool:
        """A categorical response: mu's linear predictor is the K − 1 predictors side by side."""
        return self.family.family.categories is Categories.NOMINAL


def _cast(x: np.ndarray, dtype: DTypeLike) -> Array:
    return jnp.asarray(np.asarray(x), dtype=np.dtype(dtype))


def summed_likelihood_applies(design: BoundDesign) -> bool:
    """A Gaussian, identity-link likelihood whose rows depend on one grouping factor's effects can be
    summed per level: Σ_i (y_i − w_iᵀθ_g)² = yᵀy − 2θᵀWᵀy + θᵀWᵀWθ. Worth it when levels hold many
    rows compared with the width q of w (q² work per level instead of q per row)."""
    main = design.main
    if not design.spec.family.linear_gaussian or not main.groups or design.dpars:
        return False
    if main.offset is not None or design.additions:
        return False
    if len({g.name for g in main.groups}) != 1:
        return False
    q = int(main.intercept) + main.X.shape[1] + sum(len(g.coef_names) for g in main.groups)
    return bool(design.n_rows / main.groups[0].n_levels >= 4 * q)


def sufficient_statistics(design: BoundDesign, xbar: np.ndarray, dtype: DTypeLike) -> SufficientStatistics:
    """Per-level n, yᵀy, Wᵀy (q, G), WᵀW (q, q, G) with W = [1, X − x̄, Z of each group term], summed in
    float64 on the host."""
    main = design.main
    codes = main.groups[0].codes
    G = main.groups[0].n_levels
    # W's columns one at a time (None: the column of ones), each sum a bincount: one row-length temporary
    # at a time, where the n × q × q products of a whole-matrix sum were 128 MB at 1M rows
    cols = ([None] if main.intercept else []) + [main.X[:, j] - xbar[j] for j in range(main.X.shape[1])]
    cols += [g.Z[:, j] for g in main.groups for j in range(g.Z.shape[1])]
    y = design.y
    q = len(cols)

    def level_sums(*factors: np.ndarray | None) -> np.ndarray:
        present = [f for f in factors if f is not None]
        weights = functools.reduce(np.multiply, present) if present else None
        return np.bincount(codes, weights=weights, minlength=G).astype(float)

    # levels last ((q, G) and (q, q, G)): the log-density reads one contiguous row of levels per column or
    # pair of columns, elementwise; a per-level (G, q, q) einsum became a batched matrix product under the
    # vmap over chains, slow on XLA's CPU backend
    n = level_sums()
    yy = level_sums(y, y)
    wy = np.stack([level_sums(c, y) for c in cols])
    ww = np.empty((q, q, G))
    for i in range(q):
        for j in range(i, q):
            ww[i, j] = ww[j, i] = level_sums(cols[i], cols[j])
    return SufficientStatistics(*(_cast(v, dtype) for v in (n, yy, wy, ww)))


def model_data(model: LoweredModel, predictors: Mapping[str, PredictorDesign], y: np.ndarray | None,
               additions: Mapping[str, np.ndarray]) -> ModelData:
    """The data a log-density or prediction reads, training or new data, centered with the training means.
    ``predictors`` by dpar (every predictor of the model); ``y`` None where only predictions are wanted;
    a ``weights`` addition becomes the row weights."""
    return _model_data(model.predictors, predictors, y, additions, model.dtype)


def _model_data(lowered: tuple[PredictorLowering, ...], predictors: Mapping[str, PredictorDesign],
                y: np.ndarray | None, additions: Mapping[str, np.ndarray], dtype: DTypeLike) -> ModelData:
    n = next(iter(predictors.values())).X.shape[0]
    parts = []
    for pl in lowered:
        pred = predictors[pl.dpar]
        parts.append(PredictorData(
            X=_cast(pred.X - pl.xbar, dtype),
            offset=None if pred.offset is None else _cast(pred.offset, dtype),
            codes=tuple(jnp.asarray(g.codes, dtype=jnp.int32) for g in pred.groups),
            Z=tuple(_cast(g.Z, dtype) for g in pred.groups)))
    return ModelData(
        y=_cast(np.zeros(n) if y is None else y, dtype),
        predictors=tuple(parts),
        additions={k: _cast(v, dtype) for k, v in additions.items() if k != "weights"},
        weights=_cast(additions["weights"], dtype) if "weights" in additions else None)


def lower_model(
    design: BoundDesign, priors: PriorTable, dtype: str = "float64", centered: tuple[bool, ...] | None = None
) -> LoweredModel:
    """Lay out the parameters and gather what the log-density reads. No user mistake can reach this point:
    validation is done.

    ``centered[b]`` samples group block ``b``'s effects directly (``r ~ N(0, Σ)``) instead of the
    non-centered ``z ~ N(0, 1)``; better when each level has much data.
    """
    spec = design.spec
    family = numerics_for(spec.family)
    link = spec.family.link
    aux_links = {a.name: a.link for a in spec.family.aux}
    blocks = group_blocks(design.predictors)
    shapes: list[tuple[ParamKey, tuple[int, ...]]] = []

    # population-level coefficients of every predictor, in one concatenated vector for centered blocks
    preds: list[PredictorLowering] = []
    pop_offsets: list[int] = []
    n_pop = 0
    for j, (dpar, pred) in enumerate(design.predictors):
        d = None if dpar == "mu" else dpar
        p = pred.X.shape[1]
        xbar = pred.X.mean(axis=0) if (pred.intercept and p) else np.zeros(p)
        ip = bp = None
        n_thresholds = design.n_thresholds if dpar == "mu" else 0
        if pred.intercept:
            shapes.append((ParamKey(Slot.INTERCEPT, j), (n_thresholds,) if n_thresholds else ()))
            ip = BlockPrior([priors[PriorTarget(ParamClass.INTERCEPT, dpar=d)]] * max(n_thresholds, 1))
        if p:
            shapes.append((ParamKey(Slot.B, j), (p,)))
            bp = BlockPrior([priors[PriorTarget(ParamClass.B, coef=c, dpar=d)] for c in pred.coef_names])
        terms = []
        for i, g in enumerate(pred.groups):
            bi = next(b for b, blk in enumerate(blocks) if (j, i) in blk.members)
            start, stop = blocks[bi].slices[blocks[bi].members.index((j, i))]
            terms.append(TermSlice(bi, start, stop, tuple(c == 0 and g.term.intercept for c in range(stop - start))))
        preds.append(PredictorLowering(dpar, aux_links.get(dpar, link), pred.intercept, p, xbar, ip, bp,
                                       tuple(terms), n_thresholds))
        pop_offsets.append(n_pop)
        n_pop += 1 + p

    groups: list[GroupLowering] = []
    for b, blk in enumerate(blocks):
        is_centered = bool(centered[b]) if centered is not None else False
        shapes.append((ParamKey(Slot.SD, b), (blk.k,)))
        shapes.append((ParamKey(Slot.BETA if is_centered else Slot.Z, b), (blk.n_levels, blk.k)))
        eta = 1.0
        if blk.correlated:
            shapes.append((ParamKey(Slot.COR, b), (blk.k * (blk.k - 1) // 2,)))
            eta = priors[PriorTarget(ParamClass.COR, group=blk.name)].distribution.args[0]
        pop_index = []
        for (j, i) in blk.members:
            pred = design.predictors[j][1]
            names = (["Intercept"] if pred.intercept and not preds[j].n_thresholds else [None]) + list(pred.coef_names)
            pop_index += [pop_offsets[j] + names.index(c) if c in names else -1 for c in pred.groups[i].coef_names]
        sd_prior = BlockPrior([priors[t] for t in sd_targets(design, blk)])
        groups.append(GroupLowering(b, blk.name, blk.n_levels, blk.k, blk.correlated, is_centered,
                                    np.array(pop_index, dtype=int), sd_prior, float(eta)))
    aux = []
    for a in spec.scalar_aux:
        shapes.append((ParamKey(Slot.AUX, name=a.name), ()))
        aux.append(AuxLowering(a.name, BlockPrior([priors[PriorTarget(ParamClass.AUX, dpar=a.name)]])))

    jdtype = jnp.dtype(dtype)
    train = _model_data(tuple(preds), dict(design.predictors), design.y, dict(design.additions), jdtype)
    if summed_likelihood_applies(design):
        train = train._replace(suff=sufficient_statistics(design, preds[0].xbar, jdtype))
    return LoweredModel(layout=Layout.of(shapes), predictors=tuple(preds), groups=tuple(groups), aux=tuple(aux),
                        family=family, link=link, dtype=np.dtype(dtype), data=train, blocks=blocks)
