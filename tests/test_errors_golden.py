"""Golden error messages: every ``tests/golden/bad/NAME.hdsl`` must fail with exactly ``NAME.expected``.

A spec whose first line is ``# data: y,x`` is run through :class:`hdsl.Model` with a tiny DataFrame
holding those numeric columns plus a string column ``g`` (the error is about the data); any other spec
goes through ``parse_spec`` and ``expand_spec`` alone. ``HDSL_UPDATE_GOLDEN=1`` rewrites the expected
files from what hdsl says now: read every changed message by eye before keeping it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hdsl
from hdsl.language.expand import expand_spec
from hdsl.language.parse import parse_spec

sys.path.insert(0, str(Path(__file__).parent))

GOLDEN = Path(__file__).parent / "golden" / "bad"
CASES = sorted(GOLDEN.glob("*.hdsl"))
UPDATE = os.environ.get("HDSL_UPDATE_GOLDEN") == "1"

#: Cases whose error has no place in the spec text (nothing to point a caret at).
NO_POSITION = {"no_formula"}

_DATA_LINE = re.compile(r"#\s*data:\s*(.*)")


def tiny_frame(columns: list[str]) -> pd.DataFrame:
    """Six rows: the named numeric columns and a string grouping column g."""
    rng = np.random.default_rng(0)
    frame = {c: rng.normal(size=6) for c in columns if c != "g"}
    frame["g"] = ["a", "a", "b", "b", "c", "c"]
    return pd.DataFrame(frame)


def error_for(text: str) -> Exception:
    """The exception the spec raises (pytest fails if it raises none)."""
    first = text.splitlines()[0] if text else ""
    match = _DATA_LINE.fullmatch(first.strip())
    try:
        if match:
            hdsl.Model(text, tiny_frame([c.strip() for c in match.group(1).split(",") if c.strip()]))
        else:
            expand_spec(parse_spec(text))
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever came out
        return exc
    pytest.fail("the spec was accepted, but it should be an error")


def test_there_are_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_error(path: Path):
    text = path.read_text()
    exc = error_for(text)
    assert isinstance(exc, hdsl.HdslError), f"raw {type(exc).__module__}.{type(exc).__name__}: {exc}"
    message = str(exc)
    expected_path = path.with_suffix(".expected")
    if UPDATE:
        expected_path.write_text(message + "\n")
    assert expected_path.exists(), f"no {expected_path.name}; run with HDSL_UPDATE_GOLDEN=1 and review it"
    assert message == expected_path.read_text().removesuffix("\n")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_error_has_a_place(path: Path):
    """Where the spec text has a place for the error, the message names it and draws a caret."""
    exc = error_for(path.read_text())
    if path.stem in NO_POSITION:
        return
    assert isinstance(exc, hdsl.HdslError)
    assert exc.line is not None and exc.column is not None, str(exc)
    lines = str(exc).splitlines()
    assert lines[0].startswith(f"line {exc.line}, column {exc.column}: ")
    caret = lines[2]
    assert caret.strip().startswith("^") and caret.index("^") == 4 + exc.column - 1
    src = path.read_text().splitlines()[exc.line - 1].expandtabs(1)
    assert lines[1] == "    " + src


def test_error_catalogue_is_current():
    """docs/errors.md is generated from the golden cases: regenerate it when they change."""
    import make_error_catalogue as cat

    assert set(cat.DESCRIPTIONS) == {p.stem for p in CASES}
    assert cat.DOC.read_text() == cat.catalogue(), "run: python tests/make_error_catalogue.py"
