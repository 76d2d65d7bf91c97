"""Response families: log-densities against independently written NumPyro distributions, response
checks, posterior-predictive means, brms's default priors, and parameter recovery through ``hdsl.fit``.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pandas as pd
import pytest
from conftest import family_numerics
from jax.scipy.special import gammaln, logit

import hdsl
from hdsl.errors import DataError, FamilyError
from hdsl.language.families import Link
from hdsl.language.ir import DistributionSpec
from hdsl.model.families import FAMILY_NUMERICS as FAMILIES
from hdsl.model.links import inverse_link

jax.config.update("jax_enable_x64", True)

N_POINTS = 20
# the families written through mu; cumulative and categorical take eta itself (tests/test_ordinal_categorical.py)
MU_FAMILIES = {name: f for name, f in FAMILIES.items() if f.on_eta is None}


def _u(rng, lo, hi):
    return rng.uniform(lo, hi, N_POINTS)


# Per family: a draw of (y, mu, aux) at random parameter points and the reference log-density,
# written with a NumPyro distribution in a parameterization other than the family's own where one exists.
def _points(name: str, rng: np.random.Generator):
    counts = rng.integers(0, 12, N_POINTS).astype(float)
    counts[:4] = 0.0  # exercise the zero branch of zero-inflated and hurdle families
    match name:
        case "gaussian":
            aux = {"sigma": _u(rng, 0.2, 3)}
            return rng.normal(0, 3, N_POINTS), rng.normal(0, 3, N_POINTS), aux
        case "student":
            aux = {"nu": _u(rng, 1, 30), "sigma": _u(rng, 0.2, 3)}
            return rng.normal(0, 3, N_POINTS), rng.normal(0, 3, N_POINTS), aux
        case "bernoulli":
            return rng.integers(0, 2, N_POINTS).astype(float), _u(rng, 0.02, 0.98), {}
        case "binomial":
            trials = rng.integers(1, 30, N_POINTS).astype(float)
            y = np.floor(rng.uniform(0, 1, N_POINTS) * (trials + 1))
            return y, _u(rng, 0.02, 0.98), {"trials": trials}
        case ("poisson" | "negbinomial" | "geometric" | "zero_inflated_poisson" | "zero_inflated_negbinomial"
              | "hurdle_poisson"):
            aux = {"shape": _u(rng, 0.3, 20), "zi": _u(rng, 0.02, 0.9), "hu": _u(rng, 0.02, 0.9)}
            keep = {a.name for a in FAMILIES[name].aux}
            return counts, _u(rng, 0.1, 15), {k: v for k, v in aux.items() if k in keep}
        case "gamma" | "weibull":
            return _u(rng, 0.05, 20), _u(rng, 0.1, 15), {"shape": _u(rng, 0.3, 10)}
        case "exponential":
            return _u(rng, 0.05, 20), _u(rng, 0.1, 15), {}
        case "lognormal":
            return _u(rng, 0.05, 20), rng.normal(0, 2, N_POINTS), {"sigma": _u(rng, 0.2, 2)}
        case "beta":
            return _u(rng, 0.01, 0.99), _u(rng, 0.02, 0.98), {"phi": _u(rng, 0.5, 50)}
    raise AssertionError(name)


def _zero_inflated(base: nd.Distribution, zi, y):
    lp = base.log_prob(y)
    return jnp.where(y == 0, jnp.logaddexp(jnp.log(zi), jnp.log1p(-zi) + lp), jnp.log1p(-zi) + lp)


REFERENCE = {
    "gaussian": lambda y, mu, a: nd.Normal(mu, a["sigma"]).log_prob(y),
    "student": lambda y, mu, a: nd.StudentT(a["nu"], mu, a["sigma"]).log_prob(y),
    "bernoulli": lambda y, mu, a: nd.BernoulliLogits(logit(mu)).log_prob(y),
    "binomial": lambda y, mu, a: nd.BinomialLogits(logit(mu), a["trials"]).log_prob(y),
    "poisson": lambda y, mu, a: nd.Poisson(mu).log_prob(y),
    "negbinomial": lambda y, mu, a: nd.GammaPoisson(a["shape"], a["shape"] / mu).log_prob(y),
    # P(y) = (mu / (1 + mu))^y / (1 + mu), written out (NumPyro's GammaPoisson loses digits here)
    "geometric": lambda y, mu, a: y * (jnp.log(mu) - jnp.log1p(mu)) - jnp.log1p(mu),
    "gamma": lambda y, mu, a: nd.Gamma(a["shape"], a["shape"] / mu).log_prob(y),
    "lognormal": lambda y, mu, a: nd.Normal(mu, a["sigma"]).log_prob(jnp.log(y)) - jnp.log(y),
    "beta": lambda y, mu, a: nd.Beta(mu * a["phi"], (1 - mu) * a["phi"]).log_prob(y),
    "exponential": lambda y, mu, a: nd.Gamma(1.0, 1.0 / mu).log_prob(y),
    "weibull": lambda y, mu, a: nd.Weibull(mu / jnp.exp(gammaln(1 + 1 / a["shape"])), a["shape"]).log_prob(y),
    "zero_inflated_poisson": lambda y, mu, a: _zero_inflated(nd.Poisson(mu), a["zi"], y),
    "zero_inflated_negbinomial": lambda y, mu, a: _zero_inflated(
        nd.GammaPoisson(a["shape"], a["shape"] / mu), a["zi"], y),
    "hurdle_poisson": lambda y, mu, a: nd.HurdlePoisson(a["hu"], mu).log_prob(y),
}


def test_every_family_has_a_reference():
    assert set(REFERENCE) == set(MU_FAMILIES)


@pytest.mark.parametrize("name", sorted(MU_FAMILIES))
def test_log_lik_matches_numpyro(name):
    fam = family_numerics(name)
    y, mu, aux = _points(name, np.random.default_rng(abs(hash(name)) % 2**32))
    aux = {k: jnp.asarray(v) for k, v in aux.items()}
    got = np.asarray(fam.log_lik(jnp.asarray(y), jnp.asarray(mu), aux))
    want = np.asarray(REFERENCE[name](jnp.asarray(y), jnp.asarray(mu), aux))
    assert got.shape == (N_POINTS,) and got.dtype == np.float64
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(MU_FAMILIES))
def test_log_lik_eta_agrees_with_log_lik_for_every_link(name):
    fam = family_numerics(name)
    y, mu, aux = _points(name, np.random.default_rng(7))
    aux = {k: jnp.asarray(v) for k, v in aux.items()}
    default_mu = jnp.asarray(mu)
    for link in fam.links:
        # a mean valid under every family at these points, mapped to this link's scale
        eta = {Link.IDENTITY: default_mu, Link.LOG: jnp.log(default_mu), Link.LOGIT: logit(default_mu),
               Link.INVERSE: 1.0 / default_mu, Link.SQRT: jnp.sqrt(default_mu)}.get(link)
        if eta is None or not np.all(np.isfinite(np.asarray(eta))):
            # probit, cloglog, or a mean this link cannot produce: pick eta, mu is what the link gives
            eta = jnp.asarray(np.random.default_rng(3).normal(0, 1, N_POINTS))
        got = fam.log_lik_eta(jnp.asarray(y), eta, link, aux)
        want = fam.log_lik(jnp.asarray(y), inverse_link(link)(eta), aux)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-10)


def test_logit_families_stay_finite_at_extreme_linear_predictors():
    eta = jnp.array([-60.0, 60.0, -60.0, 60.0])
    y = jnp.array([1.0, 0.0, 0.0, 1.0])
    lp = family_numerics("bernoulli").log_lik_eta(y, eta, Link.LOGIT, {})
    np.testing.assert_allclose(np.asarray(lp), [-60.0, -60.0, 0.0, 0.0], atol=1e-12)
    grad = jax.grad(lambda e: family_numerics("bernoulli").log_lik_eta(y, e, Link.LOGIT, {}).sum())(eta)
    assert np.all(np.isfinite(np.asarray(grad)))
    lp = family_numerics("binomial").log_lik_eta(jnp.array([0.0, 5.0]), jnp.array([60.0, -60.0]), Link.LOGIT,
                                            {"trials": jnp.array([5.0, 5.0])})
    np.testing.assert_allclose(np.asarray(lp), [-300.0, -300.0], rtol=1e-9)
    # the probability path clamps instead of returning -inf
    assert np.all(np.isfinite(np.asarray(family_numerics("bernoulli").log_lik(y, inverse_link(Link.PROBIT)(eta), {}))))


# --------------------------------------------------------------------------------------------- checks

BAD_RESPONSES = [
    ("poisson", [0, 3, -1, 2], 2, "non-negative"),
    ("poisson", [0, 3, 1.5, 2], 2, "whole numbers"),
    ("negbinomial", [1, 2, 3, 4.2], 3, "whole numbers"),
    ("zero_inflated_poisson", [0, -2, 1], 1, "non-negative"),
    ("zero_inflated_negbinomial", [0, 0.5], 1, "whole numbers"),
    ("hurdle_poisson", [0, 1, -3], 2, "non-negative"),
    ("binomial", [0, 1, 2.5], 2, "whole numbers"),
    ("bernoulli", [0, 1, 2, 1], 2, "0/1"),
    ("bernoulli", [0, 1, 0.5], 2, "0/1"),
    ("beta", [0.2, 1.0, 0.3], 1, "between 0 and 1"),
    ("beta", [0.2, 0.4, 0.0], 2, "between 0 and 1"),
    ("gamma", [1.0, 0.0, 2.0], 1, "greater than 0"),
    ("weibull", [1.0, 2.0, -2.0], 2, "greater than 0"),
    ("lognormal", [-1.0, 2.0], 0, "greater than 0"),
    ("exponential", [1.0, 0.0], 1, "greater than 0"),
    ("student", [1.0, np.inf], 1, "non-finite"),
    ("gaussian", [np.nan, 1.0], 0, "non-finite"),
]


@pytest.mark.parametrize(("name", "y", "row", "what"), BAD_RESPONSES)
def test_check_response_names_column_and_first_bad_row(name, y, row, what):
    with pytest.raises(DataError) as err:
        family_numerics(name).check_response(np.asarray(y, dtype=float), "count")
    assert err.value.column == "count"
    assert err.value.row == row
    assert "'count'" in str(err.value) and f"row {row}" in str(err.value) and what in str(err.value)


@pytest.mark.parametrize(("name", "y"), [
    ("bernoulli", np.array([True, False, True])),
    ("bernoulli", np.array([0.0, 1.0, 1.0])),
    ("poisson", np.array([0.0, 3.0, 10.0])),
    ("binomial", np.array([0.0, 3.0])),
    ("beta", np.array([0.01, 0.99])),
    ("gamma", np.array([0.01, 99.0])),
    ("student", np.array([-3.0, 4.0])),
])
def test_check_response_accepts_valid_data(name, y):
    family_numerics(name).check_response(y, "y")


def test_binomial_checks_trials():
    fam = family_numerics("binomial")
    assert fam.additions == ("trials",)
    fam.check_additions(np.array([0.0, 3.0]), {"trials": np.array([2.0, 3.0])}, "k")
    with pytest.raises(DataError, match="more successes than trials") as err:
        fam.check_additions(np.array([0.0, 4.0, 1.0]), {"trials": np.array([2.0, 3.0, 3.0])}, "k")
    assert err.value.column == "k" and err.value.row == 1
    with pytest.raises(DataError, match=r"k \| trials\(n\)"):
        fam.check_additions(np.array([0.0, 1.0]), {}, "k")
    with pytest.raises(DataError, match="whole numbers") as err:
        fam.check_additions(np.array([0.0, 1.0]), {"trials": np.array([2.0, 2.5])}, "k")
    assert err.value.row == 1
    with pytest.raises(FamilyError, match="trials"):
        fam.log_lik(jnp.array([1.0]), jnp.array([0.5]), {})
    # families without additions accept anything
    family_numerics("poisson").check_additions(np.array([1.0]), {}, "y")


# --------------------------------------------------------------------------------------------- sampling

N_DRAWS = 40_000


def _expected_mean(name, mu, a):
    match name:
        case "binomial":
            return a["trials"] * mu
        case "lognormal":
            return math.exp(mu + a["sigma"] ** 2 / 2)
        case "zero_inflated_poisson" | "zero_inflated_negbinomial":
            return (1 - a["zi"]) * mu
        case "hurdle_poisson":
            return (1 - a["hu"]) * mu / -math.expm1(-mu)
    return mu


SAMPLE_CASES = {
    "gaussian": (1.5, {"sigma": 2.0}),
    "student": (-0.5, {"nu": 5.0, "sigma": 1.5}),
    "bernoulli": (0.3, {}),
    "binomial": (0.35, {"trials": 12.0}),
    "poisson": (3.5, {}),
    "negbinomial": (4.0, {"shape": 2.0}),
    "geometric": (2.5, {}),
    "gamma": (2.5, {"shape": 3.0}),
    "lognormal": (0.4, {"sigma": 0.5}),
    "beta": (0.3, {"phi": 8.0}),
    "exponential": (1.7, {}),
    "weibull": (2.2, {"shape": 1.7}),
    "zero_inflated_poisson": (3.0, {"zi": 0.3}),
    "zero_inflated_negbinomial": (3.0, {"shape": 2.5, "zi": 0.25}),
    "hurdle_poisson": (1.2, {"hu": 0.4}),
}


def test_every_family_has_a_sample_case():
    assert set(SAMPLE_CASES) == set(MU_FAMILIES)


@pytest.mark.parametrize("name", sorted(MU_FAMILIES))
def test_posterior_predictive_mean(name):
    fam = family_numerics(name)
    mu, a = SAMPLE_CASES[name]
    mu_arr = jnp.full((N_DRAWS,), mu)
    aux = {k: jnp.asarray(v) for k, v in a.items()}  # scalars: sample must broadcast them
    draws = np.asarray(jax.jit(fam.sample)(jax.random.key(11), mu_arr, aux))
    assert draws.shape == (N_DRAWS,)
    assert np.all(np.isfinite(np.asarray(fam.log_lik(jnp.asarray(draws), mu_arr, aux))))
    if fam.discrete:
        np.testing.assert_array_equal(draws, np.round(draws))
    want = _expected_mean(name, mu, a)
    se = draws.std() / math.sqrt(N_DRAWS)
    assert abs(draws.mean() - want) < 5 * se, (draws.mean(), want, se)


def test_hurdle_sample_is_exact_for_tiny_means():
    fam = family_numerics("hurdle_poisson")
    sample = jax.jit(fam.sample)
    draws = np.asarray(sample(jax.random.key(0), jnp.full((5000,), 1e-8), {"hu": jnp.asarray(0.5)}))
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert abs((draws == 0).mean() - 0.5) < 0.05


# ----------------------------------------------------------------------------------- registry, priors


def test_aliases_and_unsupported_families():
    assert family_numerics("normal") is family_numerics("gaussian")
    assert family_numerics("negative_binomial") is family_numerics("negbinomial")
    assert family_numerics("zip") is family_numerics("zero_inflated_poisson")
    assert family_numerics("zinb") is family_numerics("zero_inflated_negbinomial")
    assert family_numerics("ordinal") is family_numerics("cumulative")
    with pytest.raises(FamilyError, match="did you mean 'poisson'"):
        family_numerics("poison")


def test_links_and_aux_parameters_follow_brms():
    want = {
        "student": ("identity", ("nu", "sigma")),
        "bernoulli": ("logit", ()),
        "binomial": ("logit", ()),
        "poisson": ("log", ()),
        "negbinomial": ("log", ("shape",)),
        "gamma": ("log", ("shape",)),
        "lognormal": ("identity", ("sigma",)),
        "beta": ("logit", ("phi",)),
        "exponential": ("log", ()),
        "weibull": ("log", ("shape",)),
        "zero_inflated_poisson": ("log", ("zi",)),
        "zero_inflated_negbinomial": ("log", ("shape", "zi")),
        "hurdle_poisson": ("log", ("hu",)),
    }
    for name, (link, aux) in want.items():
        fam = family_numerics(name)
        assert fam.default_link.value == link, name
        assert tuple(a.name for a in fam.aux) == aux, name
    assert {lk.value for lk in family_numerics("bernoulli").links} == {"logit", "probit", "cloglog"}
    assert {lk.value for lk in family_numerics("poisson").links} >= {"log", "identity", "sqrt"}
    nu = family_numerics("student").aux[0]
    assert nu.lower == 1.0
    for name, par in [("zero_inflated_poisson", "zi"), ("hurdle_poisson", "hu")]:
        a = next(a for a in family_numerics(name).aux if a.name == par)
        assert (a.lower, a.upper) == (0.0, 1.0)


def test_default_priors_follow_brms():
    y = np.array([0.0, 1.0, 3.0, 8.0, 20.0, 2.0])

    def prior(name, par):
        return next(a for a in family_numerics(name).aux if a.name == par).default_prior(y)

    assert prior("student", "nu") == DistributionSpec("gamma", (2.0, 0.1))
    assert prior("negbinomial", "shape") == DistributionSpec("inv_gamma", (0.4, 0.3))
    assert prior("zero_inflated_negbinomial", "shape") == DistributionSpec("inv_gamma", (0.4, 0.3))
    assert prior("gamma", "shape") == DistributionSpec("gamma", (0.01, 0.01))
    assert prior("weibull", "shape") == DistributionSpec("gamma", (0.01, 0.01))
    assert prior("beta", "phi") == DistributionSpec("gamma", (0.01, 0.01))
    assert prior("zero_inflated_poisson", "zi") == DistributionSpec("beta", (1.0, 1.0))
    assert prior("hurdle_poisson", "hu") == DistributionSpec("beta", (1.0, 1.0))
    # intercepts: on the link scale of y where brms can transform it (0 → 0.1 before the log), else (0, 2.5)
    y_log = np.log(np.where(y == 0, 0.1, y))
    loc = round(float(np.median(y_log)), 1)
    scale = max(2.5, round(1.4826 * float(np.median(abs(y_log - np.median(y_log)))), 1))
    want = DistributionSpec("student_t", (3.0, loc, scale))
    assert family_numerics("poisson").intercept_prior(y, Link.LOG) == want
    assert family_numerics("bernoulli").intercept_prior(np.array([0.0, 1.0]), Link.LOGIT) == \
        DistributionSpec("student_t", (3.0, 0.0, 2.5))
    g = family_numerics("gaussian")
    assert g.intercept_prior(y, Link.IDENTITY) == DistributionSpec("student_t", (3.0, 2.5, 3.0))
    # lognormal's mu lives on log y: brms's intercept and sigma priors are computed from log(y)
    pos = np.exp(np.array([0.0, 1.0, 2.0, 5.0, 9.0]))
    ln = family_numerics("lognormal")
    assert ln.intercept_prior(pos, Link.IDENTITY) == DistributionSpec("student_t", (3.0, 2.0, 3.0))
    assert ln.aux[0].default_prior(pos) == DistributionSpec("student_t", (3.0, 0.0, 3.0))
    np.testing.assert_allclose(ln.response_scale(pos, Link.IDENTITY), np.std(np.log(pos)))
    assert ln.default_scale(pos, Link.IDENTITY) == 3.0
    assert family_numerics("poisson").default_scale(y, Link.LOGIT) == 2.5


def test_default_prior_table_through_the_api():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.poisson(3, 50), "x": rng.normal(size=50), "g": rng.integers(0, 5, 50)})
    table = hdsl.Model("y ~ x + (1 | g)\nfamily: negbinomial", data=df).default_priors()
    assert table.loc["shape", "prior"] == "inv_gamma(0.4, 0.3)"
    df["z"] = rng.uniform(0.05, 0.95, 50)
    table = hdsl.Model("z ~ x\nfamily: beta", data=df).default_priors()
    assert table.loc["phi", "prior"] == "gamma(0.01, 0.01)"


# --------------------------------------------------------------------------------------------- recovery

N_ROWS, N_GROUPS = 400, 12
B0, B1, SD_G = 0.3, 0.6, 0.4


def _simulate(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, N_GROUPS, N_ROWS)
    x = rng.normal(size=N_ROWS)
    eta = B0 + B1 * x + rng.normal(0, SD_G, N_GROUPS)[g]
    df = pd.DataFrame({"x": x, "g": g})
    truth: dict[str, float] = {}
    match name:
        case "poisson":
            df["y"] = rng.poisson(np.exp(eta))
        case "bernoulli":
            df["y"] = rng.uniform(size=N_ROWS) < 1 / (1 + np.exp(-eta))
        case "binomial":
            df["n"] = rng.integers(5, 20, N_ROWS)
            df["y"] = rng.binomial(df["n"], 1 / (1 + np.exp(-eta)))
        case "negbinomial":
            truth["shape"] = 3.0
            mu = np.exp(eta)
            df["y"] = rng.poisson(rng.gamma(truth["shape"], mu / truth["shape"]))
        case "student":
            truth |= {"sigma": 0.8, "nu": 4.0}
            df["y"] = eta + truth["sigma"] * rng.standard_t(truth["nu"], N_ROWS)
        case "gamma":
            truth["shape"] = 4.0
            df["y"] = rng.gamma(truth["shape"], np.exp(eta) / truth["shape"])
    return df, truth


RECOVERY = [
    ("poisson", "y ~ x + (1 | g)\nfamily: poisson"),
    ("bernoulli", "y ~ x + (1 | g)\nfamily: bernoulli"),
    ("binomial", "y | trials(n) ~ x + (1 | g)\nfamily: binomial"),
    ("negbinomial", "y ~ x + (1 | g)\nfamily: negbinomial"),
    ("student", "y ~ x + (1 | g)\nfamily: student"),
    ("gamma", "y ~ x + (1 | g)\nfamily: gamma"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "spec"), RECOVERY, ids=[r[0] for r in RECOVERY])
def test_parameter_recovery(name, spec):
    df, truth = _simulate(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hdsl.fit(spec, data=df, chains=2, warmup=300, draws=300, seed=1, progress=False)
    summary = fit.summary()
    truth |= {"b_x": B1}
    for par, value in truth.items():
        mean, sd = summary.loc[par, "mean"], summary.loc[par, "sd"]
        assert abs(mean - value) < 4 * sd, (par, mean, sd, value)
    # the intercept absorbs the realized group effects: compare with a wider band
    mean, sd = summary.loc["b_Intercept", "mean"], summary.loc["b_Intercept", "sd"]
    assert abs(mean - B0) < 4 * sd + 0.3, (mean, sd)


# --------------------------------------------------------------------------------------------- geometric


def _geometric_data(n: int = 600, groups: int = 12, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    mu = np.exp(0.6 + 0.5 * x + rng.normal(0, 0.4, groups)[g])
    return pd.DataFrame({"y": rng.geometric(1.0 / (1.0 + mu)) - 1.0, "x": x, "g": g.astype(str)})


def test_geometric_log_density_matches_a_hand_written_model():
    """y ~ x + (1 | g), family: geometric against the geometric likelihood written out by hand."""
    import numpyro
    from conftest import assert_log_density_matches

    df = _geometric_data()
    model = hdsl.Model("y ~ x + (1 | g)\nfamily: geometric\nprior: Intercept ~ normal(0, 2)\n"
                       "prior: b ~ normal(0, 1)\nprior: sd ~ normal(0, 1)", df, parameterization="noncentered")
    codes = model.design.main.groups[0].codes

    def np_model():
        b0 = numpyro.sample("b0", nd.Normal(0.0, 2.0))
        b1 = numpyro.sample("b1", nd.Normal(0.0, 1.0))
        sd = numpyro.sample("sd", nd.HalfNormal(1.0))
        z = numpyro.sample("z", nd.Normal(0.0, 1.0).expand([12]).to_event(1))
        mu = jnp.exp(b0 + b1 * jnp.asarray(df["x"].to_numpy()) + sd * z[codes])
        y = jnp.asarray(df["y"].to_numpy())
        numpyro.factor("y", jnp.sum(y * (jnp.log(mu) - jnp.log1p(mu)) - jnp.log1p(mu)))

    assert_log_density_matches(model, np_model, (), lambda p: {
        "b0": p.predictors[0].intercept, "b1": p.predictors[0].b[0], "sd": p.blocks[0].sd[0],
        "z": p.blocks[0].z[:, 0]})


def test_geometric_fit_recovers_the_slope():
    df = _geometric_data()
    fit = hdsl.fit("y ~ x + (1 | g)\nfamily: geometric", df, chains=2, warmup=300, draws=300, seed=2,
                   progress=False)
    b = np.asarray(fit.idata["posterior"]["b_x"]).ravel()
    assert abs(b.mean() - 0.5) < 4 * b.std()
    y_rep = np.asarray(fit.predict(kind="response", draws=20)["predictions"]["y"])
    assert np.all(y_rep >= 0) and np.all(y_rep == np.round(y_rep))
