"""The cumulative (ordinal) and categorical families: log-densities equal hand-written NumPyro models at
random points, simulated truths are recovered, predictions have the right shape and support, and bad
responses are refused with the column named."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from conftest import assert_log_density_matches
from jax.scipy.special import ndtr
from numpyro.distributions import constraints

import hdsl

jax.config.update("jax_enable_x64", True)

LABELS = ["low", "mid", "high", "top"]
THRESHOLDS = np.array([-1.0, 0.3, 1.5])
B_X = 1.2


@pytest.fixture(scope="module")
def ordinal_data() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n, G = 500, 10
    g = rng.integers(0, G, n)
    x = rng.normal(size=n)
    latent = B_X * x + rng.normal(0, 0.5, G)[g] + rng.logistic(size=n)
    y = (latent[:, None] > THRESHOLDS).sum(1)
    return pd.DataFrame({"y": pd.Categorical(np.array(LABELS)[y], categories=LABELS, ordered=True), "x": x,
                         "g": np.char.add("s", g.astype(str))})


@pytest.fixture(scope="module")
def nominal_data() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 600
    x = rng.normal(size=n)
    logits = np.stack([np.zeros(n), 0.5 + 1.0 * x, -0.5 - 1.0 * x], axis=1)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(p, axis=1)).sum(1)
    g = np.char.add("s", (np.arange(n) % 8).astype(str))
    return pd.DataFrame({"y": np.array(["a", "b", "c"])[y], "x": x, "g": g})


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_cumulative_log_density_matches_numpyro(ordinal_data, link):
    spec = f"""y ~ x + (1 | g)
family: cumulative({link})
prior: Intercept ~ normal(0, 3)
prior: b ~ normal(0, 2)
prior: sd ~ normal(0, 1)
"""
    model = hdsl.Model(spec, ordinal_data, dtype="float64", parameterization="noncentered")
    assert model.design.categories == tuple(LABELS)
    g = model.design.main.groups[0]
    x, codes = ordinal_data["x"].to_numpy(), g.codes
    y = ordinal_data["y"].cat.codes.to_numpy()

    def np_model():
        theta = numpyro.sample("theta", dist.ImproperUniform(constraints.ordered_vector, (), (3,)))
        numpyro.factor("theta_prior", jnp.sum(dist.Normal(0.0, 3.0).log_prob(theta)))
        b = numpyro.sample("b", dist.Normal(0.0, 2.0))
        sd = numpyro.sample("sd", dist.HalfNormal(1.0))
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([g.n_levels]).to_event(1))
        eta = b * x + sd * z[codes]
        if link == "logit":
            numpyro.sample("y", dist.OrderedLogistic(eta, theta), obs=y)
        else:
            # P(lo < Z < hi) by whichever tail is accurate: ndtr differences below 0, upper tails above
            d = jnp.concatenate([jnp.full((len(x), 1), -jnp.inf), theta[None, :] - eta[:, None],
                                 jnp.full((len(x), 1), jnp.inf)], axis=1)
            lo, hi = d[jnp.arange(len(x)), y], d[jnp.arange(len(x)), y + 1]
            if link == "probit":
                log_p = jnp.log(jnp.where(lo > 0, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo)))
            else:  # F(d) = 1 − exp(−exp(d)); upper tail: log S(lo) + log(1 − S(hi)/S(lo)), S = exp(−exp(d))
                upper = -jnp.exp(lo) + jnp.log1p(-jnp.exp(jnp.exp(lo) - jnp.exp(hi)))
                lower = jnp.log(-jnp.expm1(-jnp.exp(hi)) + jnp.expm1(-jnp.exp(lo)))
                log_p = jnp.where(lo > 0, upper, lower)
            numpyro.factor("y", jnp.sum(log_p))

    assert_log_density_matches(model, np_model, (), lambda p: {
        "theta": p.predictors[0].intercept, "b": p.predictors[0].b[0], "sd": p.blocks[0].sd[0],
        "z": p.blocks[0].z[:, 0]})


def test_categorical_log_density_matches_numpyro(nominal_data):
    spec = """y ~ x + (1 | g)
family: categorical
prior: Intercept_mu2 ~ normal(0, 3)
prior: Intercept_mu3 ~ normal(0, 2)
prior: b_mu2 ~ normal(0, 2)
prior: b_mu3[x] ~ normal(0, 1)
prior: sd_mu2 ~ normal(0, 1)
prior: sd_mu3 ~ normal(0, 0.5)
"""
    model = hdsl.Model(spec, nominal_data, dtype="float64", parameterization="noncentered")
    assert model.parameter_names == ["b_mu2_Intercept", "b_mu2_x", "b_mu3_Intercept", "b_mu3_x",
                                     "sd_g__mu2_Intercept", "sd_g__mu3_Intercept"]
    g = model.design.main.groups[0]
    x, codes = nominal_data["x"].to_numpy(), g.codes
    y = pd.Categorical(nominal_data["y"]).codes

    def np_model():
        a2 = numpyro.sample("a2", dist.Normal(0.0, 3.0))
        a3 = numpyro.sample("a3", dist.Normal(0.0, 2.0))
        b2 = numpyro.sample("b2", dist.Normal(0.0, 2.0))
        b3 = numpyro.sample("b3", dist.Normal(0.0, 1.0))
        sd2 = numpyro.sample("sd2", dist.HalfNormal(1.0))
        sd3 = numpyro.sample("sd3", dist.HalfNormal(0.5))
        z2 = numpyro.sample("z2", dist.Normal(0.0, 1.0).expand([g.n_levels]).to_event(1))
        z3 = numpyro.sample("z3", dist.Normal(0.0, 1.0).expand([g.n_levels]).to_event(1))
        logits = jnp.stack([jnp.zeros(len(x)), a2 + b2 * x + sd2 * z2[codes], a3 + b3 * x + sd3 * z3[codes]], 1)
        numpyro.sample("y", dist.CategoricalLogits(logits), obs=y)

    assert_log_density_matches(model, np_model, (), lambda p: {
        "a2": p.predictors[0].intercept, "a3": p.predictors[1].intercept, "b2": p.predictors[0].b[0],
        "b3": p.predictors[1].b[0],
        "sd2": p.blocks[0].sd[0], "sd3": p.blocks[1].sd[0], "z2": p.blocks[0].z[:, 0], "z3": p.blocks[1].z[:, 0]})


@pytest.fixture(scope="module")
def ordinal_fit():
    """Whole-number categories 1..4 from a logistic latent variable, no group effects: the truth is exact."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=1200)
    y = ((B_X * x + rng.logistic(size=x.size))[:, None] > THRESHOLDS).sum(1) + 1
    data = pd.DataFrame({"y": y, "x": x})
    return hdsl.fit("y ~ x\nfamily: cumulative", data, chains=2, warmup=300, draws=300, progress=False), data


def test_cumulative_recovers_thresholds_and_slope(ordinal_fit):
    fit, _ = ordinal_fit
    s = fit.summary()
    assert fit.model.design.categories == ("1", "2", "3", "4")
    for name, truth in {"b_x": B_X, "b_Intercept[1]": THRESHOLDS[0], "b_Intercept[2]": THRESHOLDS[1],
                        "b_Intercept[3]": THRESHOLDS[2]}.items():
        assert s.loc[name, "2.5%"] < truth < s.loc[name, "97.5%"], (name, s.loc[name])


def test_cumulative_predictions(ordinal_fit):
    ordinal_fit, ordinal_data = ordinal_fit
    resp = ordinal_fit.predict(kind="response", draws=50).predictions["y"].values
    assert set(np.unique(resp)) <= {1.0, 2.0, 3.0, 4.0}
    mean = ordinal_fit.predict(kind="mean", draws=50).predictions["y"].values
    assert np.all((mean >= 1) & (mean <= 4))
    assert abs(mean.mean() - ordinal_data["y"].mean()) < 0.1
    ll = ordinal_fit.log_likelihood(ordinal_data.head(20))
    stored = ordinal_fit.idata["log_likelihood"]["y"].transpose("chain", "draw", ...).values[..., :20]
    np.testing.assert_allclose(ll.values, stored, rtol=1e-8)


def test_categorical_fit_and_probabilities(nominal_data):
    fit = hdsl.fit("y ~ x\nfamily: categorical", nominal_data, chains=2, warmup=300, draws=300, progress=False)
    s = fit.summary()
    for name, truth in {"b_mu2_Intercept": 0.5, "b_mu2_x": 1.0, "b_mu3_Intercept": -0.5, "b_mu3_x": -1.0}.items():
        assert s.loc[name, "2.5%"] < truth < s.loc[name, "97.5%"], name
    probs = fit.predict(pd.DataFrame({"x": [-2.0, 0.0, 2.0]}), kind="mean").predictions["y"]
    assert probs.dims[-1] == "category" and list(probs["category"].values) == ["a", "b", "c"]
    np.testing.assert_allclose(probs.sum("category").values, 1.0, rtol=1e-12)
    # at x = 2, category b (logit 2.5) dominates; at x = -2, c (logit 1.5)
    mean = probs.mean(("chain", "draw")).values
    assert mean[2].argmax() == 1 and mean[0].argmax() == 2
    assert fit.predict(kind="linpred", draws=10).predictions["y"].sizes["category"] == 2


def test_bad_categorical_responses(nominal_data):
    with pytest.raises(hdsl.DataError, match="one category"):
        hdsl.Model("y ~ x\nfamily: categorical", nominal_data.assign(y="a"))
    with pytest.raises(hdsl.FormulaError, match="thresholds in place of the intercept"):
        hdsl.Model("y ~ 0 + x\nfamily: cumulative", nominal_data)
    with pytest.raises(hdsl.FormulaError, match="must be a column"):
        hdsl.Model("log(y) ~ x\nfamily: cumulative", nominal_data)
    model = hdsl.Model("y ~ x\nfamily: categorical", nominal_data)
    from hdsl.model.bind import response_values

    with pytest.raises(hdsl.DataError, match="'d' at row 1, which is not one of its categories"):
        response_values(model.spec, pd.DataFrame({"y": ["a", "d"]}), model.design.categories)


def test_cross_validation_refuses_categorical(nominal_data):
    with pytest.raises(hdsl.HdslError, match="predicts probabilities"):
        hdsl.cross_validate("y ~ x + (1 | g)\nfamily: categorical", nominal_data, folds=2, progress=False)


def test_a_category_can_have_its_own_formula(nominal_data):
    """brms's bf(y ~ x, mu3 ~ 1): category c's linear predictor has no slope, b's keeps the first formula."""
    model = hdsl.Model("y ~ x + (1 | g)\nmu3 ~ 1\nfamily: categorical", nominal_data)
    assert model.parameter_names == ["b_mu2_Intercept", "b_mu2_x", "b_mu3_Intercept", "sd_g__mu2_Intercept"]
    assert "b_mu3[x]" not in model.priors.to_frame().index
    with pytest.raises(hdsl.FormulaError, match="'mu4' names category 4, but the response 'y' has 3") as err:
        hdsl.Model("y ~ x\nmu4 ~ 1\nfamily: categorical", nominal_data)
    assert "line 2, column 1" in str(err.value) and "\n    ^^^\n" in str(err.value)  # a caret under mu4
    with pytest.raises(hdsl.FormulaError, match="named mu2, mu3"):
        hdsl.Model("y ~ x\nmu1 ~ 1\nfamily: categorical", nominal_data)


def test_regression_line_figures_refuse_category_families(ordinal_fit):
    pytest.importorskip("matplotlib")
    from hdsl import plots

    fit, _ = ordinal_fit
    with pytest.raises(hdsl.HdslError, match="cumulative family does not have"):
        plots.conditional_effects(fit, "x")
    fig = plots.ppc_plot(fit, n_draws=5)  # bars over the categories 1..4
    assert len(fig.axes[0].patches) >= 4
