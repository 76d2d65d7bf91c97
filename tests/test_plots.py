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
