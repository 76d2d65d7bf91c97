"""The one naming table: the user-facing (brms) name of every posterior variable and the slice of
:class:`~hdsl.model.params.Params` it holds, read in both directions: constrained draws → named variables
(the ArviZ object) and named variables → constrained draws (predictions from a stored posterior)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .design import BoundDesign, GroupBlock, PredictorDesign, dpar_prefix
from .lower import LoweredModel
from .params import BlockParams, Params, PredictorParams

__all__ = ["Role", "Variable", "NamingTable", "group_coef_dim", "population_names"]


def group_coef_dim(group: str, dpar: str = "mu") -> str:
    return f"{group}__coef" if dpar == "mu" else f"{group}__{dpar}__coef"


def population_names(dpar: str, pred: PredictorDesign) -> list[str]:
    """brms's names of a predictor's population-level coefficients: b_Intercept, b_x, b_sigma_x."""
    prefix = dpar_prefix(dpar)
    return ([f"b_{prefix}Intercept"] if pred.intercept else []) + [f"b_{prefix}{c}" for c in pred.coef_names]


def _cor_pairs(block: GroupBlock) -> list[tuple[int, int, str]]:
    cs = block.coef_names
    return [(a, b, f"cor_{block.name}__{cs[a]}__{cs[b]}") for b in range(len(cs)) for a in range(b)]


class Role(enum.Enum):
    INTERCEPT = "intercept"  # a predictor's b_Intercept (thresholds: a vector)
    B = "b"  # one population-level coefficient
    SD = "sd"  # one standard deviation of a group block
    COR = "cor"  # one correlation of a correlated group block
    AUX = "aux"  # a family parameter
    EFFECTS = "effects"  # r_<g>: every term of one formula on one grouping factor, (levels, coefs)


@dataclass(frozen=True)
class Variable:
    """One posterior variable: its name and where it lives. ``index``: the predictor (INTERCEPT, B) or
    group block (SD, COR); ``column``: the coefficient or sd column; ``pair``: COR's two columns;
    ``parts``: EFFECTS' (block, start, stop) column ranges in order; ``group``/``dpar``/``coef_names``
    name an EFFECTS variable's dimensions."""

    name: str
    role: Role
    index: int = 0
    column: int = 0
    pair: tuple[int, int] = (0, 0)
    parts: tuple[tuple[int, int, int], ...] = ()
    group: str = ""
    dpar: str = "mu"
    coef_names: tuple[str, ...] = ()

    @property
    def coef_dim(self) -> str:
        return group_coef_dim(self.group, self.dpar)


def _variables(design: BoundDesign, blocks: tuple[GroupBlock, ...], aux: tuple[str, ...]) -> tuple[Variable, ...]:
    out: list[Variable] = []
    for j, (dpar, pred) in enumerate(design.predictors):
        names = population_names(dpar, pred)
        if pred.intercept:
            out.append(Variable(names.pop(0), Role.INTERCEPT, index=j))
        out += [Variable(n, Role.B, index=j, column=c) for c, n in enumerate(names)]
    for b, blk in enumerate(blocks):
        out += [Variable(f"sd_{blk.name}__{c}", Role.SD, index=b, column=j) for j, c in enumerate(blk.coef_names)]
    for b, blk in enumerate(blocks):
        if blk.correlated:
            out += [Variable(n, Role.COR, index=b, pair=(i, k)) for i, k, n in _cor_pairs(blk)]
    out += [Variable(a, Role.AUX) for a in aux]
    effects: dict[tuple[str, str], Variable] = {}
    for j, (dpar, pred) in enumerate(design.predictors):
        for i, g in enumerate(pred.groups):
            b = next(b for b, blk in enumerate(blocks) if (j, i) in blk.members)
            start, stop = blocks[b].slices[blocks[b].members.index((j, i))]
            name = f"r_{g.name}" if dpar == "mu" else f"r_{g.name}__{dpar}"
            prev = effects.get((g.name, dpar), Variable(name, Role.EFFECTS, group=g.name, dpar=dpar))
            effects[(g.name, dpar)] = Variable(name, Role.EFFECTS, parts=prev.parts + ((b, start, stop),),
                                               group=g.name, dpar=dpar,
                                               coef_names=prev.coef_names + tuple(g.coef_names))
    return tuple(out) + tuple(effects.values())


@dataclass(frozen=True, eq=False)
class NamingTable:
    """Every posterior variable of a model, with what converting in either direction needs: the training
    column means (a stored b_Intercept is on the user's scale) and the group blocks' levels."""

    variables: tuple[Variable, ...]
    blocks: tuple[GroupBlock, ...]
    xbar: tuple[np.ndarray, ...]  # per predictor
    n_thresholds: tuple[int, ...]  # per predictor
    response: str
    n_rows: int

    @staticmethod
    def of(design: BoundDesign, model: LoweredModel) -> NamingTable:
        return NamingTable(_variables(design, model.blocks, tuple(a.name for a in model.aux)), model.blocks,
                           tuple(pl.xbar for pl in model.predictors),
                           tuple(pl.n_thresholds for pl in model.predictors),
                           design.spec.response.label, design.n_rows)

    @property
    def parameter_names(self) -> list[str]:
        """brms-style names of the population-level, sd, cor and family parameters (not the effects)."""
        return [v.name for v in self.variables if v.role is not Role.EFFECTS]

    @property
    def effects(self) -> list[Variable]:
        return [v for v in self.variables if v.role is Role.EFFECTS]

    def named(self, params: Params) -> dict[str, np.ndarray]:
        """Constrained draws (leading axes: draws) → the named posterior variables."""
        out: dict[str, np.ndarray] = {}
        corr = {}
        for v in self.variables:
            if v.role is Role.INTERCEPT:
                out[v.name] = params.predictors[v.index].intercept
            elif v.role is Role.B:
                out[v.name] = params.predictors[v.index].b[..., v.column]
            elif v.role is Role.SD:
                out[v.name] = params.blocks[v.index].sd[..., v.column]
            elif v.role is Role.COR:
                if v.index not in corr:
                    L = params.blocks[v.index].cor_cholesky
                    corr[v.index] = np.einsum("...ij,...kj->...ik", L, L)
                out[v.name] = corr[v.index][..., v.pair[0], v.pair[1]]
            elif v.role is Role.AUX:
                out[v.name] = params.aux[v.name]
            else:
                out[v.name] = np.concatenate([params.blocks[b].r[..., start:stop] for b, start, stop in v.parts],
                                             axis=-1)
        return out

    def params(self, variables: Mapping[str, np.ndarray]) -> Params:
        """Named variables (leading axis: draws) → constrained draws: the inverse of :meth:`named`, with
        each intercept also on the sampler's centered scale and each correlation matrix's Cholesky factor.
        The standard-normal z of non-centered blocks are not stored, so they stay None."""
        n_pred = len(self.xbar)
        b_cols: list[dict[int, np.ndarray]] = [{} for _ in range(n_pred)]
        intercepts: list[np.ndarray | None] = [None] * n_pred
        sds: list[dict[int, np.ndarray]] = [{} for _ in self.blocks]
        cors: list[dict[tuple[int, int], np.ndarray]] = [{} for _ in self.blocks]
        r_parts: list[dict[int, np.ndarray]] = [{} for _ in self.blocks]
        aux: dict[str, np.ndarray] = {}
        for v in self.variables:
            value = np.asarray(variables[v.name], dtype=float)
            if v.role is Role.INTERCEPT:
                intercepts[v.index] = value
            elif v.role is Role.B:
                b_cols[v.index][v.column] = value
            elif v.role is Role.SD:
                sds[v.index][v.column] = value
            elif v.role is Role.COR:
                cors[v.index][v.pair] = value
            elif v.role is Role.AUX:
                aux[v.name] = value
            else:
                col = 0
                for b, start, stop in v.parts:
                    r_parts[b][start] = value[..., col:col + stop - start]
                    col += stop - start
        predictors = []
        for j in range(n_pred):
            b = np.stack([b_cols[j][c] for c in sorted(b_cols[j])], axis=-1) if b_cols[j] else None
            b0, centered = intercepts[j], None
            if b0 is not None:
                shift = b @ self.xbar[j] if b is not None else np.zeros(b0.shape[:1])
                # thresholds (b0 with a threshold dim) enter as θ − η: they shift the other way
                centered = b0 - shift[:, None] if self.n_thresholds[j] else b0 + shift
            predictors.append(PredictorParams(b0, centered, b))
        blocks = []
        for i, blk in enumerate(self.blocks):
            sd = np.stack([sds[i][c] for c in range(blk.k)], axis=-1)
            L = None
            if blk.correlated:
                n, k = sd.shape
                C = np.broadcast_to(np.eye(k), (n, k, k)).copy()
                for (a, bb), value in cors[i].items():
                    C[:, a, bb] = C[:, bb, a] = value
                L = np.linalg.cholesky(C)
            r = np.concatenate([r_parts[i][s] for s in sorted(r_parts[i])], axis=-1)
            blocks.append(BlockParams(sd, L, r, None))
        return Params(tuple(predictors), tuple(blocks), aux)

    def dims_and_coords(self) -> tuple[dict[str, list[str]], dict[str, list[Any]]]:
        """Named dimensions: group levels and coefficients for ``r_<g>``, ``obs_id`` for the response."""
        dims: dict[str, list[str]] = {}
        coords: dict[str, list[Any]] = {}
        for v in self.effects:
            dims[v.name] = [v.group, v.coef_dim]
            coords[v.group] = list(self.blocks[v.parts[0][0]].levels)
            coords[v.coef_dim] = list(v.coef_names)
        if self.n_thresholds and self.n_thresholds[0]:
            dims["b_Intercept"] = ["threshold"]
            coords["threshold"] = list(range(1, self.n_thresholds[0] + 1))
        dims[self.response] = ["obs_id"]
        coords["obs_id"] = list(np.arange(self.n_rows))
        return dims, coords
