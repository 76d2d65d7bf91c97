"""hdsl's log-density equals an independent, hand-written NumPyro model of the same spec.

At 20 random unconstrained points, hdsl's log-density (Jacobians included) and NumPyro's
``-potential_energy`` at the same parameter values differ only by a constant (normalizing constants
of truncated priors that one side may drop). The NumPyro models are written out by hand here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from conftest import CORR_SPEC, SEED_SPEC
from numpyro.infer.util import log_density, potential_energy, unconstrain_fn

import hdsl
from hdsl.model import density

jax.config.update("jax_enable_x64", True)


def seed_numpyro(x, g, n_groups, y):
    b0 = numpyro.sample("b0", dist.Normal(40.0, 50.0))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 10.0))
    sd_a = numpyro.sample("sd_a", dist.HalfNormal(50.0))
    sd_b = numpyro.sample("sd_b", dist.HalfNormal(5.0))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_groups, 2]).to_event(2))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(5.0))
    a = sd_a * z[:, 0]
    b = sd_b * z[:, 1]
    numpyro.sample("y", dist.Normal(b0 + b1 * x + a[g] + b[g] * x, sigma), obs=y)


def corr_numpyro(x, g, n_groups, y):
    b0 = numpyro.sample("b0", dist.Normal(0.0, 5.0))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 2.0))
    sd = numpyro.sample("sd", dist.FoldedDistribution(dist.StudentT(3.0, 0.0, 2.0)).expand([2]).to_event(1))
    L = numpyro.sample("L", dist.LKJCholesky(2, 2.0))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_groups, 2]).to_event(2))
    sigma = numpyro.sample("sigma", dist.Exponential(1.0))
    r = (jnp.diag(sd) @ L @ z.T).T
    numpyro.sample("y", dist.Normal(b0 + b1 * x + r[g, 0] + r[g, 1] * x, sigma), obs=y)


def corr_centered_numpyro(x, g, n_groups, y):
    """The textbook centered form: each level's coefficients drawn around the population ones."""
    b0 = numpyro.sample("b0", dist.Normal(0.0, 5.0))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 2.0))
    sd = numpyro.sample("sd", dist.FoldedDistribution(dist.StudentT(3.0, 0.0, 2.0)).expand([2]).to_event(1))
    L = numpyro.sample("L", dist.LKJCholesky(2, 2.0))
    sigma = numpyro.sample("sigma", dist.Exponential(1.0))
    cov = jnp.diag(sd) @ L @ L.T @ jnp.diag(sd)
    beta = numpyro.sample("beta", dist.MultivariateNormal(jnp.array([b0, b1]), cov).expand([n_groups]).to_event(1))
    numpyro.sample("y", dist.Normal(beta[g, 0] + beta[g, 1] * x, sigma), obs=y)


def _compare(model: hdsl.Model, np_model, np_args, to_numpyro, n_points=20, seed=0):
    rng = np.random.default_rng(seed)
    ours, theirs, theirs_joint = [], [], []
    for _ in range(n_points):
        flat = rng.uniform(-2, 2, size=model.dim)
        params = model.constrain(flat)
        values = to_numpyro(params)
        unc = unconstrain_fn(np_model, np_args, {}, values)
        ours.append(float(model.log_density(flat)))
        theirs.append(-float(potential_energy(np_model, np_args, {}, unc)))
        theirs_joint.append(float(log_density(np_model, np_args, {}, values)[0]))
        # the flat point maps back to itself
        np.testing.assert_allclose(model.unconstrain(params), flat, rtol=1e-9, atol=1e-9)
    diff = np.array(ours) - np.array(theirs)
    assert np.all(np.isfinite(ours))
    assert np.ptp(diff) < 1e-8 * max(1.0, np.max(np.abs(ours))), diff
    # and the value moves: the test would see a wrong likelihood
    assert np.ptp(ours) > 1.0
    return np.array(ours), np.array(theirs_joint)


def _seed_args(model: hdsl.Model, imm10) -> tuple:
    g = model.design.main.groups[0]
    return (jnp.asarray(imm10["homework"].to_numpy(float)), jnp.asarray(g.codes), g.n_levels,
            jnp.asarray(imm10["math"].to_numpy(float)))


def _seed_to_numpyro(p: dict) -> dict:
    mu, block = p.predictors[0], p.blocks[0]
    return {"b0": mu.intercept, "b1": mu.b[0], "sd_a": block.sd[0], "sd_b": block.sd[1], "z": block.z,
            "sigma": p.aux["sigma"]}


def test_seed_model_log_density_matches_numpyro(imm10):
    model = hdsl.Model(SEED_SPEC, imm10, dtype="float64", parameterization="noncentered")
    _compare(model, seed_numpyro, _seed_args(model, imm10), _seed_to_numpyro)


def test_correlated_model_log_density_matches_numpyro(corr_data):
    model = hdsl.Model(CORR_SPEC, corr_data, dtype="float64", parameterization="noncentered")
    g = model.design.main.groups[0]
    args = (jnp.asarray(corr_data["x"].to_numpy()), jnp.asarray(g.codes), g.n_levels,
            jnp.asarray(corr_data["y"].to_numpy()))

    def to_numpyro(p):
        mu, block = p.predictors[0], p.blocks[0]
        return {"b0": mu.intercept, "b1": mu.b[0], "sd": block.sd, "L": block.cor_cholesky, "z": block.z,
                "sigma": p.aux["sigma"]}

    _compare(model, corr_numpyro, args, to_numpyro)


def test_wrong_prior_is_detected(imm10):
    """The comparison is able to fail: a different prior scale gives a non-constant difference."""
    model = hdsl.Model(SEED_SPEC.replace("normal(0, 10)", "normal(0, 3)"), imm10, dtype="float64",
                       parameterization="noncentered")
    with pytest.raises(AssertionError):
        _compare(model, seed_numpyro, _seed_args(model, imm10), _seed_to_numpyro)


def test_intercept_prior_is_on_user_scale(imm10):
    """Centering is internal: the Intercept prior applies to b_Intercept, the value at homework = 0."""
    m1 = hdsl.Model(SEED_SPEC, imm10, dtype="float64")
    m2 = hdsl.Model(SEED_SPEC.replace("Intercept ~ normal(40, 50)", "Intercept ~ normal(0, 1)"), imm10,
                    dtype="float64")
    rng = np.random.default_rng(1)
    for _ in range(5):
        flat = rng.uniform(-2, 2, size=m1.dim)
        b0 = float(m1.constrain(flat).predictors[0].intercept)
        expected = dist.Normal(0.0, 1.0).log_prob(b0) - dist.Normal(40.0, 50.0).log_prob(b0)
        assert float(m2.log_density(flat) - m1.log_density(flat)) == pytest.approx(float(expected), rel=1e-9)


def test_centered_correlated_model_log_density_matches_numpyro(corr_data):
    model = hdsl.Model(CORR_SPEC, corr_data, dtype="float64", parameterization="centered")
    assert model.centered == (True,)
    g = model.design.main.groups[0]
    args = (jnp.asarray(corr_data["x"].to_numpy()), jnp.asarray(g.codes), g.n_levels,
            jnp.asarray(corr_data["y"].to_numpy()))

    def to_numpyro(p):
        mu, block = p.predictors[0], p.blocks[0]
        pop = np.array([mu.intercept, mu.b[0]])
        return {"b0": mu.intercept, "b1": mu.b[0], "sd": block.sd, "L": block.cor_cholesky, "beta": block.r + pop,
                "sigma": p.aux["sigma"]}

    _compare(model, corr_centered_numpyro, args, to_numpyro)


def test_auto_parameterization_follows_the_data(imm10, corr_data):
    """Data-rich levels (imm10: ~26 students per school, spread ≫ noise/√n) are centered;
    levels with two noisy rows each are not."""
    assert hdsl.Model(SEED_SPEC, imm10).centered == (True,)
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(50), 2)
    sparse = pd.DataFrame({"y": rng.normal(0, 0.3, 50)[g] + rng.normal(0, 2.0, 100), "x": rng.normal(size=100),
                           "g": g.astype(str)})
    assert hdsl.Model("y ~ x + (1 | g)", sparse).centered == (False,)
    assert hdsl.Model("y ~ x + (1 | g)", corr_data, parameterization={"g": "noncentered"}).centered == (False,)
    with pytest.raises(hdsl.HdslError, match="not a grouping factor"):
        hdsl.Model("y ~ x + (1 | g)", corr_data, parameterization={"h": "centered"})


@pytest.mark.parametrize("parameterization", ["noncentered", "centered"])
def test_sufficient_statistics_equal_the_row_sum(imm10, parameterization):
    """imm10's Gaussian likelihood is evaluated from per-school sums; it equals the sum over rows."""
    model = hdsl.Model("math ~ homework + (1 + homework | schid)", imm10, dtype="float64",
                       parameterization=parameterization)
    data = model.lowered.data
    assert data.suff is not None
    rows = data._replace(suff=None)
    rng = np.random.default_rng(3)
    for _ in range(10):
        x = jnp.asarray(rng.uniform(-2, 2, model.dim))
        a = density.log_density(model.lowered, x, data)
        b = density.log_density(model.lowered, x, rows)
        assert float(a) == pytest.approx(float(b), rel=1e-10, abs=1e-8)
        np.testing.assert_allclose(jax.grad(density.log_density, argnums=1)(model.lowered, x, data),
                                   jax.grad(density.log_density, argnums=1)(model.lowered, x, rows),
                                   rtol=1e-8, atol=1e-8)
