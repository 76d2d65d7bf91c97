"""Figures for a fit: the data, per-group OLS lines, trace, forest, posterior-predictive lines per group,
conditional effects and a posterior-predictive check.

The curves of :func:`conditional_effects` and :func:`plot_group_lines` are :meth:`hdsl.Fit.predict` over
a grid of new data in the data's own columns (built from the training frame the model keeps), so they
follow the formula as written (``I(x^2)``, ``poly(x, 2)``, factors, interactions); no figure rebuilds a
linear predictor from posterior names. :func:`conditional_effects_data` gives the plotted numbers.

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot's global state (save it
with ``fig.savefig("out.png")``; Jupyter shows it). matplotlib is an optional extra:
``pip install 'hdsl[plots]'``. The figures of the data need the model the fit came from, so they are not
available for a fit read back with :func:`hdsl.load` unless its ``data=`` is given; trace and forest
plots always are.

>>> fig = hdsl.plots.plot_forest(fit)          # doctest: +SKIP
>>> fig.savefig("forest.png", dpi=150)         # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import HdslError, did_you_mean
from ..model.coding import level_label
from ..model.design import GroupDesign
from .effects import (
    NEEDS_DATA,
    EffectsGrid,
    Variable,
    VariableUse,
    conditional_effects_data,
    effects_grid,
    held_values,
    mean_draws,
    model_of,
    model_variables,
    new_data,
    refuse_category_families,
    replicated_draws,
    training_rows,
    trials_columns,
)
from .protocols import CompiledModel, Posterior

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "plot_data_pooled",
    "plot_group_ols",
    "plot_trace",
    "plot_forest",
    "plot_group_lines",
    "conditional_effects",
    "conditional_effects_data",
    "ppc_plot",
    "replicated_draws",
]

_POINT = {"s": 14, "alpha": 0.45, "linewidths": 0}


def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.4, **kw):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise HdslError("plotting needs matplotlib: pip install 'hdsl[plots]'") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


@dataclass(frozen=True)
class _Data:
    """The columns a data figure shows: response, one numeric predictor, one grouping factor."""

    x: np.ndarray
    y: np.ndarray
    codes: np.ndarray
    levels: tuple[str, ...]
    xname: str
    yname: str
    gname: str


def _design(fit: Posterior | CompiledModel):
    if getattr(fit, "design", None) is not None:  # a Model: the data figures need no posterior
        return fit.design
    if fit.model is None:
        raise HdslError(NEEDS_DATA)
    return fit.model.design


def _data(fit: Posterior | CompiledModel, predictor: str | None = None, group: str | None = None) -> _Data:
    design = _design(fit)
    main = design.main
    coefs = list(main.coef_names)
    if predictor is None:
        if len(coefs) != 1:
            raise HdslError(f"the model has {len(coefs)} population-level predictors ({', '.join(coefs) or 'none'});"
                            " name one with predictor=")
        predictor = coefs[0]
    if predictor not in coefs:
        raise HdslError(f"'{predictor}' is not a population-level coefficient; choose one of: {', '.join(coefs)}")
    if not main.groups:
        raise HdslError("the model has no group term")
    names = [g.name for g in main.groups]
    if group is None:
        group = names[0]
    if group not in names:
        raise HdslError(f"'{group}' is not a grouping factor of this model; choose one of: {', '.join(names)}")
    g = main.groups[names.index(group)]
    return _Data(main.X[:, coefs.index(predictor)], np.asarray(design.y, dtype=float), g.codes, g.levels,
                 predictor, design.spec.response.label, group)


def _jitter(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """A little horizontal noise where the predictor takes few distinct values, so points do not hide."""
    values = np.unique(x)
    if len(values) > 20 or len(values) < 2:
        return x
    step = float(np.min(np.diff(values)))
    return x + np.random.default_rng(seed).uniform(-0.12 * step, 0.12 * step, size=x.shape)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(intercept, slope), or None where x does not vary."""
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def _grid(x: np.ndarray, n: int = 100) -> np.ndarray:
    return np.linspace(float(np.min(x)), float(np.max(x)), n)


def plot_data_pooled(fit: Posterior | CompiledModel, predictor: str | None = None) -> Figure:
    """The data with one OLS line through all of it (complete pooling: groups ignored). Takes a fit or an
    unsampled :class:`hdsl.Model`."""
    d = _data(fit, predictor)
    fig, axes = _figure()
    ax = axes[0, 0]
    ax.scatter(_jitter(d.x), d.y, color="C0", **_POINT)
    line = _ols(d.x, d.y)
    if line is not None:
        xs = _grid(d.x)
        ax.plot(xs, line[0] + line[1] * xs, color="k", lw=2,
                label=f"pooled OLS: {line[0]:.1f} + {line[1]:.2f}·{d.xname}")
        ax.legend(loc="upper left", frameon=False)
    ax.set(xlabel=d.xname, ylabel=d.yname, title=f"{d.yname} against {d.xname}, pooled OLS fit")
    return fig


def plot_group_ols(fit: Posterior | CompiledModel, predictor: str | None = None, group: str | None = None) -> Figure:
    """One OLS line per group (no pooling), over the data coloured by group, with the pooled line. Takes a
    fit or an unsampled :class:`hdsl.Model`."""
    d = _data(fit, predictor, group)
    fig, axes = _figure(width=7.6)
    ax = axes[0, 0]
    cmap = _colormap(len(d.levels))
    xj = _jitter(d.x)
    for i, level in enumerate(d.levels):
        rows = d.codes == i
        color = cmap(i)
        ax.scatter(xj[rows], d.y[rows], color=color, **_POINT)
        line = _ols(d.x[rows], d.y[rows])
        if line is not None:
            xs = _grid(d.x[rows], 20)
            ax.plot(xs, line[0] + line[1] * xs, color=color, lw=1.6, label=level)
    pooled = _ols(d.x, d.y)
    if pooled is not None:
        xs = _grid(d.x)
        ax.plot(xs, pooled[0] + pooled[1] * xs, color="k", lw=2.5, ls="--", label="pooled")
    ax.legend(title=d.gname, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")
    ax.set(xlabel=d.xname, ylabel=d.yname, title=f"OLS line per {d.gname}")
    return fig


def _colormap(n: int):
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"].resampled(max(n, 1))


def plot_trace(fit: Posterior, var_names: list[str] | None = None) -> Figure:
    """Marginal posterior density (left) and trace (right) per chain, by ArviZ's ``plot_trace_dist``.

    ``var_names`` defaults to the population-level, sd, cor and family parameters.
    """
    try:
        import arviz_plots as azp
        import matplotlib.pyplot as plt
    except ImportError:
        raise HdslError("plotting needs matplotlib and arviz-plots: pip install 'hdsl[plots]'") from None
    names = list(var_names) if var_names is not None else fit.parameter_names
    missing = [n for n in names if n not in fit.idata["posterior"].data_vars]
    if missing:
        raise HdslError(f"no posterior variable named {', '.join(map(repr, missing))}; "
                        f"known: {', '.join(map(str, fit.idata['posterior'].data_vars))}")
    height = min(2.0 * sum(_n_panels(fit, n) for n in names) + 0.6, 60.0)
    pc = azp.plot_trace_dist(fit.idata, var_names=names, backend="matplotlib",
                             figure_kwargs={"figsize": (10, height), "layout": "constrained"})
    fig = pc.viz["figure"].item()
    plt.close(fig)  # the caller owns it; keep it out of pyplot's list of open figures
    return fig


def _n_panels(fit: Posterior, name: str) -> int:
    da = fit.idata["posterior"][name]
    return int(np.prod([da.sizes[d] for d in da.dims if d not in ("chain", "draw")], dtype=int))


def _stacked(fit: Posterior, name: str) -> np.ndarray:
    """A posterior variable with chain and draw merged into a leading sample axis."""
    da = fit.idata["posterior"][name]
    values = np.asarray(da.transpose("chain", "draw", ...).values)
    return values.reshape((-1,) + values.shape[2:])


def _group_coefficients(fit: Posterior, group: str) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Per level and coefficient, b + r: samples × levels × coefs (b is 0 where the population has none)."""
    post = fit.idata["posterior"]
    var = f"r_{group}"
    if var not in post.data_vars:
        known = [str(v)[2:] for v in post.data_vars if str(v).startswith("r_")]
        raise HdslError(f"'{group}' is not a grouping factor of this model; choose one of: {', '.join(known)}")
    da = post[var].transpose("chain", "draw", group, f"{group}__coef")
    coefs = tuple(str(c) for c in da[f"{group}__coef"].values)
    levels = tuple(str(v) for v in da[group].values)
    r = np.asarray(da.values).reshape((-1, len(levels), len(coefs)))
    b = np.stack([_stacked(fit, f"b_{c}") if f"b_{c}" in post.data_vars else np.zeros(r.shape[0])
                  for c in coefs], axis=-1)
    return b[:, None, :] + r, levels, coefs


def _default_group(fit: Posterior) -> str:
    names = [str(v)[2:] for v in fit.idata["posterior"].data_vars if str(v).startswith("r_")]
    if not names:
        raise HdslError("the model has no group term")
    return names[0]


def plot_forest(fit: Posterior, group: str | None = None, prob: float = 0.95) -> Figure:
    """Each level's coefficients (population value plus the level's deviation, ``b + r``): posterior mean and
    equal-tailed ``prob`` interval, one panel per coefficient, with the population mean and interval shaded."""
    group = group or _default_group(fit)
    beta, levels, coefs = _group_coefficients(fit, group)
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    fig, axes = _figure(1, len(coefs), width=3.6 * len(coefs) + 0.6, height=0.32 * len(levels) + 1.4,
                        sharey=True)
    ypos = np.arange(len(levels))[::-1]
    for j, coef in enumerate(coefs):
        ax = axes[0, j]
        draws = beta[:, :, j]
        q = np.quantile(draws, [lo, hi], axis=0)
        if f"b_{coef}" in fit.idata["posterior"].data_vars:
            pop = _stacked(fit, f"b_{coef}")
            ax.axvspan(*np.quantile(pop, [lo, hi]), color="0.9", zorder=0)
            ax.axvline(float(pop.mean()), color="0.5", lw=1, ls="--", zorder=1)
        ax.hlines(ypos, q[0], q[1], color="C0", lw=1.8)
        ax.plot(draws.mean(axis=0), ypos, "o", color="C0", ms=5)
        ax.set(title=coef, xlabel=f"b + r ({prob:.0%} interval)")
    axes[0, 0].set_yticks(ypos, levels)
    axes[0, 0].set_ylabel(group)
    fig.suptitle(f"Coefficients per {group}; grey: population mean and {prob:.0%} interval")
    return fig


def _label(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else level_label(value)


def _labels(column: pd.Series) -> np.ndarray:
    return column.astype(object).map(level_label).to_numpy()


def _add_points(ax, fit: Posterior, ce: EffectsGrid, width: float) -> None:
    """The data behind the curves, only the rows at the held factors' reference levels (as brms, so a
    curve at one level is not compared with data at another); a binomial response as a proportion."""
    model, rows, first = model_of(fit), ce.rows, ce.chosen[0]
    keep = np.ones(len(rows), bool)
    for v in ce.variables.values():
        if v.categorical and v not in ce.chosen:
            keep &= _labels(rows[v.name]) == level_label(v.levels[0])
    y = np.asarray(model.design.y, dtype=float)
    if trials_columns(model.spec):
        y = y / np.asarray(model.design.additions["trials"], dtype=float)
    series = np.zeros(len(rows), int)
    color: object = "0.4"
    if len(ce.chosen) == 2 and ce.chosen[1].categorical:
        index = {level_label(v): k for k, v in enumerate(ce.series)}
        series = np.array([index[lv] for lv in _labels(rows[ce.chosen[1].name])])
        color = [f"C{k}" for k in series[keep]]
    if first.categorical:
        position = {level_label(v): i for i, v in enumerate(first.levels)}
        x = np.array([position[lv] for lv in _labels(rows[first.name])], dtype=float)
        x += (series - (len(ce.series) - 1) / 2) * width
        x += np.random.default_rng(0).uniform(-0.35 * width, 0.35 * width, size=len(x))
    else:
        x = _jitter(rows[first.name].to_numpy(dtype=float))
    ax.scatter(x[keep], y[keep], color=color, **_POINT)


def conditional_effects(fit: Posterior, effect: str, prob: float = 0.95, n_points: int = 100,
                        points: bool = False) -> Figure:
    """brms's ``conditional_effects``: the population-level mean response as ``effect`` varies, the other
    variables held at their mean or reference level; the numbers and the grid are
    :func:`conditional_effects_data`'s. A numeric effect draws the posterior-mean curve with its
    equal-tailed ``prob`` band (curved where the formula is: ``I(x^2)``, ``poly(x, 2)``); a factor, one
    point per level with its interval; an interaction ``"x:f"``, one curve (or set of points) per value of
    the second variable. ``points=True`` adds the data.

    >>> fig = fit.conditional_effects("x:f", points=True)   # doctest: +SKIP
    """
    ce = effects_grid(fit, effect, prob, n_points)
    first, second = ce.chosen[0], (ce.chosen[1] if len(ce.chosen) == 2 else None)
    fig, axes = _figure(width=7.2 if second else 6.4)
    ax = axes[0, 0]
    width = 0.6 / len(ce.series)  # a factor's points, side by side per value of the second variable
    if points:
        _add_points(ax, fit, ce, width)
    size = len(ce.frame) // len(ce.series)
    for k, value in enumerate(ce.series):
        block = ce.frame.iloc[k * size:(k + 1) * size]
        est, lo, hi = (block[c].to_numpy() for c in ("estimate__", "lower__", "upper__"))
        label = f"{second.name} = {_label(value)}" if second else None
        if first.categorical:
            ax.errorbar(np.arange(size) + (k - (len(ce.series) - 1) / 2) * width, est, yerr=[est - lo, hi - est],
                        fmt="o", color=f"C{k}", capsize=3, ms=6, label=label or f"posterior mean, {prob:.0%} interval")
        else:
            xs = block[first.name].to_numpy(dtype=float)
            ax.fill_between(xs, lo, hi, color=f"C{k}", alpha=0.2, lw=0,
                            label=None if second else f"{prob:.0%} credible band")
            ax.plot(xs, est, color=f"C{k}", lw=2, label=label or "posterior mean")
    if first.categorical:
        ax.set_xticks(range(len(first.levels)), [level_label(v) for v in first.levels])
    ax.legend(loc="best", frameon=False, fontsize="small")
    ax.set(xlabel=first.name, ylabel=model_of(fit).spec.response.label,
           title=f"Conditional effect of {':'.join(ce.frame.attrs['effects'])}")
    return fig


def _line_predictor(variables: dict[str, Variable], predictor: str | None) -> Variable:
    numeric = [v.name for v in variables.values() if not v.categorical and v.use is not VariableUse.OFFSET]
    if predictor is None:
        in_terms = [n for n in numeric if variables[n].use is VariableUse.TERM]
        numeric = in_terms or numeric  # a population-level one first: y ~ x + (1 + z | g) draws over x
        if len(numeric) != 1:
            raise HdslError(f"the model has {len(numeric)} numeric predictor variables "
                            f"({', '.join(numeric) or 'none'}); name one with predictor=")
        predictor = numeric[0]
    if predictor not in numeric:
        raise HdslError(f"'{predictor}' is not a numeric population-level predictor variable"
                        f"{did_you_mean(predictor, numeric)}; choose one of: {', '.join(numeric) or 'none'}")
    return variables[predictor]


def _group_re_formula(model: CompiledModel, chosen: GroupDesign) -> str | None:
    """The group terms a level's line includes: those of its grouping factor and of the factors it is
    nested in (``(1 | a/b)``: a level of ``a:b`` includes its ``a``'s effect), not crossed ones."""
    terms = [g.term for _, pred in model.design.predictors for g in pred.groups]
    kept = [t for t in dict.fromkeys(terms) if set(t.group) <= set(chosen.term.group)]
    if len(kept) == len(dict.fromkeys(terms)):
        return None
    parts = [f"({' + '.join((['1'] if t.intercept else ['0']) + [term.label for term in t.terms])} "
             f"{'|' if t.correlated else '||'} {t.group_label})" for t in kept]
    return "~ " + " + ".join(parts)


def plot_group_lines(fit: Posterior, n_lines: int = 50, predictor: str | None = None, group: str | None = None,
                     seed: int = 0) -> Figure:
    """Per level, ``n_lines`` regression lines drawn from the posterior (grey) over the level's data, the
    posterior-mean line (blue) and the level's own OLS line (dashed) for comparison. One panel per level.

    The lines are the mean response from :meth:`hdsl.Fit.predict` over a grid of ``predictor`` (a numeric
    data column; default: the only one) with the group column at the level, so they follow the formula
    (curved for ``I(x^2)`` or ``poly(x, 2)``) and include the level's effects and those of the levels it is
    nested in; other variables are held as in :func:`conditional_effects` (mean, reference level).
    """
    model = model_of(fit)
    refuse_category_families(model)
    rows = training_rows(model)
    variables = model_variables(model, rows)
    xvar = _line_predictor(variables, predictor)
    main = model.design.main
    names = [g.name for g in main.groups]
    if not names:
        raise HdslError("the model has no group term")
    group = names[0] if group is None else group
    if group not in names:
        raise HdslError(f"'{group}' is not a grouping factor of this model{did_you_mean(group, names)}; "
                        f"choose one of: {', '.join(names)}")
    chosen = main.groups[names.index(group)]
    x = rows[xvar.name].to_numpy(dtype=float)
    y = np.asarray(model.design.y, dtype=float)
    xs = _grid(x, 40)
    first_rows = [int(np.flatnonzero(chosen.codes == i)[0]) for i in range(chosen.n_levels)]
    columns: dict[str, list] = {xvar.name: list(xs) * chosen.n_levels}
    for col in chosen.term.group:
        columns[col] = [rows[col].iloc[r] for r in first_rows for _ in xs]
    newdata = new_data(rows, columns, held_values(variables, rows, model.spec, group_terms=True))
    draws = mean_draws(fit, newdata, _group_re_formula(model, chosen)).reshape(-1, chosen.n_levels, len(xs))
    rng = np.random.default_rng(seed)
    samples = rng.choice(len(draws), size=min(n_lines, len(draws)), replace=False)
    mean_line = draws.mean(axis=0)
    n = chosen.n_levels
    ncols = min(n, 5)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, width=2.6 * ncols + 0.4, height=2.3 * nrows + 0.6, sharex=True, sharey=True)
    xj = _jitter(x)
    for i, level in enumerate(chosen.levels):
        ax = axes[i // ncols, i % ncols]
        at_level = chosen.codes == i
        ax.plot(xs, draws[samples, i, :].T, color="0.55", lw=0.6, alpha=0.35)
        ax.plot(xs, mean_line[i], color="C0", lw=2)
        ols = _ols(x[at_level], y[at_level])
        if ols is not None:
            ax.plot(xs, ols[0] + ols[1] * xs, color="C3", lw=1.2, ls="--")
        ax.scatter(xj[at_level], y[at_level], color="k", s=10, alpha=0.6, linewidths=0, zorder=3)
        ax.set_title(f"{group} {level} (n={int(at_level.sum())})", fontsize="medium")
    for k in range(n, nrows * ncols):
        axes[k // ncols, k % ncols].set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel(xvar.name)
    for ax in axes[:, 0]:
        ax.set_ylabel(model.spec.response.label)
    fig.suptitle(f"Posterior regression lines per {group} (grey: {len(samples)} draws; blue: posterior mean;"
                 " red dashed: the level's OLS)")
    return fig


def ppc_plot(fit: Posterior, n_draws: int = 50, seed: int = 0) -> Figure:
    """Posterior-predictive check: the density of ``n_draws`` replicated data sets (thin) over the observed
    response's (thick). For a discrete family: bars of the observed counts per value with the replicated
    counts' median and 90% interval."""
    design = _design(fit)
    y = np.asarray(design.y, dtype=float)
    yrep = replicated_draws(fit, n_draws, seed)
    name = design.spec.response.label
    fig, axes = _figure()
    ax = axes[0, 0]
    if design.spec.family.discrete:
        top = int(max(y.max(), np.quantile(yrep, 0.99)))
        values = np.arange(0, top + 1)
        observed = np.array([(y == v).sum() for v in values])
        rep = np.stack([(yrep == v).sum(axis=1) for v in values], axis=1)
        q = np.quantile(rep, [0.05, 0.5, 0.95], axis=0)
        ax.bar(values, observed, color="0.75", label="observed")
        ax.errorbar(values, q[1], yerr=[q[1] - q[0], q[2] - q[1]], fmt="o", color="C0", ms=4,
                    label=f"replicated (median, 90%; {len(yrep)} draws)")
        ax.set(xlabel=name, ylabel="count")
    else:
        from scipy.stats import gaussian_kde

        lo, hi = np.quantile(np.concatenate([y, yrep.ravel()]), [0.001, 0.999])
        pad = 0.05 * (hi - lo)
        xs = np.linspace(lo - pad, hi + pad, 200)
        for k, rep in enumerate(yrep):
            ax.plot(xs, gaussian_kde(rep)(xs), color="C0", lw=0.7, alpha=0.3,
                    label=f"replicated ({len(yrep)} draws)" if k == 0 else None)
        ax.plot(xs, gaussian_kde(y)(xs), color="k", lw=2.2, label="observed")
        ax.set(xlabel=name, ylabel="density")
    ax.legend(loc="upper right", frameon=False)
    ax.set_title(f"Posterior-predictive check of {name}")
    return fig
