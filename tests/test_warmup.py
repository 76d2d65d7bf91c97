"""The default warmup: a starting metric from the gradient, early Fisher-diagonal windows, then Stan's.

The early windows exist for large data, where coordinates' posterior scales differ by orders of
magnitude and a unit metric makes every step of Stan's initial buffer a full-depth tree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from arviz_stats import ess
from blackjax.adaptation.staged_adaptation import build_schedule

from hdsl.inference.adaptation import (
    EARLY,
    EARLY_WINDOW_ENDS,
    FAST,
    FROZEN,
    SLOW,
    SLOW_BATCH,
    fisher_metric,
    gradient_metric,
    make_schedule,
    regularized_variance,
    slow_direction_init,
    slow_direction_update,
)
from hdsl.inference.options import SamplerOptions
from hdsl.inference.sample import sample_nuts

jax.config.update("jax_enable_x64", True)


def _m2s(xs: np.ndarray, gs: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """Sums of squared deviations of the positions and the gradients, as the early window keeps them."""
    return jnp.asarray(((xs - xs.mean(0)) ** 2).sum(0)), jnp.asarray(((gs - gs.mean(0)) ** 2).sum(0))


def test_fisher_metric_is_the_variance_of_a_diagonal_gaussian():
    """For log p = −½ Σ x²/s², ∇log p = −x/s², so sqrt(Var x / Var ∇) = s² exactly, from any draws."""
    rng = np.random.default_rng(0)
    s = np.array([1e-3, 0.1, 1.0, 30.0])
    xs = rng.normal(size=(7, 4)) * s + 5.0  # few draws, off-centre: the identity does not need many
    gs = -(xs - 5.0) / s**2
    np.testing.assert_allclose(np.asarray(fisher_metric(*_m2s(xs, gs), jnp.ones(4))), s**2, rtol=1e-10)


def test_fisher_metric_keeps_the_current_entry_where_the_chain_did_not_move():
    xs = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 2.5]])  # coordinate 0 never moved (rejected steps)
    gs = np.array([[0.5, -1.0], [0.5, -2.0], [0.5, -1.5]])
    out = np.asarray(fisher_metric(*_m2s(xs, gs), jnp.array([7.0, 7.0])))
    assert out[0] == 7.0
    np.testing.assert_allclose(out[1], np.sqrt(np.var(xs[:, 1]) / np.var(gs[:, 1])))


def test_gradient_metric_is_inverse_steepness_clipped_and_finite():
    out = np.asarray(gradient_metric(jnp.array([-4.0, 0.25, 0.0, 1e20, jnp.nan])))
    np.testing.assert_allclose(out[:2], [0.25, 4.0])
    assert out[2] == 1e6 and out[3] == 1e-12 and out[4] == 1.0


def test_schedule_splits_only_the_initial_buffer():
    for warmup in (1000, 150, 100):
        sch = make_schedule(warmup, 20)
        stan = np.array([s for s, _ in build_schedule(warmup)])
        buffer = int(np.flatnonzero(stan == SLOW)[0])
        assert (sch.stage[:buffer] == EARLY).all()
        assert (sch.stage[buffer:warmup] == stan[buffer:]).all()  # Stan's slow windows and final buffer
        assert (sch.stage[warmup:] == FROZEN).all()
        early_ends = np.flatnonzero(sch.window_end[:buffer]) + 1
        assert early_ends.tolist() == [e for e in EARLY_WINDOW_ENDS if e < buffer]
    short = make_schedule(15, 5)  # too short for slow windows: no early windows either
    assert (short.stage[:15] == FAST).all() and not short.window_end.any()


SCALES = np.array([1e-3, 3e-3, 0.03, 0.3, 1.0, 10.0, 100.0, 0.01])


def badly_scaled(x, d):
    """A normal whose coordinates' scales span five orders of magnitude, with two correlated."""
    z = (x - d["mean"]) / d["sd"]
    return -0.5 * jnp.sum(z**2) - 0.5 * (z[0] - 0.8 * z[1]) ** 2 / 0.36 + 0.5 * z[0] ** 2


def test_badly_scaled_target_adapts_in_a_short_warmup_and_is_recovered():
    """150 warmup steps: the early windows find the scales (a unit metric would need ~10⁵ steps per
    trajectory here), sampling uses short trees, and the draws have the target's means and scales."""
    mean = np.linspace(-3.0, 3.0, SCALES.size)
    data = {"mean": jnp.asarray(mean), "sd": jnp.asarray(SCALES)}
    d = sample_nuts(badly_scaled, SCALES.size, SamplerOptions(chains=4, warmup=150, draws=500, seed=4), data)
    assert d.stats["tree_depth"].mean() < 5
    pos = d.positions
    for j, s in enumerate(SCALES):
        x = pos[..., j]
        mcse = s / np.sqrt(float(ess(x, method="mean")))
        assert abs(x.mean() - mean[j]) < 5 * mcse, (j, x.mean(), mcse)
        assert abs(x.std() / s - 1) < 0.15, (j, x.std() / s)
    z = (pos[..., :2] - mean[:2]) / SCALES[:2]
    assert abs(np.corrcoef(z[..., 0].ravel(), z[..., 1].ravel())[0, 1] - 0.8) < 0.05


def test_slow_window_shrinks_toward_the_metric_in_force_not_an_absolute_scale():
    """A window of 88 draws of a coordinate with variance 1e-6: Stan's shrinkage toward 1e-3 makes it
    ~50× too large; toward 1e-3 × the metric in force (≈ the variance) the target adds < 1% to the
    variance's own weight n/(n + 5)."""
    rng = np.random.default_rng(1)
    x = rng.normal(scale=1e-3, size=88)
    n, m2 = jnp.asarray(88.0), jnp.asarray([((x - x.mean()) ** 2).sum()])
    var = x.var(ddof=1) * 88 / 93
    ours = float(regularized_variance(n, m2, jnp.asarray([1e-6]))[0])
    stan = float(regularized_variance(n, m2, jnp.ones(1))[0])
    assert abs(ours / var - 1) < 0.01
    assert stan / var > 30


def test_stan_adaptation_is_stans_schedule_and_recovers_the_target():
    """``adaptation="stan"``: no early windows; same posterior (it only needs more leapfrog steps)."""
    sch = make_schedule(1000, 10, early=False)
    stan = np.array([s for s, _ in build_schedule(1000)])
    assert (sch.stage[:1000] == stan).all() and sch.window_end[:1000].sum() == sum(e for _, e in build_schedule(1000))
    mean = np.linspace(-3.0, 3.0, SCALES.size)
    data = {"mean": jnp.asarray(mean), "sd": jnp.asarray(SCALES)}
    d = sample_nuts(badly_scaled, SCALES.size,
                    SamplerOptions(chains=4, warmup=300, draws=300, seed=5, adaptation="stan"), data)
    for j, s in enumerate(SCALES):
        x = d.positions[..., j]
        mcse = s / np.sqrt(float(ess(x, method="mean")))
        assert abs(x.mean() - mean[j]) < 5 * mcse, (j, x.mean(), mcse)


def test_streaming_power_iteration_finds_the_slow_direction_without_a_dim_by_dim_matrix():
    """50 dims whitened, one pair correlated 0.9: λ_max = 1.9 along (e0 + e1)/√2. 64 chains per step,
    ten batches of steps (each step a fresh draw here)."""
    rng = np.random.default_rng(2)
    dim, k = 50, 64
    cov = np.eye(dim)
    cov[0, 1] = cov[1, 0] = 0.9
    chol = np.linalg.cholesky(cov)
    scale = np.geomspace(1e-3, 10, dim)  # on the user's scale; the metric whitens it
    sd = slow_direction_init(dim, jnp.float64)
    for _ in range(10 * SLOW_BATCH):
        x = (rng.normal(size=(k, dim)) @ chol.T) * scale
        sd = slow_direction_update(sd, jnp.asarray(x), jnp.zeros(dim), jnp.asarray(scale**2))
    assert abs(float(sd.eigenvalue) / 1.9 - 1) < 0.1
    target = np.zeros(dim)
    target[:2] = 1 / np.sqrt(2)
    assert abs(float(jnp.dot(sd.direction, target))) > 0.9


def _independent_normal(x, d):
    z = (x - d["mean"]) / d["sd"]
    return -0.5 * jnp.sum(z**2)


def test_pooled_adaptation_gives_every_chain_one_metric_estimated_from_all_chains():
    """60 independent coordinates with scales over four orders of magnitude. Pooled (the default), the four
    chains end warmup with the same inverse mass matrix, and, estimated from four chains' windows, it is
    closer to the true variances than the chains' own estimates are; per chain (and with Stan's warmup) the
    chains' metrics differ. Both recover the target."""
    rng = np.random.default_rng(11)
    sd = np.exp(rng.uniform(np.log(1e-2), np.log(1e2), 60))
    data = {"mean": jnp.asarray(rng.normal(size=60) * sd), "sd": jnp.asarray(sd)}
    fits = {pool: sample_nuts(_independent_normal, 60, SamplerOptions(chains=4, warmup=300, draws=300, seed=2,
                                                                      pool_adaptation=pool), data)
            for pool in (True, False)}
    stan = sample_nuts(_independent_normal, 60, SamplerOptions(chains=4, warmup=300, draws=50, seed=2,
                                                              adaptation="stan"), data)
    pooled, own = fits[True].inverse_mass_matrix, fits[False].inverse_mass_matrix
    assert (pooled == pooled[0]).all()
    assert not (own == own[0]).all() and not (stan.inverse_mass_matrix == stan.inverse_mass_matrix[0]).all()
    rms = {k: float(np.sqrt(np.mean(np.log(v / sd**2) ** 2))) for k, v in (("pooled", pooled), ("own", own))}
    assert rms["pooled"] < 0.8 * rms["own"], rms
    for d in fits.values():
        x = d.positions
        z = (x.mean(axis=(0, 1)) - np.asarray(data["mean"])) / (sd / np.sqrt(x.shape[0] * x.shape[1] / 3))
        assert np.abs(z).max() < 5
        assert np.abs(x.std(axis=(0, 1)) / sd - 1).max() < 0.25


def test_fit_records_whether_the_warmup_was_pooled(corr_fit):
    assert corr_fit.idata.attrs["hdsl_adaptation"] == "window"
    assert corr_fit.idata.attrs["hdsl_pool_adaptation"] == 1
