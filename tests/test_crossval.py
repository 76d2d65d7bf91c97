"""Cross-validation: fold construction, one batched program for all folds, the scores, the baselines."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import hdsl
from hdsl.inference.options import SamplerOptions
from hdsl.workflow.cli import main
from hdsl.workflow.crossval import MODELS, CVResult, group_folds, sample_folds, stratified_folds

SPEC = """
y ~ x + (1 | g)
prior: Intercept ~ normal(0, 5)
prior: b[x] ~ normal(0, 2)
prior: sd ~ half_normal(2)
prior: sigma ~ exponential(1)
"""
SMALL = {"chains": 2, "warmup": 150, "draws": 150, "progress": False}


@pytest.fixture(scope="module")
def small_data() -> pd.DataFrame:
    """Three groups of 9 rows, different intercepts, a common slope."""
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(3), 9)
    x = rng.normal(size=g.size)
    y = np.array([-1.5, 0.0, 1.5])[g] + 0.8 * x + rng.normal(scale=0.5, size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"s{i}" for i in g]}, index=100 + np.arange(g.size))


@pytest.fixture(scope="module")
def cv_within(small_data) -> CVResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hdsl.cross_validate(SPEC, small_data, folds=3, seed=1, **SMALL)


@pytest.fixture(scope="module")
def cv_groups(small_data) -> CVResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hdsl.cross_validate(SPEC, small_data, by="g", seed=2, **SMALL)


# ---- folds ---------------------------------------------------------------------------------------


def test_stratified_folds_spread_each_group():
    groups = np.repeat(np.arange(5), [10, 7, 4, 3, 1])
    k = 4
    folds = stratified_folds(groups, k, seed=3)
    assert folds.shape == groups.shape and set(folds) == set(range(k))
    sizes = np.bincount(folds, minlength=k)
    assert sizes.max() - sizes.min() <= 1
    for g in np.unique(groups):
        counts = np.bincount(folds[groups == g], minlength=k)
        assert counts.max() - counts.min() <= 1  # as even as the group's size allows
        if (groups == g).sum() >= k:
            assert (counts > 0).all(), f"group {g} is missing from a fold"
    assert np.array_equal(folds, stratified_folds(groups, k, seed=3))
    with pytest.raises(hdsl.HdslError):
        stratified_folds(groups, 1)


def test_group_folds_hold_out_each_level_once():
    groups = np.repeat(np.array(["a", "b", "c", "d", "e", "f", "g"]), 3)
    loo = group_folds(groups)
    assert loo.max() + 1 == 7
    k3 = group_folds(groups, 3, seed=1)
    for folds, k in ((loo, 7), (k3, 3)):
        assert set(folds) == set(range(k))
        for level in np.unique(groups):
            assert len(set(folds[groups == level])) == 1  # a level lies in exactly one fold, whole
    sizes = np.bincount(np.array([k3[groups == lv][0] for lv in np.unique(groups)]))
    assert sorted(sizes) == [2, 2, 3]
    with pytest.raises(hdsl.HdslError):
        group_folds(groups, 8)


# ---- scores on a hand-checkable case -------------------------------------------------------------


def test_scores_hand_checkable():
    """y ~ 1, three posterior draws set by hand: a row's cross-validation prediction is the mean over draws of
    the predictive kernel's mean (the intercept), and its lpd log(mean_s p(y | θ_s)), the normal density; a
    held-out row (weight 0 while fitting its fold) is scored all the same."""
    import jax.numpy as jnp
    from scipy.special import logsumexp

    from hdsl.model.predictive import Kind, predictive

    y = np.array([0.0, 1.0, 3.0, -1.0])
    model = hdsl.Model("y ~ 1", pd.DataFrame({"y": y}), dtype="float64")
    mu, sigma = np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 0.5])
    params = [model.constrain(flat) for flat in np.stack([mu, np.log(sigma)], axis=1)]  # sigma on the log scale
    np.testing.assert_allclose([float(p.predictors[0].intercept) for p in params], mu)
    np.testing.assert_allclose([float(p.aux["sigma"]) for p in params], sigma)
    expected = np.log(np.mean(norm.pdf(y[None, :], mu[:, None], sigma[:, None]), axis=0))
    data = model.lowered.data
    for fold_data in (data, data.with_weights(jnp.asarray([0.0, 1, 1, 1]))):
        mean = np.stack([np.asarray(predictive(model.lowered, Kind.MEAN, p, fold_data)) for p in params])
        log_lik = np.stack([np.asarray(predictive(model.lowered, Kind.LOG_LIK, p, fold_data)) for p in params])
        assert mean.shape == log_lik.shape == (3, 4)
        np.testing.assert_allclose(mean.mean(axis=0), 1.0)
        np.testing.assert_allclose(logsumexp(log_lik, axis=0) - np.log(3), expected, rtol=1e-12)


def test_summary_hand_computed():
    pw = pd.DataFrame({
        "fold": [0, 0, 1, 1], "group": ["a", "a", "b", "b"], "y": [1.0, 2.0, 3.0, 4.0],
        "pred_partial_pooling": [1.0, 2.0, 3.0, 6.0], "lpd_partial_pooling": [-1.0, -2.0, -1.0, -4.0],
        "pred_complete_pooling": [2.0, 3.0, 4.0, 5.0], "lpd_complete_pooling": [-2.0, -2.0, -2.0, -2.0],
        "pred_no_pooling": [1.0, np.nan, 3.0, 4.0], "lpd_no_pooling": [-1.0, np.nan, -1.0, -1.0],
    })
    folds = pd.DataFrame([{"model": m, "fold": f, "divergences": 0} for m in MODELS for f in (0, 1)])
    r = CVResult(pw, folds.set_index(["model", "fold"]), {}, {}, None, 2, "g")
    s = r.summary()
    assert list(s.index) == list(MODELS)
    assert s.loc["partial_pooling", "rmsd"] == pytest.approx(1.0)  # sqrt((0 + 0 + 0 + 4) / 4)
    assert s.loc["complete_pooling", "rmsd"] == pytest.approx(1.0)
    assert s.loc["partial_pooling", "elpd"] == pytest.approx(-8.0)
    assert s.loc["partial_pooling", "elpd_se"] == pytest.approx(np.sqrt(4 * np.var([-1.0, -2, -1, -4])))
    assert s.loc["complete_pooling", "elpd_diff"] == pytest.approx(0.0)
    assert s.loc["complete_pooling", "diff_se"] == pytest.approx(np.sqrt(4 * np.var([-1.0, 0, -1, 2])))
    assert np.isnan(s.loc["no_pooling", ["rmsd", "elpd", "elpd_se"]]).all()
    assert s.loc["no_pooling", "n_undefined"] == 1


# ---- the batched program ---------------------------------------------------------------------------


def test_folds_run_as_one_program(small_data):
    model = hdsl.Model("y ~ 1 + (1 | g)", small_data)
    config = SamplerOptions(chains=2, warmup=40, draws=30, seed=0)
    weights = (stratified_folds(model.design.main.groups[0].codes, 2)[None, :] != np.arange(2)[:, None])
    positions, stats, timings = sample_folds(model.lowered, weights.astype(float), config)
    assert positions.shape == (2, 2, 30, model.dim)  # (folds, chains, draws, dim)
    assert {"lp", "diverging", "n_steps", "tree_depth", "acceptance_rate", "energy", "step_size"} <= stats.keys()
    for k in stats:
        assert stats[k].shape == (2, 2, 30)
    assert np.isfinite(positions).all() and not np.allclose(positions[0], positions[1])  # the folds differ
    assert {"compile_s", "sample_s"} <= timings.keys()


# ---- end to end ------------------------------------------------------------------------------------


def test_within_group_cv(cv_within, small_data):
    s = cv_within.summary()
    assert list(s.index) == list(MODELS)
    assert {"rmsd", "elpd", "elpd_se"} <= set(s.columns)
    assert np.isfinite(s[["rmsd", "elpd", "elpd_se"]].to_numpy()).all()
    assert (s["n"] == len(small_data)).all()
    pw = cv_within.pointwise
    assert list(pw.index) == list(small_data.index)  # the user's row labels
    for g in pw["group"].unique():
        assert set(pw.loc[pw["group"] == g, "fold"]) == {0, 1, 2}
    rmsd = np.sqrt(np.mean((pw["y"] - pw["pred_partial_pooling"]) ** 2))
    assert s.loc["partial_pooling", "rmsd"] == pytest.approx(rmsd)
    assert s.loc["partial_pooling", "elpd"] == pytest.approx(cv_within.folds.loc["partial_pooling", "elpd"].sum())
    assert cv_within.folds.shape[0] == 3 * 3
    # the baselines are real hdsl models, with the user's priors where their targets exist
    assert cv_within.specs["complete_pooling"].startswith("y ~ x\n")
    assert "prior: b[x] ~ normal(0, 2)" in cv_within.specs["complete_pooling"]
    assert "sd" not in cv_within.specs["complete_pooling"]
    assert cv_within.specs["no_pooling"].startswith("y ~ 0 + factor(g) + factor(g):x")
    assert "prior: b[gs0] ~ normal(0, 5)" in cv_within.specs["no_pooling"]
    for m in MODELS:
        assert cv_within.timings[m]["compile_s"] > 0 and cv_within.timings[m]["sample_s"] > 0


def test_leave_group_out(cv_groups):
    s = cv_groups.summary()
    assert list(s.index) == list(MODELS)
    assert cv_groups.k == 3
    assert np.isfinite(s.loc[["partial_pooling", "complete_pooling"], ["rmsd", "elpd", "elpd_se"]]).all().all()
    assert s.loc["no_pooling", ["rmsd", "elpd", "elpd_se"]].isna().all()
    assert s.loc["no_pooling", "n_undefined"] == s.loc["no_pooling", "n"]
    f = cv_groups.folds.loc["partial_pooling"]
    assert sorted(f["held_out_levels"]) == ["s0", "s1", "s2"]
    assert cv_groups.folds.loc["no_pooling", "rmsd"].isna().all()
    pw = cv_groups.pointwise
    assert (pw.groupby("group")["fold"].nunique() == 1).all()


def test_cv_errors(small_data):
    with pytest.raises(hdsl.HdslError, match="group term"):
        hdsl.cross_validate("y ~ x", small_data, **SMALL)
    with pytest.raises(hdsl.DataError, match="nope"):
        hdsl.cross_validate(SPEC, small_data, by="nope", **SMALL)


def test_cli_cv_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cv", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--folds", "--by", "--json"):
        assert flag in out
