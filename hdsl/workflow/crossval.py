"""Cross-validation at the two levels of a hierarchy, every fold of a model in one compiled program.

The seed article's closing proposal: hold out observations within groups (does partial pooling
predict a known group's new members better than one regression per group, or one for everybody?)
and hold out whole groups (does it predict a *new* group?). Each fold is the full data set with the
held-out rows' weights set to 0, so all folds have the same shapes and run as one vectorized
sampler (folds × chains, ``sample_nuts(..., batch=K)``). A held-out group stays a level with no data
in its fold, so its effects are drawn from the population distribution: new-level prediction.

Baselines are fitted through the same pipeline: complete pooling (the formula without its group
terms) and no pooling (the population terms interacted with the grouping factor), with the user's
priors where their targets still exist.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Unpack

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.special import logsumexp

from ..errors import DataError, HdslError, SamplingWarning
from ..inference.options import SamplerKeywords, SamplerOptions, expand_sampler_keywords
from ..inference.precision import resolve_dtype
from ..inference.sample import sample_nuts
from ..language import syntax as s
from ..language.expand import expand_spec
from ..language.families import Categories
from ..language.ir import Factor, LinearPredictor, ModelSpec, ParamClass, PriorStatement, PriorTarget, Response, Term
from ..language.parse import parse_spec
from ..model import density
from ..model.bind import bind_design
from ..model.design import BoundDesign
from ..model.lower import LoweredModel, lower_model
from ..model.parameterization import choose_parameterization
from ..model.params import ModelData
from ..model.predictive import Kind, predictive
from ..model.priors import build_prior_table
from .progress import ProgressBar

__all__ = ["CVResult", "cross_validate", "stratified_folds", "group_folds", "sample_folds", "MODELS"]

#: Row labels of :meth:`CVResult.summary`, in order.
MODELS = ("partial_pooling", "complete_pooling", "no_pooling")


# ---------------------------------------------------------------------------------------------
# folds


def stratified_folds(groups: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold id (0..k-1) per row, each group's rows spread over the folds as evenly as possible.

    Within a group the rows are shuffled and dealt round-robin, starting where the previous group
    stopped, so a group with at least ``k`` rows is held out partly in every fold and fold sizes
    differ by at most one.
    """
    groups = np.asarray(groups)
    if k < 2:
        raise HdslError(f"cross-validation needs at least 2 folds, got {k}")
    if k > len(groups):
        raise HdslError(f"{k} folds for {len(groups)} rows: at most one fold per row")
    rng = np.random.default_rng(seed)
    out = np.empty(len(groups), dtype=np.int64)
    start = 0
    for g in np.unique(groups):
        rows = rng.permutation(np.flatnonzero(groups == g))
        out[rows] = (start + np.arange(len(rows))) % k
        start = (start + len(rows)) % k
    return out


def group_folds(groups: np.ndarray, k: int | None = None, seed: int = 0) -> np.ndarray:
    """Fold id per row holding out whole groups: each level in exactly one fold. ``k=None``: one
    fold per level (leave-one-group-out); otherwise the levels are shuffled into ``k`` near-equal sets."""
    levels, codes = np.unique(np.asarray(groups), return_inverse=True)
    n = len(levels)
    k = n if k is None else k
    if not 2 <= k <= n:
        raise HdslError(f"leave-group-out needs 2 to {n} folds (the number of levels), got {k}")
    if k == n:
        return codes.astype(np.int64)
    level_fold = np.empty(n, dtype=np.int64)
    for f, chunk in enumerate(np.array_split(np.random.default_rng(seed).permutation(n), k)):
        level_fold[chunk] = f
    return level_fold[codes]


# ---------------------------------------------------------------------------------------------
# baselines built from the model IR


def complete_pooling_spec(spec: ModelSpec) -> ModelSpec:
    """The formula without its group terms: one regression for everybody."""
    return dataclasses.replace(spec, predictor=dataclasses.replace(spec.predictor, groups=()), priors=())


def no_pooling_spec(spec: ModelSpec, group: Factor) -> ModelSpec:
    """One regression per level of ``group``: the population terms interacted with it, no intercept
    shared (``y ~ 0 + g + g:x``)."""
    pred = spec.predictor
    terms = tuple(Term((group,) + t.factors) for t in pred.terms)
    if pred.intercept or not terms:
        terms = (Term((group,)),) + terms
    return dataclasses.replace(spec, predictor=LinearPredictor(False, terms, (), pred.offsets), priors=())


def render_spec(spec: ModelSpec, priors: tuple[PriorStatement, ...] = ()) -> str:
    """Spec text of a model, for display (labels as the user wrote them)."""
    resp = spec.response.label
    if spec.response.additions:
        resp += " | " + _render_additions(spec.response)
    lines = [f"{resp} ~ {_render_predictor(spec.predictor)}"]
    lines += [f"{dpar} ~ {_render_predictor(pred)}" for dpar, pred in spec.dpars]
    link = f"({spec.family.link})" if spec.family.link is not spec.family.default_link else ""
    lines.append(f"family: {spec.family.name}{link}")
    lines += [f"prior: {p.target} ~ {p.distribution}" for p in priors]
    return "\n".join(lines)


def _render_predictor(pred: LinearPredictor) -> str:
    rhs = [] if pred.intercept else ["0"]
    rhs += [t.label for t in pred.terms]
    bar = {True: " | ", False: " || "}
    rhs += [f"({' + '.join((['1'] if g.intercept else ['0']) + [t.label for t in g.terms])}"
            f"{bar[g.correlated]}{g.id + bar[g.correlated] if g.id else ''}{g.group_label})" for g in pred.groups]
    rhs += [f"offset({f.label})" for f in pred.offsets]
    return " + ".join(rhs) or "1"


def _render_additions(response: Response) -> str:
    """``trials(n) + cens(c, y2) + se(s, sigma = TRUE)``: the IR's entries back as the user wrote them."""
    upper = dict(response.additions).get("cens_upper")
    parts = []
    for name, f in response.additions:
        args = [f.label]
        if name == "cens_upper":
            continue
        if name == "cens" and upper is not None:
            args.append(upper.label)
        if name == "se" and response.se_sigma:
            args.append("sigma = TRUE")
        parts.append(f"{name}({', '.join(args)})")
    return " + ".join(parts)


def _carry_priors(user: tuple[PriorStatement, ...], design: BoundDesign,
                  renames: dict[str, list[str]]) -> tuple[PriorStatement, ...]:
    """The user's statements whose targets exist in ``design``; a population coefficient's prior also
    goes to the per-level coefficients it became (``renames``: ``Intercept`` or coef → new coefs)."""
    valid = set(build_prior_table(design).valid_targets)  # the baseline's spec has no statements yet
    out = []
    for st in user:
        if st.target in valid:
            out.append(st)
        key = "Intercept" if st.target.cls is ParamClass.INTERCEPT else (
            st.target.coef if st.target.cls is ParamClass.B and st.target.group is None else None)
        for coef in renames.get(key, []) if key else []:
            target = PriorTarget(ParamClass.B, coef=coef)
            if target in valid:
                out.append(PriorStatement(target, st.distribution))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class _Candidate:
    """One model of the comparison: display text, design and compiled log-density."""

    name: str
    text: str
    design: BoundDesign
    lowered: LoweredModel


def _compile(name: str, spec: ModelSpec, frame: pd.DataFrame, user_priors: tuple[PriorStatement, ...],
             dtype: str, renames: dict[str, list[str]] | None = None,
             parameterization: str | dict[str, str] = "auto") -> _Candidate:
    dtype = resolve_dtype(dtype)
    design = bind_design(spec, frame, na_action="error")
    priors = _carry_priors(user_priors, design, renames or {}) if renames is not None else user_priors
    design = dataclasses.replace(design, spec=dataclasses.replace(spec, priors=priors))
    table = build_prior_table(design)
    centered = choose_parameterization(design, parameterization)
    return _Candidate(name, render_spec(spec, priors), design, lower_model(design, table, dtype, centered))


def _no_pooling_renames(partial: BoundDesign, none: BoundDesign) -> dict[str, list[str]]:
    """Which no-pooling coefficients each population coefficient became (by position: the design puts
    the level columns of ``g`` first, then those of each ``g:term`` in term order)."""
    n_levels = len(partial.main.groups[0].levels)
    names = list(none.main.coef_names)
    out: dict[str, list[str]] = {}
    pos = 0
    if partial.main.intercept or not partial.main.coef_names:
        out["Intercept"] = names[:n_levels]
        pos = n_levels
    for c in partial.main.coef_names:
        out[c] = names[pos:pos + n_levels]
        pos += n_levels
    return out if pos == len(names) else {}  # categorical population terms: no one-to-one map


# ---------------------------------------------------------------------------------------------
# sampling all folds at once, and scoring


def _stack_folds(data: ModelData, weights: np.ndarray) -> ModelData:
    """The training data with a leading fold axis; fold ``k`` weights rows by ``weights[k]``."""
    k = weights.shape[0]
    stacked = jax.tree.map(lambda a: jnp.broadcast_to(a, (k,) + a.shape), data)
    return stacked.with_weights(weights * _row_weights(data)[None, :])


def _row_weights(data: ModelData) -> np.ndarray:
    """The user's row weights (``y | weights(w)``), ones where there are none."""
    return np.asarray(data.weights) if data.weights is not None else np.ones(data.y.shape[0])


def sample_folds(compiled: LoweredModel, weights: np.ndarray, options: SamplerOptions, *,
                 progress: Callable[[str, int, int], None] | None = None
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """Sample every fold (row weights ``weights[k]``) in one program: positions (K, chains, draws, dim),
    sampler statistics (K, chains, draws) and timings."""
    d = sample_nuts(functools.partial(density.log_density, compiled), compiled.dim, options,
                    _stack_folds(compiled.data, weights), batch=weights.shape[0], dtype=compiled.dtype,
                    progress=progress)
    return d.positions, d.stats, dict(d.timings)


def _scorer(compiled: LoweredModel) -> Callable:
    """Compiled (K, S, dim) draws × stacked data → per fold and row: posterior-mean prediction of y and
    log pointwise predictive density log(mean_s p(y | θ_s)). Folds are mapped, not vmapped, so
    memory holds one fold's S × n log-likelihoods at a time."""

    def one_fold(args):
        pos, data = args

        def one_draw(flat):
            params = density.constrain(compiled, flat)
            return (predictive(compiled, Kind.MEAN, params, data),
                    predictive(compiled, Kind.LOG_LIK, params, data))

        mean, ll = jax.vmap(one_draw)(pos)
        return mean.mean(axis=0), logsumexp(ll, axis=0) - jnp.log(pos.shape[0])

    return jax.jit(lambda pos, data: jax.lax.map(one_fold, (pos, data)))


# ---------------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True, eq=False)
class CVResult:
    """Cross-validation of a hierarchical model against its pooling baselines.

    ``pointwise``: one row per data row (index: the data's row labels) with its fold and, per model,
    the held-out prediction (``pred_<model>``) and log predictive density (``lpd_<model>``), NaN where
    a model cannot predict the row (no pooling for a group with no training rows in that fold).
    ``folds``: one row per (model, fold). ``timings``: seconds per model and stage.
    """

    pointwise: pd.DataFrame
    folds: pd.DataFrame
    specs: dict[str, str]
    timings: dict[str, dict[str, float]]
    by: str | None
    k: int
    group: str
    extra: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per model: RMSD of the posterior-mean prediction and ELPD over all held-out rows,
        the ELPD's standard error, and the ELPD difference to partial pooling with the standard error
        of the paired differences (as ``loo_compare``). NaN for a model undefined on some held-out row."""
        pw = self.pointwise
        y = pw["y"].to_numpy()
        base = pw["lpd_partial_pooling"].to_numpy()
        rows = []
        for m in MODELS:
            pred, lpd = pw[f"pred_{m}"].to_numpy(), pw[f"lpd_{m}"].to_numpy()
            undefined = int(np.isnan(lpd).sum())
            n = len(lpd)
            if undefined:
                rmsd = elpd = se = diff = diff_se = np.nan
            else:
                rmsd = float(np.sqrt(np.mean((y - pred) ** 2)))
                elpd, se = float(lpd.sum()), float(np.sqrt(n * np.var(lpd)))
                diff, diff_se = float((lpd - base).sum()), float(np.sqrt(n * np.var(lpd - base)))
            fm = self.folds.xs(m, level="model")
            rows.append({"model": m, "rmsd": rmsd, "elpd": elpd, "elpd_se": se, "elpd_diff": diff,
                         "diff_se": diff_se, "n": n, "n_undefined": undefined,
                         "divergences": int(fm["divergences"].sum())})
        return pd.DataFrame(rows).set_index("model")

    def __repr__(self) -> str:
        how = f"leave-group-out by {self.by}" if self.by else f"within-group (stratified by {self.group})"
        return f"<hdsl.CVResult: {self.k} folds, {how}, {len(self.pointwise)} rows>"


# ---------------------------------------------------------------------------------------------
# the driver


def _group_labels(design: BoundDesign, frame: pd.DataFrame, name: str) -> np.ndarray:
    for g in design.main.groups:
        if g.name == name:
            return g.codes
    if name in frame.columns:
        return pd.factorize(frame[name])[0]
    names = [g.name for g in design.main.groups]
    raise DataError(f"'by' names '{name}', which is neither a grouping factor ({', '.join(names)}) nor a column",
                    column=name)


def _score_model(m: _Candidate, weights: np.ndarray, fold_id: np.ndarray, defined: np.ndarray,
                 options: SamplerOptions, progress: bool, groups: pd.Series | None
                 ) -> tuple[np.ndarray, np.ndarray, list[dict], dict[str, float]]:
    """Sample every fold of one model in one program and score each row where it was held out: the
    prediction, the log predictive density (NaN where no pooling cannot predict), one row per fold of the
    fold table (``groups``: each row's level, to list the held-out levels) and the timings."""
    k, n = weights.shape
    reporter = None
    if progress:
        sys.stderr.write(f"{m.name}: {k} folds x {options.chains} chains in one program\n")
        reporter = ProgressBar()
    positions, stats, tm = sample_folds(m.lowered, weights, options, progress=reporter)
    if reporter:
        reporter.close()
    t1 = time.perf_counter()
    pos = jnp.asarray(positions.reshape(k, options.chains * options.draws, -1), dtype=m.lowered.dtype)
    pred, lpd = (np.asarray(a) for a in _scorer(m.lowered)(pos, _stack_folds(m.lowered.data, weights)))
    tm["score_s"] = time.perf_counter() - t1
    held_pred, held_lpd = pred[fold_id, np.arange(n)], lpd[fold_id, np.arange(n)]
    if m.name == "no_pooling":
        held_pred, held_lpd = np.where(defined, held_pred, np.nan), np.where(defined, held_lpd, np.nan)
    y = m.design.y
    divergences = stats["diverging"].reshape(k, -1).sum(axis=1)
    rows = []
    for f in range(k):
        held = fold_id == f
        bad = np.isnan(held_lpd[held]).any()
        rows.append({
            "model": m.name, "fold": f, "n_heldout": int(held.sum()),
            "held_out_levels": _level_text(groups[held]) if groups is not None else "",
            "rmsd": np.nan if bad else float(np.sqrt(np.mean((y[held] - held_pred[held]) ** 2))),
            "elpd": np.nan if bad else float(held_lpd[held].sum()),
            "divergences": int(divergences[f]),
        })
    return held_pred, held_lpd, rows, tm


@expand_sampler_keywords
def cross_validate(
    spec: str,
    data: pd.DataFrame,
    *,
    folds: int | None = None,
    by: str | None = None,
    progress: bool = True,
    baselines: bool = True,
    dtype: str | None = None,
    parameterization: str | dict[str, str] = "auto",
    **options: Unpack[SamplerKeywords],
) -> CVResult:
    """K-fold cross-validation of a hierarchical model and its complete- and no-pooling baselines.

    ``by=None``: rows held out within groups, each fold stratified by the first grouping factor
    (``folds`` defaults to 5). ``by="g"``: whole levels of ``g`` held out (``folds`` defaults to one
    per level). Every model's folds run as one vectorized program (folds × chains chains). ``options``
    are the sampler's, by keyword, for every fold (:class:`hdsl.SamplerOptions`: chains, warmup, draws,
    seed, target_accept, max_tree_depth, init, adaptation, pool_adaptation); ``seed`` also deals the folds.

    >>> cv = hdsl.cross_validate("math ~ homework + (1 + homework | schid)", df, folds=5)  # doctest: +SKIP
    >>> cv.summary()[["rmsd", "elpd", "elpd_se"]]                                      # doctest: +SKIP
    """
    t_start = time.perf_counter()
    config = SamplerOptions.from_keywords(options, "cross_validate")
    chains, warmup, draws, seed = config.chains, config.warmup, config.draws, config.seed
    dtype = resolve_dtype(dtype)
    user = expand_spec(parse_spec(spec))
    if not user.predictor.groups:
        raise HdslError("cross_validate compares partial pooling with its baselines: the model needs a group "
                        "term such as (1 | g)")
    if user.family.categories is Categories.NOMINAL:
        raise HdslError("cross_validate scores a numeric prediction (RMSD) and the categorical family predicts "
                        "probabilities", hint="compare categorical models with fit.loo() and hdsl.compare")
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    labels = frame.index
    frame = frame.reset_index(drop=True)
    design = bind_design(user, frame)  # drops (and reports) rows with missing values, once for all models
    frame = frame.loc[design.row_index]
    t0 = time.perf_counter()
    partial = _compile("partial_pooling", user, frame, user.priors, dtype, parameterization=parameterization)
    first = partial.design.main.groups[0]
    if by is None:
        fold_id = stratified_folds(first.codes, 5 if folds is None else folds, seed)
    else:
        fold_id = group_folds(_group_labels(partial.design, frame, by), folds, seed)
    k = int(fold_id.max()) + 1
    weights = (fold_id[None, :] != np.arange(k)[:, None]).astype(float)
    # no pooling has nothing to say about a group with no training rows in a fold
    train_counts = np.stack([np.bincount(first.codes, weights=weights[f], minlength=first.n_levels)
                             for f in range(k)])
    defined = train_counts[fold_id, first.codes] > 0

    models = [partial]
    if baselines:
        models.append(_compile("complete_pooling", complete_pooling_spec(user), frame, user.priors, dtype, {}))
        if defined.any():  # not when whole groups are held out: nothing to fit
            gcol, np_frame = _no_pooling_column(first.term.group, frame)
            np_spec = no_pooling_spec(user, Factor(f"factor({gcol})", s.Call("factor", (s.Name(gcol),))))
            np_design = bind_design(np_spec, np_frame, na_action="error")
            renames = _no_pooling_renames(partial.design, np_design)
            models.append(_compile("no_pooling", np_spec, np_frame, user.priors, dtype, renames))
    t_build = time.perf_counter() - t0

    y = partial.design.y
    pointwise = pd.DataFrame({"fold": fold_id, "group": np.asarray(first.levels)[first.codes], "y": y},
                             index=labels[design.row_index])
    fold_rows, timings = [], {"build_s": t_build}
    for m in models:
        held_pred, held_lpd, rows, timings[m.name] = _score_model(m, weights, fold_id, defined, config, progress,
                                                                  pointwise["group"] if by else None)
        pointwise[f"pred_{m.name}"] = held_pred
        pointwise[f"lpd_{m.name}"] = held_lpd
        fold_rows += rows
    for m in MODELS:
        if f"pred_{m}" not in pointwise:
            pointwise[f"pred_{m}"] = np.nan
            pointwise[f"lpd_{m}"] = np.nan
            fold_rows += [{"model": m, "fold": f, "n_heldout": int((fold_id == f).sum()), "held_out_levels": "",
                           "rmsd": np.nan, "elpd": np.nan, "divergences": 0} for f in range(k)]
    table = pd.DataFrame(fold_rows).set_index(["model", "fold"])
    diverged = table.groupby(level="model")["divergences"].sum()
    if diverged.any():
        warnings.warn("divergent transitions in " + ", ".join(f"{m} ({n})" for m, n in diverged.items() if n)
                      + "; raise target_accept (e.g. 0.95)", SamplingWarning, stacklevel=2)
    if by is not None and by != first.name:
        table["held_out_levels"] = ""
    timings["total_s"] = time.perf_counter() - t_start
    return CVResult(pointwise, table, {m.name: m.text for m in models}, timings, by, k, first.name,
                    {"chains": chains, "warmup": warmup, "draws": draws})


def _level_text(labels: pd.Series, limit: int = 6) -> str:
    levels = list(dict.fromkeys(labels))
    return ", ".join(levels[:limit]) + (f", … (+{len(levels) - limit})" if len(levels) > limit else "")


def _no_pooling_column(group: tuple[str, ...], frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The column no pooling interacts with: the grouping column itself, or for ``a:b`` a new column
    holding the combined level."""
    if len(group) == 1:
        return group[0], frame
    name = "_".join(group)
    while name in frame.columns:
        name += "_"
    parts = [frame[c].astype(str) for c in group]
    label = parts[0]
    for p in parts[1:]:
        label = label + "_" + p
    return name, frame.assign(**{name: label})
