"""The public contract: names, summary, the ArviZ object, save/load, reproducibility, CLI."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import SEED_SPEC

import hdsl
from hdsl.model import density


def test_parameter_names(imm10, corr_data):
    m = hdsl.Model(SEED_SPEC, imm10)
    assert m.parameter_names == ["b_Intercept", "b_homework", "sd_schid__Intercept", "sd_schid__homework",
                                 "sigma"]
    m2 = hdsl.Model("math ~ homework + (1 + homework | schid)", imm10)
    assert m2.parameter_names == ["b_Intercept", "b_homework", "sd_schid__Intercept", "sd_schid__homework",
                                  "cor_schid__Intercept__homework", "sigma"]


def test_summary_table(seed_fit):
    s = seed_fit.summary()
    assert list(s.index[:5]) == seed_fit.parameter_names
    for col in ("mean", "sd", "2.5%", "97.5%", "ess_bulk", "ess_tail", "r_hat"):
        assert col in s.columns
    assert "r_schid[7472,Intercept]" in s.index
    assert "r_schid[72292,homework]" in s.index
    row = s.loc["b_homework"]
    assert row["2.5%"] < row["mean"] < row["97.5%"]


def test_datatree_structure(seed_fit, imm10):
    dt = seed_fit.idata
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert group in dt.children, group
    post = dt["posterior"]
    assert post.sizes["chain"] == 4 and post.sizes["draw"] == 1000
    assert post["r_schid"].dims == ("chain", "draw", "schid", "schid__coef")
    assert list(post["schid"].values) == ["7472", "7829", "7930", "24725", "25456", "25642", "62821", "68448",
                                          "68493", "72292"]
    assert list(post["schid__coef"].values) == ["Intercept", "homework"]
    for stat in ("diverging", "energy", "tree_depth", "step_size", "acceptance_rate", "lp"):
        assert stat in dt["sample_stats"].data_vars, stat
    assert dt["log_likelihood"]["math"].shape == (4, 1000, len(imm10))
    np.testing.assert_array_equal(dt["observed_data"]["math"].values, imm10["math"].to_numpy(float))


def test_log_likelihood_is_pointwise_gaussian(seed_fit, imm10):
    from scipy import stats

    post = seed_fit.idata["posterior"]
    c, d = 1, 17
    codes = {lv: i for i, lv in enumerate(post["schid"].values)}
    g = imm10["schid"].astype(str).map(codes).to_numpy()
    r = post["r_schid"].values[c, d]
    x = imm10["homework"].to_numpy(float)
    mu = post["b_Intercept"].values[c, d] + post["b_homework"].values[c, d] * x + r[g, 0] + r[g, 1] * x
    expected = stats.norm.logpdf(imm10["math"], mu, post["sigma"].values[c, d])
    np.testing.assert_allclose(seed_fit.idata["log_likelihood"]["math"].values[c, d], expected, rtol=1e-8)


def test_save_load_roundtrip(seed_fit, tmp_path):
    path = seed_fit.save(tmp_path / "fit.nc")
    loaded = hdsl.load(path)
    pd.testing.assert_frame_equal(loaded.summary(), seed_fit.summary())
    assert loaded.spec == SEED_SPEC
    assert loaded.parameter_names == seed_fit.parameter_names
    assert not list(tmp_path.glob("*.tmp"))


def test_load_missing_file(tmp_path):
    with pytest.raises(hdsl.HdslError, match="no such file"):
        hdsl.load(tmp_path / "nope.nc")


def test_same_seed_same_draws(corr_data):
    spec = "y ~ x + (1 | g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hdsl.fit(spec, corr_data, chains=3, warmup=60, draws=40, seed=7, progress=False)
        b = hdsl.fit(spec, corr_data, chains=3, warmup=60, draws=40, seed=7, progress=False)
        c = hdsl.fit(spec, corr_data, chains=3, warmup=60, draws=40, seed=8, progress=False)
    for v in a.idata["posterior"].data_vars:
        np.testing.assert_array_equal(a.idata["posterior"][v].values, b.idata["posterior"][v].values)
    assert not np.array_equal(a.idata["posterior"]["b_x"].values, c.idata["posterior"]["b_x"].values)


@pytest.mark.parametrize("kwargs, match", [
    ({"chains": 0}, "chains"), ({"draws": -5}, "draws"), ({"warmup": -1}, "warmup"),
    ({"chains": 2.5}, "chains"), ({"target_accept": 1.5}, "target_accept"),
])
def test_bad_sampler_settings(corr_data, kwargs, match):
    with pytest.raises(hdsl.SamplingError, match=match):
        hdsl.fit("y ~ x + (1 | g)", corr_data, progress=False, **kwargs)


def test_cli_fit_and_summary(tmp_path, corr_data, capsys):
    from hdsl.workflow.cli import main

    data = tmp_path / "d.csv"
    corr_data.to_csv(data, index=False)
    spec = tmp_path / "m.hdsl"
    spec.write_text("y ~ x + (1 | g)\nprior: sigma ~ exponential(1)\n")
    out = tmp_path / "fit.nc"
    rc = main(["fit", str(spec), "--data", str(data), "--chains", "2", "--warmup", "100", "--draws", "100",
               "--seed", "1", "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "b_Intercept" in printed and "sd_g__Intercept" in printed and "sigma" in printed
    rc = main(["summary", str(out), "--json"])
    assert rc == 0
    assert '"b_x"' in capsys.readouterr().out
    rc = main(["priors", str(spec), "--data", str(data)])
    assert rc == 0
    assert "exponential(1)" in capsys.readouterr().out


def test_cli_reports_errors_without_traceback(tmp_path, corr_data, capsys):
    from hdsl.workflow.cli import main

    data = tmp_path / "d.csv"
    corr_data.to_csv(data, index=False)
    spec = tmp_path / "m.hdsl"
    spec.write_text("y ~ xx + (1 | g)\n")
    assert main(["fit", str(spec), "--data", str(data), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown column 'xx'" in err and "did you mean 'x'" in err and "Traceback" not in err


def test_model_that_cannot_start_names_the_term():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.normal(1e9, 1, 60), "x": rng.normal(size=60), "g": np.repeat(list("abc"), 20)})
    spec = "y ~ x + (1|g)\nprior: Intercept ~ normal(0, 1)\nprior: sigma ~ uniform(0, 1e-200)"
    with pytest.raises(hdsl.SamplingError, match="cannot start.*not finite: likelihood"):
        hdsl.fit(spec, df, chains=2, warmup=10, draws=10, progress=False)


def test_interrupted_fit_keeps_finished_draws(corr_data):
    """Ctrl-C during sampling returns the draws finished so far, marked as interrupted."""
    from hdsl.inference.options import SamplerOptions
    from hdsl.inference.sample import sample_nuts

    model = hdsl.Model("y ~ x + (1 | g)", corr_data)
    seen = []

    def progress(phase, done, total):
        seen.append((phase, done))
        if phase == "sampling" and done >= 40:
            raise KeyboardInterrupt

    config = SamplerOptions(chains=2, warmup=100, draws=100, seed=1)
    log_density = functools.partial(density.log_density, model.lowered)
    draws = sample_nuts(log_density, model.dim, config, model.lowered.data, blocks=5,
                        progress=progress)
    assert draws.interrupted
    assert draws.positions.shape[:2] == (2, 40)
    assert np.isfinite(draws.positions).all()
    # the same run handing its draws over block by block (what Model.sample does) keeps the same draws,
    # named, and nothing else
    import jax

    from hdsl.workflow.results import NamedDraws, constrained_draws

    constrain = jax.jit(jax.vmap(functools.partial(density.constrain, model.lowered)))
    named = NamedDraws(model.naming, constrain, chains=2, draws=100, rows=7)
    kept = sample_nuts(log_density, model.dim, config, model.lowered.data, blocks=5,
                       progress=progress, keep=named)
    assert kept.interrupted and kept.positions is None
    expected = constrained_draws(constrain, draws.positions, model.naming)
    got = named.result()["posterior"]
    assert got.keys() == expected.keys()
    for k in expected:
        assert got[k].shape[:2] == (2, 40)
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-13, atol=0)  # 7 draws at a time vs all
