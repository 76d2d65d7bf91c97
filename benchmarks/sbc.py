"""Simulation-based calibration (Talts et al. 2018) of hdsl's posteriors, all data sets in one program.

For each model: draw K parameter sets from the spec's priors (numpy, written here independently of hdsl),
simulate a data set from each on a fixed design, fit all K as ONE batched program (``sample_nuts(...,
batch=K)``), thin each posterior to L roughly independent draws and take the rank of the true value among
them. If the posterior is right, ranks are uniform on 0..L: chi-square over 10 bins and KS, at 1%.

    python benchmarks/sbc.py                 # 3 models × 100 data sets
    python benchmarks/sbc.py --sets 20 --models seed
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

N_GROUPS, PER_GROUP = 10, 26


@dataclass(frozen=True)
class SbcModel:
    name: str
    spec: str
    family: str = "gaussian"


MODELS = {
    "seed": SbcModel("seed", """
y ~ x + (1 + x || g)
prior: Intercept ~ normal(0, 2)
prior: b[x] ~ normal(0, 1)
prior: sd[g, Intercept] ~ normal(0, 1)
prior: sd[g, x] ~ normal(0, 0.5)
prior: sigma ~ exponential(1)
"""),
    "corr": SbcModel("corr", """
y ~ x + (1 + x | g)
prior: Intercept ~ normal(0, 2)
prior: b[x] ~ normal(0, 1)
prior: sd[g, Intercept] ~ normal(0, 1)
prior: sd[g, x] ~ normal(0, 0.5)
prior: cor[g] ~ lkj(2)
prior: sigma ~ exponential(1)
"""),
    "binomial": SbcModel("binomial", """
y | trials(n) ~ x + (1 | g)
family: binomial
prior: Intercept ~ normal(0, 1)
prior: b[x] ~ normal(0, 1)
prior: sd[g, Intercept] ~ normal(0, 1)
""", family="binomial"),
}


def design(rng: np.random.Generator) -> pd.DataFrame:
    """The seed article's shape: 10 groups of 26 rows, x a small whole number (like homework hours)."""
    g = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    x = rng.integers(0, 5, size=g.size).astype(float)
    return pd.DataFrame({"x": x, "g": [f"s{i}" for i in g], "n": np.full(g.size, 10)})


def simulate(name: str, df: pd.DataFrame, k: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """K draws of the parameters from the priors, and K responses."""
    codes = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    x = df["x"].to_numpy()
    intercept = rng.normal(0, 1 if name == "binomial" else 2, k)
    b = rng.normal(0, 1, k)
    sd0 = np.abs(rng.normal(0, 1, k))
    truth = {"b_Intercept": intercept, "b_x": b, "sd_g__Intercept": sd0}
    z = rng.normal(size=(k, N_GROUPS, 2))
    if name == "binomial":
        eta = intercept[:, None] + b[:, None] * x + (sd0[:, None] * z[:, :, 0])[:, codes]
        y = rng.binomial(10, 1 / (1 + np.exp(-eta))).astype(float)
        return truth, y
    sd1 = np.abs(rng.normal(0, 0.5, k))
    truth["sd_g__x"] = sd1
    r0, r1 = sd0[:, None] * z[:, :, 0], sd1[:, None] * z[:, :, 1]
    if name == "corr":
        cor = 2 * rng.beta(2, 2, k) - 1  # LKJ(eta) for 2 × 2: (cor + 1) / 2 ~ Beta(eta, eta)
        truth["cor_g__Intercept__x"] = cor
        r1 = sd1[:, None] * (cor[:, None] * z[:, :, 0] + np.sqrt(1 - cor[:, None] ** 2) * z[:, :, 1])
    sigma = rng.exponential(1.0, k)
    truth["sigma"] = sigma
    mu = intercept[:, None] + b[:, None] * x + r0[:, codes] + r1[:, codes] * x
    return truth, mu + sigma[:, None] * rng.normal(size=mu.shape)


def run_model(m: SbcModel, k: int, *, chains: int, warmup: int, draws: int, thin: int, seed: int) -> list[dict]:
    import hdsl
    from hdsl.inference.options import SamplerOptions
    from hdsl.inference.sample import sample_nuts
    from hdsl.model.density import constrain, log_density

    rng = np.random.default_rng(seed)
    df = design(rng)
    truth, ys = simulate(m.name, df, k, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = hdsl.Model(m.spec, df.assign(y=ys[0]), parameterization="noncentered")
    lowered = model.lowered
    data = jax.tree.map(lambda a: jnp.broadcast_to(a, (k,) + a.shape), lowered.data)
    data = data._replace(y=jnp.asarray(ys, dtype=lowered.dtype))
    if data.suff is not None:  # Gaussian per-level sufficient statistics of the training y: recompute for each y
        from dataclasses import replace

        from hdsl.model.lower import sufficient_statistics

        xbar = model.design.main.X.mean(axis=0)
        suffs = [sufficient_statistics(replace(model.design, y=y), xbar, lowered.dtype) for y in ys]
        data = data._replace(suff=jax.tree.map(lambda *a: jnp.stack(a), *suffs))
    t0 = time.perf_counter()
    config = SamplerOptions(chains=chains, warmup=warmup, draws=draws, seed=seed)
    result = sample_nuts(functools.partial(log_density, lowered), model.dim, config, data, batch=k,
                         dtype=lowered.dtype)
    elapsed = time.perf_counter() - t0
    pos = result.positions[:, :, ::thin]  # (K, chains, L, dim)
    flat = jnp.asarray(pos.reshape(-1, model.dim))
    params = jax.jit(jax.vmap(functools.partial(constrain, lowered)))(flat)
    params = jax.tree.map(lambda v: np.asarray(v).reshape((k, -1) + v.shape[1:]), params)
    named = model.naming.named(params)
    post = {name: np.asarray(named[name]) for name in truth}
    n_draws = post["b_Intercept"].shape[1]
    divergent = int(result.stats["diverging"].sum())
    rows = []
    for name, true in truth.items():
        ranks = (post[name] < true[:, None]).sum(axis=1)  # 0..L
        bins = np.minimum(ranks * 10 // (n_draws + 1), 9)
        counts = np.bincount(bins, minlength=10)
        chi2_p = float(stats.chisquare(counts).pvalue)
        u = (ranks + rng.uniform(size=k)) / (n_draws + 1)
        ks_p = float(stats.kstest(u, "uniform").pvalue)
        verdict = "ok" if min(chi2_p, ks_p) >= 0.01 else "MISCALIBRATED"
        rows.append({"model": m.name, "parameter": name, "chi2_p": chi2_p, "ks_p": ks_p, "verdict": verdict,
                     "sets": k, "draws": n_draws, "divergent": divergent, "time_s": elapsed})
    return rows


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--sets", type=int, default=100)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--thin", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--dtype", default=None)
    args = ap.parse_args(argv)
    from hdsl.inference.precision import resolve_dtype

    resolve_dtype(args.dtype)
    t0 = time.perf_counter()
    rows = []
    for name in args.models:
        rows += run_model(MODELS[name], args.sets, chains=args.chains, warmup=args.warmup, draws=args.draws,
                          thin=args.thin, seed=args.seed)
        print(pd.DataFrame(rows).query("model == @name").to_string(index=False, float_format=lambda v: f"{v:.3g}"),
              flush=True)
    table = pd.DataFrame(rows)
    print(f"\nSBC on {jax.default_backend()}, total {time.perf_counter() - t0:.1f} s")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return table


if __name__ == "__main__":
    main()
