"""The documentation site builds with warnings as errors, and its generated pages are up to date."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_language_reference_is_up_to_date():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import make_language
    finally:
        sys.path.remove(str(ROOT / "docs"))
    assert (ROOT / "docs/language.md").read_text() == make_language.render(), "run: python docs/make_language.py"


def test_family_examples_are_valid_specs():
    from hdsl.language.expand import expand_spec
    from hdsl.language.parse import parse_spec
    from hdsl.model.families import FAMILY_NUMERICS as FAMILIES

    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import make_language
    finally:
        sys.path.remove(str(ROOT / "docs"))
    for name, (_, _, example) in make_language.FAMILY_INFO.items():
        assert expand_spec(parse_spec(example)).family.name == name
    assert set(make_language.FAMILY_INFO) == set(FAMILIES)


def test_tutorial_page_and_figures_exist():
    page = (ROOT / "docs/tutorial/index.md").read_text()
    for image in ("pooled", "group_ols", "trace", "forest", "lines", "conditional", "ppc"):
        assert f"img/{image}.png" in page
        assert (ROOT / f"docs/tutorial/img/{image}.png").stat().st_size > 10_000


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs command not found")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site/tutorial/index.html").exists()
    api = (tmp_path / "site/api/index.html").read_text()
    assert "plot_forest" in api and "conditional_effects" in api
