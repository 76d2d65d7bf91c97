"""brms's ``cens()`` addition term: left, right and interval censoring of a continuous response.

The log-density is checked against hand-written NumPyro models (censored rows contribute log F(y),
log S(y) or log(F(y2) − F(y)) from NumPyro's own ``cdf``), gradients against finite differences where
hdsl differentiates the incomplete beta function itself, and fits against simulated truths.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from conftest import assert_log_density_matches, family_numerics
from jax.scipy.special import gammainc, gammaincc, gammaln
from jax.scipy.stats import norm

import hdsl
from hdsl import MissingRowsWarning
from hdsl.model.density import pointwise_log_lik_at

jax.config.update("jax_enable_x64", True)


def _compare(model: hdsl.Model, np_model, np_args, to_numpyro):
    """hdsl's log-density and NumPyro's at the same parameter values differ by a constant."""
    assert_log_density_matches(model, np_model, np_args, to_numpyro, n_points=10, bound=1.5)


def _censored_log_lik(log_prob, log_cdf, log_sf, log_between, y, c, y2):
    """The reference: the density, or log F(y), log S(y), log(F(y2) − F(y)), as the caller writes them."""
    y2 = jnp.where(c == 2, y2, y + 1.0)
    return jnp.where(c == 0, log_prob(y), jnp.where(c == -1, log_cdf(y), jnp.where(c == 1, log_sf(y),
                                                                                   log_between(y, y2))))


@pytest.fixture(scope="module")
def gauss_data():
    rng = np.random.default_rng(3)
    n, G = 40, 5
    g = rng.integers(0, G, n)
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.7, G)[g] + rng.normal(0, 1.0, n)
    code = np.tile([0, -1, 1, 2], n // 4)
    upper = np.where(code == 2, y + rng.uniform(0.2, 2.0, n), np.nan)
    words = pd.Series(code).map({0: "none", -1: "left", 1: "right", 2: "interval"})
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g], "c": words, "c_num": code, "upper": upper})


GAUSS_SPEC = """y | cens(c, upper) ~ x + (1 | g)
prior: Intercept ~ normal(0, 5)
prior: b ~ normal(0, 2)
prior: sd ~ half_normal(2)
prior: sigma ~ exponential(1)"""


def gauss_numpyro(x, g, G, y, c, y2):
    b0 = numpyro.sample("b0", dist.Normal(0.0, 5.0))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 2.0))
    sd = numpyro.sample("sd", dist.HalfNormal(2.0))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([G]).to_event(1))
    sigma = numpyro.sample("sigma", dist.Exponential(1.0))
    mu = b0 + b1 * x + sd * z[g]
    d = dist.Normal(mu, sigma)

    def between(a, b):
        upper = norm.sf(a, mu, sigma) - norm.sf(b, mu, sigma)
        return jnp.log(jnp.where(a > mu, upper, norm.cdf(b, mu, sigma) - norm.cdf(a, mu, sigma)))

    terms = (d.log_prob, lambda v: norm.logcdf(v, mu, sigma), lambda v: norm.logsf(v, mu, sigma), between)
    numpyro.factor("y", jnp.sum(_censored_log_lik(*terms, y, c, y2)))


def test_censored_gaussian_log_density_matches_numpyro(gauss_data):
    model = hdsl.Model(GAUSS_SPEC, gauss_data, parameterization="noncentered")
    d = model.design
    assert set(d.additions) == {"cens", "cens_upper"}
    np.testing.assert_array_equal(d.additions["cens"], gauss_data["c_num"])
    args = (jnp.asarray(gauss_data["x"].to_numpy()), jnp.asarray(d.main.groups[0].codes), 5,
            jnp.asarray(d.y), jnp.asarray(d.additions["cens"]), jnp.asarray(gauss_data["upper"].to_numpy()))
    _compare(model, gauss_numpyro, args, lambda p: {"b0": p.predictors[0].intercept, "b1": p.predictors[0].b[0],
                                                    "sd": p.blocks[0].sd[0],
                                                    "z": p.blocks[0].z[:, 0], "sigma": p.aux["sigma"]})


def test_numeric_codes_equal_words(gauss_data):
    words = hdsl.Model(GAUSS_SPEC, gauss_data, parameterization="noncentered")
    numbers = hdsl.Model(GAUSS_SPEC.replace("cens(c,", "cens(c_num,"), gauss_data, parameterization="noncentered")
    x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, words.dim))
    assert float(words.log_density(x)) == float(numbers.log_density(x))


def test_censoring_changes_only_censored_rows(gauss_data):
    """Rows coded 'none' keep the density; the others differ from it."""
    cens = hdsl.Model(GAUSS_SPEC, gauss_data, parameterization="noncentered")
    plain = hdsl.Model(GAUSS_SPEC.replace(" | cens(c, upper)", ""), gauss_data, parameterization="noncentered")
    x = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, cens.dim))
    a, b = (np.asarray(pointwise_log_lik_at(m.lowered, x, m.lowered.data)) for m in (cens, plain))
    none = gauss_data["c_num"].to_numpy() == 0
    np.testing.assert_allclose(a[none], b[none], rtol=1e-12)
    assert np.all(a[~none] != b[~none]) and np.all(a[~none] < 0)


@pytest.fixture(scope="module")
def times():
    rng = np.random.default_rng(5)
    n = 40
    x = rng.normal(size=n)
    t = rng.weibull(1.5, n) * np.exp(0.5 + 0.4 * x)
    code = rng.choice([0, 1, -1, 2], n, p=[0.5, 0.3, 0.1, 0.1])
    upper = np.where(code == 2, t * 1.5, np.nan)
    return pd.DataFrame({"t": t, "x": x, "c": code, "upper": upper, "w": rng.integers(1, 3, n)})


def weibull_numpyro(x, y, c, y2):
    b0 = numpyro.sample("b0", dist.Normal(0.0, 2.0))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 1.0))
    k = numpyro.sample("k", dist.Gamma(2.0, 1.0))
    mu = jnp.exp(b0 + b1 * x)
    scale = mu / jnp.exp(gammaln(1.0 + 1.0 / k))
    d = dist.Weibull(scale, k)
    # the closed forms: S(t) = exp(-(t/scale)^k)
    terms = (d.log_prob, lambda v: jnp.log(-jnp.expm1(-((v / scale) ** k))), lambda v: -((v / scale) ** k),
             lambda a, b: -((a / scale) ** k) + jnp.log(-jnp.expm1((a / scale) ** k - (b / scale) ** k)))
    numpyro.factor("y", jnp.sum(_censored_log_lik(*terms, y, c, y2)))


def gamma_numpyro(x, y, c, y2, w):
    b0 = numpyro.sample("b0", dist.Normal(0.0, 2.0))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 1.0))
    k = numpyro.sample("k", dist.Gamma(2.0, 1.0))
    mu = jnp.exp(b0 + b1 * x)
    d = dist.Gamma(k, k / mu)
    terms = (d.log_prob, lambda v: jnp.log(gammainc(k, k * v / mu)), lambda v: jnp.log(gammaincc(k, k * v / mu)),
             lambda a, b: jnp.log(gammaincc(k, k * a / mu) - gammaincc(k, k * b / mu)))
    numpyro.factor("y", jnp.sum(w * _censored_log_lik(*terms, y, c, y2)))


SURV_SPEC = """t | cens(c, upper) ~ x
family: {family}
prior: Intercept ~ normal(0, 2)
prior: b ~ normal(0, 1)
prior: shape ~ gamma(2, 1)"""


def _to_surv(p):
    return {"b0": p.predictors[0].intercept, "b1": p.predictors[0].b[0], "k": p.aux["shape"]}


def test_censored_weibull_log_density_matches_numpyro(times):
    model = hdsl.Model(SURV_SPEC.format(family="weibull"), times)
    args = tuple(jnp.asarray(times[c].to_numpy(dtype=float)) for c in ("x", "t", "c", "upper"))
    _compare(model, weibull_numpyro, args, _to_surv)


def test_censored_weighted_gamma_log_density_matches_numpyro(times):
    """cens() combines with weights(): the censored row's log-probability is multiplied by its weight."""
    spec = SURV_SPEC.format(family="gamma").replace("t | cens(c, upper)", "t | cens(c, upper) + weights(w)")
    model = hdsl.Model(spec, times)
    args = tuple(jnp.asarray(times[c].to_numpy(dtype=float)) for c in ("x", "t", "c", "upper", "w"))
    _compare(model, gamma_numpyro, args, _to_surv)


@pytest.mark.parametrize("family, aux, column", [
    ("gaussian", {"sigma": 1.3}, "y"),
    ("student", {"sigma": 1.3, "nu": 4.5}, "y"),
    ("lognormal", {"sigma": 0.8}, "t"),
    ("gamma", {"shape": 2.5}, "t"),
    ("weibull", {"shape": 1.7}, "t"),
    ("exponential", {}, "t"),
    ("beta", {"phi": 6.0}, "p"),
])
def test_each_family_censored_terms_match_numpyro_cdf(family, aux, column):
    """Every censorable family's log F and log S against NumPyro's cdf of the same distribution, and a
    finite gradient in the mean and every parameter (NumPyro's betainc has none in a and b)."""

    fam = family_numerics(family)
    y = {"y": jnp.array([-2.0, 0.1, 3.0]), "t": jnp.array([0.2, 1.0, 4.0]), "p": jnp.array([0.05, 0.4, 0.9])}[column]
    mu = {"y": 0.3, "t": 1.2, "p": 0.35}[column]
    ref = {
        "gaussian": lambda m, a: dist.Normal(m, a["sigma"]),
        "student": lambda m, a: dist.StudentT(a["nu"], m, a["sigma"]),
        "lognormal": lambda m, a: dist.LogNormal(m, a["sigma"]),
        "gamma": lambda m, a: dist.Gamma(a["shape"], a["shape"] / m),
        "weibull": lambda m, a: dist.Weibull(m / jnp.exp(gammaln(1.0 + 1.0 / a["shape"])), a["shape"]),
        "exponential": lambda m, a: dist.Exponential(1.0 / m),
        "beta": lambda m, a: dist.BetaProportion(m, a["phi"]),
    }[family](mu, aux)
    aux = {k: jnp.asarray(v) for k, v in aux.items()}
    np.testing.assert_allclose(fam.log_cdf(y, mu, aux), np.log(ref.cdf(y)), rtol=1e-9)
    np.testing.assert_allclose(fam.log_sf(y, mu, aux), np.log1p(-ref.cdf(y)), rtol=1e-9)

    def total(m, a):
        return jnp.sum(fam.log_cdf(y, m, a) + fam.log_sf(y, m, a))

    g_mu, g_aux = jax.grad(total, argnums=(0, 1))(jnp.asarray(mu), aux)
    h = 1e-6
    num = (total(mu + h, aux) - total(mu - h, aux)) / (2 * h)
    assert float(g_mu) == pytest.approx(float(num), rel=1e-5)
    for k in aux:
        up, down = dict(aux), dict(aux)
        up[k], down[k] = aux[k] + h, aux[k] - h
        assert float(g_aux[k]) == pytest.approx(float((total(mu, up) - total(mu, down)) / (2 * h)), rel=1e-5)


def test_far_tails_stay_finite():
    """log F and log S far into the tails, where 1 − F rounds to 0 or F underflows."""

    gauss, weib = family_numerics("gaussian"), family_numerics("weibull")
    y = jnp.array([-40.0, 40.0])
    assert np.all(np.isfinite(gauss.log_cdf(y, 0.0, {"sigma": jnp.asarray(1.0)})))
    assert np.all(np.isfinite(gauss.log_sf(y, 0.0, {"sigma": jnp.asarray(1.0)})))
    t = jnp.array([1e-30, 1.0])
    grad = jax.grad(lambda k: jnp.sum(weib.log_cdf(t, 1.0, {"shape": k})))(2.0)
    assert np.isfinite(grad) and np.all(np.isfinite(weib.log_cdf(t, 1.0, {"shape": jnp.asarray(2.0)})))


def test_posterior_predictive_ignores_censoring(gauss_data):
    """As brms: draws are of the uncensored response (the censored rows are not clamped to their bounds)."""

    fam = family_numerics("gaussian")
    key = jax.random.key(0)
    aux = {"sigma": jnp.asarray(1.0), "cens": jnp.array([1.0, -1.0]), "cens_upper": jnp.array([0.0, 0.0])}
    draws = fam.sample(key, jnp.zeros(2), aux)
    assert draws.shape == (2,) and np.all(np.isfinite(draws))


# ---- data and formula errors ---------------------------------------------------------------------


def _frame(c, **extra):
    n = len(c)
    return pd.DataFrame({"y": np.linspace(1.0, 2.0, n), "c": c, "x": np.arange(n, dtype=float), **extra})


@pytest.mark.parametrize("c, holds, row", [
    (["none", "lft", "right", "left"], "'lft'", 1),
    ([0, 1, 3, -1], "3.0", 2),
    ([0.0, 1.0, -1.0, np.inf], "inf", 3),
])
def test_bad_indicator_values(c, holds, row):
    with pytest.raises(hdsl.DataError) as err:
        hdsl.Model("y | cens(c) ~ x", _frame(c))
    assert str(err.value) == (
        "censoring indicator 'c' must hold 'left', 'none', 'right' or 'interval' (or -1, 0, 1, 2; true/false "
        f"for right/none); row {row} holds {holds}")
    assert err.value.column == "c" and err.value.row == row


def test_missing_indicator_drops_the_row_like_any_missing_value():
    """A missing indicator is missing data (dropped and counted, or refused with na_action='error')."""
    frame = _frame([0.0, 1.0, np.nan, -1.0])
    with pytest.warns(MissingRowsWarning):
        model = hdsl.Model("y | cens(c) ~ x", frame)
    assert model.design.n_rows == 3
    with pytest.raises(hdsl.DataError, match="1 rows have missing values"):
        hdsl.Model("y | cens(c) ~ x", frame, na_action="error")


def test_interval_needs_an_upper_bound():
    with pytest.raises(hdsl.DataError) as err:
        hdsl.Model("y | cens(c) ~ x", _frame(["none", "right", "interval", "left"]))
    assert str(err.value) == ("row 2 is interval-censored, but cens() has no upper bound\n"
                              "hint: write cens(c, upper) with the column of upper bounds")


def test_interval_upper_bound_must_exceed_the_response():
    frame = _frame(["none", "interval", "interval"], up=[np.nan, 3.0, 1.2])
    with pytest.raises(hdsl.DataError) as err:
        hdsl.Model("y | cens(c, up) ~ x", frame)
    assert str(err.value) == ("upper bound 'up' must be greater than the response on interval-censored rows; "
                              "row 2 holds 1.2 for a response of 2.0")
    frame.loc[1, "up"] = np.nan
    with pytest.raises(hdsl.DataError, match=r"upper bound 'up' of an interval-censored row must be a finite "
                                             r"number; row 1 holds nan"):
        hdsl.Model("y | cens(c, up) ~ x", frame)


def test_upper_bound_may_be_missing_outside_interval_rows():
    frame = _frame(["none", "interval", "right", "left"], up=[np.nan, 3.0, np.nan, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = hdsl.Model("y | cens(c, up) ~ x", frame)
    assert model.design.n_rows == 4
    np.testing.assert_allclose(model.design.additions["cens_upper"], [1.0, 3.0, model.design.y[2], 2.0])


def test_interval_upper_bound_in_the_support():
    frame = pd.DataFrame({"p": [0.2, 0.5, 0.7], "c": ["none", "interval", "none"], "up": [np.nan, 1.5, np.nan]})
    with pytest.raises(hdsl.DataError, match="response 'up' must lie strictly between 0 and 1 for the beta family; "
                                             "row 1 holds 1.5"):
        hdsl.Model("p | cens(c, up) ~ 1\nfamily: beta", frame)


@pytest.mark.parametrize("spec, message", [
    ("y | cens(c) ~ x\nfamily: poisson", "cens() is not supported for the poisson family: censoring is available "
                                         "for gaussian, student, gamma, lognormal, beta, exponential, weibull"),
    ("y | cens(c, up, 3) ~ x", "unexpected argument '3' of cens(); write cens(x, y2 = ...)"),
    ("y | cens(c, upper = up) ~ x", "unexpected argument 'upper=up' of cens(); write cens(x, y2 = ...)"),
])
def test_bad_cens_terms(spec, message):
    frame = _frame([0, 1, 0, 1], up=[1.0, 2.0, 3.0, 4.0])
    frame["y"] = [1.0, 2.0, 0.0, 3.0]
    with pytest.raises(hdsl.FormulaError) as err:
        hdsl.Model(spec, frame)
    assert str(err.value).splitlines()[0].endswith(message)


def test_keyword_upper_bound():
    frame = _frame(["none", "interval", "right", "left"], up=[np.nan, 3.0, np.nan, np.nan])
    a = hdsl.Model("y | cens(c, up) ~ x", frame)
    b = hdsl.Model("y | cens(c, y2 = up) ~ x", frame)
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, a.dim))
    assert float(a.log_density(x)) == float(b.log_density(x))


# ---- recovery --------------------------------------------------------------------------------------


def _fit(spec, df, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short run may warn about ESS
        return hdsl.Model(spec, df).sample(chains=2, warmup=300, draws=300, seed=seed, progress=False).summary()


def _interval(summary, name):
    return (summary.loc[name, "2.5%"], summary.loc[name, "97.5%"]), summary.loc[name, "mean"]


@pytest.mark.slow
def test_right_censored_gaussian_agrees_with_tobit_maximum_likelihood():
    """300 rows, 30% right-censored at a fixed limit. With weak priors the posterior means sit at the
    censored-normal (Tobit) maximum-likelihood estimate computed by scipy (within a fifth of a posterior sd
    plus Monte-Carlo error); ignoring censoring shrinks sigma well below it."""
    from scipy import optimize, stats

    rng = np.random.default_rng(7)
    n = 300
    x = rng.normal(size=n)
    y_true = 1.0 + 0.8 * x + rng.normal(0, 1.0, n)
    limit = np.quantile(y_true, 0.7)
    right = y_true > limit
    y = np.minimum(y_true, limit)
    df = pd.DataFrame({"y": y, "x": x, "c": np.where(right, "right", "none")})

    def nll(p):
        m, s = p[0] + p[1] * x, np.exp(p[2])
        return -np.sum(np.where(right, stats.norm.logsf(y, m, s), stats.norm.logpdf(y, m, s)))

    b0, b1, log_s = optimize.minimize(nll, np.zeros(3)).x
    spec = ("y | cens(c) ~ x\nprior: Intercept ~ normal(0, 10)\nprior: b ~ normal(0, 10)\n"
            "prior: sigma ~ exponential(0.1)")
    fit = _fit(spec, df, 1)
    for name, mle in (("b_Intercept", b0), ("b_x", b1), ("sigma", np.exp(log_s))):
        row = fit.loc[name]
        assert abs(row["mean"] - mle) < 0.2 * row["sd"] + 4 * row["mcse_mean"], (name, row["mean"], mle)
    naive = _fit(spec.replace(" | cens(c)", ""), df, 1)
    assert naive.loc["sigma", "97.5%"] < fit.loc["sigma", "2.5%"]


@pytest.mark.slow
def test_recovery_right_censored_weibull():
    rng = np.random.default_rng(8)
    n = 300
    x = rng.normal(size=n)
    k, b0, b1 = 1.5, 1.0, 0.5
    mean = np.exp(b0 + b1 * x)
    t = rng.weibull(k, n) * mean / np.exp(float(gammaln(1.0 + 1.0 / k)))
    limit = rng.uniform(0.5, 1.5, n) * np.exp(b0) * 1.3  # independent censoring times
    c = np.where(t > limit, 1, 0)
    assert 0.2 < c.mean() < 0.45
    df = pd.DataFrame({"t": np.minimum(t, limit), "x": x, "c": c})
    spec = ("t | cens(c) ~ x\nfamily: weibull\nprior: Intercept ~ normal(0, 3)\nprior: b ~ normal(0, 2)\n"
            "prior: shape ~ gamma(2, 1)")
    fit = _fit(spec, df, 2)
    for name, truth in (("b_Intercept", b0), ("b_x", b1), ("shape", k)):
        (lo, hi), _ = _interval(fit, name)
        assert lo < truth < hi, (name, lo, hi)
    naive = _fit(spec.replace(" | cens(c)", ""), df, 2)
    (lo, hi), _ = _interval(naive, "b_Intercept")
    assert hi < b0  # ignoring censoring underestimates survival times


def test_rendered_spec_keeps_the_addition_arguments():
    """crossval's baselines re-render the spec: cens(c, y2) and se(s, sigma = TRUE) survive the round trip."""
    from hdsl.language.expand import expand_spec
    from hdsl.language.parse import parse_spec
    from hdsl.workflow.crossval import render_spec

    for text in ("y | cens(c, up) + weights(w) ~ x", "y | se(s, sigma = TRUE) ~ x", "y | se(s) ~ x"):
        spec = expand_spec(parse_spec(text))
        again = expand_spec(parse_spec(render_spec(spec)))
        assert again.response == spec.response, render_spec(spec)
