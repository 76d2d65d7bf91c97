"""The bound design's records, and how one linear predictor's columns are made from data: R's coding of
terms, group level codes, and the :class:`Encoding` (factor levels and contrasts, transform state, group
levels) that training data fix and new data reuse. The stage itself (checks, missing rows, the response
and its additions) is :mod:`hdsl.model.bind`.

Group effects are gathered by level code (``r[code]``), never through a dense n × levels matrix.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, GroupingFactorWarning
from ..language.families import Categories
from ..language.ir import GroupTerm, LinearPredictor, ModelSpec, Term
from .coding import brms_name, contrast_columns
from .terms import CategoricalColumn, evaluate_factor, evaluate_term_factor, is_categorical

__all__ = [
    "GroupDesign",
    "PredictorDesign",
    "BoundDesign",
    "Encoding",
    "NewLevels",
    "bind_predictor",
    "GroupBlock",
    "group_blocks",
    "dpar_prefix",
]


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


@dataclass(frozen=True, eq=False)
class Encoding:
    """How the training data were encoded, fixed once by binding them and reused for new data:
    per factor label its state (a categorical's levels and contrast, ``scale``'s mean and sd, ``poly``'s
    basis), per grouping factor its levels, and a categorical response's categories."""

    factors: Mapping[str, Mapping[str, Any]]
    group_levels: Mapping[str, tuple[str, ...]]
    categories: tuple[str, ...] = ()


class NewLevels(enum.Enum):
    """What binding new data does with a group level the training data did not have."""

    ERROR = "error"  # a DataError naming the level
    APPEND = "append"  # coded after the training levels (predictions draw their effects from the population)


class Codebook:
    """The encoding while one binding runs: training fills it, new data read a copy of the training
    encoding (a state missing there, as for a term of ``re_formula`` the model lacks, is computed from the
    new data and stays in this copy)."""

    def __init__(self, encoding: Encoding | None = None):
        self.factors: dict[str, Mapping[str, Any]] = dict(encoding.factors) if encoding else {}
        self.group_levels: dict[str, tuple[str, ...]] = dict(encoding.group_levels) if encoding else {}
        self.training = encoding is None

    def freeze(self, categories: tuple[str, ...] = ()) -> Encoding:
        return Encoding(MappingProxyType(dict(self.factors)), MappingProxyType(dict(self.group_levels)), categories)


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
    encoding: Encoding  # what new data reuse

    @property
    def categories(self) -> tuple[str, ...]:
        """A categorical response's categories, coded 1..K in y; else empty."""
        return self.encoding.categories

    @property
    def n_thresholds(self) -> int:
        """An ordinal (cumulative) response's thresholds, which take the place of mu's intercept; else 0."""
        ordered = self.spec.family.categories is Categories.ORDERED
        return len(self.categories) - 1 if ordered and self.main.intercept else 0

    @property
    def predictors(self) -> tuple[tuple[str, PredictorDesign], ...]:
        """Every linear predictor with the parameter it predicts: ``mu`` (the first formula) first. A
        categorical response has one per category after the first, named as brms: mu2, mu3, ..."""
        if self.spec.family.categories is Categories.NOMINAL:
            own = dict(self.dpars)  # a category's own formula (mu3 ~ ...), else the first formula
            return tuple((f"mu{k}", own.get(f"mu{k}", self.main)) for k in range(2, len(self.categories) + 1))
        return (("mu", self.main), *self.dpars)


def dpar_prefix(dpar: str) -> str:
    """brms's name prefix for a parameter's coefficients: none for mu, ``sigma_`` for sigma."""
    return "" if dpar == "mu" else f"{dpar}_"


@dataclass(frozen=True)
class GroupBlock:
    """Group-level effects drawn together from one (multivariate) normal: one group term, or every term
    on the same grouping factor with the same ID across formulas (brms's ``(1 | p | g)``), which makes
    their effects correlated. ``members`` are (predictor index, term index) with the block's columns
    ``slices[m]`` = (start, stop) for each."""

    name: str
    members: tuple[tuple[int, int], ...]
    slices: tuple[tuple[int, int], ...]
    coef_names: tuple[str, ...]  # brms's names, with the parameter prefix ("sigma_Intercept")
    correlated: bool
    levels: tuple[str, ...]

    @property
    def k(self) -> int:
        return len(self.coef_names)

    @property
    def n_levels(self) -> int:
        return len(self.levels)


def group_blocks(predictors: tuple[tuple[str, PredictorDesign], ...]) -> tuple[GroupBlock, ...]:
    """Group terms of all predictors, joined where they share a grouping factor and an ID."""
    order: list[tuple[str, str | None, int, int]] = []
    for j, (_, pred) in enumerate(predictors):
        for i, g in enumerate(pred.groups):
            order.append((g.name, g.term.id, j, i))
    blocks: list[GroupBlock] = []
    done: set[tuple[int, int]] = set()
    for name, gid, j, i in order:
        if (j, i) in done:
            continue
        members = [(j, i)] if gid is None else [(jj, ii) for n, d, jj, ii in order if n == name and d == gid]
        done.update(members)
        slices, coefs, correlated = [], [], False
        for jj, ii in members:
            dpar, g = predictors[jj][0], predictors[jj][1].groups[ii]
            slices.append((len(coefs), len(coefs) + len(g.coef_names)))
            coefs += [dpar_prefix(dpar) + c for c in g.coef_names]
            correlated |= g.term.correlated
        blocks.append(GroupBlock(name, tuple(members), tuple(slices), tuple(coefs), correlated and len(coefs) > 1,
                                 predictors[j][1].groups[i].levels))
    return tuple(blocks)


def _variable_order(terms: tuple[Term, ...]) -> dict[str, tuple[float, ...]]:
    """R orders the variables of a formula by first appearance, and a term's factors by that order."""
    order: dict[str, tuple[float, ...]] = {}
    for i, f in enumerate(f for t in terms for f in t.factors):
        pos = getattr(f.expr, "pos", None)
        key = (pos.line, pos.column) if pos is not None else (float("inf"), i)
        order[f.label] = min(order.get(f.label, key), key)
    return order


def _full_coding(terms: tuple[Term, ...], intercept: bool, categorical: set[str]) -> list[set[str]]:
    """Per term, the factors R's ``model.matrix`` codes by indicators (every level) instead of contrasts.

    R's rule (``TermCode`` in ``src/library/stats/src/model.c``): a factor in a term gets contrasts when the
    term without it is empty or contained in a preceding term, else all its levels; without an
    intercept, the first factor of the first term holding one gets all levels.
    """
    sets = [frozenset(f.label for f in t.factors) for t in terms]
    full: list[set[str]] = []
    for j, t in enumerate(terms):
        full.append({f.label for f in t.factors if f.label in categorical
                     and (rest := sets[j] - {f.label}) and not any(rest <= sets[i] for i in range(j))})
    if not intercept:
        for j, t in enumerate(terms):
            first = next((f.label for f in t.factors if f.label in categorical), None)
            if first is not None:
                full[j].add(first)
                break
    return full


def _bind_terms(
    terms: tuple[Term, ...], intercept: bool, data: pd.DataFrame, book: Codebook
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Columns of a list of terms, R's order and coding, with brms's coefficient names."""
    order = _variable_order(terms)
    terms = tuple(Term(tuple(sorted(t.factors, key=lambda f: order[f.label]))) for t in terms)
    categorical = {f.label for t in terms for f in t.factors
                   if ("levels" in book.factors[f.label] if f.label in book.factors else is_categorical(f, data))}
    blocks, names = [], []
    for term, full in zip(terms, _full_coding(terms, intercept, categorical), strict=True):
        c, labs = _term_columns(term, full, data, book)
        blocks.append(c)
        names.extend(labs)
    X = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(data), 0))
    return X, tuple(brms_name(n) for n in names)


def _term_columns(
    term: Term, full: set[str], data: pd.DataFrame, book: Codebook
) -> tuple[np.ndarray, tuple[str, ...]]:
    cols = np.ones((len(data), 1))
    labels: tuple[str, ...] = ("",)
    for f in term.factors:
        fc = evaluate_term_factor(f, data, book.factors.get(f.label))
        book.factors.setdefault(f.label, fc.state)
        if isinstance(fc, CategoricalColumn):
            values, labs = contrast_columns(fc, f.label in full)
        else:
            values, labs = fc.values, fc.labels
        # R's column order: the first factor of a term varies fastest
        cols = (values[:, :, None] * cols[:, None, :]).reshape(len(data), -1)
        labels = tuple(f"{a}:{b}" if a else b for b in labs for a in labels)
    bad = ~np.isfinite(cols)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"term '{labels[col]}' is not finite at row {data.index[row]!r} (value {cols[row, col]})",
            column=labels[col],
        )
    return cols, labels


def _check_unique(names: tuple[str, ...], where: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise DataError(f"{where} has two columns named '{n}' (brms's naming removes brackets, commas, "
                            "quotes and spaces, so different terms or levels can end up with one name)",
                            column=n, hint="rename the column or its levels, or drop one of the terms")
        seen.add(n)


def _level_labels(data: pd.DataFrame, group: tuple[str, ...]) -> pd.Series:
    parts = [data[c].astype(str) if not pd.api.types.is_float_dtype(data[c]) else
             data[c].map(lambda v: str(int(v)) if float(v).is_integer() else str(v)) for c in group]
    out = parts[0]
    for p in parts[1:]:
        out = out + "_" + p
    return out


def _distinct_labels(data: pd.DataFrame, group: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Each row's index into the distinct level labels, and those labels (as ``_level_labels`` writes
    them): the labels are made for one row per distinct value, not for every row (a million Python
    strings cost ~100 MB and fragment the heap)."""
    combined = np.zeros(len(data), dtype=np.int64)
    for c in group:
        codes, uniques = pd.factorize(data[c], use_na_sentinel=False)
        combined = combined * max(1, len(uniques)) + codes
    row_codes, distinct = pd.factorize(combined)
    # factorize numbers values in order of appearance: a value's first row is where the running max grows
    first = np.flatnonzero(np.r_[True, row_codes[1:] > np.maximum.accumulate(row_codes)[:-1]])
    return row_codes, list(_level_labels(data.iloc[first], group))


def _bind_group(
    term: GroupTerm, data: pd.DataFrame, book: Codebook, new_levels: NewLevels = NewLevels.ERROR
) -> GroupDesign:
    """``NewLevels.APPEND``: levels unseen in training are appended after the training ones (codes
    ≥ the training count, in natural order) instead of raising; the training encoding is not changed."""
    row_codes, labels = _distinct_labels(data, term.group)
    if term.group_label in book.group_levels:
        levels = book.group_levels[term.group_label]
    else:
        levels = tuple(sorted(set(labels), key=natural_key))
        book.group_levels[term.group_label] = levels
        _warn_if_not_grouping(term, data, len(levels))
        if len(levels) < 2:
            raise DataError(f"grouping factor '{term.group_label}' has only one level ('{levels[0]}') in the data; "
                            "a group term needs at least 2 levels to estimate their spread",
                            column=term.group_label, hint=f"drop the group term (1 | {term.group_label})")
    lookup = {lv: i for i, lv in enumerate(levels)}
    unseen = [lv for lv in labels if lv not in lookup]
    if unseen and new_levels is NewLevels.APPEND:
        levels = levels + tuple(sorted(set(unseen), key=natural_key))
        lookup = {lv: i for i, lv in enumerate(levels)}
    codes = np.array([lookup.get(lv, -1) for lv in labels], dtype=np.int32)[row_codes]
    if (codes < 0).any():
        first = labels[row_codes[int(np.argmax(codes < 0))]]
        raise DataError(f"level '{first}' of grouping factor '{term.group_label}' was not in the training data",
                        column=term.group_label,
                        hint="pass allow_new_levels=True to draw its effects from the fitted population "
                             "distribution, or re_formula='~0' to leave the group-level effects out")
    Z, names = _bind_terms(term.terms, term.intercept, data, book)
    if term.intercept:
        Z = np.concatenate([np.ones((len(data), 1)), Z], axis=1)
        names = ("Intercept", *names)
    _check_unique(names, f"group term for '{term.group_label}'")
    return GroupDesign(term, levels, codes, Z, names)


def _warn_if_not_grouping(term: GroupTerm, data: pd.DataFrame, n_levels: int) -> None:
    numeric = [c for c in term.group if pd.api.types.is_numeric_dtype(data[c]) and not
               pd.api.types.is_bool_dtype(data[c])]
    if numeric and n_levels > 50 and n_levels > 0.5 * len(data):
        warnings.warn(
            f"grouping factor '{term.group_label}' is numeric and has {n_levels} levels for {len(data)} "
            "rows; it is probably a measurement, not a grouping factor (unless an observation-level effect "
            "is meant)",
            GroupingFactorWarning, stacklevel=4,
        )


def natural_key(label: str):
    """Levels sort as numbers where they are numbers (2 before 10), then as text."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def bind_predictor(
    pred: LinearPredictor, data: pd.DataFrame, book: Codebook, new_levels: NewLevels = NewLevels.ERROR
) -> PredictorDesign:
    """Columns of one linear predictor, encoded by ``book`` (filled where training data are bound).
    ``new_levels`` says what an unseen group level does (new data only)."""
    X, names = _bind_terms(pred.terms, pred.intercept, data, book)
    _check_unique(names, "the population-level design")
    groups = tuple(_bind_group(g, data, book, new_levels) for g in pred.groups)
    offset = None
    if pred.offsets:
        offset = np.zeros(len(data))
        for f in pred.offsets:
            offset = offset + evaluate_factor(f, data).values[:, 0]
    return PredictorDesign(pred.intercept, X, names, groups, offset)


