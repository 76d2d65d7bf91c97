"""Binding (stage 3) alone: missing rows, bad data, R's coding rules, brms names, new data encoded alike."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hdsl import GroupingFactorWarning, MissingRowsWarning
from hdsl.errors import DataError, FormulaError
from hdsl.language.expand import expand_spec
from hdsl.language.parse import parse_spec
from hdsl.model.bind import bind_design
from hdsl.model.coding import brms_name
from hdsl.model.design import BoundDesign, Codebook, bind_predictor


def bind(text: str, data: pd.DataFrame, **kw) -> BoundDesign:
    return bind_design(expand_spec(parse_spec(text)), data, **kw)


def rebind(design: BoundDesign, new: pd.DataFrame):
    """The population-level design of new data, encoded with the training encoding."""
    return bind_predictor(design.spec.predictor, new, Codebook(design.encoding))


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame({
        "y": np.arange(8.0),
        "x": np.arange(8.0) ** 1.3,
        "f": list("abcabcab"),
        "g": list("uuvvuuvv"),
        "b": [True, False] * 4,
        "s": [1, 2, 3, 4] * 2,
    })


# ---- missing values and bad data -------------------------------------------------------------------

def test_missing_rows_dropped_and_counted(df):
    df.loc[2, "x"] = np.nan
    df.loc[4, "f"] = None
    with pytest.warns(MissingRowsWarning, match="dropped 2 of 8 rows .* x, f"):
        d = bind("y ~ x + f", df)
    assert d.n_rows == 6 and d.n_dropped == 2
    assert list(d.row_index) == [0, 1, 3, 5, 6, 7]
    assert d.main.X.shape == (6, 3)


def test_unused_column_missing_is_ignored(df):
    df.loc[0, "s"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bind("y ~ x", df).n_dropped == 0


def test_na_action_error(df):
    df.loc[3, "x"] = np.nan
    with pytest.raises(DataError, match=r"1 rows have missing values \(in x; first at row 3\)") as e:
        bind("y ~ x", df, na_action="error")
    assert e.value.column == "x"
    with pytest.raises(DataError, match="na_action"):
        bind("y ~ x", df, na_action="omit")  # type: ignore[arg-type]


def test_unknown_column(df):
    with pytest.raises(FormulaError, match="unknown column 'xx' — did you mean 'x'") as e:
        bind("y ~ xx", df)
    assert e.value.column == 5


def test_unknown_grouping_column(df):
    with pytest.raises(DataError, match="grouping column 'h'"):
        bind("y ~ x + (1 | h)", df)


def test_non_numeric_in_numeric_position(df):
    with pytest.raises(DataError, match="column 'f' is not numeric") as e:
        bind("y ~ log(f)", df)
    assert e.value.column == "f"
    with pytest.raises(DataError, match="column 'f' is not numeric"):
        bind("f ~ x", df)


def test_infinite_values(df):
    with pytest.raises(DataError, match=r"term 'log\(x\)' is not finite at row 0 \(value -inf\)"):
        bind("y ~ log(x)", df)
    df.loc[4, "x"] = np.inf
    with pytest.raises(DataError, match="not finite at row 4"):
        bind("y ~ x", df)


def test_unknown_function_lists_known(df):
    with pytest.raises(FormulaError, match="unknown function 'lgo' — did you mean 'log'") as e:
        bind("y ~ lgo(x)", df)
    assert "known functions: I, log" in str(e.value) and "poly" in str(e.value)
    with pytest.raises(FormulaError, match="unknown function 'foo'"):
        bind("y ~ I(foo(x) + 1)", df)


def test_bad_function_arguments(df):
    with pytest.raises(FormulaError, match="unknown contrast 'helmert'"):
        bind("y ~ C(f, helmert)", df)
    with pytest.raises(FormulaError, match="cannot read 'poly"):
        bind("y ~ poly(x)", df)
    with pytest.raises(FormulaError, match="log\\(\\) takes one argument"):
        bind("y ~ log(x, 2)", df)


def test_poly_degree_and_single_level(df):
    with pytest.raises(DataError, match="degree 3 must be less than the number of distinct values \\(3\\)"):
        bind("y ~ poly(s, 3)", df[df.s < 4])
    with pytest.raises(DataError, match="column 'f' has only one level \\(a\\)"):
        bind("y ~ f", df[df.f == "a"])


def test_duplicate_coefficient_names(df):
    with pytest.raises(DataError, match="two columns named 'fb'"):
        bind("y ~ f + C(f)", df)


# ---- R's model.matrix rules (expectations from R 4.x model.matrix on the same data) --------------------

@pytest.mark.parametrize(("text", "names"), [
    ("y ~ f", ("fb", "fc")),
    ("y ~ 0 + f", ("fa", "fb", "fc")),
    ("y ~ x:f", ("x:fa", "x:fb", "x:fc")),
    ("y ~ x + x:f", ("x", "x:fb", "x:fc")),
    ("y ~ f:x + x", ("x", "fb:x", "fc:x")),  # R orders a term's variables by first appearance
    ("y ~ f:g", ("fa:gu", "fb:gu", "fc:gu", "fa:gv", "fb:gv", "fc:gv")),  # no margins: all levels, R's too
    ("y ~ g + f:g", ("gv", "gu:fb", "gv:fb", "gu:fc", "gv:fc")),
    ("y ~ f + x:f:g", ("fb", "fc", "fa:x:gu", "fb:x:gu", "fc:x:gu", "fa:x:gv", "fb:x:gv", "fc:x:gv")),
    ("y ~ 0 + x + f + g", ("x", "fa", "fb", "fc", "gv")),
    ("y ~ b", ("bTRUE",)),
    ("y ~ C(f, sum)", ("f1", "f2")),
    ("y ~ poly(x, 2)", ("polyx21", "polyx22")),
    ("y ~ poly(x, 2, raw=TRUE)", ("polyx2rawEQTRUE1", "polyx2rawEQTRUE2")),
    ("y ~ scale(x) + center(x)", ("scalex", "centerx")),
    ("y ~ log(x + 1) + I(x^2) + exp(-x)", ("logxP1", "IxE2", "expMx")),
])
def test_r_coding_and_brms_names(df, text, names):
    assert bind(text, df).main.coef_names == names


def test_contrast_values(df):
    X = bind("y ~ C(f, sum)", df).main.X
    np.testing.assert_array_equal(X[:3], [[1, 0], [0, 1], [-1, -1]])
    X = bind("y ~ x:f", df).main.X
    np.testing.assert_allclose(X[1], [0, df.x[1], 0])


def test_poly_matches_r(df):
    # R: poly((0:7)^1.3, 2)
    expected = [[-0.469718, 0.471818], [-0.385501, 0.201518], [-0.262351, -0.107321], [-0.118434, -0.338173],
                [0.040879, -0.430245], [0.212716, -0.336991], [0.395243, -0.019053], [0.587166, 0.558447]]
    np.testing.assert_allclose(bind("y ~ poly(x, 2)", df).main.X, expected, atol=1e-6)


def test_reference_level_choices(df):
    assert bind('y ~ C(f, levels=["c", "a", "b"])', df).main.coef_names == ("fa", "fb")
    df["f"] = pd.Categorical(df["f"], categories=["b", "c", "a"])
    assert bind("y ~ f", df).main.coef_names == ("fc", "fa")
    df["f"] = pd.Categorical(df["f"].astype(str), categories=["z", "b", "c", "a"])  # unused level dropped
    assert bind("y ~ f", df).main.coef_names == ("fc", "fa")


def test_brms_renames_levels(df):
    df["h"] = ["a b", "x-y", "(p)", "a b"] * 2
    assert bind("y ~ h", df).main.coef_names == ("hab", "hxMy")
    assert brms_name('q[1], "r" ? s/t*u^v=w$') == "q1rsDtMUuEvEQwUSD"


def test_numeric_grouping_warning():
    n = 120
    data = pd.DataFrame({"y": np.arange(n, dtype=float), "t": np.linspace(0, 1, n),
                         "g": [f"s{i}" for i in range(n)]})
    with pytest.warns(GroupingFactorWarning, match="'t' is numeric and has 120 levels"):
        bind("y ~ 1 + (1 | t)", data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupingFactorWarning)
        bind("y ~ 1 + (1 | g)", data)  # strings: the user made it a factor on purpose
        bind("y ~ 1 + (1 | t)", data.iloc[:40])  # few levels


# ---- new data --------------------------------------------------------------------------------------

def test_new_data_reuses_levels_and_scale(df):
    d = bind("y ~ scale(x) + f + poly(x, 2) + (1 + f | g)", df)
    new = pd.DataFrame({"y": [0.0, 0.0], "x": [df.x[3], 100.0], "f": ["c", "b"], "g": ["v", "u"]})
    p = rebind(d, new)
    assert p.coef_names == d.main.coef_names
    np.testing.assert_allclose(p.X[0], d.main.X[3, :1].tolist() + [0, 1] + d.main.X[3, 3:].tolist())
    mean, sd = df.x.mean(), df.x.std(ddof=1)
    assert p.X[1, 0] == pytest.approx((100 - mean) / sd)
    np.testing.assert_array_equal(p.X[1, 1:3], [1, 0])  # b: still against reference a
    assert p.groups[0].levels == ("u", "v")
    np.testing.assert_array_equal(p.groups[0].codes, [1, 0])


def test_new_data_single_level_keeps_coding(df):
    d = bind("y ~ f", df)
    p = rebind(d, pd.DataFrame({"f": ["c", "c"]}))
    np.testing.assert_array_equal(p.X, [[0, 1], [0, 1]])


def test_new_data_unseen_level(df):
    d = bind("y ~ x + f", df)
    msg = r"column 'f' has level 'zz', which is not one of its levels \(a, b, c\)"
    with pytest.raises(DataError, match=msg) as e:
        rebind(d, pd.DataFrame({"x": [1.0], "f": ["zz"]}))
    assert e.value.column == "f"
    with pytest.raises(DataError, match="level 'w' of grouping factor 'g'"):
        bind_predictor(expand_spec(parse_spec("y ~ (1 | g)")).predictor, pd.DataFrame({"g": ["w"]}),
                       Codebook(bind("y ~ (1 | g)", df).encoding))


def test_encoding_is_plain_frozen_data(df):
    encoding = bind("y ~ scale(x) + C(f, sum) + poly(x, 2) + (1 | g)", df).encoding
    state = encoding.factors
    assert state["scale(x)"] == {"mean": pytest.approx(df.x.mean()), "sd": pytest.approx(df.x.std())}
    assert state["C(f, sum)"] == {"levels": ("a", "b", "c"), "contrast": "sum"}
    assert set(state["poly(x, 2)"]) == {"alpha", "norm2"}
    assert encoding.group_levels == {"g": ("u", "v")}
    with pytest.raises(TypeError):
        encoding.group_levels["h"] = ("x",)  # binding new data cannot change the training encoding


def _row_label(row: pd.Series) -> str:
    """brms's level label of one row, written out here independently: values pasted with '_', a whole float
    written as an integer (2.0 -> '2')."""
    return "_".join(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in row)


def test_group_levels_are_the_row_by_row_labels():
    """Binding labels each distinct group value once (not each row: a million strings cost ~100 MB); each
    row's level is still the label a row-by-row pasting gives: integers, strings with '_', floats (2.0 ->
    '2', 2.5 kept), categoricals, and combinations (a:b)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 5, 500), "b": rng.choice(["x", "y_z", "q"], 500),
                       "c": rng.integers(0, 3, 500).astype(float),
                       "d": pd.Categorical(rng.choice(["k", "l"], 500)), "y": rng.normal(size=500)})
    df.loc[3, "c"] = 2.5
    for group in [("a",), ("b",), ("c",), ("d",), ("a", "b"), ("b", "c", "d")]:
        (bound,) = bind(f"y ~ (1 | {':'.join(group)})", df).main.groups
        expected = df[list(group)].astype(object).apply(_row_label, axis=1).to_numpy()
        assert sorted(bound.levels) == sorted(set(expected)), group
        np.testing.assert_array_equal(np.asarray(bound.levels, dtype=object)[bound.codes], expected)
