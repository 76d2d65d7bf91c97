"""Pathfinder starting points and ChEES adaptation (``init="pathfinder"``, ``adaptation="chees"``).

Posterior recovery runs on a hand-written normal target with known mean and scales (cheap to compile),
then once through the whole API on the seed model against the reference fit.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from arviz_stats import ess
from conftest import SEED_SPEC

from hdsl.errors import SamplingError
from hdsl.inference.init import PathfinderPath, choose_starts, pathfinder_one
from hdsl.inference.options import SamplerOptions
from hdsl.inference.sample import sample_nuts

jax.config.update("jax_enable_x64", True)

MEAN = np.array([3.0, -2.0, 10.0, 0.5])
SD = np.array([0.5, 2.0, 0.1, 5.0])


def normal_log_density(x, d):
    return -0.5 * jnp.sum(((x - d["mean"]) / d["sd"]) ** 2)


DATA = {"mean": jnp.asarray(MEAN), "sd": jnp.asarray(SD)}


def _check_recovery(positions: np.ndarray) -> None:
    """Means within 5 Monte-Carlo standard errors, sds within 15%."""
    for j in range(positions.shape[-1]):
        x = positions[..., j]
        mcse = SD[j] / np.sqrt(float(ess(x, method="mean")))
        assert abs(x.mean() - MEAN[j]) < 5 * mcse, (j, x.mean(), mcse)
        assert abs(x.std() / SD[j] - 1) < 0.15, (j, x.std())


def test_pathfinder_window_recovers_a_normal():
    cfg = SamplerOptions(chains=4, warmup=200, draws=400, seed=2, init="pathfinder")
    d = sample_nuts(normal_log_density, 4, cfg, DATA)
    assert d.timings["pathfinder_failed"] == 0
    _check_recovery(d.positions)


def test_chees_recovers_a_normal_and_is_reproducible():
    cfg = SamplerOptions(chains=16, warmup=200, draws=300, seed=3, adaptation="chees")
    d = sample_nuts(normal_log_density, 4, cfg, DATA, blocks=2)
    assert cfg.effective_init == "pathfinder"
    _check_recovery(d.positions)
    # one shared step size and mass matrix, adapted to the scales
    assert np.all(d.step_size == d.step_size[0])
    assert np.allclose(np.sqrt(d.inverse_mass_matrix[0]), SD, rtol=0.3)
    assert set(d.stats) >= {"lp", "diverging", "n_steps", "tree_depth", "acceptance_rate", "energy", "step_size"}
    assert np.all(d.stats["tree_depth"] == 0) and np.all(d.stats["n_steps"] >= 1)
    again = sample_nuts(normal_log_density, 4, cfg, DATA, blocks=2)
    np.testing.assert_array_equal(d.positions, again.positions)


def test_chees_with_a_batch_axis():
    data = {"mean": jnp.stack([DATA["mean"], DATA["mean"] + 1.0]), "sd": jnp.stack([DATA["sd"]] * 2)}
    cfg = SamplerOptions(chains=8, warmup=100, draws=50, seed=0, adaptation="chees")
    d = sample_nuts(normal_log_density, 4, cfg, data, batch=2, blocks=1)
    assert d.positions.shape == (2, 8, 50, 4)
    assert d.step_size.shape == (2, 8) and d.inverse_mass_matrix.shape == (2, 8, 4)
    assert np.all(np.isfinite(d.positions))


def test_pathfinder_finds_the_normal():
    starts = jax.random.uniform(jax.random.key(1), (8, 4), minval=-2, maxval=2, dtype=jnp.float64)
    keys = jax.random.split(jax.random.key(0), 8)
    paths = jax.vmap(lambda k, x: pathfinder_one(k, x, lambda v: normal_log_density(v, DATA)))(keys, starts)
    assert bool(paths.ok.all())
    np.testing.assert_allclose(np.median(paths.inverse_mass_matrix, axis=0), SD**2, rtol=0.05)
    picked = choose_starts(jax.random.key(2), paths, starts)
    assert bool(picked.ok.all())
    assert np.all(np.abs(np.asarray(picked.position) - MEAN) < 5 * SD)


def test_failed_paths_fall_back_to_the_random_starts():
    starts = jnp.arange(12.0).reshape(3, 4)
    nan_density = lambda v: jnp.nan * jnp.sum(v)  # noqa: E731
    paths = jax.vmap(lambda k, x: pathfinder_one(k, x, nan_density))(jax.random.split(jax.random.key(0), 3), starts)
    assert not bool(paths.ok.any())
    picked = choose_starts(jax.random.key(1), paths, starts)
    np.testing.assert_array_equal(picked.position, starts)
    np.testing.assert_array_equal(picked.inverse_mass_matrix, np.ones((3, 4)))
    # some usable draws: the chains that get none keep their starts
    draws = jnp.full((3, 2, 4), 7.0)
    partial = PathfinderPath(draws, jnp.array([[0.0, jnp.nan], [0.0, 0.0], [0.0, 0.0]]), jnp.zeros((3, 2)),
                             jnp.full((3, 4), 2.0), jnp.array([True, False, False]))
    picked = choose_starts(jax.random.key(1), partial, starts)
    assert picked.ok.tolist() == [True, False, False]
    np.testing.assert_array_equal(picked.position[0], np.full(4, 7.0))
    np.testing.assert_array_equal(picked.position[1:], starts[1:])
    np.testing.assert_array_equal(picked.inverse_mass_matrix[1:], np.ones((2, 4)))


def test_bad_options_are_refused():
    with pytest.raises(SamplingError, match="adaptation must be"):
        SamplerOptions(adaptation="meads")
    with pytest.raises(SamplingError, match="init must be"):
        SamplerOptions(init="zero")
    with pytest.raises(SamplingError, match="at least 4"):
        SamplerOptions(chains=2, adaptation="chees")
    with pytest.raises(SamplingError, match="pool_adaptation must be True or False, got 'no'"):
        SamplerOptions(pool_adaptation="no")


def test_pathfinder_starts_on_the_seed_model(imm10):
    """Finite, and far better than the random starts they come from. Not 'near the mode': measured, the
    L-BFGS paths end in the funnel's neck of this model (residual sd ≈ 37 against 6.6 in the posterior,
    log-density ≈ -1400 against ≈ -935 in the typical set) — see hdsl/init.py's known limit."""
    import hdsl

    model = hdsl.Model(SEED_SPEC, imm10)
    ld = model.log_density
    starts = jax.random.uniform(jax.random.key(0), (4, model.dim), minval=-2, maxval=2, dtype=jnp.float64)
    paths = jax.jit(jax.vmap(lambda k, x: pathfinder_one(k, x, ld)))(jax.random.split(jax.random.key(1), 4), starts)
    picked = choose_starts(jax.random.key(2), paths, starts)
    assert bool(picked.ok.all()) and np.all(np.isfinite(picked.position))
    lp_start = np.asarray(jax.vmap(ld)(starts))
    lp_picked = np.asarray(jax.vmap(ld)(picked.position))
    assert lp_picked.min() > np.nanmax(np.where(np.isfinite(lp_start), lp_start, -np.inf)) + 1000


def test_chees_fit_of_the_seed_model_matches_the_reference_or_says_it_failed(seed_fit, imm10):
    """ChEES is not robust on the seed model (centered, a funnel): measured at 16 chains, 300 + 250 steps,
    seeds 1-10, three runs (6, 7, 10) left a chain in the funnel's neck (~250 divergences, r_hat 1.16) and
    seven were healthy (r_hat <= 1.014, no divergence); which seeds fail moves with the last digits of the
    log-density. So: the means match the reference within Monte-Carlo error either way, and a run is either
    healthy or the fit's own warnings say it is not."""
    import hdsl

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = hdsl.fit(SEED_SPEC, imm10, chains=16, warmup=300, draws=250, seed=7, progress=False,
                       adaptation="chees")
    assert fit.idata.attrs["hdsl_adaptation"] == "chees" and fit.idata.attrs["hdsl_init"] == "pathfinder"
    ref = seed_fit.summary()
    got = fit.summary()
    for name in seed_fit.parameter_names:
        se = np.hypot(ref.loc[name, "mcse_mean"], got.loc[name, "mcse_mean"])
        assert abs(got.loc[name, "mean"] - ref.loc[name, "mean"]) < 5 * se, name
    d = fit.diagnostics()
    assert d["max_tree_depth_hits"] == 0
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, hdsl.SamplingWarning))
    if d["max_r_hat"] >= 1.05 or d["divergences"]:
        assert "r_hat up to" in said and "diverged" in said, said
    else:
        assert "diverged" not in said


def test_chees_trajectory_floor_serves_a_slow_direction():
    """30 dims, ten of them correlated 0.9: the diagonal metric cannot whiten their sum (λ_max = 9.1),
    and ChEES's criterion, dominated by the other directions, settles near 2–3 leapfrog steps (measured
    without the floor: bulk ESS of the sum 49 and 56 of 3,200 draws at seeds 0 and 1). The floor
    (π/2)·sqrt(λ_max) lengthens the trajectory (8–9 steps; ESS 958 and 776)."""
    dim = 30
    cov = np.eye(dim)
    cov[:10, :10] = 0.9
    np.fill_diagonal(cov, 1.0)
    data = {"prec": jnp.asarray(np.linalg.inv(cov))}
    d = sample_nuts(lambda x, dd: -0.5 * x @ dd["prec"] @ x, dim,
                    SamplerOptions(chains=32, warmup=150, draws=100, seed=0, adaptation="chees", init="random"), data)
    block_sum = d.positions[..., :10].sum(-1)
    assert d.stats["n_steps"].mean() > 5
    assert float(ess(block_sum, method="bulk")) > 400
    assert abs(block_sum.var() / cov[:10, :10].sum() - 1) < 0.15
