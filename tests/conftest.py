"""Shared fixtures: data sets and fits compiled once per test session (each fit compiles a program)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import numpyro.distributions  # noqa: F401  before arviz: arviz imports numpyro lazily, and numpyro.distributions
import pandas as pd  # imported after that lacks its `distribution` attribute (numpyro.factor then fails)
import pytest

IMM10 = Path(os.environ.get("HDSL_IMM10", Path(__file__).resolve().parents[2] / "shared/data/imm10/imm10.csv"))

# the seed article's model, as a user writes it (also the example for `hdsl fit`)
SEED_SPEC = (Path(__file__).resolve().parents[1] / "examples" / "seed.hdsl").read_text()

CORR_SPEC = """
y ~ x + (1 + x | g)
prior: Intercept ~ normal(0, 5)
prior: b ~ normal(0, 2)
prior: sd ~ student_t(3, 0, 2)
prior: cor ~ lkj(2)
prior: sigma ~ exponential(1)
"""

# the truth behind simulated_corr_data
CORR_TRUTH = {"b_Intercept": 1.0, "b_x": -0.5, "sd_g__Intercept": 1.2, "sd_g__x": 0.6,
              "cor_g__Intercept__x": -0.5, "sigma": 0.8}


@pytest.fixture(scope="session")
def imm10() -> pd.DataFrame:
    if not IMM10.exists():
        pytest.skip(f"imm10 data not found at {IMM10}")
    return pd.read_csv(IMM10)


@pytest.fixture(scope="session")
def corr_data() -> pd.DataFrame:
    """y ~ x + (1 + x | g): 40 groups of 15 rows, correlated intercepts and slopes."""
    rng = np.random.default_rng(20261125)
    t = CORR_TRUTH
    n_groups, per = 40, 15
    sd = np.array([t["sd_g__Intercept"], t["sd_g__x"]])
    corr = np.array([[1.0, t["cor_g__Intercept__x"]], [t["cor_g__Intercept__x"], 1.0]])
    r = rng.multivariate_normal(np.zeros(2), np.outer(sd, sd) * corr, size=n_groups)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    y = t["b_Intercept"] + t["b_x"] * x + r[g, 0] + r[g, 1] * x + rng.normal(scale=t["sigma"], size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"grp{i:02d}" for i in g]})


@pytest.fixture(scope="session")
def seed_fit(imm10):
    """The seed article's model on imm10, 4 × 1000 draws as in the brms reference."""
    import hdsl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hdsl.fit(SEED_SPEC, imm10, chains=4, warmup=1000, draws=1000, seed=1, progress=False)


@pytest.fixture(scope="session")
def corr_fit(corr_data):
    import hdsl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hdsl.fit(CORR_SPEC, corr_data, chains=4, warmup=500, draws=500, seed=3, progress=False)


@pytest.fixture(scope="session")
def corr_fit_no_slope(corr_data):
    """A clearly worse model of corr_data (no x at all), small: for model comparison."""
    import hdsl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hdsl.fit("y ~ 1 + (1 | g)", corr_data, chains=2, warmup=300, draws=300, seed=4, progress=False)


def assert_log_density_matches(model, np_model, np_args: tuple, to_numpyro, n_points: int = 12, seed: int = 0,
                               bound: float = 2.0):
    """hdsl's log-density (Jacobians included) equals ``-potential_energy`` of a hand-written NumPyro model up
    to a constant at random unconstrained points; ``to_numpyro`` maps hdsl's parameter dict to the NumPyro
    sites. The flat point also maps back to itself."""
    from numpyro.infer.util import potential_energy, unconstrain_fn

    rng = np.random.default_rng(seed)
    ours, diffs = [], []
    for _ in range(n_points):
        flat = rng.uniform(-bound, bound, size=model.dim)
        p = model.constrain(flat)
        unc = unconstrain_fn(np_model, np_args, {}, to_numpyro(p))
        ours.append(float(model.log_density(flat)))
        diffs.append(ours[-1] + float(potential_energy(np_model, np_args, {}, unc)))
        np.testing.assert_allclose(model.unconstrain(p), flat, rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(ours)) and np.ptp(ours) > 1.0
    assert np.ptp(diffs) < 1e-8 * np.max(np.abs(ours)), diffs


def family_numerics(name: str):
    """A family's numerics by its name or alias, as a spec's family line resolves it."""
    from hdsl.language.families import family_named
    from hdsl.model.families import numerics_for

    return numerics_for(family_named(name))
