"""brms's ``se()`` addition term: known measurement error on the response (the eight-schools model).

``y | se(s)`` is y_i ~ Normal(mu_i, s_i) with no residual sd; ``se(s, sigma = TRUE)`` estimates sigma
too: y_i ~ Normal(mu_i, sqrt(sigma² + s_i²)). Checked against hand-written NumPyro models and, for eight
schools, against the posterior computed by grid integration.
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
from conftest import family_numerics
from numpyro.infer.util import potential_energy, unconstrain_fn
from scipy import stats

import hdsl

jax.config.update("jax_enable_x64", True)

Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SE = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
SCHOOLS = pd.DataFrame({"y": Y, "s": SE, "school": list("ABCDEFGH")})

SPEC = """y | se(s) ~ 1 + (1 | school)
prior: Intercept ~ normal(0, 5)
prior: sd ~ cauchy(0, 5)"""


def schools_numpyro(y, se, sigma_too):
    b0 = numpyro.sample("b0", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([8]).to_event(1))
    scale = se
    if sigma_too:
        sigma = numpyro.sample("sigma", dist.Exponential(0.2))
        scale = jnp.sqrt(sigma**2 + se**2)
    numpyro.sample("y", dist.Normal(b0 + tau * z, scale), obs=y)


@pytest.mark.parametrize("sigma_too", [False, True])
def test_se_log_density_matches_numpyro(sigma_too):
    spec = SPEC.replace("se(s)", "se(s, sigma = TRUE)") + "\nprior: sigma ~ exponential(0.2)" if sigma_too else SPEC
    model = hdsl.Model(spec, SCHOOLS, parameterization="noncentered")
    assert ("sigma" in model.parameter_names) is sigma_too
    args = (jnp.asarray(Y), jnp.asarray(SE), sigma_too)
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for _ in range(10):
        flat = rng.uniform(-2, 2, model.dim)
        p = model.constrain(flat)
        values = {"b0": p.predictors[0].intercept, "tau": p.blocks[0].sd[0], "z": p.blocks[0].z[:, 0]}
        if sigma_too:
            values["sigma"] = p.aux["sigma"]
        ours.append(float(model.log_density(flat)))
        theirs.append(-float(potential_energy(schools_numpyro, args, {}, unconstrain_fn(schools_numpyro, args, {},
                                                                                       values))))
    diff = np.array(ours) - np.array(theirs)
    assert np.ptp(diff) < 1e-9 * np.max(np.abs(ours)), diff
    assert np.ptp(ours) > 1.0


def test_sigma_is_not_a_parameter_without_sigma_true():
    model = hdsl.Model(SPEC, SCHOOLS)
    assert model.parameter_names == ["b_Intercept", "sd_school__Intercept"]
    assert "sigma" not in model.default_priors().index
    for flag in ("TRUE", "true", "T"):
        with_sigma = hdsl.Model(SPEC.replace("se(s)", f"se(s, sigma = {flag})"), SCHOOLS)
        assert with_sigma.spec.response.se_sigma
        assert with_sigma.parameter_names[-1] == "sigma" and "sigma" in with_sigma.default_priors().index
    assert hdsl.Model(SPEC.replace("se(s)", "se(s, FALSE)"), SCHOOLS).parameter_names == model.parameter_names


@pytest.mark.parametrize("family, aux", [("gaussian", {}), ("student", {"nu": 4.0})])
def test_se_scale_in_the_likelihood_and_predictions(family, aux):

    fam = family_numerics(family)
    y, mu, se = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.0]), jnp.array([2.0, 3.0])
    aux = {k: jnp.asarray(v) for k, v in aux.items()}

    def ref(scale):
        return (dist.Normal(mu, scale) if family == "gaussian" else dist.StudentT(aux["nu"], mu, scale)).log_prob(y)

    np.testing.assert_allclose(fam.log_lik(y, mu, aux | {"se": se}), ref(se), rtol=1e-12)
    both = aux | {"se": se, "sigma": jnp.asarray(1.5)}
    np.testing.assert_allclose(fam.log_lik(y, mu, both), ref(jnp.sqrt(1.5**2 + se**2)), rtol=1e-12)
    draws = fam.sample(jax.random.key(0), jnp.zeros(20000), {"se": jnp.full(20000, 3.0), "sigma": jnp.asarray(4.0),
                                                             "nu": jnp.asarray(1e6)})
    assert float(jnp.std(draws)) == pytest.approx(5.0, rel=0.03)


def _grid_posterior_means() -> tuple[float, float]:
    """E[mu], E[tau] by grid integration over (mu, tau): the school effects integrate out analytically,
    y_j ~ Normal(mu, sqrt(tau² + se_j²)). tau = 5 tan(πu/2) makes the half-Cauchy(0, 5) prior uniform in u."""
    u = (np.arange(4000) + 0.5) / 4000
    tau = 5.0 * np.tan(0.5 * np.pi * u)
    mu = np.linspace(-25.0, 35.0, 1201)
    scale = np.sqrt(tau[:, None] ** 2 + SE[None, :] ** 2)  # (tau, school)
    log_lik = stats.norm.logpdf(Y[None, None, :], mu[None, :, None], scale[:, None, :]).sum(axis=2)
    log_post = log_lik + stats.norm.logpdf(mu, 0.0, 5.0)[None, :]
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    return float((w * mu[None, :]).sum()), float((w * tau[:, None]).sum())


@pytest.mark.slow
def test_eight_schools_posterior_matches_grid_integration():
    ref_mu, ref_tau = _grid_posterior_means()
    model = hdsl.Model(SPEC, SCHOOLS, parameterization="noncentered")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few divergences are expected in eight schools
        fit = model.sample(chains=4, warmup=500, draws=1000, seed=3, progress=False)
    s = fit.summary()
    for name, ref in (("b_Intercept", ref_mu), ("sd_school__Intercept", ref_tau)):
        row = s.loc[name]
        assert abs(row["mean"] - ref) < 4.5 * row["mcse_mean"], (name, row["mean"], ref, row["mcse_mean"])
        assert row["r_hat"] < 1.02


# ---- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, holds", [(-1.0, "-1.0"), (0.0, "0.0"), (np.inf, "inf")])
def test_bad_standard_errors(bad, holds):
    frame = SCHOOLS.copy()
    frame.loc[2, "s"] = bad
    with pytest.raises(hdsl.DataError) as err:
        hdsl.Model(SPEC, frame)
    assert str(err.value) == f"standard errors 's' must be finite and greater than 0; row 2 holds {holds}"
    assert err.value.column == "s" and err.value.row == 2


@pytest.mark.parametrize("spec, error, message", [
    ("y | se(s) ~ 1\nfamily: poisson", hdsl.FormulaError, "se() applies to the gaussian, student family, not poisson"),
    ("y | se(s, sigma = maybe) ~ 1", hdsl.FormulaError, "se(): sigma must be TRUE or FALSE, got 'maybe'"),
    ("y | se(s, sd = TRUE) ~ 1", hdsl.FormulaError, "unexpected argument 'sd=TRUE' of se(); write se(x, sigma = ...)"),
    ("y | se(s) ~ 1\nprior: sigma ~ exponential(1)", hdsl.PriorError,
     "sigma is not a parameter of this model: se() without sigma = TRUE fixes the residual sd to the known "
     "standard errors"),
])
def test_bad_se_terms(spec, error, message):
    with pytest.raises(error) as err:
        hdsl.Model(spec, SCHOOLS)
    assert str(err.value).splitlines()[0].endswith(message)
