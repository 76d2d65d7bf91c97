"""Stage 3: IR + DataFrame → bound design: arrays the log-density reads, plus the encoding
(level codes, transform state) that new data must reuse.

Group effects are gathered by level code (``r[code]``), never through a dense n × levels matrix.
Rows with missing values in any used column are dropped and counted (or refused, with
``na_action="error"``); nothing is dropped silently.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, Position
from ..language.ir import Factor, GroupTerm, LinearPredictor, ModelSpec, Term
from ..language.syntax import Name
from .coding import brms_name, contrast_columns
from .families import CENSORING_CODES, get_family
from .terms import (
    CategoricalColumn,
    check_columns,
    check_functions,
    columns_used,
    evaluate_factor,
    evaluate_term_factor,
    is_categorical,
)

__all__ = [
    "GroupDesign",
    "PredictorDesign",
    "BoundDesign",
    "bind_design",
    "bind_predictor",
    "bind_additions",
    "GroupBlock",
    "response_values",
    "group_blocks",
    "dpar_prefix",
    "MissingRowsWarning",
    "GroupingFactorWarning",
]


class MissingRowsWarning(UserWarning):
    """Rows were dropped because a used column had missing values."""


class GroupingFactorWarning(UserWarning):
    """A numeric grouping column with about one level per row: probably not a grouping factor."""


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
    categories: tuple[str, ...] = ()  # a categorical response's categories, coded 1..K in y

    @property
    def n_thresholds(self) -> int:
        """An ordinal (cumulative) response's thresholds, which take the place of mu's intercept; else 0."""
        ordered = get_family(self.spec.family.name).categories == "ordered"
        return len(self.categories) - 1 if ordered and self.main.intercept else 0

    @property
    def predictors(self) -> tuple[tuple[str, PredictorDesign], ...]:
        """Every linear predictor with the parameter it predicts: ``mu`` (the first formula) first. A
        categorical response has one per category after the first, named as brms: mu2, mu3, ..."""
        if get_family(self.spec.family.name).categories == "nominal":
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
    terms: tuple[Term, ...], intercept: bool, data: pd.DataFrame, state: dict[str, Any]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Columns of a list of terms, R's order and coding, with brms's coefficient names."""
    order = _variable_order(terms)
    terms = tuple(Term(tuple(sorted(t.factors, key=lambda f: order[f.label]))) for t in terms)
    categorical = {f.label for t in terms for f in t.factors
                   if ("levels" in state[f.label] if f.label in state else is_categorical(f, data))}
    blocks, names = [], []
    for term, full in zip(terms, _full_coding(terms, intercept, categorical), strict=True):
        c, labs = _term_columns(term, full, data, state)
        blocks.append(c)
        names.extend(labs)
    X = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(data), 0))
    return X, tuple(brms_name(n) for n in names)


def _term_columns(
    term: Term, full: set[str], data: pd.DataFrame, state: dict[str, Any]
) -> tuple[np.ndarray, tuple[str, ...]]:
    cols = np.ones((len(data), 1))
    labels: tuple[str, ...] = ("",)
    for f in term.factors:
        fc = evaluate_term_factor(f, data, state.get(f.label))
        state[f.label] = fc.state
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
    term: GroupTerm, data: pd.DataFrame, state: dict[str, Any], allow_new_levels: bool = False
) -> GroupDesign:
    """``allow_new_levels``: levels unseen in training are appended after the training ones (codes
    ≥ the training count, in natural order) instead of raising; the training state is not changed."""
    row_codes, labels = _distinct_labels(data, term.group)
    key = f"levels:{term.group_label}"
    if key in state:
        levels = state[key]
    else:
        levels = tuple(sorted(set(labels), key=_natural_key))
        state[key] = levels
        _warn_if_not_grouping(term, data, len(levels))
        if len(levels) < 2:
            raise DataError(f"grouping factor '{term.group_label}' has only one level ('{levels[0]}') in the data; "
                            "a group term needs at least 2 levels to estimate their spread",
                            column=term.group_label, hint=f"drop the group term (1 | {term.group_label})")
    lookup = {lv: i for i, lv in enumerate(levels)}
    unseen = [lv for lv in labels if lv not in lookup]
    if unseen and allow_new_levels:
        levels = levels + tuple(sorted(set(unseen), key=_natural_key))
        lookup = {lv: i for i, lv in enumerate(levels)}
    codes = np.array([lookup.get(lv, -1) for lv in labels], dtype=np.int32)[row_codes]
    if (codes < 0).any():
        first = labels[row_codes[int(np.argmax(codes < 0))]]
        raise DataError(f"level '{first}' of '{term.group_label}' was not in the training data",
                        column=term.group_label,
                        hint="pass allow_new_levels=True to draw its effects from the fitted population "
                             "distribution")
    Z, names = _bind_terms(term.terms, term.intercept, data, state)
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


def _natural_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def bind_predictor(
    pred: LinearPredictor, data: pd.DataFrame, state: dict[str, Any], *, allow_new_levels: bool = False
) -> PredictorDesign:
    """Columns of one linear predictor; ``state`` is read if filled (new data) or filled (training).
    ``allow_new_levels`` (new data only) codes unseen group levels after the training ones."""
    X, names = _bind_terms(pred.terms, pred.intercept, data, state)
    _check_unique(names, "the population-level design")
    groups = tuple(_bind_group(g, data, state, allow_new_levels) for g in pred.groups)
    offset = None
    if pred.offsets:
        offset = np.zeros(len(data))
        for f in pred.offsets:
            offset = offset + evaluate_factor(f, data).values[:, 0]
    return PredictorDesign(pred.intercept, X, names, groups, offset, state)


def _check_response_not_predictor(spec: ModelSpec) -> None:
    """The response column may not reappear as a term on the right-hand side (lme4 would fit y ~ y)."""
    from ..language.syntax import Name

    if not isinstance(spec.response.factor.expr, Name):
        return
    response = spec.response.factor.expr.name
    for p in [spec.predictor] + [p for _, p in spec.dpars]:
        for f in (f for t in p.terms for f in t.factors):
            if isinstance(f.expr, Name) and f.expr.name == response:
                raise FormulaError(f"the response '{response}' is also used as a predictor", position=f.expr.pos,
                                   text=spec.text, hint=f"remove '{response}' from the right-hand side")


def _check_not_mixed(data: pd.DataFrame, column: str) -> None:
    """A text column whose values are nearly all numbers is a numeric column with a typo, not categories."""
    col = data[column]
    if col.dtype != object:
        return
    numeric = pd.to_numeric(col, errors="coerce")
    bad = numeric.isna() & col.notna()
    if bad.any() and (~bad).sum() >= max(2, 0.8 * len(col)):
        row = bad.index[bad.to_numpy()][0]
        raise DataError(f"column '{column}' holds numbers and text: row {row!r} holds {col[row]!r}",
                        column=column, row=row,
                        hint=f"fix that value, or make '{column}' categorical on purpose with C({column})")


def _with_row_label(exc: DataError, index: pd.Index) -> DataError:
    """A family check counts rows from 0 in the rows used; name the row by the caller's index label."""
    if not isinstance(exc.row, int | np.integer) or index[exc.row] == exc.row:
        return exc
    label = index[exc.row]
    label = label.item() if isinstance(label, np.generic) else label
    message = exc.message.replace(f"row {exc.row} holds", f"row {label!r} holds")
    return DataError(message, column=exc.column, row=label, hint=exc.hint)


def _upper_bound_only_columns(spec: ModelSpec) -> set[str]:
    """Columns used only by the upper bound of ``cens(c, y2)``: brms leaves them empty on rows that are
    not interval-censored, so their missing values do not drop rows."""
    upper = [f for name, f in spec.response.additions if name == "cens_upper"]
    if not upper:
        return set()
    others = [f for f in _all_factors(spec) if f not in upper]
    return ({n.name for f in upper for n in columns_used(f.expr)}
            - {n.name for f in others for n in columns_used(f.expr)} - set(_group_columns(spec)))


def _row(index: pd.Index, i: int) -> Any:
    label = index[i]
    return label.item() if isinstance(label, np.generic) else label


def _censoring_codes(factor: Factor, data: pd.DataFrame) -> np.ndarray:
    """brms's censoring indicator as codes -1 (left), 0 (none), 1 (right), 2 (interval): from the words,
    from those numbers, or from true/false (right/none)."""
    expr = factor.expr
    if isinstance(expr, Name) and expr.name in data and not pd.api.types.is_numeric_dtype(data[expr.name]):
        raw = data[expr.name].to_numpy(dtype=object)
        codes = np.array([CENSORING_CODES.get(str(v).strip().lower(), np.nan) for v in raw], dtype=float)
        bad = np.isnan(codes)
    else:
        raw = evaluate_factor(factor, data).values[:, 0]
        codes = raw
        bad = ~np.isin(codes, list(CENSORING_CODES.values()))
    if bad.any():
        i = int(np.argmax(bad))
        value = raw[i].item() if isinstance(raw[i], np.generic) else raw[i]
        raise DataError(f"censoring indicator '{factor.label}' must hold 'left', 'none', 'right' or 'interval' "
                        f"(or -1, 0, 1, 2; true/false for right/none); row {_row(data.index, i)!r} holds {value!r}",
                        column=factor.label, row=_row(data.index, i))
    return codes


def bind_additions(spec: ModelSpec, data: pd.DataFrame, y: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The response's addition terms as one float per row, checked: ``cens`` as codes -1/0/1/2, and
    ``cens_upper`` (the ``y2`` of ``cens(c, y2)``) equal to ``y`` on rows that are not interval-censored
    (where it may be missing). Raises DataError naming the column and the first bad row."""
    factors = dict(spec.response.additions)
    out: dict[str, np.ndarray] = {}
    for name, f in spec.response.additions:
        out[name] = _censoring_codes(f, data) if name == "cens" else evaluate_factor(f, data).values[:, 0]
    if "se" in out:
        se = out["se"]
        bad = ~np.isfinite(se) | (se <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"standard errors '{factors['se'].label}' must be finite and greater than 0; "
                            f"row {_row(data.index, i)!r} holds {se[i].item()!r}", column=factors["se"].label,
                            row=_row(data.index, i))
    if "cens" in out:
        interval = out["cens"] == 2
        if interval.any() and "cens_upper" not in out:
            i = int(np.argmax(interval))
            raise DataError(f"row {_row(data.index, i)!r} is interval-censored, but cens() has no upper bound",
                            column=factors["cens"].label, row=_row(data.index, i),
                            hint=f"write cens({factors['cens'].label}, upper) with the column of upper bounds")
        if "cens_upper" in out:
            _check_upper(out["cens_upper"], interval, y, factors["cens_upper"].label, spec.family.name, data.index)
            out["cens_upper"] = np.where(interval, out["cens_upper"], np.nan if y is None else y)
    return out


def _check_upper(upper: np.ndarray, interval: np.ndarray, y: np.ndarray | None, label: str, family: str,
                 index: pd.Index) -> None:
    bad = interval & ~np.isfinite(upper)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"upper bound '{label}' of an interval-censored row must be a finite number; "
                        f"row {_row(index, i)!r} holds {upper[i].item()!r}", column=label, row=_row(index, i))
    if y is None:
        return
    bad = interval & ~(upper > y)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"upper bound '{label}' must be greater than the response on interval-censored rows; "
                        f"row {_row(index, i)!r} holds {upper[i].item()!r} for a response of {y[i].item()!r}",
                        column=label, row=_row(index, i))
    try:
        get_family(family).check_response(np.where(interval, upper, y), label)
    except DataError as exc:
        raise _with_row_label(exc, index) from None


def response_values(spec: ModelSpec, data: pd.DataFrame,
                    categories: tuple[str, ...] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """The response as numbers; a categorical response (cumulative, categorical families) coded 1..K in the
    order of its categories: a pandas categorical's order, else sorted (numbers by value). ``categories``
    from training codes new data the same way."""
    family = get_family(spec.family.name)
    if family.categories is None:
        return evaluate_factor(spec.response.factor, data).values[:, 0], ()
    from ..language.syntax import Name

    expr = spec.response.factor.expr
    if not isinstance(expr, Name):
        raise FormulaError(f"the response of the {family.name} family must be a column, not "
                           f"'{spec.response.label}'", position=getattr(expr, "pos", None), text=spec.text)
    col = data[expr.name]
    labels = col.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    if categories is None:
        if isinstance(col.dtype, pd.CategoricalDtype):
            seen = set(labels)
            categories = tuple(str(c) for c in col.cat.categories if str(c) in seen)
        else:
            categories = tuple(sorted(labels.unique(), key=_natural_key))
        if len(categories) < 2:
            raise DataError(f"the response '{expr.name}' has one category ('{categories[0]}'); the "
                            f"{family.name} family needs at least 2", column=expr.name)
    lookup = {c: i + 1 for i, c in enumerate(categories)}
    codes = labels.map(lookup)
    if codes.isna().any():
        row = codes.index[codes.isna().to_numpy()][0]
        raise DataError(f"the response '{expr.name}' holds {col[row]!r} at row {row!r}, which is not one of its "
                        f"categories in the training data ({', '.join(categories)})", column=expr.name, row=row)
    return codes.to_numpy(dtype=float), categories


def _formula_position(text: str, name: str) -> Position | None:
    """Where the formula for ``name`` (``name ~ ...`` at the start of a line) is in the spec text."""
    for lineno, line in enumerate(text.splitlines(), 1):
        m = re.match(rf"\s*({re.escape(name)})\s*~", line)
        if m:
            return Position(lineno, m.start(1) + 1, m.end(1) + 1)
    return None


def bind_design(
    spec: ModelSpec, data: pd.DataFrame, *, na_action: Literal["drop", "error"] = "drop"
) -> BoundDesign:
    """Bind the model to data. Raises DataError naming the column at fault."""
    if isinstance(data, Mapping) and not isinstance(data, pd.DataFrame):
        lengths = {str(k): len(v) for k, v in data.items() if hasattr(v, "__len__") and not isinstance(v, str)}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"'{k}' has {n}" for k, n in lengths.items())
            raise DataError(f"the data columns have different lengths: {listed}",
                            column=max(lengths, key=lambda k: lengths[k] != max(lengths.values())))
    if not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame(data)
        except Exception as exc:  # noqa: BLE001 - anything pandas refuses is a data error
            raise DataError(f"data must be a pandas DataFrame or convertible to one: {exc}") from None
    if len(data) == 0:
        raise DataError("the data frame is empty")
    if na_action not in ("drop", "error"):
        raise DataError(f"na_action must be 'drop' or 'error', got {na_action!r}")
    for f in _all_factors(spec):
        check_functions(f.expr, spec.text)
    names = [n for f in _all_factors(spec) for n in columns_used(f.expr)]
    check_columns(names, data, spec.text)
    for g in _group_columns(spec):
        if g not in data.columns:
            raise DataError(f"unknown grouping column '{g}'", column=g)
    used = list(dict.fromkeys([n.name for n in names] + _group_columns(spec)))
    optional = _upper_bound_only_columns(spec)  # missing where a row is not interval-censored
    for c in used:
        if c not in optional and data[c].isna().all():
            raise DataError(f"column '{c}' has no values (all missing)", column=c)
    missing = data[[c for c in used if c not in optional]].isna().any(axis=1)
    n_dropped = int(missing.sum())
    if n_dropped:
        cols = [c for c in used if data[c].isna().any()]
        if na_action == "error":
            first = data.index[missing.to_numpy()][0]
            first = first.item() if isinstance(first, np.generic) else first
            raise DataError(
                f"{n_dropped} rows have missing values (in {', '.join(cols)}; first at row {first!r})",
                column=cols[0], hint="drop them first, or use na_action='drop'",
            )
        warnings.warn(f"dropped {n_dropped} of {len(data)} rows with missing values in {', '.join(cols)}",
                      MissingRowsWarning, stacklevel=3)
        data = data.loc[~missing]
    _check_response_not_predictor(spec)
    for c in used:
        _check_not_mixed(data, c)
    family = get_family(spec.family.name)
    y, categories = response_values(spec, data)
    for name, _ in spec.dpars:
        if name.startswith("mu") and int(name[2:]) > len(categories):
            raise FormulaError(f"'{name}' names category {name[2:]}, but the response '{spec.response.label}' has "
                               f"{len(categories)} categories ({', '.join(categories)})",
                               position=_formula_position(spec.text, name), text=spec.text,
                               hint=f"the categories after the first are mu2 ... mu{len(categories)}")
    try:
        family.check_response(y, spec.response.label)
    except DataError as exc:
        raise _with_row_label(exc, data.index) from None
    state: dict[str, Any] = {}
    main = bind_predictor(spec.predictor, data, state)
    dpars = tuple((name, bind_predictor(p, data, state)) for name, p in spec.dpars)
    additions = bind_additions(spec, data, y)
    family.check_additions(y, additions, spec.response.label)
    if "weights" in additions:
        w = additions["weights"]
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"weights must be finite and non-negative; row {data.index[row]!r} holds {w[row]!r}",
                            column=dict(spec.response.additions)["weights"].label)
    return BoundDesign(spec, y, main, dpars, additions, len(data), n_dropped, data.index.to_numpy(), categories)
