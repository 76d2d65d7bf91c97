"""The wheel ships the grammar inside the package and parses with it when installed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_and_loads_the_grammar(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {out.stderr[-500:]}")
    wheel = next(tmp_path.glob("hdsl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "hdsl/grammars/hdsl.lark" in names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = ("import hdsl, hdsl.language.parse as p; t = p.parse_spec('y ~ x + (1 | g)'); "
            "print(p.grammar_path())")
    env = dict(os.environ, PYTHONPATH=str(target))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert str(target) in run.stdout  # the packaged grammar, not the source tree's


def test_public_names_survive_importing_every_submodule():
    """`import hdsl` is lazy; importing a submodule sets `hdsl.<submodule>` as an attribute, so no public
    name may share a submodule's name (once `hdsl.compare` was shadowed by the module hdsl/compare.py,
    depending on which test ran first)."""
    code = ("import pkgutil, importlib, types, hdsl\n"
            "for m in pkgutil.iter_modules(hdsl.__path__):\n"
            "    if m.name != '__main__': importlib.import_module('hdsl.' + m.name)\n"
            "bad = [n for n in hdsl.__all__ if isinstance(getattr(hdsl, n), types.ModuleType)]\n"
            "print(bad)\n"
            "assert not bad, bad\n"
            "assert callable(hdsl.compare) and callable(hdsl.fit) and callable(hdsl.cross_validate)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr[-2000:]
