"""Figures for a fit: the data, per-group OLS lines, trace, forest, posterior-predictive lines per group,
conditional effects and a posterior-predictive check.

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

from ..errors import HdslError
from ..model.families import get_family

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .api import Fit, Model

__all__ = [
    "plot_data_pooled",
    "plot_group_ols",
    "plot_trace",
    "plot_forest",
    "plot_group_lines",
    "conditional_effects",
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


def _design(fit: Fit | Model):
    if getattr(fit, "design", None) is not None:  # a Model: the data figures need no posterior
        return fit.design
    if fit.model is None:
        raise HdslError("this figure needs the data the model was fitted to; read the fit back with "
                        "hdsl.load(path, data=df) (trace and forest plots work without)")
    return fit.model.design


def _mean_lines_design(fit: Fit):
    """The design of a fit whose mean is one inverse-linked linear predictor (what regression lines draw)."""
    design = _design(fit)
    family = get_family(design.spec.family.name)
    if family.on_eta is not None:
        raise HdslError(f"this figure draws the mean as one regression line, which the {family.name} family "
                        "does not have (thresholds or one predictor per category)",
                        hint="use hdsl.plots.ppc_plot, or fit.predict(newdata, kind='mean') over a grid")
    return design


def _data(fit: Fit | Model, predictor: str | None = None, group: str | None = None) -> _Data:
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


def plot_data_pooled(fit: Fit | Model, predictor: str | None = None) -> Figure:
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


def plot_group_ols(fit: Fit | Model, predictor: str | None = None, group: str | None = None) -> Figure:
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


def plot_trace(fit: Fit, var_names: list[str] | None = None) -> Figure:
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


def _n_panels(fit: Fit, name: str) -> int:
    da = fit.idata["posterior"][name]
    return int(np.prod([da.sizes[d] for d in da.dims if d not in ("chain", "draw")], dtype=int))


def _stacked(fit: Fit, name: str) -> np.ndarray:
    """A posterior variable with chain and draw merged into a leading sample axis."""
    da = fit.idata["posterior"][name]
    values = np.asarray(da.transpose("chain", "draw", ...).values)
    return values.reshape((-1,) + values.shape[2:])


def _group_coefficients(fit: Fit, group: str) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
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


def _default_group(fit: Fit) -> str:
    names = [str(v)[2:] for v in fit.idata["posterior"].data_vars if str(v).startswith("r_")]
    if not names:
        raise HdslError("the model has no group term")
    return names[0]


def plot_forest(fit: Fit, group: str | None = None, prob: float = 0.95) -> Figure:
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


def _level_lines(fit: Fit, d: _Data, xs: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Mean response for each chosen sample, level and x in ``xs``: samples × levels × len(xs). Other
    population-level columns are held at their means."""
    main = _design(fit).main
    post = fit.idata["posterior"]
    da = post[f"r_{d.gname}"].transpose("chain", "draw", d.gname, f"{d.gname}__coef")
    coefs = [str(c) for c in da[f"{d.gname}__coef"].values]
    r = np.asarray(da.values).reshape((-1, len(d.levels), len(coefs)))[samples]
    intercept = np.zeros((len(samples), len(d.levels)))
    if "b_Intercept" in post.data_vars:
        intercept = intercept + _stacked(fit, "b_Intercept")[samples, None]
    for j, c in enumerate(main.coef_names):
        if c != d.xname:
            intercept = intercept + _stacked(fit, f"b_{c}")[samples, None] * float(main.X[:, j].mean())
    slope = _stacked(fit, f"b_{d.xname}")[samples, None] + np.zeros_like(intercept)
    if "Intercept" in coefs:
        intercept = intercept + r[:, :, coefs.index("Intercept")]
    if d.xname in coefs:
        slope = slope + r[:, :, coefs.index(d.xname)]
    eta = intercept[..., None] + slope[..., None] * xs
    return np.asarray(fit.model.lowered.link.inverse(eta))


def plot_group_lines(fit: Fit, n_lines: int = 50, predictor: str | None = None, group: str | None = None,
                     seed: int = 0) -> Figure:
    """Per level, ``n_lines`` regression lines drawn from the posterior (grey) over the level's data, the
    posterior-mean line (blue) and the level's own OLS line (dashed) for comparison. One panel per level."""
    _mean_lines_design(fit)
    d = _data(fit, predictor, group)
    xs = _grid(d.x, 40)
    n_samples = fit.idata["posterior"].sizes["chain"] * fit.idata["posterior"].sizes["draw"]
    rng = np.random.default_rng(seed)
    samples = rng.choice(n_samples, size=min(n_lines, n_samples), replace=False)
    lines = _level_lines(fit, d, xs, samples)
    mean_line = _level_lines(fit, d, xs, np.arange(n_samples)).mean(axis=0)
    n = len(d.levels)
    ncols = min(n, 5)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, width=2.6 * ncols + 0.4, height=2.3 * nrows + 0.6, sharex=True, sharey=True)
    xj = _jitter(d.x)
    for i, level in enumerate(d.levels):
        ax = axes[i // ncols, i % ncols]
        rows = d.codes == i
        ax.plot(xs, lines[:, i, :].T, color="0.55", lw=0.6, alpha=0.35)
        ax.plot(xs, mean_line[i], color="C0", lw=2)
        ols = _ols(d.x[rows], d.y[rows])
        if ols is not None:
            ax.plot(xs, ols[0] + ols[1] * xs, color="C3", lw=1.2, ls="--")
        ax.scatter(xj[rows], d.y[rows], color="k", s=10, alpha=0.6, linewidths=0, zorder=3)
        ax.set_title(f"{d.gname} {level} (n={int(rows.sum())})", fontsize="medium")
    for k in range(n, nrows * ncols):
        axes[k // ncols, k % ncols].set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel(d.xname)
    for ax in axes[:, 0]:
        ax.set_ylabel(d.yname)
    fig.suptitle(f"Posterior regression lines per {d.gname} (grey: {len(samples)} draws; blue: posterior mean;"
                 " red dashed: the level's OLS)")
    return fig


def conditional_effects(fit: Fit, effect: str, prob: float = 0.95, n_points: int = 100,
                        points: bool = False) -> Figure:
    """brms's ``conditional_effects``: the population-level mean response over a grid of ``effect`` (group
    effects left out), other predictors at their means, with the equal-tailed ``prob`` credible band.

    Columns that are products of ``effect`` and other numeric predictors (``x:z``) follow the grid;
    ``points=True`` adds the data.
    """
    design = _mean_lines_design(fit)
    main = design.main
    coefs = list(main.coef_names)
    if effect not in coefs:
        raise HdslError(f"'{effect}' is not a population-level predictor column; choose one of: {', '.join(coefs)}")
    grid = _grid(main.X[:, coefs.index(effect)], n_points)
    means = dict(zip(coefs, main.X.mean(axis=0), strict=True))
    columns = []
    for c in coefs:
        parts = c.split(":")
        if effect not in parts:
            columns.append(np.full(n_points, means[c]))
            continue
        col = np.ones(n_points)
        for part in parts:
            if part == effect:
                col = col * grid
            elif part in means:
                col = col * means[part]
            else:
                raise HdslError(f"column '{c}' involves '{effect}' in a way conditional_effects cannot vary "
                                f"('{part}' is not a predictor column of its own)")
        columns.append(col)
    Xg = np.stack(columns, axis=1) if columns else np.zeros((n_points, 0))
    post = fit.idata["posterior"]
    eta = _stacked(fit, "b_Intercept")[:, None] if "b_Intercept" in post.data_vars else 0.0
    b = np.stack([_stacked(fit, f"b_{c}") for c in coefs], axis=1) if coefs else np.zeros((1, 0))
    eta = eta + b @ Xg.T
    mu = np.asarray(fit.model.lowered.link.inverse(eta))
    lo, hi = np.quantile(mu, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    fig, axes = _figure()
    ax = axes[0, 0]
    if points:
        ax.scatter(_jitter(main.X[:, coefs.index(effect)]), design.y, color="0.4", **_POINT)
    ax.fill_between(grid, lo, hi, color="C0", alpha=0.25, lw=0, label=f"{prob:.0%} credible band")
    ax.plot(grid, mu.mean(axis=0), color="C0", lw=2, label="posterior mean")
    ax.legend(loc="upper left", frameon=False)
    ax.set(xlabel=effect, ylabel=design.spec.response.label, title=f"Conditional effect of {effect}")
    return fig


def replicated_draws(fit: Fit, n_draws: int = 50, seed: int = 0) -> np.ndarray:
    """``n_draws`` replicated data sets (n_draws × rows) from the posterior predictive distribution.

    Taken from ``fit.idata``'s ``posterior_predictive`` group where :meth:`hdsl.Fit.posterior_predictive` has
    filled it, else from :meth:`hdsl.Fit.predict` (``kind="response"``).
    """
    design = _design(fit)
    n = design.n_rows
    rng = np.random.default_rng(seed)
    response = design.spec.response.label
    if "posterior_predictive" in fit.idata.children:
        pp = _as_matrix(fit.idata, response, n)
    else:
        pp = _as_matrix(fit.predict(kind="response", draws=n_draws, seed=seed), response, n)
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


def ppc_plot(fit: Fit, n_draws: int = 50, seed: int = 0) -> Figure:
    """Posterior-predictive check: the density of ``n_draws`` replicated data sets (thin) over the observed
    response's (thick). For a discrete family: bars of the observed counts per value with the replicated
    counts' median and 90% interval."""
    design = _design(fit)
    y = np.asarray(design.y, dtype=float)
    yrep = replicated_draws(fit, n_draws, seed)
    name = design.spec.response.label
    fig, axes = _figure()
    ax = axes[0, 0]
    if get_family(design.spec.family.name).discrete:
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
