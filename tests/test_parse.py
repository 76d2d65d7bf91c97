"""The parse stage alone: spec text → syntax nodes (hdsl.language.syntax), and positioned syntax errors."""

from __future__ import annotations

import pytest
from conftest import SEED_SPEC

from hdsl import HdslError, SpecSyntaxError
from hdsl.language import syntax as s
from hdsl.language.parse import parse_spec

SEED = SEED_SPEC


def N(name: str) -> s.Name:
    return s.Name(name)


def num(text: str) -> s.Number:
    return s.Number(float(text), text)


def call(func: str, *args: s.Expr) -> s.Call:
    return s.Call(func, tuple(args))


def op(o: str, left: s.Expr, right: s.Expr) -> s.BinOp:
    return s.BinOp(o, left, right)


def rhs(text: str) -> s.Expr:
    return parse_spec(f"y ~ {text}").formulas[0].rhs


def test_seed_spec_nodes():
    tree = parse_spec(SEED)
    assert tree.formulas == (
        s.FormulaLine(
            N("math"),
            None,
            op("+", N("homework"), s.Group(op("+", num("1"), N("homework")), "||", N("schid"))),
        ),
    )
    assert tree.families == (s.FamilyLine("gaussian", ()),)
    assert tree.priors == (
        s.PriorLine("Intercept", (), call("normal", num("40"), num("50"))),
        s.PriorLine("b", ("homework",), call("normal", num("0"), num("10"))),
        s.PriorLine("sd", ("schid", "Intercept"), call("normal", num("0"), num("50"))),
        s.PriorLine("sd", ("schid", "homework"), call("normal", num("0"), num("5"))),
        s.PriorLine("sigma", (), call("cauchy", num("0"), num("5"))),
    )
    assert tree.text == SEED


def test_positions_are_kept_but_not_compared():
    tree = parse_spec(SEED)
    (line,) = tree.formulas
    assert line.response.pos.line == 1 and line.response.pos.column == 1
    assert tree.families[0].pos.line == 2 and tree.families[0].pos.column == 9
    assert tree.priors[1].pos.line == 4 and tree.priors[1].pos.column == 8
    assert tree.priors[1].index_pos.column == 9
    assert parse_spec("y ~ x") == parse_spec("\n\ny ~    x   # same\n")


def test_comments_and_blank_lines():
    text = """
# a model
math ~ homework   # trailing comment

# another comment
family: gaussian
"""
    tree = parse_spec(text)
    assert tree.formulas == (s.FormulaLine(N("math"), None, N("homework")),)
    assert tree.families == (s.FamilyLine("gaussian", ()),)


def test_indented_priors_block():
    text = """\
y ~ x
priors:
    b[x] ~ normal(0, 1)
    # a comment inside the block

    sigma ~ exponential(1)
family: gaussian
"""
    tree = parse_spec(text)
    assert tree.priors == (
        s.PriorLine("b", ("x",), call("normal", num("0"), num("1"))),
        s.PriorLine("sigma", (), call("exponential", num("1"))),
    )
    assert tree.families == (s.FamilyLine("gaussian", ()),)


def test_prior_lines_and_block_mix():
    text = "y ~ x\nprior: Intercept ~ normal(0, 5)\npriors:\n  b ~ normal(0, 1)\n"
    assert [p.cls for p in parse_spec(text).priors] == ["Intercept", "b"]


def test_multi_line_formula_inside_parentheses():
    text = "y ~ (x +\n     z +\n     (1 | g))\nfamily: gaussian\n"
    one_line = parse_spec("y ~ (x + z + (1 | g))\nfamily: gaussian\n")
    assert parse_spec(text) == one_line


def test_family_with_positional_link():
    (fam,) = parse_spec("y ~ x\nfamily: binomial(logit)").families
    assert fam == s.FamilyLine("binomial", (N("logit"),))


def test_family_with_keyword_link():
    (fam,) = parse_spec("y ~ x\nfamily: gaussian(link = log)").families
    assert fam == s.FamilyLine("gaussian", (s.Keyword("link", N("log")),))


def test_group_with_id():
    assert rhs("x + (1 | ID | g)") == op("+", N("x"), s.Group(num("1"), "|", N("g"), N("ID")))


def test_correlated_and_uncorrelated_bars():
    assert rhs("(1 + x | g)").bar == "|"
    assert rhs("(1 + x || g)").bar == "||"


def test_backtick_names():
    tree = parse_spec("`my y` ~ `body mass` + x:`log-dose`")
    (line,) = tree.formulas
    assert line.response == N("my y")
    assert line.rhs == op("+", N("body mass"), op(":", N("x"), N("log-dose")))


def test_negative_numbers_in_prior_arguments():
    (p,) = parse_spec("y ~ x\nprior: b ~ normal(-1.5, 2e-1)").priors
    assert p.distribution == call("normal", s.Negate(num("1.5")), num("2e-1"))


def test_interaction_prior_target():
    (p,) = parse_spec("y ~ zBase * Trt\nprior: b[zBase:Trt1] ~ normal(0, 1)").priors
    assert p.cls == "b" and p.target_args == ("zBase:Trt1",)


def test_prior_target_with_function_coefficient():
    (p,) = parse_spec("y ~ log(x)\nprior: b[ log(x) ] ~ normal(0, 1)").priors
    assert p.target_args == ("log(x)",)


@pytest.mark.parametrize("name", ["family", "prior", "priors"])
def test_keyword_named_column_is_a_formula_variable(name):
    tree = parse_spec(f"{name} ~ x + {name}2\nfamily: gaussian")
    assert tree.formulas == (s.FormulaLine(N(name), None, op("+", N("x"), N(f"{name}2"))),)
    assert tree.families == (s.FamilyLine("gaussian", ()),)


def test_keyword_named_column_on_the_right():
    (line,) = parse_spec("y ~ family + prior").formulas
    assert line.rhs == op("+", N("family"), N("prior"))


def test_precedence():
    # ':' binds tighter than '*' and '/', which bind tighter than '+' and '-'
    assert rhs("a + b * c:d") == op("+", N("a"), op("*", N("b"), op(":", N("c"), N("d"))))
    assert rhs("(a + b)^2") == op("^", s.Paren(op("+", N("a"), N("b"))), num("2"))
    assert rhs("x - 1") == op("-", N("x"), num("1"))
    assert rhs("-1 + x") == op("+", s.Negate(num("1")), N("x"))


def test_names_and_numbers_that_start_with_a_dot():
    """R's names may start with '.', but not '.' then a digit: that is a number (the grammar keeps NAME and
    NUMBER apart, which strict mode checks)."""
    assert rhs(".5") == num(".5")
    assert rhs("I(.5 * x)") == call("I", op("*", num(".5"), N("x")))
    assert rhs(".x + x.y + ..5 + .") == op("+", op("+", op("+", N(".x"), N("x.y")), N("..5")), N("."))
    assert rhs("x.5") == N("x.5")


def test_the_grammar_builds_in_strict_mode():
    """strict=True makes lark refuse a grammar whose terminals can match the same text or that has a
    shift/reduce conflict; the shipped grammar passes."""
    import lark

    from hdsl.language.parse import grammar_text

    assert lark.Lark(grammar_text(), parser="lalr", lexer="contextual", strict=True).options.strict
    with pytest.raises(lark.exceptions.LexError, match="Collision between Terminals (NAME and NUMBER|NUMBER and NAME)"):
        lark.Lark(grammar_text().replace("NAME: /[A-Za-z_]", "NAME: /[A-Za-z_.0-9]"), parser="lalr",
                  lexer="contextual", strict=True)


def test_addition_terms_on_the_left():
    (line,) = parse_spec("y | trials(n) ~ x").formulas
    assert line.response == N("y") and line.addition == call("trials", N("n"))


def test_line_continuation_with_backslash():
    assert parse_spec("y ~ x + \\\n    z") == parse_spec("y ~ x + z")


def test_syntax_error_has_position_caret_and_expectation():
    with pytest.raises(SpecSyntaxError) as info:
        parse_spec("y ~ x +\nfamily: gaussian")
    exc = info.value
    assert (exc.line, exc.column) == (1, 8)
    lines = str(exc).splitlines()
    assert lines[0].startswith("line 1, column 8: ")
    assert lines[1] == "    y ~ x +"
    assert lines[2] == "    " + " " * 7 + "^"
    assert "expected a term" in lines[0]


@pytest.mark.parametrize(
    "text",
    ["y ~ x *", "y ~ (x", "y x", "y ~ x )", "y ~ x\nfamily:", "y ~ x\nprior: b ~ normal(0,",
     "y ~ x · z", "y ~ + x", "y ~ 1.2.3", "y ~ x\nprior: b[x ~ normal(0, 1)"],
)
def test_messages_use_typed_characters_not_terminal_names(text):
    with pytest.raises(SpecSyntaxError) as info:
        parse_spec(text)
    message = str(info.value)
    for terminal in ("LPAR", "RPAR", "TILDE", "PLUS", "STAR", "NAME", "_NL", "$END", "LSQB", "TARGET_INDEX"):
        assert terminal not in message
    assert info.value.line is not None and info.value.column is not None
    assert "^" in message


def test_unclosed_parenthesis_points_at_the_opener():
    with pytest.raises(SpecSyntaxError) as info:
        parse_spec("y ~ log(x + (1 | g)\nfamily: gaussian")
    assert (info.value.line, info.value.column) == (1, 8)
    assert "never closed" in str(info.value)


def test_indentation_errors_are_positioned():
    with pytest.raises(SpecSyntaxError) as info:
        parse_spec("y ~ x\npriors:\n    b ~ normal(0, 1)\n  sigma ~ normal(0, 1)\n")
    assert info.value.line == 4


def test_parse_errors_are_hdsl_errors_only():
    for text in ["y ~ ", "(((", ")", "~", "y ~ x\n\tfamily: x", "prior:", "priors:\n", "y ~ [1, 2", "y ~ 'a"]:
        with pytest.raises(HdslError):
            parse_spec(text)


def test_not_a_string():
    with pytest.raises(SpecSyntaxError):
        parse_spec(42)  # type: ignore[arg-type]
