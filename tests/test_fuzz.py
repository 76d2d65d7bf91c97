"""Fuzzing the front end: random text, random mutations of valid specs, and pathological nesting.

Whatever goes in, the only exception allowed out of ``parse_spec`` + ``expand_spec`` (and of binding with
:class:`hdsl.Model`) is :class:`hdsl.HdslError`: anything else (a lark, pandas, numpy or Python error, a
RecursionError included) is a bug in hdsl's validation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hdsl
from hdsl.language.expand import expand_spec
from hdsl.language.parse import MAX_NESTING, parse_spec

VALID_SPECS = [
    "y ~ x",
    "y ~ x + (1 | g)",
    "y ~ x + (1 + x || g)",
    "y ~ 1 + x * z + (1 + x | g)",
    "y ~ 0 + x + z:x - z + (1 | g/h)",
    "y ~ log(x) + I(x^2) + scale(z) + (1 | g:h)",
    "y ~ (x + z)^2 + poly(x, 2)",
    "y | trials(n) ~ x + (1 | g)\nfamily: binomial",
    "y ~ x\nfamily: poisson(log)",
    "y ~ x + (1 | g)\nfamily: student\nprior: nu ~ gamma(2, 0.1)",
    "y ~ x + offset(z)\nfamily: negbinomial",
    "y ~ x + (1 + x | g)\nprior: Intercept ~ normal(0, 5)\nprior: b[x] ~ normal(0, 2)\n"
    "prior: sd[g, x] ~ student_t(3, 0, 2)\nprior: cor[g] ~ lkj(2)\nprior: sigma ~ exponential(1)",
    "y ~ x\npriors:\n    b ~ normal(0, 1)\n    sigma ~ half_cauchy(5)\n",
    "# comment\ny ~ x + (1 | g)   # trailing\nfamily: gaussian(identity)\n",
    "y ~ x + (1 | g)\nsigma ~ x",
    "y ~ x + factor(h) + (1 | g)",
    "y ~ x\nprior: b ~ uniform(-1, 1)\nprior: sigma ~ inv_gamma(1, 1)",
]

TOKENS = ["y", "x", "z", "g", "h", "n", "~", "+", "-", "*", "/", ":", "^", "|", "||", "(", ")", "[", "]",
          ",", "=", "1", "0", "-1", "2.5", "1e3", "log", "I", "scale", "poly", "factor", "offset", "trials",
          "family:", "prior:", "priors:", "gaussian", "binomial", "normal", "lkj", "Intercept", "b", "sd",
          "cor", "sigma", "nu", "\n", "    ", "\t", "#", "'", '"', "\\", "é", "−", "×", "∶", "\x00", "%in%",
          ".", "`", "{", "}", "@", "$", "!", ";", "", " "]

ALPHABET = st.sampled_from(list("yxzgh01.e~+-*/:^|()[],= \n\t#abcIlog_'\"\\é−") + ["\u00a0", "\x00", "\r"])


def _front_end(text: str) -> None:
    """Parse and expand; an HdslError is a fine answer, any other exception fails the test."""
    try:
        expand_spec(parse_spec(text))
    except hdsl.HdslError:
        pass


@st.composite
def mutated(draw) -> str:
    """A valid spec with a few random edits at character or token level."""
    text = draw(st.sampled_from(VALID_SPECS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "token", "token_replace", "duplicate"]))
        if op == "insert":
            text = text[:pos] + draw(ALPHABET) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 3)):]
        elif op == "replace":
            text = text[:pos] + draw(ALPHABET) + text[pos + 1:]
        elif op == "token":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif op == "token_replace":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos + draw(st.integers(1, 4)):]
        else:
            end = draw(st.integers(pos, min(len(text), pos + 10)))
            text = text[:end] + text[pos:end] + text[end:]
    return text


token_soup = st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join)
def fast(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@fast(1500)
@given(st.text(max_size=60))
def test_random_unicode_text(text):
    _front_end(text)


@fast(1500)
@given(st.text(ALPHABET, max_size=60))
def test_random_spec_alphabet(text):
    _front_end(text)


@fast(1500)
@given(token_soup)
def test_random_tokens(text):
    _front_end(text)


@fast(2000)
@given(mutated())
def test_mutated_valid_specs(text):
    _front_end(text)


def test_valid_specs_are_valid():
    for text in VALID_SPECS:
        expand_spec(parse_spec(text))


def nested(depth: int) -> dict[str, str]:
    """Specs whose deepest expression is ``depth`` levels down, one for each way the language nests (the
    outermost expression of a formula side, a prior or a family argument is level 1)."""
    d = depth
    functions = "".join(("log(", "exp(")[i % 2] for i in range(d - 1))
    return {
        "parentheses": "y ~ " + "(" * (d - 1) + "x" + ")" * (d - 1),
        "response": "(" * (d - 1) + "y" + ")" * (d - 1) + " ~ x",
        "I()": "y ~ " + "I(" * (d - 1) + "x" + ")" * (d - 1),
        "functions": "y ~ " + functions + "n" + ")" * (d - 1),
        "unary minus": "y ~ I(" + "-" * (d - 2) + "x)",
        "powers": "y ~ I(x" + "^1" * (d - 2) + ")",
        "interactions": "y ~ " + ":".join(["x"] * d),
        "sum inside a call": "y ~ I(" + " + ".join(["x"] * (d - 1)) + ")",
        "group factor": "y ~ (1 | " + "(" * (d - 2) + "g" + ")" * (d - 2) + ")",
        "group terms": "y ~ (" + "(" * (d - 2) + "x" + ")" * (d - 2) + " | g)",
        "list": "y ~ poly(x, " + "[" * (d - 2) + "1" + "]" * (d - 2) + ")",
        "addition term": "y | weights(" + "(" * (d - 2) + "n" + ")" * (d - 2) + ") ~ x",
        "prior argument": "y ~ x\nprior: b ~ normal(" + "(" * (d - 2) + "0" + ")" * (d - 2) + ", 1)",
        "prior minus": "y ~ x\nprior: b ~ normal(" + "-" * (d - 2) + "1, 1)",
        "prior sum": "y ~ x\nprior: b ~ normal(" + "+".join(["0"] * (d - 1)) + ", 1)",
        "family argument": "y ~ x\nfamily: gaussian(" + "(" * (d - 1) + "identity" + ")" * (d - 1) + ")",
    }


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 5000])
@pytest.mark.parametrize("kind", list(nested(3)))
def test_too_deep_nesting_is_a_syntax_error(kind, depth):
    """Nesting past the limit (just past it, and far past it) is a SpecSyntaxError that names the limit and
    draws a caret: never a RecursionError from the parser or a later stage."""
    text = nested(depth)[kind]
    with pytest.raises(hdsl.SpecSyntaxError) as info:
        expand_spec(parse_spec(text))
    exc = info.value
    assert exc.message == f"nested too deeply (more than {MAX_NESTING} levels)"
    assert exc.line is not None and exc.column is not None
    lines = str(exc).splitlines()
    assert lines[0] == f"line {exc.line}, column {exc.column}: nested too deeply (more than {MAX_NESTING} levels)"
    assert lines[1] == "    " + text.splitlines()[exc.line - 1]
    assert lines[2] == "    " + " " * (exc.column - 1) + "^"


def test_the_caret_is_under_the_first_level_past_the_limit():
    for depth, under_caret in ((MAX_NESTING + 1, "x"), (5000, "(")):
        text = nested(depth)["parentheses"]
        with pytest.raises(hdsl.SpecSyntaxError) as info:
            parse_spec(text)
        assert (info.value.line, info.value.column) == (1, len("y ~ ") + MAX_NESTING + 1)
        assert text[info.value.column - 1] == under_caret


@pytest.mark.parametrize("kind", list(nested(3)))
def test_nesting_up_to_the_limit_goes_through_every_stage(kind):
    """The most deeply nested specs the parser accepts are expanded, bound, given priors and compiled
    without reaching Python's recursion limit: an HdslError about the model is a fine answer, nothing else."""
    text = nested(MAX_NESTING)[kind]
    parse_spec(text)  # accepted: exactly at the limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            hdsl.Model(text, FRAME, dtype="float64")
        except hdsl.HdslError as exc:
            assert "nested too deeply" not in exc.message


@pytest.mark.parametrize("n_terms", [2_000, 5_000])
def test_a_long_sum_of_terms_is_accepted(n_terms):
    """A sum of terms is not nesting: thousands of terms expand, in order, with removals applied."""
    names = [f"x{i}" for i in range(n_terms)]
    spec = expand_spec(parse_spec("y ~ " + " + ".join(names) + " - x1 + (1 | g) - 1"))
    assert [t.label for t in spec.predictor.terms] == [n for n in names if n != "x1"]
    assert not spec.predictor.intercept and [g.group for g in spec.predictor.groups] == [("g",)]


def test_a_long_sum_binds():
    """A sum of many terms goes through binding too (one design column per term)."""
    n_terms = 300
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=8) for i in range(n_terms)} | {"y": rng.normal(size=8)})
    model = hdsl.Model("y ~ " + " + ".join(frame.columns[:-1]), frame, dtype="float64")
    assert model.design.main.coef_names == tuple(frame.columns[:-1])


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "y": rng.poisson(3.0, 8).astype(float), "x": rng.normal(size=8), "z": rng.normal(size=8),
        "n": np.full(8, 10), "g": list("aabbccdd"), "h": list("pqpqpqpq"),
    })


FRAME = _frame()


@pytest.fixture(autouse=True)
def _x64():
    import jax

    jax.config.update("jax_enable_x64", True)


@fast(300)
@given(mutated())
def test_mutated_specs_bind(text):
    """Binding against a tiny DataFrame (lowering included, no sampling) lets out only HdslError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            hdsl.Model(text, FRAME, dtype="float64")
        except hdsl.HdslError:
            pass
