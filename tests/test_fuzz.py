"""Fuzzing the front end: random text and random mutations of valid specs.

Whatever goes in, the only exception allowed out of ``parse_spec`` + ``expand_spec`` (and of binding with
:class:`hdsl.Model`) is :class:`hdsl.HdslError`: anything else (a lark, pandas, numpy or Python error) is a
bug in hdsl's validation.
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
from hdsl.language.parse import parse_spec

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
    try:
        expand_spec(parse_spec(text))
    except hdsl.HdslError:
        pass
    except RecursionError:
        pass  # a pathological nesting depth is Python's limit, not ours (see test_deep_nesting)


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


def test_deep_nesting():
    """Deep parentheses are refused or accepted, never a crash other than HdslError."""
    for depth in (50, 200):
        _front_end("y ~ " + "(" * depth + "x" + ")" * depth)


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
        except RecursionError:
            pass
