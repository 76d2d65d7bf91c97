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
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from numpyro.distributions.distribution import validation_enabled
from numpyro.distributions.transforms import CorrCholeskyTransform

from ..language.ir import ParamClass, PriorTarget
from .design import BoundDesign, GroupBlock, PredictorDesign, group_blocks
from .distributions import PRIOR_DISTRIBUTIONS, truncation_log_mass
from .families import Link, get_family, scalar_aux
from .priors import ParamPrior, PriorTable, sd_targets

__all__ = ["Block", "Layout", "CompiledModel", "lower_model", "param_key"]

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


def param_key(dpar: str, name: str) -> str:
    """Key of a predictor's parameter or data array: ``b`` for mu, ``b__sigma`` for sigma's formula."""
    return name if dpar == "mu" else f"{name}__{dpar}"


@dataclass(frozen=True, eq=False)
class _GroupLowering:
    """One group block (see ``design.GroupBlock``): its effects r (levels × k) are sampled together."""

    index: int
    name: str
    n_levels: int
    k: int
    correlated: bool
    centered: bool
    pop_index: np.ndarray  # per column: index into the concatenated population coefficients, or -1
    sd_prior: _BlockPrior
    lkj_eta: float


@dataclass(frozen=True, eq=False)
class _PredictorLowering:
    """One linear predictor: mu's (the first formula) or a family parameter's (``sigma ~ ...``)."""

    dpar: str
    link: Link
    intercept: bool
    p: int
    xbar: np.ndarray
    intercept_prior: _BlockPrior | None
    b_prior: _BlockPrior | None
    terms: tuple[tuple[int, int, int, tuple[bool, ...]], ...]  # per group term: block, start, stop, is-1 columns
    n_thresholds: int = 0  # cumulative family: ordered thresholds in place of the intercept

    def key(self, name: str) -> str:
        return param_key(self.dpar, name)


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
    eta_from_params: Callable[[dict[str, Array], dict], Array]  # mu's linear predictor from constrained params
    aux_from_params: Callable[[dict[str, Array], dict], dict[str, Array]]  # the family's other parameters
    # (scalars, or per row where modelled) and the addition terms: what Family.log_lik / sample take as aux
    arrays_for: Callable[..., dict]  # (predictors, y or None, additions) → data pytree
    log_density_terms: Callable[[Array], dict[str, float]]  # piece by piece, for error messages
    link: Link
    blocks: tuple[GroupBlock, ...] = ()
    centering: dict = field(default_factory=dict)  # per predictor (dpar): the training column means


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
    """Per-level n, yᵀy, Wᵀy (q, G), WᵀW (q, q, G) with W = [1, X − x̄, Z of each group term], summed in
    float64 on the host."""
    main = design.main
    codes = main.groups[0].codes
    G = main.groups[0].n_levels
    # W's columns one at a time (None: the column of ones), each sum a bincount: one row-length temporary
    # at a time, where the n × q × q products of a whole-matrix sum were 128 MB at 1M rows
    cols = ([None] if main.intercept else []) + [main.X[:, j] - xbar[j] for j in range(main.X.shape[1])]
    cols += [g.Z[:, j] for g in main.groups for j in range(g.Z.shape[1])]
    y = design.y
    q = len(cols)

    def level_sums(*factors: np.ndarray | None) -> np.ndarray:
        present = [f for f in factors if f is not None]
        weights = functools.reduce(np.multiply, present) if present else None
        return np.bincount(codes, weights=weights, minlength=G).astype(float)

    # levels last ((q, G) and (q, q, G)): the log-density reads one contiguous row of levels per column or
    # pair of columns, elementwise; a per-level (G, q, q) einsum became a batched matrix product under the
    # vmap over chains, 12x slower at 4 chains than at 1 on CPU
    n = level_sums()
    yy = level_sums(y, y)
    wy = np.stack([level_sums(c, y) for c in cols])
    ww = np.empty((q, q, G))
    for i in range(q):
        for j in range(i, q):
            ww[i, j] = ww[j, i] = level_sums(cols[i], cols[j])
    return {k: _cast(v, dtype) for k, v in {"n": n, "yy": yy, "wy": wy, "ww": ww}.items()}


def _mvn_rows_log_prob(r: Array, scale_tril: Array) -> Array:
    """Σ_j log N(r_j | 0, S Sᵀ) over the J rows of r, S a small k × k lower-triangular factor.

    Inverting S once and multiplying (J × k by k × k) keeps the gradient cheap; a triangular solve with
    J right-hand sides (what MultivariateNormal.log_prob does) was ~100× slower on CPU at J = 1000."""
    k = scale_tril.shape[0]
    s_inv = jax.scipy.linalg.solve_triangular(scale_tril, jnp.eye(k, dtype=r.dtype), lower=True)
    # w = r S⁻ᵀ column by column (S⁻¹ is lower-triangular), elementwise over the J levels: vmapped over
    # chains, a (J × k)(k × k) product becomes a batched matrix product that XLA's CPU backend runs slowly
    cols = [r[:, j] for j in range(k)]
    quad = sum(_dot_columns([s_inv[i, j] for j in range(i + 1)], cols) ** 2 for i in range(k))
    J = r.shape[0]
    return (-0.5 * jnp.sum(quad) - J * jnp.sum(jnp.log(jnp.diagonal(scale_tril)))
            - 0.5 * J * k * jnp.log(2.0 * jnp.pi))


def _dot_columns(weights: list, cols: list) -> Array:
    """Σ_j weights[j] · cols[j] over the first ``len(weights)`` columns (weights scalars or vectors, cols
    vectors of one length or scalars), elementwise."""
    return functools.reduce(jnp.add, (w * c for w, c in zip(weights, cols, strict=False)))


class _CorrCholesky(CorrCholeskyTransform):
    """NumPyro's map from d(d-1)/2 reals to a correlation Cholesky factor (signed stick-breaking), in the
    dtype of its input. NumPyro places the reals into the matrix with a scatter onto ``jnp.zeros`` of the
    default dtype, which fails for a float32 model once a float64 one has turned on ``jax_enable_x64``
    in the same process; here the matrix is a gather from the padded vector, the same numbers in the same
    places."""

    def __call__(self, x: Array) -> Array:
        t = jnp.tanh(x)
        eps = jnp.finfo(t.dtype).eps
        t = jnp.clip(t, -1 + eps, 1 - eps)
        k = round((1 + (1 + 8 * t.shape[-1]) ** 0.5) / 2)
        index = np.zeros((k, k), dtype=np.int32)  # 0 picks the padding zero; row-major below the diagonal
        index[np.tril_indices(k, -1)] = np.arange(1, t.shape[-1] + 1)
        padded = jnp.concatenate([jnp.zeros(t.shape[:-1] + (1,), t.dtype), t], axis=-1)
        r = padded[..., index]
        z1m_cumprod_sqrt = jnp.cumprod(jnp.sqrt(1 - r**2), axis=-1)
        shifted = jnp.concatenate([jnp.ones(r.shape[:-1] + (1,), t.dtype), z1m_cumprod_sqrt[..., :-1]], axis=-1)
        return (r + jnp.eye(k, dtype=t.dtype)) * shifted


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

    ``centered[b]`` samples group block ``b``'s effects directly (``r ~ N(0, Σ)``) instead of the
    non-centered ``z ~ N(0, 1)``; better when each level has much data.
    """
    spec = design.spec
    family = get_family(spec.family.name)
    link = Link(spec.family.link) if spec.family.link else family.default_link
    aux_links = {a.name: a.link for a in family.aux}
    jdtype = jnp.dtype(dtype)
    predictors = design.predictors
    blocks = group_blocks(predictors)
    builder = _LayoutBuilder()

    # population-level coefficients of every predictor, in one concatenated vector for centered blocks
    preds: list[_PredictorLowering] = []
    pop_offsets: list[int] = []
    n_pop = 0
    for dpar, pred in predictors:
        d = None if dpar == "mu" else dpar
        p = pred.X.shape[1]
        xbar = pred.X.mean(axis=0) if (pred.intercept and p) else np.zeros(p)
        key = functools.partial(param_key, dpar)
        ip = bp = None
        n_thresholds = design.n_thresholds if dpar == "mu" else 0
        if pred.intercept:
            builder.add(key("Intercept"), (n_thresholds,) if n_thresholds else ())
            ip = _BlockPrior([priors[PriorTarget(ParamClass.INTERCEPT, dpar=d)]] * max(n_thresholds, 1))
        if p:
            builder.add(key("b"), (p,))
            bp = _BlockPrior([priors[PriorTarget(ParamClass.B, coef=c, dpar=d)] for c in pred.coef_names])
        terms = []
        for i, g in enumerate(pred.groups):
            bi = next(b for b, blk in enumerate(blocks) if (len(preds), i) in blk.members)
            start, stop = blocks[bi].slices[blocks[bi].members.index((len(preds), i))]
            terms.append((bi, start, stop, tuple(j == 0 and g.term.intercept for j in range(stop - start))))
        preds.append(_PredictorLowering(dpar, aux_links.get(dpar, link), pred.intercept, p, xbar, ip, bp,
                                        tuple(terms), n_thresholds))
        pop_offsets.append(n_pop)
        n_pop += 1 + p

    groups: list[_GroupLowering] = []
    for b, blk in enumerate(blocks):
        is_centered = bool(centered[b]) if centered is not None else False
        builder.add(f"sd_{b}", (blk.k,))
        builder.add(f"{'beta' if is_centered else 'z'}_{b}", (blk.n_levels, blk.k))
        eta = 1.0
        if blk.correlated:
            builder.add(f"L_{b}", (blk.k * (blk.k - 1) // 2,))
            eta = priors[PriorTarget(ParamClass.COR, group=blk.name)].distribution.args[0]
        pop_index = []
        for (j, i) in blk.members:
            pred = predictors[j][1]
            names = (["Intercept"] if pred.intercept and not preds[j].n_thresholds else [None]) + list(pred.coef_names)
            pop_index += [pop_offsets[j] + names.index(c) if c in names else -1 for c in pred.groups[i].coef_names]
        sd_prior = _BlockPrior([priors[t] for t in sd_targets(design, blk)])
        groups.append(_GroupLowering(b, blk.name, blk.n_levels, blk.k, blk.correlated, is_centered,
                                     np.array(pop_index, dtype=int), sd_prior, float(eta)))
    aux_params = scalar_aux(spec)
    aux_priors = {}
    for a in aux_params:
        builder.add(a.name, ())
        aux_priors[a.name] = _BlockPrior([priors[PriorTarget(ParamClass.AUX, dpar=a.name)]])
    layout = Layout(tuple(builder.blocks))

    def arrays_for(bound: PredictorDesign | dict[str, PredictorDesign], y: np.ndarray | None,
                   additions: dict[str, np.ndarray]) -> dict:
        """The data a log-density or predictor reads, as a pytree of arrays: training or new data,
        centered with the training means. ``bound``: mu's predictor, or every predictor by dpar. An
        optional ``weights`` array multiplies each row's log-likelihood (cross-validation folds set
        held-out rows to 0)."""
        by_dpar = bound if isinstance(bound, dict) else {"mu": bound}
        n = next(iter(by_dpar.values())).X.shape[0]
        data = {
            "y": _cast(np.zeros(n) if y is None else y, jdtype),
            "additions": {k: _cast(v, jdtype) for k, v in additions.items() if k != "weights"},
        }
        if "weights" in additions:
            data["weights"] = _cast(additions["weights"], jdtype)
        for pl in preds:
            pred = by_dpar.get(pl.dpar)
            if pred is None:
                continue
            data[pl.key("X")] = _cast(pred.X - pl.xbar, jdtype)
            # optional keys, present only where they do something (the traced program stays lean)
            if pred.offset is not None:
                data[pl.key("offset")] = _cast(pred.offset, jdtype)
            for i, g in enumerate(pred.groups):
                data[pl.key(f"codes_{i}")] = jnp.asarray(g.codes, dtype=jnp.int32)
                data[pl.key(f"Z_{i}")] = _cast(g.Z, jdtype)
        return data

    train = arrays_for(dict(predictors), design.y, dict(design.additions))
    if _sufficient_statistics_apply(design, family.name, link, groups):
        train["suff"] = _gaussian_sufficient_statistics(design, preds[0].xbar, jdtype)
    corr_bijector = _CorrCholesky()

    @_without_validation
    def params_and_prior_terms(flat: Array) -> tuple[dict[str, Array], dict[str, Array]]:
        """Parameters, and the log prior (Jacobians included) term by term, named as the user knows them."""
        u = layout.unpack(flat)
        terms: dict[str, Array] = {}
        out: dict[str, Array] = {}

        def add(name: str, value: Array) -> None:
            terms[name] = terms[name] + value if name in terms else value
        pop = []
        for pl in preds:
            label = "" if pl.dpar == "mu" else f" ({pl.dpar})"
            if pl.p:
                b, lj = pl.b_prior.bounds.forward(u[pl.key("b")])
                add(f"prior of b{label}", lj + pl.b_prior(b))
                out[pl.key("b")] = b
            b0 = jnp.zeros((), flat.dtype)
            if pl.intercept:
                c = u[pl.key("Intercept")]
                if pl.n_thresholds:  # ordered: c_1 = u_1, c_k = c_(k-1) + exp(u_k)
                    c = jnp.cumsum(jnp.concatenate([c[:1], jnp.exp(c[1:])]))
                    add("prior of Intercept", jnp.sum(u[pl.key("Intercept")][1:]))
                # to the user's scale (x = 0); thresholds enter as θ − η, so they shift the other way
                shift = jnp.dot(_cast(pl.xbar, flat.dtype), out[pl.key("b")]) if pl.p else 0.0
                shifted = c + shift if pl.n_thresholds else c - shift
                add(f"prior of Intercept{label}", pl.intercept_prior(jnp.reshape(shifted, (-1,))))
                out[pl.key("b_Intercept")] = shifted
                out[pl.key("Intercept_centered")] = c
                b0 = jnp.zeros((), flat.dtype) if pl.n_thresholds else shifted
            pop += [jnp.reshape(b0, (1,)), out.get(pl.key("b"), jnp.zeros((0,), flat.dtype))]
        pop = jnp.concatenate(pop)
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
                if L is None:
                    r = z * sd
                else:  # r = (z Lᵀ) sd column by column, elementwise over levels (see _mvn_rows_log_prob)
                    zc = [z[:, j] for j in range(g.k)]
                    r = jnp.stack([sd[i] * _dot_columns([L[i, j] for j in range(i + 1)], zc) for i in range(g.k)],
                                  axis=1)
                out[f"z_{g.index}"] = z
            out[f"sd_{g.index}"] = sd
            out[f"r_{g.index}"] = r
        for a in aux_params:
            val, lj = aux_priors[a.name].bounds.forward(jnp.reshape(u[a.name], (1,)))
            add(f"prior of {a.name}", lj + aux_priors[a.name](val))
            out[a.name] = val[0]
        return out, terms

    def params_and_prior(flat: Array) -> tuple[dict[str, Array], Array]:
        out, terms = params_and_prior_terms(flat)
        return out, sum(terms.values(), jnp.zeros((), flat.dtype))

    def predictor_eta(pl: _PredictorLowering, params: dict[str, Array], data: dict) -> Array:
        eta = data[pl.key("offset")] if pl.key("offset") in data else jnp.zeros(data["y"].shape, data["y"].dtype)
        if pl.intercept and not pl.n_thresholds:
            eta = eta + params[pl.key("Intercept_centered")]
        if pl.p:
            eta = eta + data[pl.key("X")] @ params[pl.key("b")]
        for i, (b, start, stop, ones) in enumerate(pl.terms):
            r, codes, Z = params[f"r_{b}"], data[pl.key(f"codes_{i}")], data[pl.key(f"Z_{i}")]
            for j in range(stop - start):
                # one 1-D gather per coefficient: codes are valid by construction (bind checks them)
                rj = r[:, start + j].at[codes].get(mode="promise_in_bounds")
                eta = eta + (rj if ones[j] else rj * Z[:, j])
        return eta

    stacked = family.categories == "nominal"

    def eta_of(params: dict[str, Array], data: dict) -> Array:
        """mu's linear predictor; for a categorical response, all K − 1 of them, (n, K − 1)."""
        if stacked:
            return jnp.stack([predictor_eta(pl, params, data) for pl in preds], axis=-1)
        return predictor_eta(preds[0], params, data)

    def aux_of(params: dict[str, Array], data: dict) -> dict[str, Array]:
        aux = {a.name: params[a.name] for a in aux_params}
        if not stacked:
            for pl in preds[1:]:
                aux[pl.dpar] = pl.link.inverse(predictor_eta(pl, params, data))
        if preds and preds[0].n_thresholds and preds[0].intercept:
            aux["thresholds"] = params["Intercept_centered"]
        aux.update(data["additions"])
        return aux

    @_without_validation
    def pointwise_log_lik_with(flat: Array, data: dict) -> Array:
        params, _ = params_and_prior(flat)
        return family.log_lik_eta(data["y"], eta_of(params, data), link, aux_of(params, data))

    def sufficient_log_lik(params: dict[str, Array], suff: dict) -> Array:
        """Σ_g Σ_i log N(y_i | w_iᵀθ_g, σ) from per-group sums, θ_g = [Intercept, b, r_g]."""
        pl = preds[0]
        # θ's columns: scalars (Intercept, b) or one value per level (group effects)
        theta = [params["Intercept_centered"]] if pl.intercept else []
        theta += [params["b"][j] for j in range(pl.p)]
        theta += [params[f"r_{b}"][:, j] for b, start, stop, _ in pl.terms for j in range(start, stop)]
        ww, wy = suff["ww"], suff["wy"]
        # Σ_ij θ_i θ_j WᵀW_ij per level, the upper triangle twice
        quad = sum(theta[i] * _dot_columns([(1.0 if i == j else 2.0) * ww[i, j] for j in range(i, len(theta))],
                                           theta[i:]) for i in range(len(theta)))
        ss = suff["yy"] - 2.0 * _dot_columns(list(wy), theta) + quad
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
        """Inverse of ``constrain`` from each predictor's b_Intercept and b, sd_i, z_i (or r_i where
        centered), L_i and the family parameters (keys as ``constrain`` returns them)."""
        parts: dict[str, np.ndarray] = {}
        pop = []
        for pl in preds:
            b = np.asarray(values.get(pl.key("b"), np.zeros(pl.p)), dtype=float)
            if pl.p:
                parts[pl.key("b")] = pl.b_prior.bounds.inverse(b)
            b0 = np.asarray(values[pl.key("b_Intercept")], dtype=float) if pl.intercept else np.zeros(())
            if pl.intercept:
                if pl.n_thresholds:  # the inverse of the ordered transform, thresholds shifted the other way
                    c = b0 - float(np.dot(pl.xbar, b))
                    c = np.concatenate([c[:1], np.log(np.diff(c))])
                    b0 = np.zeros(())
                else:
                    c = b0 + float(np.dot(pl.xbar, b))
                parts[pl.key("Intercept")] = c
            pop += [np.reshape(b0, (1,)), b]
        pop = np.concatenate(pop)
        for g in groups:
            parts[f"sd_{g.index}"] = g.sd_prior.bounds.inverse(values[f"sd_{g.index}"])
            if g.centered:
                m = np.where(g.pop_index >= 0, pop[np.maximum(g.pop_index, 0)], 0.0)
                parts[f"beta_{g.index}"] = np.asarray(values[f"r_{g.index}"], dtype=float) + m
            else:
                parts[f"z_{g.index}"] = np.asarray(values[f"z_{g.index}"], dtype=float)
            if g.correlated:
                parts[f"L_{g.index}"] = np.asarray(corr_bijector.inv(jnp.asarray(values[f"L_{g.index}"])))
        for a in aux_params:
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
        aux_from_params=aux_of,
        log_density_terms=log_density_terms,
        arrays_for=arrays_for,
        link=link,
        blocks=blocks,
        centering={pl.dpar: pl.xbar for pl in preds},
    )
