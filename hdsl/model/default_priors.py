"""brms's default priors where they depend on the response: the intercept's location and scale on the link
scale of y, the scale of slopes and sds, and the scale of a family parameter's default prior (sigma's
``student_t(3, 0, max(2.5, mad(y)))``). NumPy only; the family's metadata (``prior_link``, each
parameter's ``prior_scale``) says what to compute.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from ..language.distributions import DistributionSpec
from ..language.families import AuxParam, Family, Link, PriorScale

__all__ = ["robust_scale", "default_scale", "intercept_prior", "response_scale", "default_aux_prior"]

# links under which brms transforms the response to find the default prior's location and scale
_Y_LINKS: dict[Link, Callable[[np.ndarray], np.ndarray]] = {
    Link.IDENTITY: lambda y: y,
    Link.LOG: np.log,
    Link.INVERSE: lambda y: 1.0 / y,
    Link.SQRT: np.sqrt,
}


def _mad(y: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(y - np.median(y)))) if y.size else 0.0


def robust_scale(y: np.ndarray) -> float:
    """brms's default scale: the normalized MAD of the response, at least 2.5."""
    return max(2.5, round(_mad(np.asarray(y, dtype=float)), 1))


def _log_scale(y: np.ndarray) -> float:
    """robust_scale of log(y), for parameters on the log scale of a positive response."""
    y = np.asarray(y, dtype=float)
    with np.errstate(all="ignore"):
        s = _mad(np.log(y[y > 0]))
    return max(2.5, round(s, 1)) if math.isfinite(s) else 2.5


def _y_on_link_scale(family: Family, y: np.ndarray, link: Link) -> np.ndarray | None:
    """The response on the scale mu lives on: the family's ``prior_link`` (lognormal: log y), else the
    link's; None where brms cannot transform it (logit, probit, ...) or it is not finite."""
    link = family.prior_link or link
    if link not in _Y_LINKS:
        return None
    y = np.asarray(y, dtype=float)
    if link in (Link.LOG, Link.INVERSE):
        y = np.where(y == 0, y + 0.1, y)  # as brms, to avoid infinities
    with np.errstate(all="ignore"):
        out = _Y_LINKS[link](y)
    return out if np.all(np.isfinite(out)) else None


def default_scale(family: Family, y: np.ndarray, link: Link | None = None) -> float:
    """brms's scale for default intercept, sd and sigma priors: max(2.5, mad(link(y))). ``link``: the
    family's link unless given."""
    y_link = _y_on_link_scale(family, y, link or family.link)
    return 2.5 if y_link is None else robust_scale(y_link)


def intercept_prior(family: Family, y: np.ndarray, link: Link | None = None) -> DistributionSpec:
    """brms's default: student_t(3, median(link(y)), default_scale) where the link can be applied
    to the response (identity, log, inverse, sqrt), else student_t(3, 0, 2.5)."""
    y_link = _y_on_link_scale(family, y, link or family.link)
    if y_link is None or y_link.size == 0:
        return DistributionSpec("student_t", (3.0, 0.0, 2.5))
    return DistributionSpec("student_t", (3.0, round(float(np.median(y_link)), 1), robust_scale(y_link)))


def response_scale(family: Family, y: np.ndarray, link: Link | None = None) -> float:
    """Scale of the response on the link scale, used to scale default slope and sd priors."""
    link = link or family.link
    if link is Link.IDENTITY:
        y_link = _y_on_link_scale(family, y, link)
        if y_link is not None and y_link.size > 1:
            return max(float(np.std(y_link)), 1e-8)
    return 1.0


_PRIOR_SCALES: dict[PriorScale, Callable[[np.ndarray], float]] = {
    PriorScale.RESPONSE: robust_scale,
    PriorScale.LOG_RESPONSE: _log_scale,
}


def default_aux_prior(aux: AuxParam, y: np.ndarray) -> DistributionSpec:
    """brms's default prior of a family parameter for this response: the catalogue's, with its scale
    computed from the response where the catalogue says so (sigma: student_t(3, 0, max(2.5, mad(y))))."""
    prior = aux.default_prior
    if aux.prior_scale is PriorScale.FIXED:
        return prior
    return dataclasses.replace(prior, args=(*prior.args[:-1], _PRIOR_SCALES[aux.prior_scale](y)))
