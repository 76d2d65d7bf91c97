"""Stage 3: IR + DataFrame → bound design: arrays the log-density reads, plus the encoding
(level codes, transform state) that new data must reuse.

Group effects are gathered by level code (``r[code]``), never through a dense n × levels matrix.
Rows with missing values in any used column are dropped and counted (or refused, with
``na_action="error"``); nothing is dropped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import DataError
from .families import get_family
from .ir import Factor, GroupTerm, LinearPredictor, ModelSpec, Term
from .terms import check_columns, columns_used, evaluate_factor

__all__ = ["GroupDesign", "PredictorDesign", "BoundDesign", "bind_design", "MissingRowsWarning"]


class MissingRowsWarning(UserWarning):
    """Rows were dropped because a used column had missing values."""


@dataclass(frozen=True, eq=False)
class GroupDesign:
    """One group term bound to data: level codes per row and the columns its effects multiply."""

    term: GroupTerm
    levels: tuple[str, ...]
    codes: np.ndarray  # (n,) int32, index into levels
    Z: np.ndarray  # (n, k)
    coef_names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.term.group_label

    @property
    def n_levels(self) -> int:
        return len(self.levels)


@dataclass(frozen=True, eq=False)
class PredictorDesign:
    """A linear predictor bound to data."""

    intercept: bool
    X: np.ndarray  # (n, p) population-level columns, intercept excluded
    coef_names: tuple[str, ...]
    groups: tuple[GroupDesign, ...]
    offset: np.ndarray | None
    factor_state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class BoundDesign:
    spec: ModelSpec
    y: np.ndarray
    main: PredictorDesign
    dpars: tuple[tuple[str, PredictorDesign], ...]
    additions: Mapping[str, np.ndarray]
    n_rows: int
    n_dropped: int
    row_index: np.ndarray  # index labels of the rows used


def _all_factors(spec: ModelSpec) -> list[Factor]:
    preds = [spec.predictor] + [p for _, p in spec.dpars]
    factors = [spec.response.factor] + [f for _, f in spec.response.additions]
    for p in preds:
        factors += [f for t in p.terms for f in t.factors] + list(p.offsets)
        for g in p.groups:
            factors += [f for t in g.terms for f in t.factors]
    return factors


def _group_columns(spec: ModelSpec) -> list[str]:
    preds = [spec.predictor] + [p for _, p in spec.dpars]
    return list(dict.fromkeys(c for p in preds for g in p.groups for c in g.group))


def _term_columns(term: Term, data: pd.DataFrame, state: dict[str, Any]) -> tuple[np.ndarray, tuple[str, ...]]:
    cols = np.ones((len(data), 1))
    labels: tuple[str, ...] = ("",)
    for f in term.factors:
        fc = evaluate_factor(f, data, state.get(f.label))
        state[f.label] = fc.state
        cols = (cols[:, :, None] * fc.values[:, None, :]).reshape(len(data), -1)
        labels = tuple(f"{a}:{b}" if a else b for a in labels for b in fc.labels)
    bad = ~np.isfinite(cols)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"term '{labels[col]}' is not finite at row {data.index[row]!r} (value {cols[row, col]})",
            column=labels[col],
        )
    return cols, labels


def _level_labels(data: pd.DataFrame, group: tuple[str, ...]) -> pd.Series:
    parts = [data[c].astype(str) if not pd.api.types.is_float_dtype(data[c]) else
             data[c].map(lambda v: str(int(v)) if float(v).is_integer() else str(v)) for c in group]
    out = parts[0]
    for p in parts[1:]:
        out = out + "_" + p
    return out


def _bind_group(term: GroupTerm, data: pd.DataFrame, state: dict[str, Any]) -> GroupDesign:
    labels = _level_labels(data, term.group)
    key = f"levels:{term.group_label}"
    if key in state:
        levels = state[key]
    else:
        levels = tuple(sorted(labels.unique(), key=_natural_key))
        state[key] = levels
    lookup = {lv: i for i, lv in enumerate(levels)}
    codes = labels.map(lookup)
    if codes.isna().any():
        unseen = labels[codes.isna()].iloc[0]
        raise DataError(f"level '{unseen}' of '{term.group_label}' was not in the training data",
                        column=term.group_label)
    cols = [np.ones((len(data), 1))] if term.intercept else []
    names: list[str] = ["Intercept"] if term.intercept else []
    for t in term.terms:
        c, labs = _term_columns(t, data, state)
        cols.append(c)
        names.extend(labs)
    Z = np.concatenate(cols, axis=1)
    if len(set(names)) != len(names):
        raise DataError(f"group term for '{term.group_label}' repeats a coefficient: {names}",
                        column=term.group_label)
    return GroupDesign(term, levels, codes.to_numpy(dtype=np.int32), Z, tuple(names))


def _natural_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def bind_predictor(pred: LinearPredictor, data: pd.DataFrame, state: dict[str, Any]) -> PredictorDesign:
    """Columns of one linear predictor; ``state`` is read if filled (new data) or filled (training)."""
    blocks, names = [], []
    for t in pred.terms:
        c, labs = _term_columns(t, data, state)
        blocks.append(c)
        names.extend(labs)
    X = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(data), 0))
    groups = tuple(_bind_group(g, data, state) for g in pred.groups)
    offset = None
    if pred.offsets:
        offset = np.zeros(len(data))
        for f in pred.offsets:
            offset = offset + evaluate_factor(f, data).values[:, 0]
    return PredictorDesign(pred.intercept, X, tuple(names), groups, offset, state)


def bind_design(
    spec: ModelSpec, data: pd.DataFrame, *, na_action: Literal["drop", "error"] = "drop"
) -> BoundDesign:
    """Bind the model to data. Raises DataError naming the column at fault."""
    if not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame(data)
        except Exception as exc:  # noqa: BLE001 - anything pandas refuses is a data error
            raise DataError(f"data must be a pandas DataFrame or convertible to one: {exc}") from None
    if len(data) == 0:
        raise DataError("the data frame is empty")
    names = [n for f in _all_factors(spec) for n in columns_used(f.expr)]
    check_columns(names, data, spec.text)
    for g in _group_columns(spec):
        if g not in data.columns:
            raise DataError(f"unknown grouping column '{g}'", column=g)
    used = list(dict.fromkeys([n.name for n in names] + _group_columns(spec)))
    for c in used:
        if data[c].isna().all():
            raise DataError(f"column '{c}' has no values (all missing)", column=c)
    missing = data[used].isna().any(axis=1)
    n_dropped = int(missing.sum())
    if n_dropped:
        cols = [c for c in used if data[c].isna().any()]
        if na_action == "error":
            first = data.index[missing.to_numpy()][0]
            raise DataError(f"{n_dropped} rows have missing values (in {', '.join(cols)}; first at row {first!r})",
                            column=cols[0], hint="drop them first, or use na_action='drop'")
        warnings.warn(f"dropped {n_dropped} of {len(data)} rows with missing values in {', '.join(cols)}",
                      MissingRowsWarning, stacklevel=3)
        data = data.loc[~missing]
    family = get_family(spec.family.name)
    y_cols = evaluate_factor(spec.response.factor, data)
    y = y_cols.values[:, 0]
    family.check_response(y, spec.response.label)
    state: dict[str, Any] = {}
    main = bind_predictor(spec.predictor, data, state)
    dpars = tuple((name, bind_predictor(p, data, state)) for name, p in spec.dpars)
    additions = {name: evaluate_factor(f, data).values[:, 0] for name, f in spec.response.additions}
    return BoundDesign(spec, y, main, dpars, additions, len(data), n_dropped, data.index.to_numpy())
