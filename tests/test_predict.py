"""Predictions, posterior predictive draws, log-likelihood on new data, LOO, WAIC and model comparison."""

from __future__ import annotations

import json
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import hdsl
from hdsl.workflow.api import Fit, Model


def _values(tree) -> np.ndarray:
    ds = tree["predictions"].to_dataset()
    (var,) = ds.data_vars
    return ds[var].values


def _post(fit, name: str) -> np.ndarray:
    return fit.idata["posterior"][name].values


# ------------------------------------------------------------------------------------------------
# a posterior made up by hand (no sampling): checks the encoding of new data quickly


def _fake_fit(spec: str, df: pd.DataFrame, chains: int = 2, draws: int = 50, seed: int = 0) -> Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model(spec, df)
    rng = np.random.default_rng(seed)
    post: dict[str, np.ndarray] = {}
    for name in model.parameter_names:
        if name.startswith("cor_"):
            post[name] = rng.uniform(-0.6, 0.6, (chains, draws))
        elif name.startswith("sd_") or name in ("sigma", "shape", "phi", "nu"):
            post[name] = rng.uniform(0.2, 1.0, (chains, draws))
        else:
            post[name] = rng.normal(0.0, 0.5, (chains, draws))
    dims, coords = {}, {}
    for g in model.design.main.groups:
        post[f"r_{g.name}"] = rng.normal(0.0, 0.5, (chains, draws, g.n_levels, len(g.coef_names)))
        dims[f"r_{g.name}"] = [g.name, f"{g.name}__coef"]
        coords[g.name] = list(g.levels)
        coords[f"{g.name}__coef"] = list(g.coef_names)
    idata = az.from_dict({"posterior": post}, dims=dims, coords=coords)
    idata.attrs["hdsl_spec"] = spec
    return Fit(idata, model=model)


@pytest.fixture(scope="module")
def mixed_df() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 90
    return pd.DataFrame({
        "y": rng.poisson(3.0, n),
        "x": rng.normal(10.0, 3.0, n),
        "f": rng.choice(["lo", "mid", "hi"], n),
        "g": rng.choice([f"s{i}" for i in range(6)], n),
    })


def test_new_data_reuses_training_encoding(mixed_df):
    """A subset of the training rows (one factor level only, a narrow x range) must predict exactly as those
    rows do inside the full data: the levels, scale() and centering come from training, not from newdata."""
    fit = _fake_fit("y ~ scale(x) + f + (1 + x | g)\nfamily: poisson", mixed_df)
    full = _values(fit.predict(kind="linpred"))
    rows = np.flatnonzero((mixed_df["f"] == "mid").to_numpy())[:5]
    sub = mixed_df.iloc[rows].drop(columns="y").reset_index(drop=True)
    np.testing.assert_allclose(_values(fit.predict(sub, kind="linpred")), full[..., rows], rtol=1e-10, atol=1e-12)
    # mean is the inverse link (log link: exp)
    np.testing.assert_allclose(_values(fit.predict(sub, kind="mean")), np.exp(full[..., rows]), rtol=1e-10)
    draws = _values(fit.predict(sub, kind="response", seed=3))
    assert draws.shape == (2, 50, 5) and np.all(draws == np.round(draws)) and np.all(draws >= 0)


def test_re_formula_keeps_listed_coefficients(mixed_df):
    fit = _fake_fit("y ~ x + (1 + x | g)\nfamily: poisson", mixed_df)
    new = mixed_df.iloc[:4].drop(columns="y")
    b0, bx = _post(fit, "b_Intercept"), _post(fit, "b_x")
    r = _post(fit, "r_g")
    codes = [list(fit.idata["posterior"]["g"].values).index(v) for v in new["g"]]
    x = new["x"].to_numpy()
    only_intercepts = _values(fit.predict(new, kind="linpred", re_formula="~ (1 | g)"))
    np.testing.assert_allclose(only_intercepts, b0[..., None] + bx[..., None] * x + r[:, :, codes, 0], rtol=1e-10)
    # the same with no data given: the training rows
    np.testing.assert_allclose(_values(fit.predict(kind="linpred", re_formula="~ (1 | g)"))[..., :4],
                               only_intercepts, rtol=1e-10)
    with pytest.raises(hdsl.HdslError, match="grouping factor 'h'"):
        fit.predict(new, re_formula="~ (1 | h)")
    with pytest.raises(hdsl.HdslError, match="kind must be one of"):
        fit.predict(new, kind="epred")


def test_no_group_column_needed_without_group_terms(mixed_df):
    fit = _fake_fit("y ~ x + (1 | g)\nfamily: poisson", mixed_df)
    new = pd.DataFrame({"x": [9.0, 11.0]})
    out = _values(fit.predict(new, kind="linpred", re_formula="NA"))
    expected = _post(fit, "b_Intercept")[..., None] + _post(fit, "b_x")[..., None] * new["x"].to_numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    with pytest.raises(hdsl.DataError, match="no column 'g'"):
        fit.predict(new)


def test_loaded_without_data_cannot_predict(mixed_df, tmp_path):
    fit = _fake_fit("y ~ x + (1 | g)\nfamily: poisson", mixed_df)
    fit.idata.to_netcdf(tmp_path / "f.nc", engine="h5netcdf")
    with pytest.raises(hdsl.HdslError, match="data=training_df"):
        hdsl.load(tmp_path / "f.nc").predict()


# ------------------------------------------------------------------------------------------------
# the seed fit (imm10, independent intercepts and slopes)


def test_linpred_for_existing_levels_matches_posterior(seed_fit, imm10):
    new = pd.DataFrame({"schid": [7472, 62821, 7472], "homework": [0.0, 2.5, 7.0]})
    pred = seed_fit.predict(new, kind="linpred")
    assert pred["predictions"]["math"].dims == ("chain", "draw", "obs_id")
    out = _values(pred)
    levels = list(seed_fit.idata["posterior"]["schid"].values)
    codes = [levels.index(str(s)) for s in new["schid"]]
    r = _post(seed_fit, "r_schid")
    x = new["homework"].to_numpy()
    expected = (_post(seed_fit, "b_Intercept")[..., None] + _post(seed_fit, "b_homework")[..., None] * x
                + r[:, :, codes, 0] + r[:, :, codes, 1] * x)
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)
    # gaussian, identity link: the mean is the linear predictor
    np.testing.assert_allclose(_values(seed_fit.predict(new, kind="mean")), out, rtol=1e-12)
    # no newdata: the training rows
    train = _values(seed_fit.predict(kind="linpred"))
    rows = imm10.index[imm10["schid"] == 7472][:2]
    again = _values(seed_fit.predict(imm10.loc[rows], kind="linpred"))
    np.testing.assert_allclose(train[..., rows], again, rtol=1e-10)


def test_population_level_predictions(seed_fit):
    new = pd.DataFrame({"schid": [7472, 99999], "homework": [1.0, 4.0]})
    expected = (_post(seed_fit, "b_Intercept")[..., None]
                + _post(seed_fit, "b_homework")[..., None] * new["homework"].to_numpy())
    for re in ("~0", "NA", "~ 0"):
        np.testing.assert_allclose(_values(seed_fit.predict(new, kind="linpred", re_formula=re)), expected,
                                   rtol=1e-9, atol=1e-9)


def test_unseen_level_is_an_error_naming_it(seed_fit):
    new = pd.DataFrame({"schid": [7472, 12345], "homework": [1.0, 2.0]})
    with pytest.raises(hdsl.DataError, match=r"level '12345' of grouping factor 'schid'") as info:
        seed_fit.predict(new)
    assert "allow_new_levels=True" in str(info.value)


def test_thinning_keeps_draws_evenly(seed_fit):
    new = pd.DataFrame({"schid": [7472], "homework": [1.0]})
    pred = seed_fit.predict(new, draws=100)
    assert _values(pred).shape == (4, 25, 1)
    d = pred["predictions"]["draw"].values
    assert d[0] == 0 and d[-1] == 999 and np.all(np.diff(d) > 0)
    full = _values(seed_fit.predict(new))
    np.testing.assert_allclose(_values(pred), full[:, d], rtol=1e-12)


def test_response_draws_have_the_right_mean_and_spread(seed_fit):
    mu = _values(seed_fit.predict(kind="mean"))
    y = _values(seed_fit.predict(kind="response", seed=11))
    assert y.shape == mu.shape
    sigma = _post(seed_fit, "sigma")[..., None]
    z = (y - mu) / sigma  # standard normal if the draws come from N(mu, sigma) draw by draw
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1.0) < 0.01
    # per observation: mean ≈ mean of mu; variance ≈ var(mu) + E[sigma²]
    n = mu.shape[0] * mu.shape[1]
    se = np.sqrt((mu.reshape(n, -1).var(0) + (sigma**2).mean()) / n)
    assert np.all(np.abs(y.reshape(n, -1).mean(0) - mu.reshape(n, -1).mean(0)) < 5 * se)
    # a different seed, different draws; the same seed, the same draws
    np.testing.assert_array_equal(_values(seed_fit.predict(kind="response", seed=11)), y)
    assert not np.allclose(_values(seed_fit.predict(kind="response", seed=12)), y)


def test_posterior_predictive_group(seed_fit, imm10):
    tree = seed_fit.posterior_predictive(seed=2)
    assert tree is seed_fit.idata
    pp = seed_fit.idata["posterior_predictive"]["math"]
    assert pp.dims == ("chain", "draw", "obs_id") and pp.shape == (4, 1000, len(imm10))
    np.testing.assert_array_equal(pp["obs_id"].values, seed_fit.idata["observed_data"]["obs_id"].values)
    # its spread covers the observed spread
    assert 0.8 < pp.values.std() / imm10["math"].std() < 1.25


def test_log_likelihood_on_training_data_equals_stored(seed_fit, imm10):
    ll = seed_fit.log_likelihood(imm10)
    assert ll.dims == ("chain", "draw", "obs_id")
    np.testing.assert_allclose(ll.values, seed_fit.idata["log_likelihood"]["math"].values, rtol=1e-9, atol=1e-9)
    with pytest.raises(hdsl.DataError, match="response 'math'"):
        seed_fit.log_likelihood(imm10.drop(columns="math"))


def test_loo_and_waic_agree_on_seed_fit(seed_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hdsl.WaicWarning)
        w = seed_fit.waic()
    loo = seed_fit.loo()
    assert np.isfinite(loo.elpd) and np.isfinite(w.elpd_waic)
    assert abs(loo.elpd - w.elpd_waic) < 2.0
    assert abs(loo.p - w.p_waic) < 2.0
    assert abs(loo.se - w.se) < 1.0
    assert w.waic == pytest.approx(-2 * w.elpd_waic)
    assert w.elpd_i.shape == (260,)


# ------------------------------------------------------------------------------------------------
# the correlated fit: new levels, comparison, save/load


def test_new_levels_have_the_population_distribution(corr_fit):
    """A new level's (intercept, slope) is drawn per posterior draw from N(0, diag(sd) C diag(sd))."""
    new = pd.DataFrame({"g": ["new_a", "new_a", "new_b", "grp00"], "x": [0.0, 1.0, 0.0, 0.0]})
    out = _values(corr_fit.predict(new, kind="linpred", allow_new_levels=True, seed=5))
    b0, bx = _post(corr_fit, "b_Intercept"), _post(corr_fit, "b_x")
    sd0, sd1 = _post(corr_fit, "sd_g__Intercept"), _post(corr_fit, "sd_g__x")
    rho = _post(corr_fit, "cor_g__Intercept__x")
    r0 = out[..., 0] - b0  # the new level's intercept effect
    r1 = out[..., 1] - out[..., 0] - bx  # its slope effect (same level, x = 1 vs 0)
    # across draws the spread of the effects matches the posterior sd values
    assert r0.std() == pytest.approx(np.sqrt(np.mean(sd0**2)), rel=0.06)
    assert r1.std() == pytest.approx(np.sqrt(np.mean(sd1**2)), rel=0.06)
    # standardized, draw by draw: two independent standard normals after removing the correlation
    z0 = r0 / sd0
    z1 = (r1 / sd1 - rho * z0) / np.sqrt(1 - rho**2)
    n = z0.size
    for z in (z0, z1):
        assert abs(z.mean()) < 4 / np.sqrt(n)
        assert abs(z.std() - 1) < 0.05
    assert abs(np.corrcoef(z0.ravel(), z1.ravel())[0, 1]) < 4 / np.sqrt(n)
    # the implied correlation of effects is the posterior's (not zero)
    assert np.corrcoef(r0.ravel(), r1.ravel())[0, 1] < -0.2
    # another new level gets its own effect; an existing level keeps its fitted one
    assert np.corrcoef(r0.ravel(), (out[..., 2] - b0).ravel())[0, 1] < 0.1
    r_grp00 = corr_fit.idata["posterior"]["r_g"].sel(g="grp00", g__coef="Intercept").values
    np.testing.assert_allclose(out[..., 3], b0 + r_grp00, rtol=1e-9, atol=1e-9)


def test_compare_ranks_the_correct_model_first(corr_fit, corr_fit_no_slope):
    table = hdsl.compare({"no_slope": corr_fit_no_slope, "correct": corr_fit})
    assert isinstance(table, pd.DataFrame)
    assert table.index[0] == "correct"
    assert table.loc["correct", "elpd_diff"] == 0
    assert abs(table.loc["no_slope", "elpd_diff"]) > 4 * table.loc["no_slope", "dse"]
    assert table.loc["correct", "weight"] > 0.9
    with pytest.raises(hdsl.HdslError, match="at least two"):
        hdsl.compare({"one": corr_fit})


def test_loaded_fit_predicts_like_the_original(corr_fit, corr_data, tmp_path):
    path = corr_fit.save(tmp_path / "corr.nc")
    loaded = hdsl.load(path, data=corr_data)
    new = pd.DataFrame({"g": ["grp03", "grp17", "fresh"], "x": [-1.0, 0.3, 2.0]})
    for kind in ("linpred", "response"):
        a = _values(corr_fit.predict(new, kind=kind, allow_new_levels=True, seed=9))
        b = _values(loaded.predict(new, kind=kind, allow_new_levels=True, seed=9))
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    with pytest.raises(hdsl.HdslError, match="usable rows"):
        hdsl.load(path, data=corr_data.iloc[:100])


# ------------------------------------------------------------------------------------------------
# diagnostics on made-up log-likelihoods (no fit)


def _ll_tree(ll: np.ndarray):
    c, d, _ = ll.shape
    return az.from_dict({"posterior": {"mu": np.zeros((c, d))}, "log_likelihood": {"y": ll}})


def test_pareto_k_warning_says_how_many_and_what_to_do():
    rng = np.random.default_rng(0)
    mu = rng.normal(0.0, 0.3, (2, 200, 1))
    y = np.concatenate([rng.normal(size=49), [9.0]])
    ll = -0.5 * (y - mu) ** 2 - 0.5 * np.log(2 * np.pi)
    with pytest.warns(hdsl.ParetoKWarning, match=r"1 of 50 observations have Pareto k > 0.7.*k-fold"):
        Fit(_ll_tree(ll)).loo()


def test_waic_formula():
    ll = np.broadcast_to(np.log([0.5, 0.25]), (2, 10, 2)).copy()
    w = Fit(_ll_tree(ll)).waic()  # a point posterior: no penalty
    assert w.p_waic == pytest.approx(0.0, abs=1e-12)
    assert w.elpd_waic == pytest.approx(np.log(0.5) + np.log(0.25))
    rng = np.random.default_rng(1)
    ll = rng.normal(-1.0, 0.3, (2, 500, 30))
    w = Fit(_ll_tree(ll)).waic()
    flat = ll.reshape(1000, 30)
    lppd = np.log(np.mean(np.exp(flat), axis=0))
    assert w.elpd_waic == pytest.approx(np.sum(lppd - flat.var(0, ddof=1)))
    assert w.to_series()["waic"] == pytest.approx(-2 * w.elpd_waic)


@pytest.mark.filterwarnings("ignore::hdsl.ParetoKWarning", "ignore::hdsl.WaicWarning")
def test_cli_predict_and_loo(corr_fit, corr_data, tmp_path, capsys):
    from hdsl.workflow.cli import main

    path = corr_fit.save(tmp_path / "c.nc")
    corr_data.to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"g": ["grp01", "zzz"], "x": [0.0, 1.0]}).to_csv(tmp_path / "new.csv", index=False)
    args = ["predict", str(path), "--data", str(tmp_path / "train.csv"), "--newdata", str(tmp_path / "new.csv"),
            "--allow-new-levels", "--draws", "200", "--json"]
    assert main(args) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"0", "1"} and {"mean", "sd", "2.5%", "97.5%"} <= set(table["0"])
    assert table["1"]["sd"] > table["0"]["sd"]  # a new level is less certain
    assert main([a for a in args if a != "--allow-new-levels"]) == 2  # an unseen level
    assert "zzz" in capsys.readouterr().err
    assert main(["loo", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_obs"] == len(corr_data) and np.isfinite(out["elpd_loo"]) and np.isfinite(out["elpd_waic"])
    for cmd in ("predict", "loo"):
        with pytest.raises(SystemExit) as info:
            main([cmd, "--help"])
        assert info.value.code == 0
