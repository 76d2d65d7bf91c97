"""The driver: the whole flow on one screen, text → posterior.

``parse_spec → expand_spec → bind_design → build_prior_table → lower_model → sample_nuts →
build_datatree``. :class:`Model` holds the compiled model; :class:`Fit` holds the posterior.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, Unpack

import jax
import numpy as np
import pandas as pd

from ..errors import HdslError, SamplingWarning
from ..inference.memory import release_free_memory
from ..inference.options import SamplerKeywords, SamplerOptions, expand_sampler_keywords
from ..inference.precision import default_dtype, resolve_dtype
from ..inference.sample import sample_nuts
from ..language.expand import expand_spec
from ..language.ir import ModelSpec
from ..language.parse import parse_spec
from ..model import density
from ..model.bind import bind_design
from ..model.design import BoundDesign
from ..model.lower import LoweredModel, lower_model
from ..model.naming import NamingTable
from ..model.parameterization import choose_parameterization
from ..model.params import Params
from ..model.priors import PriorTable, build_prior_table
from .progress import ProgressBar
from .results import NamedDraws, build_datatree, compile_over_draws, draws_per_chunk, summarize, worst_diagnostics

__all__ = ["Model", "Fit", "fit", "load", "default_dtype"]

#: Pointwise log-likelihood is stored when chains × draws × rows is at most this many numbers.
LOG_LIK_LIMIT = 50_000_000


class Model:
    """A spec compiled against data, ready to sample.

    >>> model = hdsl.Model("y ~ x + (1 | g)", data=df)   # doctest: +SKIP
    >>> model.parameter_names                              # doctest: +SKIP
    ['b_Intercept', 'b_x', 'sd_g__Intercept', 'sigma']
    """

    def __init__(
        self,
        spec: str,
        data: pd.DataFrame,
        *,
        na_action: Literal["drop", "error"] = "drop",
        dtype: str | None = None,
        parameterization: str | dict[str, str] = "auto",
    ):
        self.text = spec
        self.data = data  # the frame as given; the figures build their grids of new data from it
        self.dtype = resolve_dtype(dtype)
        self.spec: ModelSpec = expand_spec(parse_spec(spec))
        self.design: BoundDesign = bind_design(self.spec, data, na_action=na_action)
        self.priors: PriorTable = build_prior_table(self.design)
        self.centered = choose_parameterization(self.design, parameterization)
        self.lowered: LoweredModel = lower_model(self.design, self.priors, self.dtype, self.centered)
        self.naming = NamingTable.of(self.design, self.lowered)
        release_free_memory()  # the temporaries of binding and of the sufficient statistics

    @property
    def parameter_names(self) -> list[str]:
        return self.naming.parameter_names

    @property
    def dim(self) -> int:
        """Length of the unconstrained parameter vector."""
        return self.lowered.dim

    def log_density(self, flat) -> jax.Array:
        """Log posterior density (up to a constant) at an unconstrained point, at the training data."""
        return density.log_density(self.lowered, jax.numpy.asarray(flat, dtype=self.dtype), self.lowered.data)

    def constrain(self, flat) -> Params:
        """The constrained parameters at an unconstrained point."""
        return density.constrain(self.lowered, jax.numpy.asarray(flat, dtype=self.dtype))

    def unconstrain(self, params: Params) -> np.ndarray:
        """The unconstrained point of constrained parameters (the inverse of :meth:`constrain`)."""
        return density.unconstrain(self.lowered, params)

    def _explain_start(self, flat: np.ndarray) -> str:
        """Which piece of the log-density is not finite at a starting point."""
        terms = density.log_density_terms(self.lowered, jax.numpy.asarray(flat, dtype=self.dtype))
        bad = [name for name, v in terms.items() if not np.isfinite(v)]
        return f"not finite: {', '.join(bad)}" if bad else ""

    def sample_prior(self, draws: int = 500, seed: int = 0):
        """Draws from the priors and the prior predictive distribution of the response (ArviZ DataTree
        with groups prior, prior_predictive, observed_data)."""
        from .prior_predictive import sample_prior

        return sample_prior(self, draws=draws, seed=seed)

    def default_priors(self) -> pd.DataFrame:
        """Every valid prior target with the prior in force (brms's ``default_prior``)."""
        return self.priors.to_frame()

    @expand_sampler_keywords
    def sample(self, *, progress: bool = True, **options: Unpack[SamplerKeywords]) -> Fit:
        """Sample the posterior. ``options`` are the sampler's, by keyword (:class:`hdsl.SamplerOptions` lists
        them with their defaults: chains, warmup, draws, seed, target_accept, max_tree_depth, init, adaptation,
        pool_adaptation), checked before anything runs; ``progress``: a progress bar on stderr.

        >>> model.sample(chains=4, draws=2000, seed=1)   # doctest: +SKIP
        """
        config = SamplerOptions.from_keywords(options, "sample")
        chains, draws = config.chains, config.draws
        reporter = ProgressBar() if progress else None
        size = chains * draws * self.design.n_rows
        # the post-processing programs compile on a second thread while the sampler runs; they take a
        # fixed number of draws at a time (memory: one chunk's temporaries, not all draws' at once)
        with_ll = size <= LOG_LIK_LIMIT
        rows = draws_per_chunk(chains * draws, max(self.dim, self.design.n_rows if with_ll else 0),
                               np.dtype(self.dtype).itemsize)
        lowered = self.lowered
        with ThreadPoolExecutor(1) as pool:
            named = NamedDraws(
                self.naming,
                pool.submit(compile_over_draws, functools.partial(density.constrain, lowered), rows, self.dim,
                            self.dtype),
                pool.submit(compile_over_draws, lambda x: density.pointwise_log_lik_at(lowered, x, lowered.data),
                            rows, self.dim, self.dtype) if with_ll else None,
                chains=chains, draws=draws, rows=rows)
            result = sample_nuts(functools.partial(density.log_density, lowered), self.dim, config, lowered.data,
                                 dtype=self.dtype, progress=reporter, explain=self._explain_start, keep=named)
        if reporter:
            reporter.close()
        attrs = {
            "hdsl_spec": self.text,
            "hdsl_rows_used": int(self.design.n_rows),
            "hdsl_rows_dropped": int(self.design.n_dropped),
            "hdsl_seed": int(config.seed),
            "hdsl_max_tree_depth": int(config.max_tree_depth),
            "hdsl_adaptation": config.adaptation,
            "hdsl_pool_adaptation": int(config.effective_pool_adaptation),
            "hdsl_init": config.effective_init,
            "hdsl_dtype": self.dtype,
            "hdsl_interrupted": int(result.interrupted),
        }
        # as many named draws as the sampler's statistics (Ctrl-C may land between the two)
        n_draws = next(iter(result.stats.values())).shape[1]
        idata = build_datatree(self.design, self.naming, named.result(n_draws), result.stats, attrs=attrs)
        release_free_memory()
        fit = Fit(idata, model=self, timings=result.timings, interrupted=result.interrupted)
        fit._warn_if_unhealthy()
        return fit


class Fit:
    """A posterior: the ArviZ object plus the model it came from (absent after :func:`load`)."""

    def __init__(self, idata, *, model: Model | None = None, timings: dict | None = None,
                 interrupted: bool = False):
        self.idata = idata
        self.model = model
        self.timings = dict(timings or {})
        self.interrupted = interrupted

    @property
    def spec(self) -> str:
        return str(self.idata.attrs.get("hdsl_spec", ""))

    @property
    def parameter_names(self) -> list[str]:
        if self.model is not None:
            return self.model.parameter_names
        return [v for v in self.idata["posterior"].data_vars if not str(v).startswith("r_")]

    @property
    def n_dropped(self) -> int:
        return int(self.idata.attrs.get("hdsl_rows_dropped", 0))

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """One row per parameter (brms names), group effects as ``r_g[level,coef]``; ``.attrs["rows_dropped"]``
        counts the rows dropped for missing values."""
        out = summarize(self.idata, self.parameter_names, prob)
        out.attrs["rows_dropped"] = self.n_dropped
        return out

    def diagnostics(self) -> dict[str, float]:
        """Sampler health: divergences, tree-depth hits, worst r_hat and ESS, lowest E-BFMI."""
        stats = self.idata["sample_stats"]
        worst = worst_diagnostics(self.idata["posterior"])
        energy = np.asarray(stats["energy"])
        bfmi = np.sum(np.diff(energy, axis=1) ** 2, axis=1) / np.sum(
            (energy - energy.mean(axis=1, keepdims=True)) ** 2, axis=1)
        max_depth = self.idata.attrs.get("hdsl_max_tree_depth", 10)
        return {
            "divergences": int(np.asarray(stats["diverging"]).sum()),
            "max_tree_depth_hits": int((np.asarray(stats["tree_depth"]) >= max_depth).sum()),
            **worst,
            "min_bfmi": float(bfmi.min()),
        }

    def _warn_if_unhealthy(self) -> None:
        d = self.diagnostics()
        total = int(np.prod(np.asarray(self.idata["sample_stats"]["diverging"]).shape))
        msgs = []
        if d["divergences"]:
            msgs.append(f"{d['divergences']} of {total} transitions diverged; raise target_accept (e.g. 0.95) "
                        "or reparameterize")
        if d["max_tree_depth_hits"]:
            msgs.append(f"{d['max_tree_depth_hits']} transitions hit the maximum tree depth; raise max_tree_depth")
        if d["max_r_hat"] > 1.01:
            msgs.append(f"r_hat up to {d['max_r_hat']:.3f} (> 1.01): chains disagree; run more warmup and draws")
        if d["min_ess_bulk"] < 100 * self.idata["posterior"].sizes["chain"]:
            msgs.append(f"bulk ESS as low as {d['min_ess_bulk']:.0f}; run more draws")
        if d["min_bfmi"] < 0.3:
            msgs.append(f"E-BFMI as low as {d['min_bfmi']:.2f}: the posterior is hard to explore; reparameterize")
        if self.interrupted:
            msgs.append("sampling was interrupted; these are the draws finished so far")
        for m in msgs:
            warnings.warn(m, SamplingWarning, stacklevel=3)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the posterior to netCDF atomically (a temp file, then a rename)."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", suffix=".tmp")
        os.close(fd)
        try:
            self.idata.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def predict(self, newdata: pd.DataFrame | None = None, kind: Literal["mean", "linpred", "response"] = "mean",
                draws: int | None = None, allow_new_levels: bool = False, re_formula: str | None = None,
                seed: int = 0):
        """Posterior predictions: a DataTree whose ``predictions`` group holds a (chain, draw, obs_id) array
        named after the response. ``newdata`` (default: the training rows) is encoded as in training.

        ``kind``: 'linpred' (the linear predictor), 'mean' (its inverse link: the family's mean parameter),
        'response' (draws from the family). ``draws=N`` keeps N draws, evenly spaced in every chain.
        ``allow_new_levels``: effects of group levels unseen in training are drawn, per posterior draw, from
        the fitted population distribution (brms's ``sample_new_levels="gaussian"``); otherwise an unseen
        level is a DataError. ``re_formula``: None keeps every group term, ``"~0"`` or ``"NA"`` none
        (population-level predictions), ``"~ (1 | g)"`` only those listed.

        >>> fit.predict(new_df, kind="response", allow_new_levels=True)   # doctest: +SKIP
        """
        from .predict import predict

        return predict(self, newdata, kind=kind, draws=draws, allow_new_levels=allow_new_levels,
                       re_formula=re_formula, seed=seed)

    def posterior_predictive(self, seed: int = 0):
        """Response draws at the training data, added to ``self.idata`` as the ``posterior_predictive``
        group (returned)."""
        from .predict import posterior_predictive

        return posterior_predictive(self, seed=seed)

    def log_likelihood(self, newdata: pd.DataFrame, allow_new_levels: bool = False, seed: int = 0):
        """Pointwise log-likelihood (chain, draw, obs_id) of new data holding the response (k-fold CV)."""
        from .predict import log_likelihood

        return log_likelihood(self, newdata, allow_new_levels=allow_new_levels, seed=seed)

    def loo(self, pointwise: bool = True):
        """PSIS-LOO (``arviz_stats.loo``); warns (:class:`hdsl.ParetoKWarning`) where Pareto k > 0.7."""
        from .model_comparison import loo

        return loo(self, pointwise=pointwise)

    def waic(self):
        """WAIC from the log_likelihood group (ArviZ 1.0 removed it): elpd_waic, p_waic, se."""
        from .model_comparison import waic

        return waic(self)

    # figures (hdsl.plots; matplotlib is the 'plots' extra): each returns a matplotlib Figure
    def plot_trace(self, var_names: list[str] | None = None):
        """Posterior density and trace per chain; see :func:`hdsl.plots.plot_trace`."""
        from . import plots

        return plots.plot_trace(self, var_names)

    def plot_forest(self, group: str | None = None, prob: float = 0.95):
        """Each level's coefficients ``b + r`` with intervals; see :func:`hdsl.plots.plot_forest`."""
        from . import plots

        return plots.plot_forest(self, group, prob)

    def plot_group_lines(self, n_lines: int = 50, **kw):
        """Posterior regression lines per level; see :func:`hdsl.plots.plot_group_lines`."""
        from . import plots

        return plots.plot_group_lines(self, n_lines, **kw)

    def conditional_effects(self, effect: str, **kw):
        """Population-level mean response over ``effect``; see :func:`hdsl.plots.conditional_effects`."""
        from . import plots

        return plots.conditional_effects(self, effect, **kw)

    def ppc_plot(self, n_draws: int = 50, seed: int = 0):
        """Replicated against observed response; see :func:`hdsl.plots.ppc_plot`."""
        from . import plots

        return plots.ppc_plot(self, n_draws, seed)

    def __repr__(self) -> str:
        return f"<hdsl.Fit of {self.spec.strip().splitlines()[0] if self.spec.strip() else '?'}>"


def load(path: str | os.PathLike, data: pd.DataFrame | None = None) -> Fit:
    """Read a :meth:`Fit.save` file back. With the training ``data``, the model is rebuilt from the saved
    spec (same encoding: levels, transforms, centering), so the loaded fit can predict."""
    import arviz as az

    if not Path(path).exists():
        raise HdslError(f"no such file: {path}")
    idata = az.from_netcdf(path, engine="h5netcdf")
    model = None
    if data is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dropped rows were reported when the model was fitted
            model = Model(str(idata.attrs.get("hdsl_spec", "")), data,
                          dtype=str(idata.attrs.get("hdsl_dtype", "")) or None)
        used = idata.attrs.get("hdsl_rows_used")
        if used is not None and int(used) != model.design.n_rows:
            raise HdslError(f"the data give {model.design.n_rows} usable rows but the fit used {int(used)}",
                            hint="pass the data the model was fitted to")
    return Fit(idata, model=model)


@expand_sampler_keywords
def fit(
    spec: str,
    data: pd.DataFrame,
    *,
    progress: bool = True,
    na_action: Literal["drop", "error"] = "drop",
    dtype: str | None = None,
    parameterization: str | dict[str, str] = "auto",
    **options: Unpack[SamplerKeywords],
) -> Fit:
    """Compile ``spec`` against ``data`` and sample its posterior. ``options`` are the sampler's, by keyword
    (:class:`hdsl.SamplerOptions`: chains, warmup, draws, seed, target_accept, max_tree_depth, init,
    adaptation, pool_adaptation), checked before anything is compiled.

    >>> fit = hdsl.fit("y ~ x + (1 | g)", df, chains=4, warmup=1000, draws=1000, seed=1)  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    SamplerOptions.from_keywords(options, "fit")  # a bad option is reported before the model is compiled
    model = Model(spec, data, na_action=na_action, dtype=dtype, parameterization=parameterization)
    t_build = time.perf_counter() - t0
    result = model.sample(progress=progress, **options)
    result.timings["build_s"] = t_build
    result.timings["total_s"] = time.perf_counter() - t0
    return result
