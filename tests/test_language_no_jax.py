"""``hdsl.parse``: the language alone (text → expanded IR) imports no JAX, NumPyro, SciPy, BlackJAX or
ArviZ, gives the IR the pipeline fits, and resolves the family once, onto ``spec.family``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import hdsl
from hdsl.errors import FamilyError, FormulaError, PriorError
from hdsl.language.expand import expand_spec
from hdsl.language.families import FAMILIES, Categories, Link
from hdsl.language.parse import parse_spec

HEAVY = ("jax", "jaxlib", "numpyro", "scipy", "blackjax", "arviz")

SPECS = [
    "y ~ x + (1 | g)",
    "count ~ x + (1 + x || g)\nfamily: poisson(sqrt)\nprior: b ~ normal(0, 1)\nprior: sd[g] ~ half_normal(2)",
    "k | trials(n) ~ x + (1 | g)\nfamily: binomial(link = probit)",
    "y ~ x + (1 | p | g)\nsigma ~ x + (1 | p | g)\nfamily: student\nprior: nu ~ gamma(2, 0.1)",
    "t | cens(c, up) + weights(w) ~ x\nfamily: weibull\nprior: shape ~ gamma(0.01, 0.01)",
    "y | se(s, sigma = TRUE) ~ x\nprior: sigma ~ half_cauchy(5)",
    "rating ~ x + (1 | g)\nfamily: ordinal(probit)",
    "choice ~ x\nmu3 ~ x + (1 | g)\nfamily: categorical",
    "count ~ x\nzi ~ x\nfamily: zip\npriors:\n    b ~ student_t(3, 0, 2.5)\n    Intercept_zi ~ logistic(0, 1)",
]


def _run(code: str) -> subprocess.CompletedProcess:
    # without the opt-in variables under which `import hdsl` sets JAX up (the compilation cache, several processes)
    env = {k: v for k, v in os.environ.items() if k not in ("HDSL_CACHE_DIR", "HDSL_COORDINATOR")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env=env)


def test_parsing_imports_no_numerics():
    """Every spec in one fresh interpreter: after ``import hdsl`` and ``hdsl.parse``, none of the numerical
    libraries is in ``sys.modules``."""
    proc = _run(f"""
        import sys
        import hdsl
        assert not [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}], "import hdsl"
        for text in {SPECS!r}:
            spec = hdsl.parse(text)
            loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
            assert not loaded, (text, loaded)
        print("ok")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_parse_errors_import_no_numerics():
    """A mistake is reported by the language alone too."""
    proc = _run(f"""
        import sys
        import hdsl
        for text in ["y ~ x\\nfamily: gausian", "y ~ x\\nfamily: gaussian(logit)", "y | cens(c) ~ x\\nfamily: poisson",
                     "y ~ x\\nprior: b ~ normal(0, -1)", "y ~ x +"]:
            try:
                hdsl.parse(text)
            except hdsl.HdslError:
                pass
            else:
                raise AssertionError(text)
        assert not [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]
        print("ok")
    """)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("text", SPECS)
def test_parse_is_parse_then_expand(text):
    assert hdsl.parse(text) == expand_spec(parse_spec(text))


def test_parse_gives_the_spec_the_pipeline_fits():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.normal(size=30), "x": rng.normal(size=30), "g": np.repeat(list("abc"), 10),
                       "count": rng.poisson(2.0, 30)})
    for text in ["y ~ x + (1 | g)\nsigma ~ x", "count ~ x + (1 | g)\nfamily: poisson(sqrt)"]:
        assert hdsl.Model(text, df).spec == hdsl.parse(text)


def test_parse_is_public():
    assert "parse" in hdsl.__all__ and "parse" in dir(hdsl)


def test_the_family_is_resolved_once():
    """``spec.family`` is the catalogue's record with the link in use: later stages read it, not the name."""
    spec = hdsl.parse("y ~ x")
    assert spec.family is FAMILIES["gaussian"] and spec.family.link is Link.IDENTITY
    spec = hdsl.parse("y ~ x\nfamily: normal(log)")
    assert spec.family.name == "gaussian" and spec.family.link is Link.LOG
    assert spec.family == FAMILIES["gaussian"].with_link(Link.LOG)
    assert spec.family.links == FAMILIES["gaussian"].links
    assert hdsl.parse("y ~ x\nfamily: gaussian(identity)") == hdsl.parse("y ~ x\nfamily: gaussian")
    spec = hdsl.parse("rating ~ x\nfamily: ordinal(cloglog)")
    assert spec.family.name == "cumulative" and spec.family.categories is Categories.ORDERED
    assert spec.family.link is Link.CLOGLOG
    spec = hdsl.parse("y ~ x\nsigma ~ x\nfamily: student")
    assert [a.name for a in spec.scalar_aux] == ["nu"]
    assert [a.name for a in hdsl.parse("y | se(s) ~ x").scalar_aux] == []
    assert [a.name for a in hdsl.parse("y | se(s, sigma = TRUE) ~ x").scalar_aux] == ["sigma"]


def test_parse_raises_what_fitting_raises():
    with pytest.raises(FamilyError, match="did you mean 'gaussian'"):
        hdsl.parse("y ~ x\nfamily: gausian")
    with pytest.raises(FormulaError, match="cens\\(\\) is not supported for the poisson family"):
        hdsl.parse("y | cens(c) ~ x\nfamily: poisson")
    with pytest.raises(PriorError, match="sigma must be positive"):
        hdsl.parse("y ~ x\nprior: b ~ normal(0, -1)")
