"""Stage 3: IR + DataFrame → bound design, and new data → the same encoding. One binding serves both:
:func:`bind_design` checks the training data (columns, missing values, the response and its additions) and
fixes the :class:`~hdsl.model.design.Encoding`; :func:`bind_new_data` encodes new data with it, with the
new-level policy and the group terms to keep as arguments.

Rows with missing values in any used column are dropped and counted (or refused, with
``na_action="error"``); nothing is dropped silently. New data must be complete.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, MissingRowsWarning, Position
from ..language.families import Family
from ..language.ir import Factor, LinearPredictor, ModelSpec
from ..language.syntax import Name
from .design import (
    BoundDesign,
    Codebook,
    GroupDesign,
    NewLevels,
    PredictorDesign,
    bind_predictor,
    natural_key,
)
from .families import CENSORING_CODES, numerics_for
from .terms import check_columns, check_functions, columns_used, evaluate_factor

__all__ = ["bind_design", "bind_new_data", "NewData", "bind_additions", "response_values"]


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
            _check_upper(out["cens_upper"], interval, y, factors["cens_upper"].label, spec.family, data.index)
            out["cens_upper"] = np.where(interval, out["cens_upper"], np.nan if y is None else y)
    return out


def _check_upper(upper: np.ndarray, interval: np.ndarray, y: np.ndarray | None, label: str, family: Family,
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
        numerics_for(family).check_response(np.where(interval, upper, y), label)
    except DataError as exc:
        raise _with_row_label(exc, index) from None


def response_values(spec: ModelSpec, data: pd.DataFrame,
                    categories: tuple[str, ...] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """The response as numbers; a categorical response (cumulative, categorical families) coded 1..K in the
    order of its categories: a pandas categorical's order, else sorted (numbers by value). ``categories``
    from training codes new data the same way."""
    family = spec.family
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
            categories = tuple(sorted(labels.unique(), key=natural_key))
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
    family = numerics_for(spec.family)
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
    book = Codebook()
    main = bind_predictor(spec.predictor, data, book)
    dpars = tuple((name, bind_predictor(p, data, book)) for name, p in spec.dpars)
    additions = bind_additions(spec, data, y)
    family.check_additions(y, additions, spec.response.label)
    if "weights" in additions:
        w = additions["weights"]
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"weights must be finite and non-negative; row {data.index[row]!r} holds {w[row]!r}",
                            column=dict(spec.response.additions)["weights"].label)
    return BoundDesign(spec, y, main, dpars, additions, len(data), n_dropped, data.index.to_numpy(),
                       book.freeze(categories))


@dataclass(frozen=True, eq=False)
class NewData:
    """New data encoded as the training data were: every predictor by its parameter (mu first; a group
    term left out as zero columns with level 0), the addition terms, and the response where asked for."""

    predictors: dict[str, PredictorDesign]
    additions: dict[str, np.ndarray]
    y: np.ndarray | None


def _spec_predictors(design: BoundDesign) -> list[LinearPredictor]:
    """The formula of each of the design's predictors (a categorical response's mu2, mu3, ... share one)."""
    dpars = dict(design.spec.dpars)
    return [dpars.get(dpar, design.spec.predictor) for dpar, _ in design.predictors]


def _check_new_columns(design: BoundDesign, data: pd.DataFrame, kept: tuple[tuple[bool, ...], ...],
                       response: bool) -> None:
    cols = []
    for pred, keep_terms in zip(_spec_predictors(design), kept, strict=True):
        factors = [f for t in pred.terms for f in t.factors] + list(pred.offsets)
        cols += [n.name for f in factors for n in columns_used(f.expr)]
        for g, keep in zip(pred.groups, keep_terms, strict=True):
            if keep:
                cols += [n.name for t in g.terms for f in t.factors for n in columns_used(f.expr)] + list(g.group)
    if response:
        label = design.spec.response.label
        if any(c.name not in data.columns for c in columns_used(design.spec.response.factor.expr)):
            raise DataError(f"newdata needs the response '{label}' for the log-likelihood", column=label)
    for c in dict.fromkeys(cols):
        if c not in data.columns:
            raise DataError(f"newdata has no column '{c}', which the model needs", column=c)
        if data[c].isna().any():
            row = data.index[data[c].isna().to_numpy()][0]
            raise DataError(f"column '{c}' of newdata has a missing value (first at row {row!r}); predictions "
                            "need every row complete", column=c)


def _new_additions(spec: ModelSpec, data: pd.DataFrame, needed: frozenset[str], response: bool,
                   y: np.ndarray | None) -> dict[str, np.ndarray]:
    """The addition terms of new data, checked as in training: all of them where the response is bound (the
    log-likelihood), else those present that change the response's distribution (censoring does not);
    ``needed`` must be present."""
    def present(f: Factor) -> bool:
        return all(c.name in data.columns for c in columns_used(f.expr))

    additions = spec.response.additions
    if all(present(f) for _, f in additions):
        out = bind_additions(spec, data, y)
        return out if response else {k: v for k, v in out.items() if k not in ("cens", "cens_upper")}
    for name, f in additions:
        if (response or name in needed) and not present(f):
            raise DataError(f"newdata needs '{f.label}' (the {name} of the response) for this prediction",
                            column=f.label)
    kept = tuple((n, f) for n, f in additions if present(f) and n not in ("cens", "cens_upper"))
    return bind_additions(dataclasses.replace(spec, response=dataclasses.replace(spec.response, additions=kept)),
                          data, y)


def bind_new_data(design: BoundDesign, data: pd.DataFrame, *, kept: tuple[tuple[bool, ...], ...] | None = None,
                  new_levels: NewLevels = NewLevels.ERROR, response: bool = False,
                  additions_needed: frozenset[str] = frozenset()) -> NewData:
    """Encode ``data`` with the training encoding. ``kept[j][i]``: whether predictor j's group term i enters
    (default all; a left-out term needs no columns); ``new_levels``: what an unseen group level does;
    ``response``: bind the response too (the log-likelihood; categories as in training)."""
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    if len(data) == 0:
        raise DataError("newdata is empty")
    if kept is None:
        kept = tuple(tuple(True for _ in pred.groups) for _, pred in design.predictors)
    _check_new_columns(design, data, kept, response)
    book = Codebook(design.encoding)
    n = len(data)
    predictors = {}
    for (dpar, trained), spec_pred, keep in zip(design.predictors, _spec_predictors(design), kept, strict=True):
        sub = dataclasses.replace(spec_pred, groups=tuple(g for g, k in zip(spec_pred.groups, keep, strict=True) if k))
        bound = bind_predictor(sub, data, book, new_levels)
        it = iter(bound.groups)
        groups = [next(it) if k else GroupDesign(g.term, g.levels, np.zeros(n, np.int32),
                                                 np.zeros((n, len(g.coef_names))), g.coef_names)
                  for g, k in zip(trained.groups, keep, strict=True)]
        predictors[dpar] = dataclasses.replace(bound, groups=tuple(groups))
    y = None
    if response:
        y = response_values(design.spec, data, design.categories or None)[0]
        numerics_for(design.spec.family).check_response(y, design.spec.response.label)
    return NewData(predictors, _new_additions(design.spec, data, additions_needed, response, y), y)
