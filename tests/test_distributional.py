"""Distributional regression (``sigma ~ x + (1 | g)``) and brms's ``(1 | p | g)`` correlating group terms
across formulas: the log-density equals a hand-written NumPyro model, names follow brms, the priors
table has every target, a simulated truth is recovered, and predictions use the per-row parameter."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from conftest import assert_log_density_matches
from numpyro.distributions import constraints

import hdsl
from hdsl.model.density import family_args

jax.config.update("jax_enable_x64", True)

TRUTH = {"b_Intercept": 1.0, "b_x": 2.0, "b_sigma_Intercept": 0.2, "b_sigma_x": 0.5}

CORRELATED = """y ~ x + (1 | p | g)
sigma ~ x + (1 | p | g)
family: gaussian
prior: Intercept ~ normal(0, 5)
prior: b ~ normal(0, 2)
prior: Intercept_sigma ~ normal(0, 1)
prior: b_sigma[x] ~ normal(0, 0.5)
prior: sd[g] ~ normal(0, 2)
prior: sd_sigma ~ normal(0, 0.5)
prior: cor ~ lkj(2)
"""


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n, G = 600, 12
    g = rng.integers(0, G, n)
    x = rng.normal(size=n)
    a, s_g = rng.normal(0, 1.0, G), rng.normal(0, 0.4, G)
    sigma = np.exp(TRUTH["b_sigma_Intercept"] + TRUTH["b_sigma_x"] * x + s_g[g])
    y = TRUTH["b_Intercept"] + TRUTH["b_x"] * x + a[g] + sigma * rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": np.char.add("s", g.astype(str))})


@pytest.fixture(scope="module")
def fit(data):
    return hdsl.fit(CORRELATED, data, chains=2, warmup=400, draws=400, progress=False, seed=3)


def mu_sigma_priors():
    """The priors both specs state: mu's and sigma's intercept and slope, and their group sds."""
    b0 = numpyro.sample("b0", dist.Normal(0.0, 5.0))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 2.0))
    s0 = numpyro.sample("s0", dist.Normal(0.0, 1.0))
    s1 = numpyro.sample("s1", dist.Normal(0.0, 0.5))
    sd_mu = numpyro.sample("sd_mu", dist.HalfNormal(2.0))
    sd_sigma = numpyro.sample("sd_sigma", dist.HalfNormal(0.5))
    return b0, b1, s0, s1, sd_mu, sd_sigma


def correlated_numpyro(x, g, n_groups, y):
    b0, b1, s0, s1, sd_mu, sd_sigma = mu_sigma_priors()
    L = numpyro.sample("L", dist.LKJCholesky(2, 2.0))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_groups, 2]).to_event(2))
    r = (z @ L.T) * jnp.array([sd_mu, sd_sigma])
    mu = b0 + b1 * x + r[g, 0]
    sigma = jnp.exp(s0 + s1 * x + r[g, 1])
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def test_log_density_matches_numpyro(data):
    model = hdsl.Model(CORRELATED, data, dtype="float64")
    assert len(model.lowered.blocks) == 1 and model.lowered.blocks[0].correlated
    g = model.design.main.groups[0]
    args = (jnp.asarray(data["x"].to_numpy()), jnp.asarray(g.codes), g.n_levels, jnp.asarray(data["y"].to_numpy()))
    assert_log_density_matches(model, correlated_numpyro, args, lambda p: {
        "b0": p.predictors[0].intercept, "b1": p.predictors[0].b[0], "s0": p.predictors[1].intercept,
        "s1": p.predictors[1].b[0], "sd_mu": p.blocks[0].sd[0], "sd_sigma": p.blocks[0].sd[1],
        "L": p.blocks[0].cor_cholesky, "z": p.blocks[0].z}, n_points=15)


def test_student_with_modelled_sigma_matches_numpyro(data):
    """Separate (uncorrelated) blocks: no ID, the family's other parameter (nu) stays a scalar."""
    spec = """y ~ x + (1 | g)
sigma ~ x + (1 | g)
family: student
prior: Intercept ~ normal(0, 5)
prior: b ~ normal(0, 2)
prior: Intercept_sigma ~ normal(0, 1)
prior: b_sigma ~ normal(0, 0.5)
prior: sd ~ normal(0, 2)
prior: sd_sigma[g, Intercept] ~ normal(0, 0.5)
prior: nu ~ gamma(2, 0.1)
"""
    model = hdsl.Model(spec, data, dtype="float64", parameterization="noncentered")
    assert [b.correlated for b in model.lowered.blocks] == [False, False]
    assert model.parameter_names == ["b_Intercept", "b_x", "b_sigma_Intercept", "b_sigma_x", "sd_g__Intercept",
                                     "sd_g__sigma_Intercept", "nu"]
    g = model.design.main.groups[0]
    x, y, codes = data["x"].to_numpy(), data["y"].to_numpy(), g.codes

    def numpyro_model():
        b0, b1, s0, s1, sd_mu, sd_sigma = mu_sigma_priors()
        # nu > 1 as in brms: the gamma prior truncated to (1, inf)
        nu = numpyro.sample("nu", dist.ImproperUniform(constraints.greater_than(1.0), (), ()))
        numpyro.factor("nu_prior", dist.Gamma(2.0, 0.1).log_prob(nu))
        z_mu = numpyro.sample("z_mu", dist.Normal(0.0, 1.0).expand([g.n_levels, 1]).to_event(2))
        z_sigma = numpyro.sample("z_sigma", dist.Normal(0.0, 1.0).expand([g.n_levels, 1]).to_event(2))
        mu = b0 + b1 * x + sd_mu * z_mu[codes, 0]
        sigma = jnp.exp(s0 + s1 * x + sd_sigma * z_sigma[codes, 0])
        numpyro.sample("y", dist.StudentT(nu, mu, sigma), obs=y)

    assert_log_density_matches(model, numpyro_model, (), lambda p: {
        "b0": p.predictors[0].intercept, "b1": p.predictors[0].b[0], "s0": p.predictors[1].intercept,
        "s1": p.predictors[1].b[0],
        "sd_mu": p.blocks[0].sd[0], "sd_sigma": p.blocks[1].sd[0], "nu": p.aux["nu"], "z_mu": p.blocks[0].z,
        "z_sigma": p.blocks[1].z},
        n_points=10, seed=2)


def test_priors_table_lists_the_modelled_parameter(data):
    model = hdsl.Model(CORRELATED, data)
    table = model.priors.to_frame()
    for target in ("Intercept_sigma", "b_sigma", "b_sigma[x]", "sd_sigma", "sd_sigma[g]",
                   "sd_sigma[g, Intercept]", "cor", "cor[g]"):
        assert target in table.index, target
    assert "sigma" not in table.index  # modelled, so not a scalar parameter
    assert table.loc["b_sigma[x]", "prior"] == "normal(0, 0.5)"
    assert table.loc["sd_sigma[g, Intercept]", "prior"].startswith("normal(0, 0.5)")
    # defaults on the link scale, unit-scaled (as brms)
    default = hdsl.Model("y ~ x\nsigma ~ x\nfamily: gaussian", data).priors.to_frame()
    assert default.loc["Intercept_sigma", "prior"] == "student_t(3, 0, 2.5)"
    with pytest.raises(hdsl.HdslError, match="matches no parameter"):
        hdsl.Model(CORRELATED + "prior: b_sigma[z] ~ normal(0, 1)\n", data)
    with pytest.raises(hdsl.HdslError, match="unknown prior class 'b_nu'"):
        hdsl.Model(CORRELATED + "prior: b_nu ~ normal(0, 1)\n", data)


def test_fit_recovers_the_truth(fit):
    s = fit.summary()
    for name, value in TRUTH.items():
        assert s.loc[name, "2.5%"] < value < s.loc[name, "97.5%"], (name, s.loc[name])
    assert "cor_g__Intercept__sigma_Intercept" in s.index
    assert "r_g__sigma[s1,Intercept]" in s.index
    assert fit.idata["posterior"]["r_g__sigma"].dims[-2:] == ("g", "g__sigma__coef")


def test_log_likelihood_of_training_data_equals_the_fits(fit, data):
    """Rebuilding the parameters from the named posterior (as predictions do) gives back the sampler's
    pointwise log-likelihood: the per-row sigma is used."""
    again = fit.log_likelihood(data)
    stored = fit.idata["log_likelihood"]["y"].transpose("chain", "draw", ...).values
    np.testing.assert_allclose(again.values, stored, rtol=1e-8, atol=1e-8)


def test_response_draws_have_the_modelled_spread(fit, data):
    """At x = -1.5 the residual sd is exp(0.2 - 0.75) ≈ 0.58; at x = 1.5 it is exp(0.95) ≈ 2.6."""
    new = pd.DataFrame({"x": [-1.5] * 200 + [1.5] * 200, "g": ["s1"] * 400})
    mean = fit.predict(new, kind="mean", draws=200).predictions["y"].values.reshape(-1, 400)
    resp = fit.predict(new, kind="response", draws=200).predictions["y"].values.reshape(-1, 400)
    resid = resp - mean
    low, high = resid[:, :200].std(), resid[:, 200:].std()
    assert high / low == pytest.approx(np.exp(0.5 * 3.0), rel=0.25)
    # a new level draws its sigma effect from the fitted population too
    newlevel = fit.predict(pd.DataFrame({"x": [0.0], "g": ["new"]}), kind="response", allow_new_levels=True)
    assert np.isfinite(newlevel.predictions["y"].values).all()


def test_rendered_spec_keeps_the_parameter_formulas():
    """Cross-validation's baselines are shown as spec text: the sigma formula and the IDs survive."""
    from hdsl.language.expand import expand_spec
    from hdsl.language.parse import parse_spec
    from hdsl.workflow.crossval import render_spec

    for text in (CORRELATED, "y ~ x + (1 + x || p || g) + (1 | h)\nsigma ~ 0 + x + (1 || p || g)\nfamily: student"):
        spec = expand_spec(parse_spec(text))
        again = expand_spec(parse_spec(render_spec(spec, spec.priors)))
        assert again == spec


@pytest.mark.parametrize(("family", "dpar", "low", "high"), [("student", "nu", 1.0, np.inf),
                                                            ("zero_inflated_poisson", "zi", 0.0, 1.0),
                                                            ("negbinomial", "shape", 0.0, np.inf)])
def test_modelled_parameters_stay_in_their_support(data, family, dpar, low, high):
    """Each parameter's link maps any linear predictor into its support (nu > 1 through log(nu − 1))."""
    df = data.assign(y=np.round(np.abs(data["y"]))) if family != "student" else data
    model = hdsl.Model(f"y ~ x\n{dpar} ~ x + (1 | g)\nfamily: {family}", df)
    rng = np.random.default_rng(0)
    for _ in range(5):
        flat = jnp.asarray(rng.uniform(-4, 4, size=model.dim))
        values = np.asarray(family_args(model.lowered, model.constrain(flat), model.lowered.data)[dpar])
        assert values.shape == (len(df),) and np.all((values >= low) & (values <= high))  # closed: rounding
        assert np.isfinite(float(model.log_density(flat)))
