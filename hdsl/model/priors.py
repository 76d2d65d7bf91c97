"""Stage 4: bound design → prior table. Every valid target is listed with its default; the user's
statements are resolved against it, the most specific winning (``sd[g, x]`` over ``sd[g]`` over
``sd``), as brms's ``default_prior`` / ``set_prior`` do. A statement that matches nothing is an error
listing the valid targets; a prior whose support does not fit its parameter is an error too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import PriorError, did_you_mean
from ..language.distributions import PRIOR_DISTRIBUTIONS, Support
from ..language.ir import DistributionSpec, ParamClass, PriorStatement, PriorTarget
from .default_priors import default_aux_prior, default_scale, intercept_prior, response_scale
from .design import BoundDesign, GroupBlock, group_blocks

__all__ = ["ParamPrior", "PriorTable", "build_prior_table", "sd_targets"]


@dataclass(frozen=True)
class ParamPrior:
    """The prior of one parameter element, its bounds, and which statement set it."""

    target: PriorTarget
    distribution: DistributionSpec
    source: str  # "default" or "user"
    set_by: PriorTarget
    lower: float = -math.inf
    upper: float = math.inf


@dataclass(frozen=True)
class PriorTable:
    """The priors of a bound model: one entry per parameter element (``b[x]``, ``sd[g, x]``, ``sigma``, …),
    every target a statement may name (class-wide ones too: ``b``, ``sd``, ``sd[g]``), and the user's
    statements as resolved (a class-wide one stays listed even where specific ones override it all)."""

    entries: tuple[ParamPrior, ...]
    valid_targets: tuple[PriorTarget, ...]
    statements: tuple[PriorStatement, ...] = ()

    def __getitem__(self, target: PriorTarget) -> ParamPrior:
        for e in self.entries:
            if e.target == target:
                return e
        raise KeyError(str(target))

    def to_frame(self) -> pd.DataFrame:
        """brms-style table: one row per target, with prior, class, coef, group and source."""
        rows = []
        user = {st.target: st.distribution for st in self.statements}
        for t in self.valid_targets:
            specific = [e for e in self.entries if e.target == t]
            if specific:
                e = specific[0]
                prior, source = str(e.distribution) + _truncation(e), e.source
            else:
                prior = str(user[t]) if t in user else "(set below)"
                source = "user" if t in user else ""
            rows.append({
                "target": str(t), "prior": prior,
                "class": t.dpar if t.cls is ParamClass.AUX else t.cls.value,
                "dpar": t.dpar if t.dpar and t.cls is not ParamClass.AUX else "",
                "group": t.group or "", "coef": t.coef or "", "source": source,
            })
        return pd.DataFrame(rows).set_index("target")


_REAL_NAMES = {n for n, d in PRIOR_DISTRIBUTIONS.items() if d.support is Support.REAL}


def _truncation(e: ParamPrior) -> str:
    """' (truncated at 0)' where a real-line prior is cut to its parameter's bounds (``nu``'s are at 1,
    ``zi``'s are 0 and 1), so the table does not show a half-normal as a normal."""
    if e.distribution.name not in _REAL_NAMES or (math.isinf(e.lower) and math.isinf(e.upper)):
        return ""
    if math.isinf(e.upper):
        return f" (truncated at {e.lower:g})"
    return f" (truncated to [{e.lower:g}, {e.upper:g}])"


def _slope_default(x: np.ndarray, scale_y: float) -> DistributionSpec:
    sd = float(np.std(x)) if x.size > 1 else 0.0
    s = 2.5 * scale_y / sd if sd > 0 else 2.5 * scale_y
    return DistributionSpec("normal", (0.0, float(f"{s:.3g}")))


def sd_targets(design: BoundDesign, block: GroupBlock) -> list[PriorTarget]:
    """The sd prior target of each column of a group block."""
    out = []
    for j, i in block.members:
        dpar, pred = design.predictors[j]
        g = pred.groups[i]
        out += [PriorTarget(ParamClass.SD, group=g.name, coef=c, dpar=None if dpar == "mu" else dpar)
                for c in g.coef_names]
    return out


def build_prior_table(design: BoundDesign, statements: tuple[PriorStatement, ...] | None = None) -> PriorTable:
    """Defaults for every parameter, overridden by the user's statements (``design.spec.priors``)."""
    spec = design.spec
    statements = spec.priors if statements is None else statements
    text = spec.text
    family = spec.family
    y = design.y
    mu_scale_y = response_scale(family, y)
    mu_sd_scale = default_scale(family, y)

    # (element target, default distribution, lower, upper), and the class-level targets above it
    elements: list[tuple[PriorTarget, DistributionSpec, float, float]] = []
    valid: list[PriorTarget] = []
    for dpar, pred in design.predictors:
        # a modelled family parameter lives on its link scale: unit-scaled defaults, as brms
        d = None if dpar == "mu" else dpar
        scale_y, sd_scale = (mu_scale_y, mu_sd_scale) if d is None else (1.0, 2.5)
        if pred.intercept:
            t = PriorTarget(ParamClass.INTERCEPT, dpar=d)
            default = intercept_prior(family, y) if d is None else DistributionSpec("student_t", (3.0, 0.0, 2.5))
            elements.append((t, default, -math.inf, math.inf))
            valid.append(t)
        if pred.coef_names:
            valid.append(PriorTarget(ParamClass.B, dpar=d))
            for j, c in enumerate(pred.coef_names):
                t = PriorTarget(ParamClass.B, coef=c, dpar=d)
                elements.append((t, _slope_default(pred.X[:, j], scale_y), -math.inf, math.inf))
                valid.append(t)
        if pred.groups:
            valid.append(PriorTarget(ParamClass.SD, dpar=d))
            for name in dict.fromkeys(g.name for g in pred.groups):
                valid.append(PriorTarget(ParamClass.SD, group=name, dpar=d))
            for g in pred.groups:
                for c in g.coef_names:
                    t = PriorTarget(ParamClass.SD, group=g.name, coef=c, dpar=d)
                    elements.append((t, DistributionSpec("student_t", (3.0, 0.0, sd_scale)), 0.0, math.inf))
                    valid.append(t)
    corr = [b for b in group_blocks(design.predictors) if b.correlated]
    if corr:
        valid.append(PriorTarget(ParamClass.COR))
        for name in dict.fromkeys(b.name for b in corr):
            t = PriorTarget(ParamClass.COR, group=name)
            elements.append((t, DistributionSpec("lkj", (1.0,)), -1.0, 1.0))
            valid.append(t)
    for a in spec.scalar_aux:
        t = PriorTarget(ParamClass.AUX, dpar=a.name)
        elements.append((t, default_aux_prior(a, y), a.lower, a.upper))
        valid.append(t)

    valid_set = set(valid)
    by_target: dict[PriorTarget, PriorStatement] = {}
    for st in statements:
        if st.target not in valid_set:
            raise PriorError(
                f"prior target '{st.target}' matches no parameter of this model"
                f"{did_you_mean(str(st.target), [str(v) for v in valid])}",
                position=st.pos, text=text, hint="valid targets: " + ", ".join(str(v) for v in valid),
            )
        by_target[st.target] = st

    entries = []
    for t, default, lower, upper in elements:
        chain = _specificity_chain(t)
        chosen = next((by_target[c] for c in chain if c in by_target), None)
        if chosen is None:
            entries.append(ParamPrior(t, default, "default", t, lower, upper))
            continue
        lo, hi = _check_support(chosen, t, lower, upper, text)
        entries.append(ParamPrior(t, chosen.distribution, "user", chosen.target, lo, hi))
    return PriorTable(tuple(entries), tuple(valid), tuple(statements))


def _specificity_chain(t: PriorTarget) -> list[PriorTarget]:
    """The targets that can set ``t``, most specific first."""
    if t.cls is ParamClass.B:
        return [t, PriorTarget(ParamClass.B, dpar=t.dpar)]
    if t.cls is ParamClass.SD:
        return [t, PriorTarget(ParamClass.SD, group=t.group, dpar=t.dpar), PriorTarget(ParamClass.SD, dpar=t.dpar)]
    if t.cls is ParamClass.COR:
        return [t, PriorTarget(ParamClass.COR)]
    return [t]


def _check_support(st: PriorStatement, t: PriorTarget, lower: float, upper: float, text: str) -> tuple[float, float]:
    """Bounds of the parameter under this prior; an error where the prior cannot apply."""
    dist = PRIOR_DISTRIBUTIONS[st.distribution.name]
    is_cor = t.cls is ParamClass.COR
    if is_cor != (dist.support is Support.CORR_CHOLESKY):
        want = "lkj(eta)" if is_cor else "a distribution other than lkj"
        raise PriorError(f"'{st.target}' needs {want}, got {st.distribution}", position=st.pos, text=text)
    if is_cor:
        return lower, upper
    unbounded = math.isinf(lower) and math.isinf(upper)
    if dist.support is Support.POSITIVE and lower < 0:
        raise PriorError(
            f"{st.distribution} only has positive values but '{t}' can be negative "
            "(a bounded prior on an unbounded parameter)", position=st.pos, text=text,
            hint="use normal(...) or student_t(...)",
        )
    if dist.support is Support.INTERVAL:
        lo, hi = (st.distribution.args if dist.name == "uniform" else (0.0, 1.0))
        if unbounded:
            raise PriorError(
                f"{st.distribution} is bounded but '{t}' is not (a bounded prior on an unbounded parameter)",
                position=st.pos, text=text, hint="use normal(...) or student_t(...)",
            )
        if lo < lower:
            raise PriorError(f"{st.distribution} puts mass below {lower:g}, outside the support of '{t}'",
                             position=st.pos, text=text)
        return max(lo, lower), min(hi, upper)
    return lower, upper
