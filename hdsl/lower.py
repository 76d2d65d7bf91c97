"""Stage 5: bound design + prior table → compiled model: a pure JAX log-density over one flat
unconstrained vector, the function mapping that vector to the model's parameters, and its inverse.

Inside: population-level columns are centered (the intercept is sampled on the centered scale and
mapped back, a shift with unit Jacobian, so the ``Intercept`` prior stays on the user's scale);
group effects are non-centered, ``r = z · diag(sd) · Lᵀ``, gathered per row by level code.
Positive and bounded parameters go through elementwise bijections whose log-Jacobians are added.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from numpyro.distributions import constraints
from numpyro.distributions.distribution import validation_enabled
from numpyro.distributions.transforms import biject_to

from .design import BoundDesign, PredictorDesign
from .distributions import PRIOR_DISTRIBUTIONS, truncation_log_mass
from .families import Link, get_family
from .ir import ParamClass, PriorTarget
from .priors import ParamPrior, PriorTable

__all__ = ["Block", "Layout", "CompiledModel", "lower_model"]

Array = jax.Array


@dataclass(frozen=True)
class Block:
    """A named slice of the flat unconstrained vector."""

    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))


@dataclass(frozen=True)
class Layout:
    blocks: tuple[Block, ...]

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

    def unpack(self, flat: Array) -> dict[str, Array]:
        return {b.name: flat[b.offset : b.offset + b.size].reshape(b.shape) for b in self.blocks}

    def pack(self, parts: dict[str, Array]) -> Array:
        return jnp.concatenate([jnp.reshape(jnp.asarray(parts[b.name]), (-1,)) for b in self.blocks])


class _LayoutBuilder:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.offset = 0

    def add(self, name: str, shape: tuple[int, ...]) -> None:
        block = Block(name, shape, self.offset)
        self.blocks.append(block)
        self.offset += block.size


@dataclass(frozen=True)
class _Bounds:
    """Static per-element bounds of a block, classified once on the host."""

    lower: np.ndarray
    upper: np.ndarray

    def forward(self, u: Array) -> tuple[Array, Array]:
        """Unconstrained → constrained, and the log-Jacobian (summed)."""
        lo_f, hi_f = np.isfinite(self.lower), np.isfinite(self.upper)
        if not lo_f.any() and not hi_f.any():
            return u, jnp.zeros((), u.dtype)
        if lo_f.all() and not hi_f.any():
            return jnp.asarray(self.lower, u.dtype) + jnp.exp(u), jnp.sum(u)
        lo = np.where(lo_f, self.lower, 0.0)
        hi = np.where(hi_f, self.upper, 1.0)
        both, lo_only, hi_only = lo_f & hi_f, lo_f & ~hi_f, hi_f & ~lo_f
        width = hi - lo
        x_both = lo + width * jax.nn.sigmoid(u)
        x = jnp.where(both, x_both, jnp.where(lo_only, lo + jnp.exp(u), jnp.where(hi_only, hi - jnp.exp(u), u)))
        lj_both = np.log(width) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)
        lj = jnp.where(both, lj_both, jnp.where(lo_only | hi_only, u, 0.0))
        return x.astype(u.dtype), jnp.sum(lj).astype(u.dtype)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        lo_f, hi_f = np.isfinite(self.lower), np.isfinite(self.upper)
        lo = np.where(lo_f, self.lower, 0.0)
        hi = np.where(hi_f, self.upper, 1.0)
        with np.errstate(all="ignore"):
            frac = (x - lo) / (hi - lo)
            both = np.log(frac) - np.log1p(-frac)
            return np.where(lo_f & hi_f, both,
                            np.where(lo_f, np.log(x - lo), np.where(hi_f, np.log(hi - x), x)))


class _BlockPrior:
    """Log prior of a vector of elements, one vectorized call per distribution name."""

    def __init__(self, entries: list[ParamPrior]):
        self.groups: list[tuple[str, np.ndarray, tuple[np.ndarray, ...]]] = []
        self.constant = 0.0
        names = sorted({e.distribution.name for e in entries})
        for name in names:
            idx = np.array([i for i, e in enumerate(entries) if e.distribution.name == name])
            args = tuple(np.array([entries[i].distribution.args[a] for i in idx])
                         for a in range(len(entries[idx[0]].distribution.args)))
            self.groups.append((name, idx, args))
        for e in entries:
            dist = PRIOR_DISTRIBUTIONS[e.distribution.name]
            self.constant -= truncation_log_mass(dist, e.distribution.args, e.lower, e.upper)
        self.bounds = _Bounds(np.array([e.lower for e in entries], dtype=float),
                              np.array([e.upper for e in entries], dtype=float))

    def __call__(self, x: Array) -> Array:
        total = jnp.asarray(self.constant, x.dtype)
        for name, idx, args in self.groups:
            dist = PRIOR_DISTRIBUTIONS[name]
            if dist.build is None:  # flat
                continue
            d = dist.build(*(jnp.asarray(a, x.dtype) for a in args))
            total = total + jnp.sum(d.log_prob(x[idx]))
        return total


@dataclass(frozen=True, eq=False)
class _GroupLowering:
    index: int
    name: str
    z_ones: tuple[bool, ...]  # columns that are the constant 1 (the group intercept): no multiply
    n_levels: int
    k: int
    correlated: bool
    centered: bool
    pop_index: np.ndarray  # per coef: index into [b_Intercept, b...] of the matching population coef, or -1
    sd_prior: _BlockPrior
    lkj_eta: float


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """What the sampler and the results stage need; pure functions over the flat vector."""

    layout: Layout
    log_density: Callable[[Array], Array]  # at the training data
    constrain: Callable[[Array], dict[str, Array]]
    pointwise_log_lik: Callable[[Array], Array]  # at the training data
    unconstrain: Callable[[dict[str, np.ndarray]], np.ndarray]
    dtype: np.dtype
    data: dict  # the training data as a pytree of arrays (see ``arrays_for``); where present, ``suff`` holds
    # per-level sums of y: a new response needs new sums (``sufficient_statistics``) or removing ``suff``
    log_density_with: Callable[[Array, dict], Array]  # data as an argument: one program for many folds
    pointwise_log_lik_with: Callable[[Array, dict], Array]
    eta_from_params: Callable[[dict[str, Array], dict], Array]  # linear predictor from constrained params
    arrays_for: Callable[..., dict]  # (PredictorDesign, y or None, additions) → data pytree
    log_density_terms: Callable[[Array], dict[str, float]]  # piece by piece, for error messages
    link: Link


def _sufficient_statistics_apply(design: BoundDesign, family: str, link: Link, groups: list) -> bool:
    """A Gaussian, identity-link likelihood whose rows depend on one grouping factor's effects can be
    summed per level: Σ_i (y_i − w_iᵀθ_g)² = yᵀy − 2θᵀWᵀy + θᵀWᵀWθ. Worth it when levels hold many
    rows compared with the width q of w (q² work per level instead of q per row)."""
    main = design.main
    if family != "gaussian" or link is not Link.IDENTITY or not main.groups or design.dpars:
        return False
    if main.offset is not None or set(design.additions) - {"weights"} or "weights" in design.additions:
        return False
    if len({g.name for g in main.groups}) != 1:
        return False
    q = int(main.intercept) + main.X.shape[1] + sum(len(g.coef_names) for g in main.groups)
    return design.n_rows / main.groups[0].n_levels >= 4 * q


def _gaussian_sufficient_statistics(design: BoundDesign, xbar: np.ndarray, dtype) -> dict:
    """Per-level n, yᵀy, Wᵀy, WᵀW with W = [1, X − x̄, Z of each group term] (float64 on the host)."""
    main = design.main
    codes = main.groups[0].codes
    G = main.groups[0].n_levels
    cols = ([np.ones((design.n_rows, 1))] if main.intercept else []) + [main.X - xbar] + [g.Z for g in main.groups]
    W = np.concatenate(cols, axis=1)
    y = design.y
    n = np.bincount(codes, minlength=G).astype(float)
    yy = np.bincount(codes, weights=y * y, minlength=G)
    wy = np.zeros((G, W.shape[1]))
    np.add.at(wy, codes, W * y[:, None])
    ww = np.zeros((G, W.shape[1], W.shape[1]))
    np.add.at(ww, codes, W[:, :, None] * W[:, None, :])
    return {k: _cast(v, dtype) for k, v in {"n": n, "yy": yy, "wy": wy, "ww": ww}.items()}


def _mvn_rows_log_prob(r: Array, scale_tril: Array) -> Array:
    """Σ_j log N(r_j | 0, S Sᵀ) over the J rows of r, S a small k × k lower-triangular factor.

    Inverting S once and multiplying (J × k by k × k) keeps the gradient cheap; a triangular solve with
    J right-hand sides (what MultivariateNormal.log_prob does) was ~100× slower on CPU at J = 1000."""
    k = scale_tril.shape[0]
    s_inv = jax.scipy.linalg.solve_triangular(scale_tril, jnp.eye(k, dtype=r.dtype), lower=True)
    w = r @ s_inv.T
    J = r.shape[0]
    return (-0.5 * jnp.sum(w * w) - J * jnp.sum(jnp.log(jnp.diagonal(scale_tril)))
            - 0.5 * J * k * jnp.log(2.0 * jnp.pi))


def _without_validation(fn: Callable) -> Callable:
    """NumPyro validates distribution arguments and values by default; that adds comparisons on
    every row to the hot path. Validation is finished before lowering, so trace without it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with validation_enabled(False):
            return fn(*args, **kwargs)

    return wrapper


def _cast(x: np.ndarray, dtype) -> Array:
    return jnp.asarray(np.asarray(x), dtype=dtype)


def lower_model(
    design: BoundDesign, priors: PriorTable, dtype: str = "float64", centered: tuple[bool, ...] | None = None
) -> CompiledModel:
    """Compile the log-density. No user mistake can reach this point: validation is done.

    ``centered[i]`` samples group term ``i``'s effects directly (``r ~ N(0, Σ)``) instead of the
    non-centered ``z ~ N(0, 1)``; better when each level has much data.
    """
    spec = design.spec
    if design.dpars:
        from .errors import FormulaError

        raise FormulaError("distributional formulas (e.g. 'sigma ~ x') are not supported yet")
    family = get_family(spec.family.name)
    link = Link(spec.family.link) if spec.family.link else family.default_link
    jdtype = jnp.dtype(dtype)
    main: PredictorDesign = design.main
    builder = _LayoutBuilder()

    p = main.X.shape[1]
    xbar = main.X.mean(axis=0) if (main.intercept and p) else np.zeros(p)
    xbar_j = _cast(xbar, jdtype)
    if main.intercept:
        builder.add("Intercept", ())
        intercept_prior = _BlockPrior([priors[PriorTarget(ParamClass.INTERCEPT)]])
    if p:
        builder.add("b", (p,))
        b_prior = _BlockPrior([priors[PriorTarget(ParamClass.B, coef=c)] for c in main.coef_names])

    groups: list[_GroupLowering] = []
    for i, g in enumerate(main.groups):
        k = len(g.coef_names)
        correlated = g.term.correlated and k > 1
        is_centered = bool(centered[i]) if centered is not None else False
        builder.add(f"sd_{i}", (k,))
        builder.add(f"{'beta' if is_centered else 'z'}_{i}", (g.n_levels, k))
        eta = 1.0
        if correlated:
            builder.add(f"L_{i}", (k * (k - 1) // 2,))
            eta = priors[PriorTarget(ParamClass.COR, group=g.name)].distribution.args[0]
        sd_prior = _BlockPrior([priors[PriorTarget(ParamClass.SD, group=g.name, coef=c)] for c in g.coef_names])
        z_ones = tuple(j == 0 and g.term.intercept for j in range(k))
        pop_names = (["Intercept"] if main.intercept else [None]) + list(main.coef_names)
        pop_index = np.array([pop_names.index(c) if c in pop_names else -1 for c in g.coef_names])
        groups.append(_GroupLowering(i, g.name, z_ones, g.n_levels, k,
                                     correlated, is_centered, pop_index, sd_prior, float(eta)))
    aux_priors = {}
    for a in family.aux:
        builder.add(a.name, ())
        aux_priors[a.name] = _BlockPrior([priors[PriorTarget(ParamClass.AUX, dpar=a.name)]])
    layout = Layout(tuple(builder.blocks))

    def arrays_for(pred: PredictorDesign, y: np.ndarray | None, additions: dict[str, np.ndarray]) -> dict:
        """The data a log-density or predictor reads, as a pytree of arrays: training or new data,
        centered with the training means. An optional ``weights`` array multiplies each row's
        log-likelihood (cross-validation folds set held-out rows to 0)."""
        n = pred.X.shape[0]
        data = {
            "y": _cast(np.zeros(n) if y is None else y, jdtype),
            "X": _cast(pred.X - xbar, jdtype),
            "additions": {k: _cast(v, jdtype) for k, v in additions.items() if k != "weights"},
        }
        # optional keys, present only where they do something (the traced program stays lean)
        if pred.offset is not None:
            data["offset"] = _cast(pred.offset, jdtype)
        if "weights" in additions:
            data["weights"] = _cast(additions["weights"], jdtype)
        for i, g in enumerate(pred.groups):
            data[f"codes_{i}"] = jnp.asarray(g.codes, dtype=jnp.int32)
            data[f"Z_{i}"] = _cast(g.Z, jdtype)
        return data

    train = arrays_for(main, design.y, dict(design.additions))
    if _sufficient_statistics_apply(design, family.name, link, groups):
        train["suff"] = _gaussian_sufficient_statistics(design, xbar, jdtype)
    corr_bijector = biject_to(constraints.corr_cholesky)

    @_without_validation
    def params_and_prior_terms(flat: Array) -> tuple[dict[str, Array], dict[str, Array]]:
        """Parameters, and the log prior (Jacobians included) term by term, named as the user knows them."""
        u = layout.unpack(flat)
        terms: dict[str, Array] = {}
        out: dict[str, Array] = {}

        def add(name: str, value: Array) -> None:
            terms[name] = terms[name] + value if name in terms else value
        if p:
            b, lj = b_prior.bounds.forward(u["b"])
            add("prior of b", lj + b_prior(b))
            out["b"] = b
        if main.intercept:
            centered = u["Intercept"]
            b0 = centered - (jnp.dot(xbar_j, out["b"]) if p else 0.0)
            add("prior of Intercept", intercept_prior(jnp.reshape(b0, (1,))))
            out["b_Intercept"] = b0
            out["Intercept_centered"] = centered
        for g in groups:
            sd, lj = g.sd_prior.bounds.forward(u[f"sd_{g.index}"])
            add(f"prior of sd[{g.name}]", lj + g.sd_prior(sd))
            L = None
            if g.correlated:
                uL = u[f"L_{g.index}"]
                L = corr_bijector(uL)
                add(f"prior of cor[{g.name}]", corr_bijector.log_abs_det_jacobian(uL, L)
                    + nd.LKJCholesky(g.k, jnp.asarray(g.lkj_eta, uL.dtype)).log_prob(L))
                out[f"L_{g.index}"] = L
            if g.centered:
                # the level's whole coefficient, centered on the population coefficient it varies around
                beta = u[f"beta_{g.index}"]
                pop = jnp.concatenate([jnp.reshape(out.get("b_Intercept", jnp.zeros((), beta.dtype)), (1,)),
                                       out.get("b", jnp.zeros((0,), beta.dtype))])
                m = jnp.where(g.pop_index >= 0, pop[np.maximum(g.pop_index, 0)], 0.0)
                r = beta - m
                if L is None:
                    add(f"group effects of {g.name}", jnp.sum(nd.Normal(jnp.zeros((), r.dtype), sd).log_prob(r)))
                else:
                    add(f"group effects of {g.name}", _mvn_rows_log_prob(r, sd[:, None] * L))
            else:
                z = u[f"z_{g.index}"]
                add(f"group effects of {g.name}",
                    jnp.sum(nd.Normal(jnp.zeros((), z.dtype), jnp.ones((), z.dtype)).log_prob(z)))
                r = (z @ L.T) * sd if L is not None else z * sd
                out[f"z_{g.index}"] = z
            out[f"sd_{g.index}"] = sd
            out[f"r_{g.index}"] = r
        for a in family.aux:
            val, lj = aux_priors[a.name].bounds.forward(jnp.reshape(u[a.name], (1,)))
            add(f"prior of {a.name}", lj + aux_priors[a.name](val))
            out[a.name] = val[0]
        return out, terms

    def params_and_prior(flat: Array) -> tuple[dict[str, Array], Array]:
        out, terms = params_and_prior_terms(flat)
        return out, sum(terms.values(), jnp.zeros((), flat.dtype))

    def eta_of(params: dict[str, Array], data: dict) -> Array:
        eta = data["offset"] if "offset" in data else jnp.zeros(data["y"].shape, data["y"].dtype)
        if main.intercept:
            eta = eta + params["Intercept_centered"]
        if p:
            eta = eta + data["X"] @ params["b"]
        for g in groups:
            r, codes = params[f"r_{g.index}"], data[f"codes_{g.index}"]
            for j in range(g.k):
                # one 1-D gather per coefficient: codes are valid by construction (bind checks them)
                rj = r[:, j].at[codes].get(mode="promise_in_bounds")
                eta = eta + (rj if g.z_ones[j] else rj * data[f"Z_{g.index}"][:, j])
        return eta

    def aux_of(params: dict[str, Array], data: dict) -> dict[str, Array]:
        aux = {a.name: params[a.name] for a in family.aux}
        aux.update(data["additions"])
        return aux

    @_without_validation
    def pointwise_log_lik_with(flat: Array, data: dict) -> Array:
        params, _ = params_and_prior(flat)
        return family.log_lik_eta(data["y"], eta_of(params, data), link, aux_of(params, data))

    def sufficient_log_lik(params: dict[str, Array], suff: dict) -> Array:
        """Σ_g Σ_i log N(y_i | w_iᵀθ_g, σ) from per-group sums, θ_g = [Intercept, b, r_g]."""
        parts = []
        G = suff["n"].shape[0]
        if main.intercept:
            parts.append(jnp.broadcast_to(params["Intercept_centered"], (G, 1)))
        if p:
            parts.append(jnp.broadcast_to(params["b"], (G, p)))
        parts.extend(params[f"r_{g.index}"] for g in groups)
        theta = jnp.concatenate(parts, axis=1)  # (G, q)
        quad = jnp.einsum("gi,gij,gj->g", theta, suff["ww"], theta)
        ss = suff["yy"] - 2.0 * jnp.sum(theta * suff["wy"], axis=1) + quad
        sigma = params["sigma"]
        n_total = jnp.sum(suff["n"])
        return -0.5 * n_total * jnp.log(2.0 * jnp.pi * sigma**2) - 0.5 * jnp.sum(ss) / sigma**2

    @_without_validation
    def log_density_with(flat: Array, data: dict) -> Array:
        params, lp = params_and_prior(flat)
        if "suff" in data and "weights" not in data:
            return lp + sufficient_log_lik(params, data["suff"])
        ll = family.log_lik_eta(data["y"], eta_of(params, data), link, aux_of(params, data))
        return lp + jnp.sum(data["weights"] * ll if "weights" in data else ll)

    def constrain(flat: Array) -> dict[str, Array]:
        return params_and_prior(flat)[0]

    def log_density_terms(flat: Array) -> dict[str, float]:
        """Each piece of the log-density at one point, to say which one is not finite."""
        params, terms = params_and_prior_terms(flat)
        terms = dict(terms)
        terms["likelihood"] = jnp.sum(pointwise_log_lik_with(flat, train))
        return {k: float(v) for k, v in terms.items()}

    def unconstrain(values: dict[str, np.ndarray]) -> np.ndarray:
        """Inverse of ``constrain`` from b_Intercept, b, sd_i, z_i, L_i and the family parameters."""
        parts: dict[str, np.ndarray] = {}
        b = np.asarray(values.get("b", np.zeros(p)), dtype=float)
        if p:
            parts["b"] = b_prior.bounds.inverse(b)
        if main.intercept:
            parts["Intercept"] = np.asarray(float(values["b_Intercept"]) + float(np.dot(xbar, b)))
        for g in groups:
            parts[f"sd_{g.index}"] = g.sd_prior.bounds.inverse(values[f"sd_{g.index}"])
            if g.centered:
                pop = np.concatenate([[float(values.get("b_Intercept", 0.0))], b])
                m = np.where(g.pop_index >= 0, pop[np.maximum(g.pop_index, 0)], 0.0)
                parts[f"beta_{g.index}"] = np.asarray(values[f"r_{g.index}"], dtype=float) + m
            else:
                parts[f"z_{g.index}"] = np.asarray(values[f"z_{g.index}"], dtype=float)
            if g.correlated:
                parts[f"L_{g.index}"] = np.asarray(corr_bijector.inv(jnp.asarray(values[f"L_{g.index}"])))
        for a in family.aux:
            parts[a.name] = aux_priors[a.name].bounds.inverse(np.reshape(values[a.name], (1,)))[0]
        return np.concatenate([np.reshape(parts[bk.name], (-1,)) for bk in layout.blocks]).astype(float)

    return CompiledModel(
        layout=layout,
        log_density=lambda flat: log_density_with(flat, train),
        constrain=constrain,
        pointwise_log_lik=lambda flat: pointwise_log_lik_with(flat, train),
        unconstrain=unconstrain,
        dtype=np.dtype(dtype),
        data=train,
        log_density_with=log_density_with,
        pointwise_log_lik_with=pointwise_log_lik_with,
        eta_from_params=eta_of,
        log_density_terms=log_density_terms,
        arrays_for=arrays_for,
        link=link,
    )
