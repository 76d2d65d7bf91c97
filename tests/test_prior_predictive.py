"""Model.sample_prior: parameters from the priors (truncated as the log-density truncates them) and
data from the family."""

from __future__ import annotations

import pytest
from conftest import SEED_SPEC
from scipy import stats

import hdsl


@pytest.fixture(scope="module")
def seed_prior(imm10):
    return hdsl.Model(SEED_SPEC, imm10).sample_prior(draws=4000, seed=3)


def test_prior_draws_follow_the_priors(seed_prior):
    prior = seed_prior["prior"]
    checks = {
        "b_Intercept": stats.norm(40, 50),
        "b_homework": stats.norm(0, 10),
        "sd_schid__Intercept": stats.halfnorm(scale=50),
        "sd_schid__homework": stats.halfnorm(scale=5),
    }
    for name, dist in checks.items():
        x = prior[name].values.ravel()
        assert stats.kstest(x, dist.cdf).pvalue > 1e-3, name
    sigma = prior["sigma"].values.ravel()
    assert (sigma > 0).all()
    assert stats.kstest(sigma, stats.halfcauchy(scale=5).cdf).pvalue > 1e-3


def test_prior_predictive_is_the_model(seed_prior, imm10):
    post = seed_prior["prior"]
    y = seed_prior["prior_predictive"]["math"].values[0]  # (draws, rows)
    assert y.shape == (4000, len(imm10))
    # for each draw, the rows' mean is the intercept + slope·homework + school effects, plus noise
    x = imm10["homework"].to_numpy(float)
    r = post["r_schid"].values[0]
    codes = {lv: i for i, lv in enumerate(post["schid"].values)}
    g = imm10["schid"].astype(str).map(codes).to_numpy()
    mu = (post["b_Intercept"].values[0][:, None] + post["b_homework"].values[0][:, None] * x
          + r[:, g, 0] + r[:, g, 1] * x)
    z = (y - mu) / post["sigma"].values[0][:, None]
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02


def test_correlated_prior_has_lkj_correlations(corr_data):
    model = hdsl.Model("y ~ x + (1 + x | g)\nprior: cor ~ lkj(1)", corr_data)
    cor = model.sample_prior(draws=3000, seed=1)["prior"]["cor_g__Intercept__x"].values.ravel()
    # LKJ(1) for 2×2 is uniform on (-1, 1)
    assert stats.kstest(cor, stats.uniform(-1, 2).cdf).pvalue > 1e-3


def test_flat_prior_cannot_be_sampled(corr_data):
    with pytest.raises(hdsl.PriorError, match="improper flat"):
        hdsl.Model("y ~ x + (1 | g)\nprior: b ~ flat()", corr_data).sample_prior(draws=10)
