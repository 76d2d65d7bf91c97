"""The expand stage: formula algebra, group terms, families and prior targets, through
``expand_spec(parse_spec(text))`` and with no data."""

from __future__ import annotations

import pytest
from conftest import SEED_SPEC

from hdsl import FamilyError, FormulaError, PriorError
from hdsl.language.expand import expand_spec
from hdsl.language.ir import DistributionSpec, ParamClass, PriorTarget
from hdsl.language.parse import parse_spec


def spec(text: str):
    return expand_spec(parse_spec(text))


def pred(formula: str):
    return spec(f"y ~ {formula}").predictor


def labels(formula: str) -> list[str]:
    return [t.label for t in pred(formula).terms]


def term_set(formula: str) -> set[frozenset[str]]:
    return {frozenset(f.label for f in t.factors) for t in pred(formula).terms}


@pytest.mark.parametrize(
    "left, right",
    [
        ("a*b", "a + b + a:b"),
        ("a*b*c", "a + b + c + a:b + a:c + b:c + a:b:c"),
        ("(a+b+c)^2", "a + b + c + a:b + a:c + b:c"),
        ("(a+b)^1", "a + b"),
        ("a/b", "a + a:b"),
        ("a*b - a:b", "a + b"),
        ("(1 | a/b)", "(1 | a) + (1 | a:b)"),
        ("x + (1 + x | g)", "x + (x | g)"),
        ("a + a", "a"),
        ("b:a", "b:a"),
    ],
)
def test_equivalent_formulas(left, right):
    assert pred(left) == pred(right)


def test_interaction_is_symmetric_as_a_set():
    assert term_set("a:b") == term_set("b:a")


@pytest.mark.parametrize("formula", ["x - 1", "0 + x", "-1 + x", "x + 0", "x + -1"])
def test_intercept_dropped(formula):
    p = pred(formula)
    assert p.intercept is False
    assert labels(formula) == ["x"]


@pytest.mark.parametrize("formula", ["x", "1 + x", "x + 1"])
def test_intercept_kept(formula):
    assert pred(formula).intercept is True


def test_intercept_only():
    p = pred("1")
    assert p.intercept is True and p.terms == ()


def test_main_effects_first():
    assert labels("a:b + c + a + b") == ["c", "a", "b", "a:b"]
    assert labels("a*b*c") == ["a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"]


def test_uncorrelated_and_correlated_group_terms():
    (g1,) = pred("(1 + x || g)").groups
    (g2,) = pred("(1 + x | g)").groups
    assert g1.correlated is False and g2.correlated is True
    assert g1.coef_labels == g2.coef_labels == ("Intercept", "x")
    assert g1.group == g2.group == ("g",)


def test_group_intercept_implicit_and_removed():
    (with_int,) = pred("(x | g)").groups
    (without,) = pred("(0 + x | g)").groups
    (minus,) = pred("(x - 1 | g)").groups
    assert with_int.intercept is True
    assert without.intercept is False and minus.intercept is False
    assert without.coef_labels == ("x",)


def test_nested_grouping():
    groups = pred("(1 | a/b)").groups
    assert [g.group for g in groups] == [("a",), ("a", "b")]
    assert [g.group_label for g in groups] == ["a", "a:b"]


def test_group_id_kept():
    (g,) = pred("(1 | ID | g)").groups
    assert g.id == "ID"


def test_groups_do_not_touch_population_terms():
    p = pred("x + (1 + z | g)")
    assert labels("x + (1 + z | g)") == ["x"]
    assert p.intercept is True


def test_seed_spec_priors_are_typed_targets():
    m = spec(SEED_SPEC)
    assert [p.target for p in m.priors] == [
        PriorTarget(ParamClass.INTERCEPT),
        PriorTarget(ParamClass.B, coef="homework"),
        PriorTarget(ParamClass.SD, group="schid", coef="Intercept"),
        PriorTarget(ParamClass.SD, group="schid", coef="homework"),
        PriorTarget(ParamClass.AUX, dpar="sigma"),
    ]
    assert m.priors[0].distribution == DistributionSpec("normal", (40.0, 50.0))
    assert m.family.name == "gaussian"
    assert m.response.label == "math"


def test_class_level_targets():
    m = spec("y ~ x + (1 + x | g)\nprior: b ~ normal(0, 1)\nprior: sd[g] ~ normal(0, 1)\nprior: cor ~ lkj(2)")
    assert [p.target for p in m.priors] == [
        PriorTarget(ParamClass.B),
        PriorTarget(ParamClass.SD, group="g"),
        PriorTarget(ParamClass.COR),
    ]


def test_negative_prior_location():
    (p,) = spec("y ~ x\nprior: b ~ normal(-2, 0.5)").priors
    assert p.distribution.args == (-2.0, 0.5)


def test_interaction_target():
    (p,) = spec("y ~ zBase * Trt\nprior: b[zBase:Trt1] ~ normal(0, 1)").priors
    assert p.target == PriorTarget(ParamClass.B, coef="zBase:Trt1")


def test_family_link():
    assert spec("y ~ x\nfamily: gaussian(log)").family.link == "log"
    assert spec("y ~ x\nfamily: gaussian(link = log)").family.link == "log"
    assert spec("y ~ x").family.name == "gaussian"


def test_duplicate_prior():
    with pytest.raises(PriorError, match="second prior for 'b\\[x\\]'") as info:
        spec("y ~ x\nprior: b[x] ~ normal(0, 1)\nprior: b[ x ] ~ normal(0, 2)")
    assert info.value.line == 3


def test_unknown_prior_class_lists_valid_ones():
    with pytest.raises(PriorError) as info:
        spec("y ~ x\nprior: sigmaa ~ normal(0, 1)")
    message = str(info.value)
    assert "did you mean 'sigma'" in message
    for cls in ("Intercept", "b", "sd", "cor", "sigma"):
        assert cls in message.split("valid classes:")[1]


def test_unknown_family_did_you_mean():
    with pytest.raises(FamilyError, match="did you mean 'gaussian'") as info:
        spec("y ~ x\nfamily: gausian")
    assert (info.value.line, info.value.column) == (2, 9)


def test_bad_link():
    with pytest.raises(FamilyError, match="does not allow the link 'logit'"):
        spec("y ~ x\nfamily: gaussian(logit)")
    with pytest.raises(FamilyError, match="unknown link 'lgo'"):
        spec("y ~ x\nfamily: gaussian(lgo)")


@pytest.mark.parametrize(
    "dist, count",
    [("normal(0)", 1), ("normal(0, 1, 2)", 3), ("student_t(3, 0)", 2), ("exponential()", 0)],
)
def test_wrong_number_of_distribution_arguments(dist, count):
    with pytest.raises(PriorError, match=f"got {count}"):
        spec(f"y ~ x\nprior: b ~ {dist}")


@pytest.mark.parametrize("dist", ["normal(0, -1)", "normal(0, 0)", "cauchy(0, -5)", "exponential(-1)",
                                  "student_t(-3, 0, 1)"])
def test_non_positive_scale(dist):
    with pytest.raises(PriorError, match="must be positive"):
        spec(f"y ~ x\nprior: b ~ {dist}")


def test_too_many_indices():
    with pytest.raises(PriorError, match="too many indices"):
        spec("y ~ x\nprior: sigma[x] ~ normal(0, 1)")


def test_formula_for_parameter_the_family_lacks():
    with pytest.raises(FormulaError, match="'nu' is not a parameter of the gaussian family"):
        spec("y ~ x\nnu ~ x")


def test_distributional_formula():
    m = spec("y ~ x\nsigma ~ z")
    assert [name for name, _ in m.dpars] == ["sigma"]


def test_errors_carry_positions():
    for text in ["y ~ 2 + x", "y ~ x\nprior: b ~ normal(0, -1)", "y ~ x\nfamily: gausian", "y ~ x^0.5"]:
        with pytest.raises((FormulaError, PriorError)) as info:
            spec(text)
        assert info.value.line is not None and "^" in str(info.value)
