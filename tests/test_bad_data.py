"""Bad data, golden style: each case is a spec and a data frame, and the exact message hdsl gives.

Also here: missing rows (dropped and reported, or refused), sampler-health warnings, and reproducibility.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hdsl
from hdsl import GroupingFactorWarning, MissingRowsWarning, SamplingWarning


def base(n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"y": rng.normal(size=n).round(2), "x": rng.normal(size=n).round(2),
                         "g": list("abc") * (n // 3), "n": [5] * n, "c": rng.poisson(2, n).astype(float)})


def _with(**changes) -> pd.DataFrame:
    d = base()
    for col, (row, value) in changes.items():
        if row is None:
            d[col] = value
        else:
            if isinstance(value, str):
                d[col] = d[col].astype(object)
            d.loc[row, col] = value
    return d


# name: (spec, data, error class, exact message)
CASES = {
    "empty_frame": ("y ~ x", base().iloc[:0], hdsl.DataError, "the data frame is empty"),
    "all_nan_column": ("y ~ x", _with(x=(None, np.nan)), hdsl.DataError, "column 'x' has no values (all missing)"),
    "text_in_numeric_column": ("y ~ x", _with(x=(4, "abc")), hdsl.DataError,
                               "column 'x' holds numbers and text: row 4 holds 'abc'\n"
                               "hint: fix that value, or make 'x' categorical on purpose with C(x)"),
    "text_response": ("y ~ x", _with(y=(None, "a")), hdsl.DataError,
                      "column 'y' is not numeric (row 0 holds 'a'), but it is used where a number is needed "
                      "(the response, an offset, or inside a function or I())\n"
                      "hint: a categorical column can be a term ('y', 'y:x') or C(y)"),
    "infinite_predictor": ("y ~ x", _with(x=(5, np.inf)), hdsl.DataError,
                           "term 'x' is not finite at row 5 (value inf)"),
    "infinite_response": ("y ~ x", _with(y=(5, -np.inf)), hdsl.DataError,
                          "response 'y' has a non-finite value; row 5 holds -inf"),
    "negative_count": ("c ~ x\nfamily: poisson", _with(c=(7, -1.0)), hdsl.DataError,
                       "response 'c' must be a non-negative count; row 7 holds -1.0"),
    "fractional_count": ("c ~ x\nfamily: poisson", _with(c=(2, 1.5)), hdsl.DataError,
                         "response 'c' must hold whole numbers (counts); row 2 holds 1.5"),
    "beta_outside_unit": ("y ~ x\nfamily: beta", _with(y=(None, 0.5)).assign(y=[0.5] * 2 + [1.2] + [0.5] * 9),
                          hdsl.DataError,
                          "response 'y' must lie strictly between 0 and 1 for the beta family; row 2 holds 1.2"),
    "beta_at_zero": ("y ~ x\nfamily: beta", _with(y=(None, 0.5)).assign(y=[0.5] * 11 + [0.0]), hdsl.DataError,
                     "response 'y' must lie strictly between 0 and 1 for the beta family; row 11 holds 0.0"),
    "trials_below_successes": ("c | trials(n) ~ x\nfamily: binomial", _with(c=(None, 3.0), n=(6, 2)),
                               hdsl.DataError,
                               "response 'c' has more successes than trials; row 6 holds 3.0 successes of 2.0 trials"),
    "binomial_without_trials": ("c ~ x\nfamily: binomial", base(), hdsl.DataError,
                                "the binomial family needs the number of trials: write 'c | trials(n)'\n"
                                "hint: for 0/1 responses use family: bernoulli"),
    "unequal_lengths": ("y ~ x", {"y": [1.0, 2.0, 3.0], "x": [1.0, 2.0]}, hdsl.DataError,
                        "the data columns have different lengths: 'y' has 3, 'x' has 2"),
    "one_level_group": ("y ~ x + (1 | g)", _with(g=(None, "a")), hdsl.DataError,
                        "grouping factor 'g' has only one level ('a') in the data; a group term needs at least 2 "
                        "levels to estimate their spread\nhint: drop the group term (1 | g)"),
    "response_as_predictor": ("y ~ y + x", base(), hdsl.FormulaError,
                              "line 1, column 5: the response 'y' is also used as a predictor\n"
                              "    y ~ y + x\n        ^\nhint: remove 'y' from the right-hand side"),
    "unknown_column": ("y ~ xx", base(), hdsl.FormulaError,
                       "line 1, column 5: unknown column 'xx' — did you mean 'x'?\n    y ~ xx\n        ^^"),
    "missing_rows_refused": ("y ~ x", _with(y=(3, np.nan)), hdsl.DataError,
                             "1 rows have missing values (in y; first at row 3)\n"
                             "hint: drop them first, or use na_action='drop'"),
    "bad_row_label_after_drop": ("c ~ x\nfamily: poisson", _with(x=(1, np.nan), c=(7, -1.0)), hdsl.DataError,
                                 "response 'c' must be a non-negative count; row 7 holds -1.0"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_data_message(name):
    spec, data, cls, message = CASES[name]
    na_action = "error" if name == "missing_rows_refused" else "drop"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingRowsWarning)
        with pytest.raises(hdsl.HdslError) as info:
            hdsl.Model(spec, data, na_action=na_action)
    assert type(info.value) is cls
    assert str(info.value) == message


def test_data_error_names_column_and_row():
    with pytest.raises(hdsl.DataError) as info:
        hdsl.Model("c ~ x\nfamily: poisson", _with(c=(7, -1.0)))
    assert info.value.column == "c" and info.value.row == 7


def test_numeric_grouping_column_with_many_levels_warns():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(size=120), "x": rng.normal(size=120), "id": np.arange(120)})
    with pytest.warns(GroupingFactorWarning, match=r"grouping factor 'id' is numeric and has 120 levels for 120 rows"):
        hdsl.Model("y ~ x + (1 | id)", df)


def test_duplicate_terms_are_merged_as_in_r():
    """R (and lme4, brms) drop a repeated term: ``x + x`` and ``x + x:x`` are ``x``; one coefficient."""
    for spec in ("y ~ x + x", "y ~ x + x:x"):
        assert hdsl.Model(spec, base()).parameter_names == ["b_Intercept", "b_x", "sigma"]


# ---------------------------------------------------------------------------------------------
# missing values, sampler health and reproducibility (small fits)

QUICK = dict(warmup=150, draws=100, progress=False)


@pytest.fixture(scope="module")
def holey():
    rng = np.random.default_rng(2)
    n = 60
    df = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "g": np.repeat(list("abcdef"), 10)})
    df.loc[[3, 17], "x"] = np.nan
    df.loc[40, "y"] = np.nan
    return df


@pytest.mark.slow
def test_missing_rows_dropped_and_reported(holey, tmp_path, capsys):
    with pytest.warns(MissingRowsWarning, match=r"dropped 3 of 60 rows with missing values in y, x"):
        fit = hdsl.fit("y ~ x + (1 | g)", holey, chains=1, seed=1, **QUICK)
    assert fit.n_dropped == 3
    assert fit.summary().attrs["rows_dropped"] == 3
    from hdsl.workflow.cli import main

    holey.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.hdsl").write_text("y ~ x + (1 | g)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(tmp_path / "m.hdsl"), "--data", str(tmp_path / "d.csv"), "--chains", "1",
                     "--warmup", "100", "--draws", "50", "--quiet"]) == 0
    assert "3 rows with missing values were dropped" in capsys.readouterr().err


def test_missing_rows_refused(holey):
    with pytest.raises(hdsl.DataError, match=r"3 rows have missing values \(in y, x; first at row 3\)"):
        hdsl.Model("y ~ x + (1 | g)", holey, na_action="error")


FUNNEL = """
y ~ 1 + (1 | g)
prior: Intercept ~ normal(0, 1)
prior: sd ~ cauchy(0, 5)
prior: sigma ~ normal(0, 5)
"""


def _funnel_data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(8), 2)
    return pd.DataFrame({"y": rng.normal(size=g.size) * 3 + rng.normal(size=8)[g], "g": g.astype(str)})


def test_bad_run_warns_once_each_in_plain_words():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hdsl.fit(FUNNEL, _funnel_data(), chains=2, warmup=20, draws=100, seed=0, progress=False,
                 target_accept=0.2, max_tree_depth=1, parameterization="centered")
    msgs = [str(w.message) for w in caught if issubclass(w.category, SamplingWarning)]
    assert len(msgs) == len(set(msgs))
    expected = {"diverged; raise target_accept": 1, "hit the maximum tree depth; raise max_tree_depth": 1,
                "chains disagree; run more warmup and draws": 1}
    for fragment, count in expected.items():
        assert sum(fragment in m for m in msgs) == count, (fragment, msgs)


def test_good_run_gives_no_warning():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hdsl.fit("y ~ x\nprior: b ~ normal(0, 1)\nprior: sigma ~ exponential(1)", df, chains=2, warmup=300,
                 draws=300, seed=1, progress=False)
    assert [str(w.message) for w in caught if issubclass(w.category, SamplingWarning)] == []


@pytest.mark.slow
@pytest.mark.parametrize("chains", [1, 3, 8])
def test_same_seed_same_draws(chains):
    df = base(30).assign(g=list("abcde") * 6)
    spec = "y ~ x + (1 | g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hdsl.fit(spec, df, chains=chains, seed=7, warmup=60, draws=40, progress=False)
        b = hdsl.fit(spec, df, chains=chains, seed=7, warmup=60, draws=40, progress=False)
    for v in a.idata["posterior"].data_vars:
        x, y = np.asarray(a.idata["posterior"][v]), np.asarray(b.idata["posterior"][v])
        assert x.shape[0] == chains and x.tobytes() == y.tobytes(), v
