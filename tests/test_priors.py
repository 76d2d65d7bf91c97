"""The priors stage alone: bound design → prior table (``hdsl.model.priors.build_prior_table``).

Every valid target is listed, each parameter gets brms's default (worked out here from the data, by the
formulas brms documents), the user's statements are resolved against the table with the most specific
winning, a prior whose support does not fit its parameter is refused, and a statement that names no
parameter is a PriorError listing the valid targets. Designs are bound from small data frames.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from hdsl.errors import PriorError
from hdsl.language.expand import expand_spec
from hdsl.language.ir import DistributionSpec, ParamClass, PriorTarget
from hdsl.language.parse import parse_spec
from hdsl.model.bind import bind_design
from hdsl.model.design import BoundDesign
from hdsl.model.priors import PriorTable, build_prior_table

INF = math.inf


def _frame() -> pd.DataFrame:
    """24 rows: a gaussian response with a spread well above brms's minimum scale (mad(y) > 2.5), numeric
    predictors, a three-level factor, two grouping factors, a count, a share and known standard errors."""
    rng = np.random.default_rng(7)
    n = 24
    return pd.DataFrame({
        "y": rng.normal(10.0, 6.0, n), "x": rng.normal(0.0, 2.0, n), "z": rng.normal(0.0, 0.5, n),
        "f": list("abc") * 8, "g": list("uuvvww") * 4, "h": list("pq") * 12,
        "count": rng.poisson(4.0, n), "share": rng.uniform(0.1, 0.9, n), "s": rng.uniform(0.5, 1.0, n),
    })


DATA = _frame()


def bind(text: str, data: pd.DataFrame = DATA) -> BoundDesign:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bind_design(expand_spec(parse_spec(text)), data)


def table(text: str, data: pd.DataFrame = DATA) -> PriorTable:
    return build_prior_table(bind(text, data))


def T(cls: str, group: str | None = None, coef: str | None = None, dpar: str | None = None) -> PriorTarget:
    """A target by brms's class name: T('b', coef='x'), T('sd', 'g', 'Intercept'), T('sigma')."""
    classes = {"Intercept": ParamClass.INTERCEPT, "b": ParamClass.B, "sd": ParamClass.SD, "cor": ParamClass.COR}
    if cls not in classes:
        return PriorTarget(ParamClass.AUX, dpar=cls)
    return PriorTarget(classes[cls], group=group, coef=coef, dpar=dpar)


def D(name: str, *args: float) -> DistributionSpec:
    return DistributionSpec(name, tuple(float(a) for a in args))


def mad(v: np.ndarray) -> float:
    """R's mad(): the median absolute deviation, scaled to the sd of a normal."""
    return 1.4826 * float(np.median(np.abs(v - np.median(v))))


def brms_scale(v: np.ndarray) -> float:
    """brms's default scale: max(2.5, mad of the response on the link scale), to one decimal."""
    return max(2.5, round(mad(v), 1))


def slope_scale(sd_y: float, x: np.ndarray) -> float:
    """hdsl's slope default (README: 'a proper normal(0, 2.5·sd(y)/sd(x)) prior'), to three digits."""
    return float(f"{2.5 * sd_y / np.std(x):.3g}")


# ---- every valid target is listed ---------------------------------------------------------------------


def test_every_target_of_a_model_with_every_class():
    """Population coefficients (class-wide and each), the intercept, sd per group and per group and
    coefficient, cor per correlated group, and the family's parameter: in brms's order."""
    t = table("y ~ x + f + (1 + x | g) + (1 | h)")
    assert t.valid_targets == (
        T("Intercept"), T("b"), T("b", coef="x"), T("b", coef="fb"), T("b", coef="fc"),
        T("sd"), T("sd", "g"), T("sd", "h"), T("sd", "g", "Intercept"), T("sd", "g", "x"), T("sd", "h", "Intercept"),
        T("cor"), T("cor", "g"), T("sigma"),
    )
    # one entry per parameter element: the class-wide targets set elements but are not parameters themselves
    assert [e.target for e in t.entries] == [
        T("Intercept"), T("b", coef="x"), T("b", coef="fb"), T("b", coef="fc"),
        T("sd", "g", "Intercept"), T("sd", "g", "x"), T("sd", "h", "Intercept"), T("cor", "g"), T("sigma"),
    ]


@pytest.mark.parametrize(("text", "targets"), [
    ("y ~ 1", {"Intercept", "sigma"}),
    ("y ~ 0 + x", {"b", "b[x]", "sigma"}),
    ("y ~ x:z + I(x^2)", {"Intercept", "b", "b[x:z]", "b[IxE2]", "sigma"}),
    ("y ~ x + (1 + x || g)", {"Intercept", "b", "b[x]", "sd", "sd[g]", "sd[g, Intercept]", "sd[g, x]", "sigma"}),
    ("y ~ (1 | g) + (0 + x | g)", {"Intercept", "sd", "sd[g]", "sd[g, Intercept]", "sd[g, x]", "sigma"}),
    ("y ~ (1 | g/h)", {"Intercept", "sd", "sd[g]", "sd[g:h]", "sd[g, Intercept]", "sd[g:h, Intercept]",
                       "sigma"}),
    ("y ~ x + (1 + x | g)\nfamily: student",
     {"Intercept", "b", "b[x]", "sd", "sd[g]", "sd[g, Intercept]", "sd[g, x]", "cor", "cor[g]", "nu", "sigma"}),
    ("count ~ x\nfamily: poisson", {"Intercept", "b", "b[x]"}),
    ("count ~ x\nfamily: negbinomial", {"Intercept", "b", "b[x]", "shape"}),
    ("count ~ x\nfamily: zero_inflated_poisson", {"Intercept", "b", "b[x]", "zi"}),
    ("share ~ x\nfamily: beta", {"Intercept", "b", "b[x]", "phi"}),
    ("y | se(s) ~ x", {"Intercept", "b", "b[x]"}),
    ("y | se(s, sigma = TRUE) ~ x", {"Intercept", "b", "b[x]", "sigma"}),
    ("y ~ x\nsigma ~ z + (1 | h)",
     {"Intercept", "b", "b[x]", "Intercept_sigma", "b_sigma", "b_sigma[z]", "sd_sigma", "sd_sigma[h]",
      "sd_sigma[h, Intercept]"}),
])
def test_targets_follow_the_model(text, targets):
    """A target exists exactly where the model has the parameter: no intercept after 0 +, no cor for an
    uncorrelated group, no sigma where known standard errors replace it or a formula models it."""
    assert {str(t) for t in table(text).valid_targets} == targets


# ---- defaults -----------------------------------------------------------------------------------------


def test_defaults_are_brms_defaults_on_the_identity_link():
    """brms (default_prior): Intercept ~ student_t(3, median(y), s), sd and sigma ~ student_t(3, 0, s)
    restricted to positive values, cor ~ lkj(1), where s = max(2.5, mad(y)); slopes (hdsl's documented
    departure from brms's flat prior) normal(0, 2.5·sd(y)/sd(x))."""
    t = table("y ~ x + z + (1 + x | g)")
    y = DATA["y"].to_numpy()
    s = brms_scale(y)
    assert s > 2.5  # the data's own scale, not the floor
    assert t[T("Intercept")].distribution == D("student_t", 3, round(float(np.median(y)), 1), s)
    for sd in (T("sd", "g", "Intercept"), T("sd", "g", "x")):
        assert (t[sd].distribution, t[sd].lower, t[sd].upper) == (D("student_t", 3, 0, s), 0.0, INF)
    assert (t[T("sigma")].distribution, t[T("sigma")].lower) == (D("student_t", 3, 0, s), 0.0)
    assert (t[T("cor", "g")].distribution, t[T("cor", "g")].lower, t[T("cor", "g")].upper) == (D("lkj", 1), -1, 1)
    for c in ("x", "z"):
        assert t[T("b", coef=c)].distribution == D("normal", 0, slope_scale(float(np.std(y)), DATA[c].to_numpy()))
    assert t[T("b", coef="x")].distribution != t[T("b", coef="z")].distribution  # each scaled by its own sd
    assert all(e.source == "default" and e.set_by == e.target for e in t.entries)


def test_default_scale_is_at_least_2_5():
    """brms's scale has a floor of 2.5: a response with a small spread gets student_t(3, ·, 2.5)."""
    small = DATA.assign(y=DATA["y"] / 100.0)
    assert mad(small["y"].to_numpy()) < 2.5
    t = table("y ~ x + (1 | g)", small)
    assert t[T("Intercept")].distribution.args[2] == 2.5
    assert t[T("sd", "g", "Intercept")].distribution == D("student_t", 3, 0, 2.5)
    assert t[T("sigma")].distribution == D("student_t", 3, 0, 2.5)


def test_defaults_on_the_log_link_use_log_y():
    """A Poisson mean lives on the log scale: brms takes median and mad of log(y) (a zero counted as 0.1),
    and the slopes are unit-scaled: normal(0, 2.5/sd(x))."""
    counts = DATA.assign(count=np.r_[0, 0, DATA["count"].to_numpy()[2:]] * 3)
    t = table("count ~ x + (1 | g)\nfamily: poisson", counts)
    y = counts["count"].to_numpy().astype(float)
    log_y = np.log(np.where(y == 0, 0.1, y))
    s = brms_scale(log_y)
    assert t[T("Intercept")].distribution == D("student_t", 3, round(float(np.median(log_y)), 1), s)
    assert t[T("sd", "g", "Intercept")].distribution == D("student_t", 3, 0, s)
    assert t[T("b", coef="x")].distribution == D("normal", 0, slope_scale(1.0, counts["x"].to_numpy()))


@pytest.mark.parametrize(("text", "target", "prior", "bounds"), [
    ("y ~ x\nfamily: student", "nu", D("gamma", 2, 0.1), (1.0, INF)),  # brms: gamma(2, 0.1), lb = 1
    ("count ~ x\nfamily: negbinomial", "shape", D("inv_gamma", 0.4, 0.3), (0.0, INF)),
    ("share ~ x\nfamily: beta", "phi", D("gamma", 0.01, 0.01), (0.0, INF)),
    ("count ~ x\nfamily: zero_inflated_poisson", "zi", D("beta", 1, 1), (0.0, 1.0)),
])
def test_family_parameter_defaults(text, target, prior, bounds):
    entry = table(text)[T(target)]
    assert (entry.distribution, (entry.lower, entry.upper)) == (prior, bounds)


def test_defaults_of_a_modelled_family_parameter_are_unit_scaled():
    """sigma ~ z models log(sigma): its intercept and sds get student_t(3, 0, 2.5), its slopes
    normal(0, 2.5/sd(z)), whatever the spread of y (as brms)."""
    t = table("y ~ x\nsigma ~ z + (1 | h)")
    assert t[T("Intercept", dpar="sigma")].distribution == D("student_t", 3, 0, 2.5)
    assert t[T("b", coef="z", dpar="sigma")].distribution == D("normal", 0, slope_scale(1.0, DATA["z"].to_numpy()))
    sd = t[T("sd", "h", "Intercept", dpar="sigma")]
    assert (sd.distribution, sd.lower) == (D("student_t", 3, 0, 2.5), 0.0)
    assert t[T("Intercept")].distribution.args[2] == brms_scale(DATA["y"].to_numpy())  # mu keeps y's scale


# ---- the user's statements --------------------------------------------------------------------------


MODEL = "y ~ x + f + (1 + x | g) + (1 | h)\n"


def test_class_wide_prior_sets_every_coefficient():
    t = table(MODEL + "prior: b ~ normal(0, 1)")
    for c in ("x", "fb", "fc"):
        e = t[T("b", coef=c)]
        assert (e.distribution, e.source, e.set_by) == (D("normal", 0, 1), "user", T("b"))
    assert t[T("Intercept")].source == "default"  # the intercept is a class of its own, as in brms


def test_coefficient_prior_overrides_the_class_prior_in_any_order():
    for statements in ("prior: b ~ normal(0, 1)\nprior: b[fb] ~ cauchy(0, 2)",
                       "prior: b[fb] ~ cauchy(0, 2)\nprior: b ~ normal(0, 1)"):
        t = table(MODEL + statements)
        assert (t[T("b", coef="fb")].distribution, t[T("b", coef="fb")].set_by) == (D("cauchy", 0, 2),
                                                                                  T("b", coef="fb"))
        assert (t[T("b", coef="fc")].distribution, t[T("b", coef="fc")].set_by) == (D("normal", 0, 1), T("b"))


def test_sd_priors_resolve_from_the_most_specific():
    """sd[g, x] over sd[g] over sd; every sd stays positive (a normal there is a half-normal)."""
    t = table(MODEL + "prior: sd ~ normal(0, 1)\nprior: sd[g] ~ normal(0, 2)\nprior: sd[g, x] ~ normal(0, 3)")
    assert [(str(e.target), str(e.distribution), str(e.set_by), e.lower)
            for e in t.entries if e.target.cls is ParamClass.SD] == [
        ("sd[g, Intercept]", "normal(0, 2)", "sd[g]", 0.0),
        ("sd[g, x]", "normal(0, 3)", "sd[g, x]", 0.0),
        ("sd[h, Intercept]", "normal(0, 1)", "sd", 0.0),
    ]


def test_cor_priors():
    t = table(MODEL + "prior: cor ~ lkj(2)")
    assert (t[T("cor", "g")].distribution, t[T("cor", "g")].set_by) == (D("lkj", 2), T("cor"))
    t = table(MODEL + "prior: cor ~ lkj(2)\nprior: cor[g] ~ lkj(4)")
    assert (t[T("cor", "g")].distribution, t[T("cor", "g")].set_by) == (D("lkj", 4), T("cor", "g"))


def test_priors_of_a_modelled_parameter_stay_with_it():
    """b ~ sets mu's slopes only; b_sigma ~ sigma's only."""
    t = table("y ~ x\nsigma ~ x\nprior: b ~ normal(0, 1)\nprior: b_sigma ~ normal(0, 0.5)")
    assert t[T("b", coef="x")].distribution == D("normal", 0, 1)
    assert t[T("b", coef="x", dpar="sigma")].distribution == D("normal", 0, 0.5)


def test_statements_come_from_the_spec_unless_given():
    design = bind(MODEL + "prior: b ~ normal(0, 1)")
    assert build_prior_table(design)[T("b", coef="x")].source == "user"
    assert build_prior_table(design, ())[T("b", coef="x")].source == "default"


# ---- bounds of positive and bounded parameters ---------------------------------------------------------


@pytest.mark.parametrize(("text", "target", "bounds"), [
    (MODEL + "prior: sd ~ normal(0, 5)", T("sd", "g", "x"), (0.0, INF)),  # truncated at 0: a half-normal
    (MODEL + "prior: sigma ~ student_t(3, 0, 1)", T("sigma"), (0.0, INF)),
    (MODEL + "prior: sigma ~ exponential(1)", T("sigma"), (0.0, INF)),
    ("y ~ x\nfamily: student\nprior: nu ~ normal(10, 5)", T("nu"), (1.0, INF)),  # nu's own bound stays
    ("count ~ x\nfamily: zero_inflated_poisson\nprior: zi ~ normal(0.2, 1)", T("zi"), (0.0, 1.0)),
    (MODEL + "prior: sd ~ uniform(0, 10)", T("sd", "h", "Intercept"), (0.0, 10.0)),  # the prior bounds it
    (MODEL + "prior: sigma ~ beta(2, 2)", T("sigma"), (0.0, 1.0)),
    ("y ~ x\nfamily: student\nprior: nu ~ uniform(2, 50)", T("nu"), (2.0, 50.0)),
])
def test_bounds_of_a_parameter_under_a_prior(text, target, bounds):
    e = table(text)[target]
    assert (e.lower, e.upper) == bounds


@pytest.mark.parametrize(("statement", "message"), [
    ("b ~ exponential(1)", "exponential(1) only has positive values but 'b[x]' can be negative"),
    ("Intercept ~ gamma(2, 1)", "gamma(2, 1) only has positive values but 'Intercept' can be negative"),
    ("b[x] ~ uniform(-1, 1)", "uniform(-1, 1) is bounded but 'b[x]' is not"),
    ("sd ~ uniform(-1, 1)", "uniform(-1, 1) puts mass below 0, outside the support of 'sd[g, Intercept]'"),
    ("cor ~ normal(0, 1)", "'cor' needs lkj(eta), got normal(0, 1)"),
    ("sd[g] ~ lkj(2)", "'sd[g]' needs a distribution other than lkj, got lkj(2)"),
    ("b ~ lkj(2)", "'b' needs a distribution other than lkj, got lkj(2)"),
])
def test_a_prior_that_cannot_fit_its_parameter_is_an_error(statement, message):
    with pytest.raises(PriorError) as info:
        table(MODEL + "prior: " + statement)
    assert info.value.message.startswith(message)
    assert (info.value.line, info.value.column) == (2, len("prior: ") + 1)


def test_a_bound_below_the_parameters_own_is_an_error():
    with pytest.raises(PriorError, match="uniform\\(0, 100\\) puts mass below 1, outside the support of 'nu'"):
        table("y ~ x\nfamily: student\nprior: nu ~ uniform(0, 100)")


# ---- statements that match no parameter ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "statement", "suggestion"), [
    (MODEL, "b[xx] ~ normal(0, 1)", "b[x]"),  # a misspelt coefficient
    (MODEL, "b[fd] ~ normal(0, 1)", "b[fc]"),  # a level the factor does not have
    (MODEL, "sd[gg] ~ normal(0, 1)", "sd[g]"),
    (MODEL, "sd[h, x] ~ normal(0, 1)", "sd[g, x]"),  # x varies by g, not by h
    (MODEL, "b[z] ~ normal(0, 1)", "b[x]"),  # a column of the data, not of the model
    (MODEL, "b[weight] ~ normal(0, 1)", None),  # nothing close
    ("y ~ x + (1 + x || g)\n", "cor[g] ~ lkj(2)", None),  # uncorrelated: no correlation to set
    ("y ~ x + (1 | g)\n", "cor ~ lkj(2)", None),  # one effect per level: no correlation either
    ("y ~ 0 + x\n", "Intercept ~ normal(0, 5)", None),
    ("y ~ 1 + (1 | g)\n", "b ~ normal(0, 1)", None),
    ("y ~ x\n", "sd ~ normal(0, 1)", None),
    ("y ~ x\nsigma ~ x\n", "sigma ~ exponential(1)", "b_sigma"),  # modelled: no longer one parameter
    ("y ~ x\n", "b_sigma ~ normal(0, 1)", "sigma"),  # sigma is not modelled: one parameter
])
def test_a_prior_that_matches_no_parameter_lists_the_valid_targets(text, statement, suggestion):
    """brms refuses priors that match no parameter (bambi ignored them: its issue 815); the message names
    the target, suggests the closest where one is close, and the hint lists every valid target."""
    valid = ", ".join(str(t) for t in table(text).valid_targets)
    with pytest.raises(PriorError) as info:
        table(text + "prior: " + statement)
    target = statement.split(" ~ ")[0]
    assert info.value.message == f"prior target '{target}' matches no parameter of this model" + (
        f" — did you mean '{suggestion}'?" if suggestion else "")
    assert info.value.hint == "valid targets: " + valid
    assert (info.value.line, info.value.column) == (text.count("\n") + 1, len("prior: ") + 1)


# ---- the table a user reads: PriorTable.to_frame (Model.default_priors) -------------------------------------


def test_to_frame_lists_every_target_with_the_prior_in_force():
    t = table(MODEL + "prior: b ~ normal(0, 1)\nprior: b[x] ~ cauchy(0, 2)\nprior: sd[g] ~ normal(0, 3)")
    frame = t.to_frame()
    assert list(frame.index) == [str(v) for v in t.valid_targets]
    assert list(frame.columns) == ["prior", "class", "dpar", "group", "coef", "source"]
    for e in t.entries:  # each parameter: its prior, and where it came from
        assert frame.loc[str(e.target), "prior"].startswith(str(e.distribution)), e.target
        assert frame.loc[str(e.target), "source"] == e.source
    assert frame.loc["b", ["prior", "source"]].tolist() == ["normal(0, 1)", "user"]
    assert frame.loc["sd[g]", ["prior", "source"]].tolist() == ["normal(0, 3)", "user"]
    assert frame.loc["sd", ["prior", "source"]].tolist() == ["(set below)", ""]
    assert frame.loc["sd[g, x]", ["class", "group", "coef", "dpar"]].tolist() == ["sd", "g", "x", ""]
    assert frame.loc["sigma", ["class", "group", "coef"]].tolist() == ["sigma", "", ""]


def test_to_frame_keeps_a_class_prior_that_every_coefficient_overrides():
    """The user wrote b ~ normal(0, 1); b[x] overrides it for the only coefficient. The b row still shows
    the statement (as brms's prior summary does), not '(set below)'."""
    frame = table("y ~ x\nprior: b ~ normal(0, 1)\nprior: b[x] ~ cauchy(0, 2)").to_frame()
    assert frame.loc["b", ["prior", "source"]].tolist() == ["normal(0, 1)", "user"]
    assert frame.loc["b[x]", ["prior", "source"]].tolist() == ["cauchy(0, 2)", "user"]


def test_to_frame_says_where_a_prior_is_truncated():
    frame = table("y ~ x + (1 | g)\nfamily: student\nprior: nu ~ normal(10, 5)\nprior: sigma ~ exponential(1)"
                  ).to_frame()
    assert frame.loc["sd[g, Intercept]", "prior"].endswith(" (truncated at 0)")  # the default half-t
    assert frame.loc["nu", "prior"] == "normal(10, 5) (truncated at 1)"
    assert frame.loc["sigma", "prior"] == "exponential(1)"  # positive already: nothing cut
    assert frame.loc["Intercept", "prior"].startswith("student_t(3, ") and "truncated" not in frame.loc[
        "Intercept", "prior"]
    zi = table("count ~ x\nfamily: zero_inflated_poisson\nprior: zi ~ normal(0.2, 1)").to_frame()
    assert zi.loc["zi", "prior"] == "normal(0.2, 1) (truncated to [0, 1])"


def test_to_frame_of_a_modelled_parameter():
    frame = table("y ~ x\nsigma ~ z + (1 | h)").to_frame()
    assert frame.loc["b_sigma[z]", ["class", "dpar", "coef"]].tolist() == ["b", "sigma", "z"]
    assert frame.loc["sd_sigma[h, Intercept]", ["class", "dpar", "group"]].tolist() == ["sd", "sigma", "h"]
