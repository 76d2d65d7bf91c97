"""Posteriors against known answers, within Monte-Carlo error."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CORR_TRUTH

# brms 2.18 / Stan, 4 × 1000 draws, on imm10 (mean, sd)
BRMS_SEED = {
    "b_Intercept": (44.8, 3.2),
    "b_homework": (1.98, 1.62),
    "sd_schid__Intercept": (9.30, 2.79),
    "sd_schid__homework": (4.79, 1.27),
    "sigma": (6.60, 0.30),
}


def test_seed_model_agrees_with_brms(seed_fit):
    s = seed_fit.summary()
    for name, (mean, sd) in BRMS_SEED.items():
        row = s.loc[name]
        # Monte-Carlo error of both runs (the reference's ESS taken as ~1000 draws),
        # plus the rounding of the published reference
        mc = np.hypot(row["mcse_mean"], sd / np.sqrt(1000))
        rounding = 0.05 if mean > 10 else 0.005
        assert abs(row["mean"] - mean) < 4 * mc + rounding, (name, row["mean"], mean, mc)
        assert row["sd"] == pytest.approx(sd, rel=0.12), (name, row["sd"], sd)
        assert row["r_hat"] < 1.01, (name, row["r_hat"])
        assert row["ess_bulk"] > 400, (name, row["ess_bulk"])
    d = seed_fit.diagnostics()
    assert d["divergences"] <= 4  # of 4000: below any warning threshold worth acting on
    assert d["max_tree_depth_hits"] == 0


def test_correlated_model_recovers_truth(corr_fit):
    s = corr_fit.summary()
    for name, truth in CORR_TRUTH.items():
        row = s.loc[name]
        assert abs(row["mean"] - truth) < 3.5 * row["sd"], (name, row["mean"], row["sd"], truth)
        assert row["r_hat"] < 1.01, (name, row["r_hat"])


def test_group_effects_recover_simulated_levels(corr_fit, corr_data):
    """Per-group intercepts correlate strongly with each group's mean residual."""
    r = corr_fit.idata["posterior"]["r_g"].mean(("chain", "draw"))
    resid = corr_data["y"] - (CORR_TRUTH["b_Intercept"] + CORR_TRUTH["b_x"] * corr_data["x"])
    group_means = resid.groupby(corr_data["g"]).mean()
    est = r.sel(g__coef="Intercept").to_series().loc[group_means.index]
    assert np.corrcoef(est, group_means)[0, 1] > 0.8


def test_diagnostics_match_the_summary_even_when_sliced(corr_fit):
    """``diagnostics`` takes the worst r_hat and ESS a slice of each variable at a time (to bound memory
    with thousands of group effects); the values are the summary table's, whatever the slice size."""
    from hdsl.workflow.results import worst_diagnostics

    s = corr_fit.summary()
    expected = {"max_r_hat": s["r_hat"].max(), "min_ess_bulk": s["ess_bulk"].min(),
                "min_ess_tail": s["ess_tail"].min()}
    posterior = corr_fit.idata["posterior"]
    one_level = posterior["r_g"].nbytes // posterior.sizes["g"]
    for chunk in (one_level, 3 * one_level, 10**12):
        worst = worst_diagnostics(posterior, chunk_bytes=chunk)
        for k, v in expected.items():
            assert worst[k] == pytest.approx(v, rel=1e-12), (chunk, k)
    d = corr_fit.diagnostics()
    assert {k: d[k] for k in expected} == pytest.approx(expected, rel=1e-12)
