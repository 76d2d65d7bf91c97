"""Model checking and comparison: PSIS-LOO (arviz_stats), WAIC (computed here: ArviZ 1.0 removed it) and
model comparison, all read from the pointwise ``log_likelihood`` group of a fit.

>>> fit.loo()                                   # doctest: +SKIP
>>> fit.waic().elpd_waic                        # doctest: +SKIP
>>> hdsl.compare({"slopes": fit1, "intercepts": fit2})   # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from ..errors import HdslError, ParetoKWarning, WaicWarning
from .protocols import Posterior

__all__ = ["Waic", "loo", "waic", "compare"]

#: Pareto k above this makes the PSIS estimate of an observation's elpd unreliable (Vehtari et al. 2024).
K_THRESHOLD = 0.7


def _log_lik(fit_or_tree, var_name: str | None = None) -> np.ndarray:
    """The pointwise log-likelihood as (draws, observations)."""
    tree = getattr(fit_or_tree, "idata", fit_or_tree)
    if "log_likelihood" not in tree.children:
        raise HdslError("this fit has no log_likelihood group (it is not stored for very large fits)",
                        hint="compute it with fit.log_likelihood(data) for a subset, or refit with fewer draws")
    ds = tree["log_likelihood"].to_dataset()
    names = list(ds.data_vars)
    if var_name is None:
        if len(names) != 1:
            raise HdslError(f"the log_likelihood group holds several variables ({', '.join(names)}): pass var_name")
        var_name = names[0]
    da = ds[var_name]
    return np.asarray(da.values, dtype=float).reshape(da.sizes["chain"] * da.sizes["draw"], -1)


def loo(fit: Posterior, *, pointwise: bool = True, var_name: str | None = None):
    """PSIS-LOO from ``arviz_stats.loo``; an :class:`ParetoKWarning` says how many observations have
    Pareto k > 0.7 and what to do about them."""
    import arviz_stats

    _log_lik(fit, var_name)  # a clear error where the group is missing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ's own warning is replaced by ours, which says what to do
        result = arviz_stats.loo(fit.idata, pointwise=pointwise, var_name=var_name)
    k = getattr(result, "pareto_k", None)
    if k is not None:
        bad = int(np.sum(np.asarray(k) > K_THRESHOLD))
        if bad:
            n = int(np.asarray(k).size)
            warnings.warn(
                f"{bad} of {n} observations have Pareto k > {K_THRESHOLD}: the PSIS-LOO estimate is unreliable "
                "for them (they are very influential). Use k-fold cross-validation instead (refit without each "
                "fold and score it with fit.log_likelihood(held_out)), or a more robust model "
                "(e.g. family: student).",
                ParetoKWarning, stacklevel=3,
            )
    return result


@dataclass(frozen=True)
class Waic:
    """The widely applicable information criterion on the elpd scale (higher is better), as in the
    ``loo`` R package: ``elpd_waic = Σ_i [log mean_s p(y_i | θ_s) − var_s log p(y_i | θ_s)]``,
    ``p_waic = Σ_i var_s log p(y_i | θ_s)``, ``se = sqrt(n · var_i(elpd_i))``; ``waic = −2 · elpd_waic``."""

    elpd_waic: float
    se: float
    p_waic: float
    n_draws: int
    n_obs: int
    elpd_i: np.ndarray = field(repr=False)
    p_waic_i: np.ndarray = field(repr=False)

    @property
    def waic(self) -> float:
        return -2.0 * self.elpd_waic

    @property
    def waic_se(self) -> float:
        return 2.0 * self.se

    def to_series(self) -> pd.Series:
        return pd.Series({"elpd_waic": self.elpd_waic, "se": self.se, "p_waic": self.p_waic,
                          "waic": self.waic, "waic_se": self.waic_se}, name="waic")


def waic(fit: Posterior, *, var_name: str | None = None) -> Waic:
    """WAIC from the pointwise log-likelihood (ArviZ 1.0 removed it; LOO is preferred, and a
    :class:`WaicWarning` says so when any p_waic_i exceeds 0.4)."""
    ll = _log_lik(fit, var_name)
    s, n = ll.shape
    lppd_i = logsumexp(ll, axis=0) - np.log(s)
    p_i = np.var(ll, axis=0, ddof=1)
    elpd_i = lppd_i - p_i
    bad = int(np.sum(p_i > 0.4))
    if bad:
        warnings.warn(f"{bad} of {n} observations have p_waic > 0.4: WAIC is unreliable here; use fit.loo()",
                      WaicWarning, stacklevel=3)
    return Waic(elpd_waic=float(elpd_i.sum()), se=float(np.sqrt(n * np.var(elpd_i, ddof=1))),
                p_waic=float(p_i.sum()), n_draws=s, n_obs=n, elpd_i=elpd_i, p_waic_i=p_i)


def compare(fits: Mapping[str, Posterior], *, method: str = "stacking", var_name: str | None = None) -> pd.DataFrame:
    """Rank fits by PSIS-LOO (``arviz_stats.compare``): a DataFrame, best model first, with elpd, its
    difference to the best (``elpd_diff``, as ArviZ 1.x signs it: ≤ 0) and the standard error of that
    difference (``dse``), and the model weights. Numbers are not rounded.

    All fits must be to the same observations."""
    import arviz_stats

    if len(fits) < 2:
        raise HdslError("compare needs at least two fits, as a dict {name: fit}")
    trees = {}
    n_obs = set()
    for name, f in fits.items():
        n_obs.add(_log_lik(f, var_name).shape[1])
        trees[str(name)] = getattr(f, "idata", f)
    if len(n_obs) > 1:
        raise HdslError(f"the fits have different numbers of observations ({sorted(n_obs)}); "
                        "compare needs them fitted to the same data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = arviz_stats.compare(trees, method=method, var_name=var_name, round_to="none")
    return pd.DataFrame(table)
