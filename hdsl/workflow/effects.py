"""The data behind the figures over grids of new data (:func:`conditional_effects_data`, the group lines):
which data columns the formulas use, what the other variables are held at, and the model's mean at a grid of
new data in the data's own columns, through :meth:`hdsl.Fit.predict` (the one predictive path), so every
curve follows the formula as written (``I(x^2)``, ``poly(x, 2)``, factors, interactions). brms's
``conditional_effects`` (``R/conditional_effects.R``) is the reference for the grid and the held values.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import HdslError, did_you_mean
from ..language.ir import Factor
from ..model.coding import fit_levels, level_label
from ..model.terms import columns_used, is_categorical
from .predict import predict
from .protocols import CompiledModel, Posterior

__all__ = ["VariableUse", "Variable", "EffectsGrid", "conditional_effects_data", "effects_grid", "model_variables",
           "held_values", "new_data", "mean_draws", "training_rows", "trials_columns", "model_of",
           "refuse_category_families", "replicated_draws"]

NEEDS_DATA = ("this figure needs the data the model was fitted to; read the fit back with hdsl.load(path, data=df) "
              "(trace and forest plots work without)")


class VariableUse(enum.IntEnum):
    """Where a variable enters the formulas, the most telling place first: a conditional effect must be a
    population-level TERM's (brms's effects); group lines may also vary a GROUP_TERM's (``(1 + x | g)``);
    an OFFSET's is only held at its mean."""

    TERM = 0
    GROUP_TERM = 1
    OFFSET = 2


@dataclass(frozen=True)
class Variable:
    """A data column of the formulas. A factor-like one (string, pandas categorical or boolean column, or
    one inside ``C()`` / ``factor()``) carries its values in the training level order, the first being the
    reference level."""

    name: str
    categorical: bool
    use: VariableUse
    levels: tuple = ()


def model_of(fit: Posterior) -> CompiledModel:
    if fit.model is None:
        raise HdslError(NEEDS_DATA)
    return fit.model


def refuse_category_families(model: CompiledModel) -> None:
    """A cumulative or categorical response has no one mean line; these figures refuse it rather than
    plot brms's stand-ins (the mean category number, or one curve per category)."""
    design = model.design
    if design.categories:
        name = design.spec.family.name
        raise HdslError(f"this figure draws the mean as one regression line, which the {name} family does not "
                        "have (thresholds or one predictor per category)",
                        hint="use hdsl.plots.ppc_plot, or fit.predict(newdata, kind='mean') over a grid")


def training_rows(model: CompiledModel) -> pd.DataFrame:
    """The rows of the model's data that binding kept (it drops rows with missing values), in the order of
    ``design.y``: the grids take their ranges, means and reference levels from them."""
    data = getattr(model, "data", None)
    if data is None:
        raise HdslError(NEEDS_DATA)
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    design = model.design
    if len(data) == design.n_rows:
        return data
    if not data.index.is_unique:
        raise HdslError("rows with missing values were dropped from data whose index repeats labels, so the "
                        "rows the model used cannot be told apart for this figure",
                        hint="fit with a unique index, e.g. df.reset_index(drop=True)")
    return data.loc[design.row_index]


def _factors(spec) -> list[tuple[Factor, VariableUse]]:
    """Every factor of every formula (the mean's and the family parameters'), with where it enters."""
    preds = [spec.predictor] + [p for _, p in spec.dpars]
    return [(f, VariableUse.TERM) for p in preds for t in p.terms for f in t.factors] + \
        [(f, VariableUse.GROUP_TERM) for p in preds for g in p.groups for t in g.terms for f in t.factors] + \
        [(f, VariableUse.OFFSET) for p in preds for f in p.offsets]


def model_variables(model: CompiledModel, rows: pd.DataFrame) -> dict[str, Variable]:
    """The data columns the formulas use (grouping columns aside), in order of appearance."""
    states = model.design.encoding.factors
    found: dict[str, Variable] = {}
    for f, use in _factors(model.spec):
        categorical = is_categorical(f, rows)
        for name in dict.fromkeys(n.name for n in columns_used(f.expr)):
            known = found.get(name)
            if known is not None and (known.categorical or not categorical):
                found[name] = dataclasses.replace(known, use=min(known.use, use))
                continue
            use = min(use, known.use) if known is not None else use
            if not categorical:
                found[name] = Variable(name, False, use)
                continue
            labels = dict(states.get(f.label) or {}).get("levels") or fit_levels(rows[name], None)
            values: dict[str, object] = {}
            for v in rows[name].dropna().unique():
                values.setdefault(level_label(v), v)
            found[name] = Variable(name, True, use, tuple(values[lv] for lv in labels if lv in values))
    return found


def _unknown_variable(model: CompiledModel, name: str, variables: dict[str, Variable]) -> HdslError:
    groups = {c for _, pred in model.design.predictors for g in pred.groups for c in g.term.group}
    if name in groups:
        return HdslError(f"'{name}' is a grouping factor: conditional effects are population-level (the "
                         "group-level effects are left out, as brms's default re_formula = NA)",
                         hint="plot_group_lines and plot_forest show the levels")
    known = ", ".join(n for n, v in variables.items() if v.use is VariableUse.TERM) or \
        "none (the model has no population-level predictors)"
    if name in variables:
        where = {VariableUse.GROUP_TERM: "group-level terms, which conditional effects leave out",
                 VariableUse.OFFSET: "an offset, which conditional effects hold at its mean"}[variables[name].use]
        return HdslError(f"'{name}' enters the model only through {where}; its population-level predictor "
                         f"variables are: {known}")
    return HdslError(f"'{name}' is not a population-level predictor variable of this model"
                     f"{did_you_mean(name, known.split(', '))}; its variables are: {known}")


def held_values(variables: dict[str, Variable], rows: pd.DataFrame, spec, group_terms: bool) -> dict[str, object]:
    """What brms's ``conditional_effects`` holds a variable at when it is not an effect: a numeric one at
    its mean, a factor at its reference level, a ``trials()`` variable at 1; those only in group-level terms
    only where ``group_terms`` (the predictions include them)."""
    held: dict[str, object] = {v.name: v.levels[0] if v.categorical else float(rows[v.name].mean())
                               for v in variables.values() if group_terms or v.use is not VariableUse.GROUP_TERM}
    for name in trials_columns(spec):
        held[name] = 1
    return held


def trials_columns(spec) -> list[str]:
    return [n.name for key, f in spec.response.additions if key == "trials" for n in columns_used(f.expr)]


def new_data(rows: pd.DataFrame, columns: dict[str, list], held: dict[str, object]) -> pd.DataFrame:
    """A frame of new data in the training columns' types: the given columns, the rest held constant."""
    n = len(next(iter(columns.values())))
    out = pd.DataFrame({**columns, **{k: [v] * n for k, v in held.items() if k not in columns}})
    for name in out.columns:
        if name in rows.columns and isinstance(rows[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(rows[name].dtype)
    return out


def mean_draws(fit: Posterior, newdata: pd.DataFrame, re_formula: str | None) -> np.ndarray:
    """Posterior draws of the mean at each row of ``newdata``: draws × rows, from :meth:`hdsl.Fit.predict`."""
    pred = predict(fit, newdata, kind="mean", re_formula=re_formula)
    values = np.asarray(pred["predictions"][model_of(fit).spec.response.label].values, dtype=float)
    return values.reshape(-1, len(newdata))


def _effect_variables(model: CompiledModel, rows: pd.DataFrame, effect: str) -> tuple[list[Variable], dict]:
    """The variables ``effect`` names (``"x"`` or ``"x:f"``), a numeric one first as brms orders them."""
    variables = model_variables(model, rows)
    names = [p.strip() for p in str(effect).split(":")]
    if len(names) > 2 or len(set(names)) < len(names) or not all(names):
        raise HdslError(f"effect {effect!r} must name one variable or two distinct ones ('x' or 'x:f')",
                        hint="hold other variables at chosen values with fit.predict over a grid of your own")
    for name in names:
        if name not in variables or variables[name].use is not VariableUse.TERM:
            raise _unknown_variable(model, name, variables)
    chosen = sorted((variables[n] for n in names), key=lambda v: v.categorical)
    return chosen, variables


def _series_values(var: Variable, rows: pd.DataFrame) -> list:
    """The values of the second variable of an interaction: every level of a factor, or brms's
    mean − sd, mean, mean + sd of a numeric one."""
    if var.categorical:
        return list(var.levels)
    col = rows[var.name].to_numpy(dtype=float)
    sd = float(np.std(col, ddof=1)) if len(col) > 1 else 0.0
    return list(dict.fromkeys(float(np.mean(col)) + k * sd for k in (-1.0, 0.0, 1.0)))


@dataclass(frozen=True)
class EffectsGrid:
    """A conditional-effects grid with its summaries, and what drawing it needs."""

    frame: pd.DataFrame
    chosen: list[Variable]  # the x-axis variable, then the second of an interaction
    series: list  # the second variable's values (one None without one), in the frame's blocks of rows
    variables: dict[str, Variable]
    rows: pd.DataFrame


def effects_grid(fit: Posterior, effect: str, prob: float, n_points: int) -> EffectsGrid:
    model = model_of(fit)
    refuse_category_families(model)
    if not 0 < prob < 1:
        raise HdslError(f"prob must be between 0 and 1, got {prob!r}")
    if int(n_points) < 2:
        raise HdslError(f"n_points must be at least 2, got {n_points!r}")
    rows = training_rows(model)
    chosen, variables = _effect_variables(model, rows, effect)
    first = chosen[0]
    if first.categorical:
        xs = list(first.levels)
    else:
        col = rows[first.name].to_numpy(dtype=float)
        xs = list(np.linspace(col.min(), col.max(), int(n_points)))
    series: list = [None]
    columns: dict[str, list] = {first.name: xs}
    if len(chosen) == 2:
        series = _series_values(chosen[1], rows)
        columns = {first.name: xs * len(series), chosen[1].name: [z for z in series for _ in xs]}
    grid = new_data(rows, columns, held_values(variables, rows, model.spec, group_terms=False))
    draws = mean_draws(fit, grid, re_formula="~0")
    frame = grid.copy()
    for i, var in enumerate(chosen, start=1):
        frame[f"effect{i}__"] = grid[var.name]
    frame["estimate__"] = draws.mean(axis=0)
    frame["se__"] = draws.std(axis=0, ddof=1) if len(draws) > 1 else np.nan
    frame["lower__"], frame["upper__"] = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    frame.attrs.update(effects=tuple(v.name for v in chosen), response=model.spec.response.label, prob=prob)
    return EffectsGrid(frame, chosen, series, variables, rows)


def conditional_effects_data(fit: Posterior, effect: str, prob: float = 0.95, n_points: int = 100) -> pd.DataFrame:
    """The numbers :func:`conditional_effects` draws, laid out as brms's ``conditional_effects`` returns
    them: one row per grid point with the new data's columns, ``effect1__`` (and ``effect2__``), and the
    posterior ``estimate__`` (mean), ``se__`` (sd), ``lower__`` and ``upper__`` (equal-tailed ``prob``
    interval) of the mean response at the population level: ``fit.predict(grid, kind="mean",
    re_formula="~0")``, brms's default ``re_formula = NA``.

    ``effect`` names data columns, as brms's ``effects``: ``"x"``, or an interaction ``"x:f"``. A numeric
    effect takes ``n_points`` values over its observed range, a factor-like one (string, categorical or
    boolean column, or one inside ``C()``) its levels; in an interaction a numeric variable comes first (as
    in brms) and the second takes every level of a factor, or a numeric one's mean − sd, mean and mean + sd.
    Variables not named are held where brms's default ``conditions`` hold them: numeric ones at their mean,
    factors at their reference (first) level, ``trials()`` variables at 1 (so a binomial mean is a
    proportion); offsets at their variables' means. ``estimate__`` is the posterior mean (brms's
    ``robust = FALSE``; its default reports the median). Ordinal and categorical responses are refused.

    >>> hdsl.workflow.plots.conditional_effects_data(fit, "x:f").head()   # doctest: +SKIP
    """
    return effects_grid(fit, effect, prob, n_points).frame


def replicated_draws(fit: Posterior, n_draws: int = 50, seed: int = 0) -> np.ndarray:
    """``n_draws`` replicated data sets (n_draws × rows) from the posterior predictive distribution.

    Taken from ``fit.idata``'s ``posterior_predictive`` group where :meth:`hdsl.Fit.posterior_predictive` has
    filled it, else from :meth:`hdsl.Fit.predict` (``kind="response"``).
    """
    design = model_of(fit).design
    n = design.n_rows
    rng = np.random.default_rng(seed)
    response = design.spec.response.label
    if "posterior_predictive" in fit.idata.children:
        pp = _as_matrix(fit.idata, response, n)
    else:
        pp = _as_matrix(predict(fit, kind="response", draws=n_draws, seed=seed), response, n)
    if pp is None:
        raise HdslError(f"no replicated draws of '{response}' could be made from this fit")
    return pp[np.sort(rng.choice(len(pp), size=min(n_draws, len(pp)), replace=False))]



def _as_matrix(pp, response: str, n: int) -> np.ndarray | None:
    """Draws × rows from what ``posterior_predictive`` returns (an array, a Dataset or a DataTree)."""
    try:
        for group in ("posterior_predictive", "predictions"):
            if hasattr(pp, "children") and group in pp.children:
                pp = pp[group]
                break
        if hasattr(pp, "data_vars"):
            pp = pp[response]
        values = np.asarray(getattr(pp, "values", pp), dtype=float)
    except (KeyError, TypeError, ValueError):
        return None
    if values.ndim < 2 or values.shape[-1] != n:
        return None
    return values.reshape(-1, n)
