"""Every figure of hdsl.plots on small fits, with the Agg backend: what is drawn, not how it looks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("arviz_plots")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import hdsl  # noqa: E402
from hdsl import plots  # noqa: E402
from hdsl.errors import HdslError  # noqa: E402
from hdsl.workflow import plots as wplots  # noqa: E402
from hdsl.workflow.cli import main  # noqa: E402

N_GROUPS = 6


@pytest.fixture(scope="module")
def small_data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(N_GROUPS), 15)
    x = rng.integers(0, 6, size=g.size).astype(float)
    a = rng.normal(0, 2, N_GROUPS)
    b = rng.normal(0, 0.5, N_GROUPS)
    y = 10 + a[g] + (1.0 + b[g]) * x + rng.normal(0, 1, g.size)
    k = rng.poisson(np.exp(0.3 + 0.15 * x + 0.3 * a[g] / 2))
    return pd.DataFrame({"y": y, "x": x, "k": k, "g": [f"s{i}" for i in g]})


def _fit(spec: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hdsl.fit(spec, data, chains=2, warmup=150, draws=150, seed=2, progress=False)


@pytest.fixture(scope="module")
def gauss_fit(small_data):
    return _fit("y ~ x + (1 + x | g)", small_data)


@pytest.fixture(scope="module")
def poisson_fit(small_data):
    return _fit("k ~ x + (1 | g)\nfamily: poisson", small_data)


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_data_pooled(gauss_fit):
    fig = plots.plot_data_pooled(gauss_fit)
    (ax,) = fig.axes
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 15 * N_GROUPS
    assert len(ax.lines) == 1
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"
    assert len(plots.plot_group_ols(gauss_fit.model).axes[0].lines) == N_GROUPS + 1  # a Model will do


def test_group_ols(gauss_fit):
    fig = plots.plot_group_ols(gauss_fit)
    (ax,) = fig.axes
    assert len(ax.lines) == N_GROUPS + 1  # one per group and the pooled line
    assert len(ax.collections) == N_GROUPS


def test_trace(gauss_fit):
    fig = plots.plot_trace(gauss_fit)
    n_params = len(gauss_fit.parameter_names)
    assert len(fig.axes) == 2 * n_params
    assert all(len(ax.lines) >= 2 for ax in fig.axes)  # one line per chain
    fig = gauss_fit.plot_trace(["sigma"])
    assert len(fig.axes) == 2
    with pytest.raises(HdslError, match="no posterior variable named 'sigmaa'"):
        plots.plot_trace(gauss_fit, ["sigmaa"])


def test_forest(gauss_fit):
    fig = gauss_fit.plot_forest()
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["Intercept", "x"]
    for ax in fig.axes:
        assert len(ax.collections[0].get_segments()) == N_GROUPS  # one interval per level
        assert len(ax.lines[-1].get_xdata()) == N_GROUPS  # one point per level
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == [f"s{i}" for i in range(N_GROUPS)]


def test_forest_centres_are_b_plus_r(gauss_fit):
    fig = plots.plot_forest(gauss_fit)
    post = gauss_fit.idata["posterior"]
    expected = (post["b_x"] + post["r_g"].sel(g__coef="x")).mean(("chain", "draw")).values
    shown = fig.axes[1].lines[-1].get_xdata()
    np.testing.assert_allclose(np.sort(shown), np.sort(expected))


def test_group_lines(gauss_fit):
    fig = gauss_fit.plot_group_lines(n_lines=20)
    axes = _visible_axes(fig)
    assert len(axes) == N_GROUPS
    for ax in axes:
        assert len(ax.lines) == 20 + 2  # draws, the posterior mean, the group's OLS line
        assert len(ax.collections) == 1


def test_conditional_effects(gauss_fit):
    fig = gauss_fit.conditional_effects("x")
    (ax,) = fig.axes
    assert len(ax.lines) == 1 and len(ax.collections) == 1  # mean line, band
    mean_line = ax.lines[0].get_ydata()
    post = gauss_fit.idata["posterior"]
    x0 = ax.lines[0].get_xdata()[0]
    assert mean_line[0] == pytest.approx(float((post["b_Intercept"] + post["b_x"] * x0).mean()))
    with pytest.raises(HdslError, match="not a population-level predictor"):
        plots.conditional_effects(gauss_fit, "z")


def test_ppc_continuous(gauss_fit):
    fig = gauss_fit.ppc_plot(n_draws=10)
    (ax,) = fig.axes
    assert len(ax.lines) == 11  # ten replicated densities and the observed one


def test_replicated_draws_match_the_fit(gauss_fit):
    yrep = plots.replicated_draws(gauss_fit, n_draws=30)
    assert yrep.shape == (30, 15 * N_GROUPS)
    y = gauss_fit.model.design.y
    assert abs(yrep.mean() - y.mean()) < 1.0


def test_ppc_discrete_uses_bars(poisson_fit):
    fig = plots.ppc_plot(poisson_fit, n_draws=10)
    (ax,) = fig.axes
    assert len(ax.patches) >= poisson_fit.model.design.y.max() + 1
    assert ax.get_ylabel() == "count"


def test_group_lines_follow_the_link(poisson_fit):
    fig = plots.plot_group_lines(poisson_fit, n_lines=5)
    for ax in _visible_axes(fig):
        assert np.all(ax.lines[0].get_ydata() > 0)  # exp of the linear predictor


def test_data_figures_need_one_predictor_or_a_name(small_data, gauss_fit):
    with pytest.raises(HdslError, match="not a grouping factor"):
        plots.plot_group_ols(gauss_fit, group="h")
    with pytest.raises(HdslError, match="not a population-level coefficient"):
        plots.plot_data_pooled(gauss_fit, predictor="k")


def test_cli_plot(gauss_fit, small_data, tmp_path, capsys):
    path = gauss_fit.save(tmp_path / "fit.nc")
    data = tmp_path / "d.csv"
    small_data.to_csv(data, index=False)
    assert main(["plot", str(path), "forest", "--out", str(tmp_path / "f.svg")]) == 0
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
    assert main(["plot", str(path), "group-lines", "--data", str(data), "--lines", "5",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(path), "ppc", "--out", str(tmp_path / "p.png")]) == 2
    assert "needs the training data" in capsys.readouterr().err


# ---- conditional effects and group lines go through fit.predict: curves follow the formula

@pytest.fixture(scope="module")
def curved_data() -> pd.DataFrame:
    """A clearly curved mean in x, a shift per level of f, a numeric z and a group offset."""
    rng = np.random.default_rng(11)
    n = 240
    x = rng.uniform(-2, 2, n)
    z = rng.normal(0, 1, n)
    f = rng.choice(["a", "b", "c"], n)
    g = rng.integers(0, N_GROUPS, n)
    shift = pd.Series({"a": 0.0, "b": 1.0, "c": -1.0})[f].to_numpy()
    y = 1 + 0.5 * x + 1.5 * x**2 + 0.8 * z + shift + rng.normal(0, 0.7, N_GROUPS)[g] + rng.normal(0, 0.5, n)
    return pd.DataFrame({"y": y, "x": x, "z": z, "f": f, "g": [f"s{i}" for i in g]})


@pytest.fixture(scope="module")
def quadratic_fit(curved_data):
    return _fit("y ~ x + I(x^2) + z + f", curved_data)


@pytest.fixture(scope="module")
def poly_fit(curved_data):
    return _fit("y ~ poly(x, 2) * f + (1 | g)", curved_data)


def _draws(fit, name: str) -> np.ndarray:
    return fit.idata["posterior"][name].transpose("chain", "draw").values.reshape(-1)


def _quadratic_mean_draws(fit, data: pd.DataFrame, x: np.ndarray) -> np.ndarray:
    """The mean at x, z at its mean, f at its reference level 'a' (no f column), from the draws directly."""
    eta = (_draws(fit, "b_Intercept")[:, None] + _draws(fit, "b_x")[:, None] * x
           + _draws(fit, "b_IxE2")[:, None] * x**2 + _draws(fit, "b_z")[:, None] * data["z"].mean())
    return eta  # identity link


def _predicted_means(fit, newdata: pd.DataFrame, re_formula: str | None = "~0") -> np.ndarray:
    values = fit.predict(newdata, kind="mean", re_formula=re_formula)["predictions"]["y"].values
    return values.reshape(-1, len(newdata))


def _quadratic_coefficient(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(x, y, 2)[0])


def test_quadratic_curve_is_the_posterior_mean_of_its_formula(quadratic_fit, curved_data):
    fig = quadratic_fit.conditional_effects("x")
    (ax,) = fig.axes
    (line,) = ax.lines
    x = np.asarray(line.get_xdata())
    np.testing.assert_allclose(x, np.linspace(curved_data["x"].min(), curved_data["x"].max(), 100))
    expected = _quadratic_mean_draws(quadratic_fit, curved_data, x).mean(axis=0)
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-9, atol=1e-12)
    assert _quadratic_coefficient(x, np.asarray(line.get_ydata())) > 1.0  # simulated with 1.5: not a line


def test_conditional_effects_data_summarises_the_draws(quadratic_fit, curved_data):
    frame = wplots.conditional_effects_data(quadratic_fit, "x", prob=0.9, n_points=25)
    x = np.linspace(curved_data["x"].min(), curved_data["x"].max(), 25)
    np.testing.assert_allclose(frame["x"], x)
    np.testing.assert_allclose(frame["effect1__"], x)
    np.testing.assert_allclose(frame["z"], curved_data["z"].mean())  # a numeric variable at its mean
    assert set(frame["f"]) == {"a"}  # a factor at its reference level
    mu = _quadratic_mean_draws(quadratic_fit, curved_data, x)
    np.testing.assert_allclose(frame["estimate__"], mu.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(frame["se__"], mu.std(axis=0, ddof=1), rtol=1e-7)
    np.testing.assert_allclose(frame["lower__"], np.quantile(mu, 0.05, axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(frame["upper__"], np.quantile(mu, 0.95, axis=0), rtol=1e-9, atol=1e-12)
    assert frame.attrs["effects"] == ("x",)


def test_poly_curve_is_predict_on_the_grid(poly_fit, curved_data):
    fig = plots.conditional_effects(poly_fit, "x")
    (line,) = fig.axes[0].lines
    x = np.asarray(line.get_xdata())
    mu = _predicted_means(poly_fit, pd.DataFrame({"x": x, "f": "a"}))
    np.testing.assert_allclose(line.get_ydata(), mu.mean(axis=0), rtol=1e-9, atol=1e-12)
    frame = wplots.conditional_effects_data(poly_fit, "x")
    np.testing.assert_allclose(frame["lower__"], np.quantile(mu, 0.025, axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(frame["upper__"], np.quantile(mu, 0.975, axis=0), rtol=1e-9, atol=1e-12)
    assert _quadratic_coefficient(x, np.asarray(line.get_ydata())) > 1.0


def test_factor_effect_is_one_point_per_level(poly_fit, curved_data):
    fig = plots.conditional_effects(poly_fit, "f")
    (ax,) = fig.axes
    assert all(line.get_linestyle() == "None" for line in ax.lines)  # markers and error bars, no line
    assert len(ax.collections) == 1  # the error bars
    (bars,) = ax.containers
    points = bars.lines[0]
    np.testing.assert_array_equal(points.get_xdata(), [0, 1, 2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    mu = _predicted_means(poly_fit, pd.DataFrame({"x": curved_data["x"].mean(), "f": ["a", "b", "c"]}))
    np.testing.assert_allclose(points.get_ydata(), mu.mean(axis=0), rtol=1e-9, atol=1e-12)


def test_interaction_draws_one_curve_per_level(poly_fit):
    fig = plots.conditional_effects(poly_fit, "x:f")
    (ax,) = fig.axes
    assert len(ax.lines) == 3 and len(ax.collections) == 3  # a curve and a band per level of f
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["f = a", "f = b", "f = c"]
    for level, line in zip("abc", ax.lines, strict=True):
        x = np.asarray(line.get_xdata())
        mu = _predicted_means(poly_fit, pd.DataFrame({"x": x, "f": level}))
        np.testing.assert_allclose(line.get_ydata(), mu.mean(axis=0), rtol=1e-9, atol=1e-12)
    a, b = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
    assert np.mean(b - a) > 0.5  # level b sits about 1 above a
    # brms's order: the numeric variable on the x axis whichever way the interaction is written
    pd.testing.assert_frame_equal(wplots.conditional_effects_data(poly_fit, "f:x"),
                                  wplots.conditional_effects_data(poly_fit, "x:f"))


def test_numeric_second_variable_at_its_mean_and_one_sd_either_side(quadratic_fit, curved_data):
    frame = wplots.conditional_effects_data(quadratic_fit, "x:z", n_points=10)
    z = curved_data["z"]
    expected = z.mean() + np.array([-1.0, 0.0, 1.0]) * z.std(ddof=1)
    np.testing.assert_allclose(np.unique(frame["z"]), expected)
    assert len(frame) == 30
    fig = quadratic_fit.conditional_effects("x:z", n_points=10)
    assert len(fig.axes[0].lines) == 3


def test_points_are_the_rows_at_the_held_levels(quadratic_fit, curved_data):
    fig = plots.conditional_effects(quadratic_fit, "x", points=True)
    (ax,) = fig.axes
    scatter = ax.collections[0]  # the points are drawn first
    shown = np.asarray(scatter.get_offsets())[:, 1]
    at_reference = curved_data.loc[curved_data["f"] == "a", "y"].to_numpy()
    np.testing.assert_allclose(np.sort(shown), np.sort(at_reference))


def test_unknown_effects_name_the_variables(quadratic_fit, poly_fit):
    with pytest.raises(HdslError, match="'w' is not a population-level predictor variable of this model; its "
                                        "variables are: x, z, f"):
        plots.conditional_effects(quadratic_fit, "w")
    with pytest.raises(HdslError, match="did you mean 'z'"):
        plots.conditional_effects(quadratic_fit, "zz")
    with pytest.raises(HdslError, match="'g' is a grouping factor"):
        plots.conditional_effects(poly_fit, "g")
    with pytest.raises(HdslError, match="one variable or two distinct ones"):
        plots.conditional_effects(quadratic_fit, "x:z:f")
    with pytest.raises(HdslError, match="'f' is not a numeric population-level predictor variable"):
        plots.plot_group_lines(poly_fit, predictor="f")


def test_group_lines_follow_the_formula(poly_fit, curved_data):
    fig = plots.plot_group_lines(poly_fit, n_lines=5)
    axes = _visible_axes(fig)
    levels = poly_fit.model.design.main.groups[0].levels
    assert len(axes) == len(levels) == N_GROUPS
    x = np.asarray(axes[0].lines[5].get_xdata())
    grid = pd.DataFrame({"x": np.tile(x, len(levels)), "f": "a", "g": np.repeat(levels, len(x))})
    mu = _predicted_means(poly_fit, grid, re_formula=None).mean(axis=0).reshape(len(levels), len(x))
    for ax, level, expected in zip(axes, levels, mu, strict=True):
        assert ax.get_title().startswith(f"g {level} ")
        mean_line = ax.lines[5]  # after the 5 draws
        np.testing.assert_allclose(mean_line.get_ydata(), expected, rtol=1e-9, atol=1e-12)
        assert _quadratic_coefficient(x, np.asarray(mean_line.get_ydata())) > 1.0


def test_binomial_mean_is_a_proportion_at_one_trial():
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, 150)
    n = rng.integers(5, 15, 150)
    data = pd.DataFrame({"k": rng.binomial(n, 1 / (1 + np.exp(-(0.3 + 0.9 * x)))), "n": n, "x": x})
    fit = _fit("k | trials(n) ~ x\nfamily: binomial", data)
    frame = wplots.conditional_effects_data(fit, "x", n_points=20)
    assert set(frame["n"]) == {1}  # brms sets trials() variables to 1
    eta = _draws(fit, "b_Intercept")[:, None] + _draws(fit, "b_x")[:, None] * frame["x"].to_numpy()
    np.testing.assert_allclose(frame["estimate__"], (1 / (1 + np.exp(-eta))).mean(axis=0), rtol=1e-9)
    scatter = plots.conditional_effects(fit, "x", points=True).axes[0].collections[0]
    np.testing.assert_allclose(np.sort(scatter.get_offsets()[:, 1]), np.sort(data["k"] / data["n"]))


def test_figures_over_grids_need_the_training_data(gauss_fit, tmp_path):
    loaded = hdsl.load(gauss_fit.save(tmp_path / "fit.nc"))
    for figure in (lambda: plots.conditional_effects(loaded, "x"), lambda: plots.plot_group_lines(loaded)):
        with pytest.raises(HdslError, match="needs the data the model was fitted to"):
            figure()
