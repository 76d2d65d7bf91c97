"""brms addition terms on the response: trials, cbind, weights."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import hdsl


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(11)
    n = rng.integers(5, 30, size=60)
    g = np.repeat(np.arange(6), 10)
    x = rng.normal(size=60)
    p = 1 / (1 + np.exp(-(0.3 + 0.8 * x + rng.normal(0, 0.5, 6)[g])))
    y = rng.binomial(n, p)
    return pd.DataFrame({"y": y, "fail": n - y, "n": n, "x": x, "g": g.astype(str), "w": rng.integers(0, 3, 60)})


def _points(model, k=5, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.uniform(-2, 2, model.dim)) for _ in range(k)]


def test_cbind_is_trials(counts):
    a = hdsl.Model("cbind(y, fail) ~ x + (1 | g)\nfamily: binomial", counts)
    b = hdsl.Model("y | trials(n) ~ x + (1 | g)\nfamily: binomial", counts)
    assert a.parameter_names == b.parameter_names
    for x in _points(a):
        assert float(a.log_density(x)) == pytest.approx(float(b.log_density(x)), rel=1e-12)


def test_integer_weights_equal_repeated_rows(counts):
    """weights(w) multiplies each row's log-likelihood: w = 2 is the row twice, w = 0 drops it."""
    spec = ("y ~ x + (1 | g)\nprior: Intercept ~ normal(0, 5)\nprior: b ~ normal(0, 1)\nprior: sd ~ half_normal(1)\n"
            "prior: sigma ~ half_normal(2)")
    weighted = hdsl.Model(spec.replace("y ~", "y | weights(w) ~", 1), counts, parameterization="noncentered")
    repeated = counts.loc[counts.index.repeat(counts["w"])]
    plain = hdsl.Model(spec, repeated, parameterization="noncentered")
    for x in _points(weighted):
        # same parameter values (the internal centering differs with the rows, so map through them)
        params = weighted.constrain(x)
        x_plain = jnp.asarray(plain.unconstrain(params))
        assert float(weighted.log_density(x)) == pytest.approx(float(plain.log_density(x_plain)), rel=1e-10)


@pytest.mark.parametrize("spec, match", [
    ("cbind(y, fail) ~ x", "binomial response"),
    ("y | trials(n) ~ x", "applies to the binomial family"),
    ("y | wieghts(w) ~ x", "did you mean 'weights'"),
    ("cbind(y) ~ x\nfamily: binomial", "two columns"),
])
def test_bad_addition_terms(counts, spec, match):
    with pytest.raises(hdsl.FormulaError, match=match):
        hdsl.Model(spec, counts)


def test_negative_weights_are_refused(counts):
    bad = counts.assign(w=counts["w"] - 5)
    with pytest.raises(hdsl.DataError, match="weights must be finite and non-negative"):
        hdsl.Model("y | weights(w) ~ x", bad)
